//! `paas storage:*`: the app's volumes and their mounts, and the changes to them, which
//! [`crate::ops::storage`] carries out.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use paas_api::AppName;
use paas_api::storage::{Mount, StorageChange, Volume, VolumeName};
use serde::Deserialize;

use super::progress::{WantsProgress, answer};
use super::{ApiError, ApiResult, AuthUser, Json, Path, Query};
use crate::ops::storage;
use crate::state::SharedState;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Volume>>> {
    let app = auth.app(&state, &name).await?;
    Ok(Json(state.store.volumes(app.id).await?))
}

pub async fn mount(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(mount): Json<Mount>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = storage::mount(&state, app, &auth.user, mount);
    answer(wants, op, Json::<StorageChange>).await
}

pub async fn unmount(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(mount): Json<Mount>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = storage::unmount(&state, app, &auth.user, mount);
    answer(wants, op, Json::<StorageChange>).await
}

#[derive(Deserialize)]
pub struct DestroyQuery {
    confirm: Option<String>,
}

pub async fn destroy(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, volume)): Path<(AppName, VolumeName)>,
    Query(query): Query<DestroyQuery>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    if query.confirm.as_deref() != Some(app.name.as_str()) {
        return Err(ApiError::invalid(format!(
            "Confirmation required: destroying volume {volume} deletes its files; confirm with the app name ({}).",
            app.name
        )));
    }
    storage::destroy(&state, app, &auth.user, volume)
        .finished()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

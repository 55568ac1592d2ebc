//! Process sizes (`paas ps:resize`): the memory and CPU limits each process type of the current
//! release asks for, and a resize, which [`crate::ops::resize`] carries out as a new release.

use axum::extract::State;
use axum::response::Response;
use paas_api::AppName;
use paas_api::resources::{ProcessSize, ResizeRequest};
use paas_api::types::Release;

use super::progress::{WantsProgress, answer};
use super::{ApiResult, AuthUser, Json, Path};
use crate::ops::resize;
use crate::state::SharedState;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<ProcessSize>>> {
    let app = auth.app(&state, &name).await?;
    let current = state.store.current_release(app.id).await?;
    Ok(Json(
        current.as_ref().map(resize::sizes).unwrap_or_default(),
    ))
}

pub async fn resize(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<ResizeRequest>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = resize::resize(&state, app, &auth.user, request);
    answer(wants, op, Json::<Release>).await
}

//! Maintenance mode (`paas maintenance`) and sticky sessions (`paas ps:sticky`): the stored
//! state, and a change, which [`crate::ops::maintenance`] and [`crate::ops::sticky`] carry out.

use axum::extract::State;
use axum::response::Response;
use paas_api::AppName;
use paas_api::routing::{Maintenance, StickySessions};

use super::progress::{WantsProgress, answer};
use super::{ApiResult, AuthUser, Json, Path};
use crate::ops::{maintenance, sticky};
use crate::state::SharedState;

pub async fn maintenance(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Maintenance>> {
    let app = auth.app(&state, &name).await?;
    let routing = state.store.routing(app.id).await?;
    Ok(Json(Maintenance {
        enabled: routing.maintenance,
    }))
}

pub async fn set_maintenance(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<Maintenance>,
) -> ApiResult<Json<Maintenance>> {
    let app = auth.app(&state, &name).await?;
    let changed = maintenance::set(&state, app, &auth.user, request.enabled)
        .finished()
        .await?;
    Ok(Json(changed))
}

pub async fn sticky(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<StickySessions>> {
    let app = auth.app(&state, &name).await?;
    let routing = state.store.routing(app.id).await?;
    Ok(Json(StickySessions {
        enabled: routing.sticky_sessions,
    }))
}

pub async fn set_sticky(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<StickySessions>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = sticky::set(&state, app, &auth.user, request.enabled);
    answer(wants, op, Json::<StickySessions>).await
}

//! `POST /v1/apps/{app}/run/detached`: hands a detached one-off to [`crate::ops::run`] and
//! answers 201 with its name once it runs.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::AppName;
use paas_api::oneoff::{RunRequest, RunStarted};

use super::{ApiResult, AuthUser, Json, Path};
use crate::ops;
use crate::state::SharedState;

pub async fn detached(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<RunRequest>,
) -> ApiResult<(StatusCode, Json<RunStarted>)> {
    let app = auth.app(&state, &name).await?;
    let started = ops::run::detached(&state, &app, &auth.user, request).await?;
    Ok((StatusCode::CREATED, Json(started)))
}

//! `POST /v1/apps/{app}/rollback`: hands the rollback to [`crate::ops::rollback`] and answers
//! once it is live.

use axum::extract::{Path, State};
use paas_api::types::{Release, RollbackRequest};

use super::{ApiResult, AuthUser, Json};
use crate::ops;
use crate::state::SharedState;

pub async fn rollback(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> ApiResult<Json<Release>> {
    let app = auth.app(&state, &name).await?;
    let release = ops::rollback::rollback(&state, app, &auth.user, request.version)
        .finished()
        .await?;
    Ok(Json(release))
}

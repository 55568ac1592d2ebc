//! `POST /v1/apps/{app}/rollback`: hands the rollback to [`crate::ops::rollback`] and answers
//! once it is live.

use axum::extract::State;
use axum::response::Response;
use paas_api::AppName;
use paas_api::types::{Release, RollbackRequest};

use super::progress::{WantsProgress, answer};
use super::{ApiResult, AuthUser, Json, Path};
use crate::ops;
use crate::state::SharedState;

pub async fn rollback(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<RollbackRequest>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = ops::rollback::rollback(&state, app, &auth.user, request.version);
    answer(wants, op, Json::<Release>).await
}

//! The build history of an app and each build's output.

use super::releases::ListQuery;
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::state::SharedState;
use axum::extract::{Query, State};
use paas_api::builds::{Build, BuildOutput, BuildStatus};
use paas_api::{AppName, ErrorCode};

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Build>>> {
    let app = auth.app(&state, &name).await?;
    Ok(Json(state.store.builds(app.id, query.limit()).await?))
}

/// `GET /v1/apps/{app}/builds/{id}/output`: what the build's push printed.
pub async fn output(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, id)): Path<(AppName, String)>,
) -> ApiResult<Json<BuildOutput>> {
    let app = auth.app(&state, &name).await?;
    let id = parse_id(&id)?;
    let not_found = || ApiError::new(ErrorCode::NotFound, format!("No build {id}."));
    let (build, output) = state
        .store
        .build_output(app.id, id)
        .await?
        .ok_or_else(not_found)?;
    let output = output.ok_or_else(|| {
        let why = match build.status {
            BuildStatus::Pending => "it is still running; its push shows it",
            BuildStatus::Succeeded | BuildStatus::Failed => "it was cut off by a restart",
        };
        ApiError::new(
            ErrorCode::NotFound,
            format!("Build {id} has no output: {why}."),
        )
    })?;
    Ok(Json(BuildOutput { id, output }))
}

/// A build number: 1, 2, …
fn parse_id(text: &str) -> ApiResult<u32> {
    text.parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid(format!("Invalid build {text:?}: use 1, 2, …")))
}

//! The release history of an app.

use axum::extract::{Query, State};
use paas_api::ErrorCode;
use paas_api::types::{Release, ReleaseOutput};
use serde::Deserialize;

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::state::SharedState;
use paas_api::AppName;

/// `?limit=N` of a history (releases, builds): the newest 100 unless it says, 1 to 1000.
#[derive(Deserialize)]
pub struct ListQuery {
    limit: Option<u32>,
}

impl ListQuery {
    pub fn limit(&self) -> u32 {
        self.limit.unwrap_or(100).clamp(1, 1000)
    }
}

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Vec<Release>>> {
    let app = auth.app(&state, &name).await?;
    Ok(Json(state.store.releases(app.id, query.limit()).await?))
}

pub async fn info(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, version)): Path<(AppName, String)>,
) -> ApiResult<Json<Release>> {
    let app = auth.app(&state, &name).await?;
    let number = parse_version(&version)?;
    state
        .store
        .release(app.id, number)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("No release v{number}.")))
}

/// `v3` or `3`.
pub fn parse_version(text: &str) -> ApiResult<u32> {
    text.strip_prefix('v')
        .unwrap_or(text)
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::invalid(format!("Invalid release {text:?}: use v1, v2, …")))
}

/// `GET /v1/apps/{app}/releases/{version}/output`: what the release's push (or rollback)
/// printed while it was built and rolled out.
pub async fn output(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, version)): Path<(AppName, String)>,
) -> ApiResult<Json<ReleaseOutput>> {
    let app = auth.app(&state, &name).await?;
    let number = parse_version(&version)?;
    let release = state.store.release(app.id, number).await?;
    let output = state.store.release_output(app.id, number).await?;
    if release.is_none() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("No release v{number}."),
        ));
    }
    let output = output.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("Release v{number} has no build output (config changes are not built)."),
        )
    })?;
    Ok(Json(ReleaseOutput {
        version: number,
        output,
    }))
}

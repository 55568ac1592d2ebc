//! `paas pg:backups*`: the captures of a Postgres add-on attached to an app, listed,
//! captured, downloaded (streamed from the agent as it reads the file, never held whole) and
//! deleted here; restores are [`crate::ops::backups`]'s. The add-on is found as
//! [`super::addons`] finds it, so whoever may see the app (owner, collaborators) may use its
//! add-ons' backups and nobody else finds them; a restore from another add-on takes one of
//! the same owner that the user may see through an app of its own.

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use paas_api::addons::AddonName;
use paas_api::backups::{Backup, BackupId, RestoreRequest, Restored};
use paas_api::{AppName, ErrorCode};
use serde::Deserialize;

use super::addons::{addon_not_found, attached};
use super::{ApiError, ApiResult, AuthUser, Json, Path, Query};
use crate::ops::OpsError;
use crate::ops::backups;
use crate::state::SharedState;
use crate::store::AddonRow;

fn agent_error(what: String, err: paas_agent_client::RuntimeError) -> ApiError {
    ApiError::from(OpsError::Agent {
        what,
        reason: err.to_string(),
        logs: Vec::new(),
    })
}

/// The add-on `name` attached to `app`, if it is a Postgres.
async fn postgres(
    state: &SharedState,
    auth: &AuthUser,
    app: &AppName,
    name: &AddonName,
) -> ApiResult<AddonRow> {
    let app = auth.app(state, app).await?;
    let addon = attached(state, &app, name).await?;
    backups::require_postgres(&addon)?;
    Ok(addon)
}

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((app, name)): Path<(AppName, AddonName)>,
) -> ApiResult<Json<Vec<Backup>>> {
    let addon = postgres(&state, &auth, &app, &name).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let backups = agent
        .backups(&addon.owner, &addon.name)
        .await
        .map_err(|err| agent_error(format!("Could not list the backups of {name}"), err))?;
    Ok(Json(backups))
}

pub async fn capture(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((app, name)): Path<(AppName, AddonName)>,
) -> ApiResult<Json<Backup>> {
    let addon = postgres(&state, &auth, &app, &name).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let backup = agent
        .capture_backup(&addon.owner, &addon.name)
        .await
        .map_err(|err| agent_error(format!("Could not capture {name}"), err))?;
    tracing::info!(%app, addon = %name, id = %backup.id, by = %auth.user.username, "backup captured");
    Ok(Json(backup))
}

pub async fn download(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((app, name, id)): Path<(AppName, AddonName, BackupId)>,
) -> ApiResult<Response> {
    let addon = postgres(&state, &auth, &app, &name).await?;
    let backup = backups::completed(&state, &addon, Some(&id)).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let (length, body) = agent
        .download_backup(&addon.owner, &addon.name, &backup.id)
        .await
        .map_err(|err| agent_error(format!("Could not read backup {id} of {name}"), err))?;
    let mut response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream");
    if let Some(length) = length {
        response = response.header(header::CONTENT_LENGTH, length);
    }
    let body = body.map(|chunk| chunk.map_err(std::io::Error::other));
    response
        .body(Body::from_stream(body))
        .map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    confirm: Option<String>,
}

pub async fn delete(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((app, name, id)): Path<(AppName, AddonName, BackupId)>,
    Query(query): Query<DeleteQuery>,
) -> ApiResult<StatusCode> {
    let addon = postgres(&state, &auth, &app, &name).await?;
    if query.confirm.as_deref() != Some(app.as_str()) {
        return Err(ApiError::invalid(format!(
            "Confirmation required: deleting backup {id} of {name} cannot be undone; confirm with the app name ({app})."
        )));
    }
    let backup = backups::completed(&state, &addon, Some(&id)).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    agent
        .delete_backup(&addon.owner, &addon.name, &backup.id)
        .await
        .map_err(|err| agent_error(format!("Could not delete backup {id} of {name}"), err))?;
    tracing::info!(%app, addon = %name, %id, by = %auth.user.username, "backup deleted");
    Ok(StatusCode::NO_CONTENT)
}

pub async fn restore(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((app_name, name)): Path<(AppName, AddonName)>,
    Json(request): Json<RestoreRequest>,
) -> ApiResult<Json<Restored>> {
    let app = auth.app(&state, &app_name).await?;
    let target = attached(&state, &app, &name).await?;
    if request.confirm.as_deref() != Some(app.name.as_str()) {
        return Err(ApiError::invalid(format!(
            "Confirmation required: restoring replaces all data in {name}; confirm with the app name ({app_name}). Nothing was changed."
        )));
    }
    let (source_name, id) = match request.backup {
        Some(backup) => (
            backup.addon.unwrap_or_else(|| name.clone()),
            Some(backup.id),
        ),
        None => (name.clone(), None),
    };
    let source = if source_name == target.name {
        target.clone()
    } else {
        let source = state
            .store
            .addon(app.owner_id, source_name)
            .await?
            .ok_or_else(addon_not_found)?;
        // As for attach: the user must see the source through an app of its own.
        auth.app(&state, &source.app)
            .await
            .map_err(|_| addon_not_found())?;
        source
    };
    let restored = backups::restore(&state, app, target, source, id, &auth.user)
        .finished()
        .await?;
    Ok(Json(restored))
}

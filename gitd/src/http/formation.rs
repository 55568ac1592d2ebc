//! Processes: `ps` (the app's instances, read from the agent), the formation (how many of
//! each process type), `scale` (change it without a new release) and `restart`. Changes take
//! the app's lock and answer once the agent reports the instances healthy.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::agent::Instance;
use paas_api::formation::apply_scale;
use paas_api::types::{Formation, ProcessInstance, Release, RestartRequest, ScaleRequest};

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::queries::{self, AppRow};
use crate::deploy::rollout::{self, RolloutFailure};
use crate::state::SharedState;
use paas_api::AppName;

pub async fn ps(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<ProcessInstance>>> {
    let app = auth.app(&state, &name).await?;
    let Some(agent) = state.agent.as_ref() else {
        return Err(no_agent());
    };
    let instances = agent
        .instances(&app.name)
        .await
        .map_err(|err| deploy_failed("Could not list the app's instances", &err.into()))?;
    let mut listed: Vec<ProcessInstance> = instances.into_iter().map(process_instance).collect();
    listed.sort_by(|a, b| (&a.process, a.index, a.release).cmp(&(&b.process, b.index, b.release)));
    Ok(Json(listed))
}

fn process_instance(instance: Instance) -> ProcessInstance {
    ProcessInstance {
        process: instance.process,
        index: instance.index,
        release: instance.release,
        state: instance.state,
        since: instance.started_at,
        container: instance.name,
    }
}

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Formation>>> {
    let app = auth.app(&state, &name).await?;
    let (release, formation) = current_formation(&state, &app).await?;
    Ok(Json(formation_list(release.as_ref(), &formation)))
}

pub async fn scale(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<ScaleRequest>,
) -> ApiResult<Json<Vec<Formation>>> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        let changes = request.changes;
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        // Read under the lock, so `web+1` adds to what the previous change left.
        let (release, current) = current_formation(&state, &app).await?;
        let next = apply_scale(&current, &changes).map_err(|e| ApiError::invalid(e.to_string()))?;
        state.config.quotas.check_scale(&current, &next)?;
        let Some(release) = release else {
            return Err(ApiError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            )));
        };
        if next != current {
            rollout::roll_out(&state, &app, &release, next.clone(), |line| {
                tracing::info!(app = %app.name, "{line}");
            })
            .await
            .map_err(|failure| deploy_failed("Scaling failed", &failure))?;
            tracing::info!(app = %app.name, formation = ?next, by = %auth.user.username, "scaled");
            let scaled = crate::events::formation_summary(&next);
            let message = format!("Scaled to {scaled} by user {}", auth.user.username);
            crate::events::record(&state, app.id, "scale", message).await;
        }
        Ok(Json(formation_list(Some(&release), &next)))
    })
    .await
}

pub async fn restart(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<RestartRequest>,
) -> ApiResult<StatusCode> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        let (release, formation) = current_formation(&state, &app).await?;
        if release.is_none() {
            return Err(ApiError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            )));
        }
        if let Some(process) = &request.process
            && !formation.contains_key(process.as_str())
        {
            let known = formation.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(ApiError::invalid(format!(
                "unknown process type {process:?}; this app has: {known}"
            )));
        }
        let restarted = request
            .process
            .as_ref()
            .map_or_else(|| "all processes".to_owned(), ToString::to_string);
        rollout::restart(&state, &app, request.process, |line| {
            tracing::info!(app = %app.name, "{line}");
        })
        .await
        .map_err(|failure| deploy_failed("Restart failed", &failure))?;
        let message = format!("Restarted {restarted} by user {}", auth.user.username);
        crate::events::record(&state, app.id, "restart", message).await;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// The running release, if any, and the quantity of each of its process types.
pub async fn current_formation(
    state: &SharedState,
    app: &AppRow,
) -> ApiResult<(Option<Release>, BTreeMap<String, u32>)> {
    let app_id = app.id;
    let (release, stored) = state
        .db
        .call(move |conn| -> rusqlite::Result<_> {
            Ok((
                queries::current_release(conn, app_id)?,
                queries::formation(conn, app_id)?,
            ))
        })
        .await?;
    // A release without an image (config set before the first deploy) runs nothing.
    let release = release.filter(|release| release.image.is_some());
    let formation = match &release {
        Some(release) => rollout::formation_for(&release.processes, &stored),
        None => BTreeMap::new(),
    };
    Ok((release, formation))
}

fn formation_list(release: Option<&Release>, formation: &BTreeMap<String, u32>) -> Vec<Formation> {
    formation
        .iter()
        .map(|(process, quantity)| Formation {
            process: process.clone(),
            quantity: *quantity,
            command: release
                .and_then(|release| release.processes.get(process).cloned())
                .flatten(),
        })
        .collect()
}

pub fn deploy_failed(what: &str, failure: &RolloutFailure) -> ApiError {
    ApiError::new(
        ErrorCode::DeployFailed,
        format!("{what}: {}", failure.with_logs()),
    )
}

/// Runs a change to completion even when the client hangs up: what the agent did and what
/// the database says must not part ways because a request was dropped half-way. The work
/// takes the app's lock itself, so the lock is held until it is done.
pub async fn detached<T: Send + 'static>(
    work: impl Future<Output = ApiResult<T>> + Send + 'static,
) -> ApiResult<T> {
    tokio::spawn(work).await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "a change to an app panicked");
        Err(ApiError::new(
            ErrorCode::Internal,
            "Internal error; see the server log.",
        ))
    })
}

pub fn no_agent() -> ApiError {
    ApiError::new(
        ErrorCode::DeployFailed,
        "No agent is configured: set [agent] url and token in gitd.toml.",
    )
}

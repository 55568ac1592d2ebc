//! Processes: `ps` (the app's instances, read from the agent), the formation (how many of
//! each process type), `scale` (change it without a new release), `restart`, which
//! [`crate::ops::changes`] carries out, and `ps:stop` ([`crate::ops::stop`]). `ps` lists the
//! app's one-offs too, each with its own command.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use paas_api::ErrorCode;
use paas_api::agent::Instance;
use paas_api::types::{Formation, ProcessInstance, RestartRequest, ScaleRequest, StopRequest};

use super::progress::{WantsProgress, answer};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::ops::rollout::RolloutFailure;
use crate::ops::{self, changes};
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
    let (instances, current) = tokio::join!(
        agent.instances(&app.name),
        state.store.current_release(app.id)
    );
    let instances = instances
        .map_err(|err| deploy_failed("Could not list the app's instances", &err.into()))?;
    let commands = current?
        .map(|release| release.processes)
        .unwrap_or_default();
    let mut listed: Vec<ProcessInstance> = instances
        .into_iter()
        .map(|instance| {
            let command = match &instance.oneoff {
                Some(command) => Some(command.clone()),
                None => commands.get(instance.process.as_str()).cloned().flatten(),
            };
            process_instance(instance, command)
        })
        .collect();
    listed.sort_by(|a, b| (&a.process, a.index, a.release).cmp(&(&b.process, b.index, b.release)));
    Ok(Json(listed))
}

fn process_instance(instance: Instance, command: Option<String>) -> ProcessInstance {
    ProcessInstance {
        process: instance.process,
        index: instance.index,
        release: instance.release,
        state: instance.state,
        since: instance.started_at,
        container: instance.name,
        memory: instance.memory,
        cpus: instance.cpus,
        out_of_memory: instance.out_of_memory,
        restarts: instance.restarts,
        oneoff: instance.oneoff.is_some(),
        command,
        node: instance.node,
    }
}

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Formation>>> {
    let app = auth.app(&state, &name).await?;
    let (release, formation) = changes::current_formation(&state, &app).await?;
    Ok(Json(changes::formation_list(release.as_ref(), &formation)))
}

pub async fn scale(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<ScaleRequest>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = changes::scale(&state, app, &auth.user, request.changes);
    answer(wants, op, Json::<Vec<Formation>>).await
}

pub async fn restart(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<RestartRequest>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = changes::restart(&state, app, &auth.user, request.process, request.index);
    answer(wants, op, |()| StatusCode::NO_CONTENT).await
}

pub async fn stop(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<StopRequest>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    ops::stop::stop(&state, app, &auth.user, request)
        .finished()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn deploy_failed(what: &str, failure: &RolloutFailure) -> ApiError {
    ApiError::new(
        ErrorCode::DeployFailed,
        format!("{what}: {}", failure.with_logs()),
    )
}

pub fn no_agent() -> ApiError {
    ApiError::new(
        ErrorCode::DeployFailed,
        "No agent is configured: set [agent] url and token in gitd.toml.",
    )
}

//! `POST /v1/apps/{app}/stop` (`paas ps:stop web.1`, `ps:stop web`): the app's instances of a
//! process type (or the one of `index`) are stopped and left where they are, recorded in the
//! desired state's stopped list first, so the convergence their `die` event sets off leaves
//! them down, as does an agent started again. `paas ps` shows them `stopped`. A restart that
//! picks them, or a new spec (a deploy, scale or config change), starts them again and clears
//! them from the list ([`started_again`]). One-offs that match (`run.1`) are stopped and
//! removed, as they would be at their end.

use std::collections::BTreeSet;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use paas_api::agent::Instance;
use paas_api::types::{InstanceState, StopRequest};
use paas_api::{AppName, ErrorCode};
use tracing::info;

use super::desired::{DesiredStateError, stopped_key};
use super::engine::Engine;
use super::{Work, parse_json};
use crate::error::{ApiError, Path};
use crate::naming::LABEL_INDEX;
use crate::state::AgentState;

pub(super) async fn stop(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let request: StopRequest = parse_json(&body, "stop request")?;
    let process = request.process.as_str();
    let picked = |p: &str, i: u32| p == process && request.index.is_none_or(|want| want == i);
    let docker_err =
        |err: super::EngineError| ApiError::new(ErrorCode::Internal, format!("Docker: {err}"));
    let _guard = state.runtime.lock(&app).await;
    let engine = &state.runtime.engine;
    let instances: Vec<_> = engine
        .list(&app, false)
        .await
        .map_err(docker_err)?
        .into_iter()
        .filter(|c| c.name == c.canonical_name(&app) && picked(&c.process, c.index))
        .collect();
    let oneoffs: Vec<String> = engine
        .oneoffs(&app, Some(process), false)
        .await
        .map_err(docker_err)?
        .into_iter()
        .filter(|(_, labels)| {
            let index = labels.get(LABEL_INDEX).and_then(|i| i.parse().ok());
            index.is_some_and(|index| picked(process, index))
        })
        .map(|(id, _)| id)
        .collect();
    if instances.is_empty() && oneoffs.is_empty() {
        let what = match request.index {
            Some(index) => format!("{process}.{index}"),
            None => format!("{process} processes"),
        };
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{app} has no {what}"),
        ));
    }
    let desired = &state.runtime.desired;
    let mut stopped = desired.stopped(&app).map_err(internal)?;
    stopped.extend(instances.iter().map(|c| stopped_key(&c.process, c.index)));
    desired.set_stopped(&app, &stopped).map_err(internal)?;
    for container in &instances {
        engine.stop(&container.id).await.map_err(docker_err)?;
        info!(%app, name = %container.name, "stopped");
    }
    for id in &oneoffs {
        engine.stop_and_remove(id).await.map_err(docker_err)?;
        info!(%app, %id, "one-off stopped");
    }
    Ok(StatusCode::NO_CONTENT)
}

fn internal(err: DesiredStateError) -> ApiError {
    ApiError::new(ErrorCode::Internal, err.to_string())
}

/// After `work` succeeded: what it started again is no longer stopped (every instance for a
/// new spec, the picked ones for a restart).
pub(super) fn started_again(
    state: &AgentState,
    app: &str,
    work: &Work,
) -> Result<(), DesiredStateError> {
    let desired = &state.runtime.desired;
    let stopped = desired.stopped(app)?;
    if stopped.is_empty() {
        return Ok(());
    }
    let left: BTreeSet<String> = match work {
        Work::Apply(_) => BTreeSet::new(),
        Work::Restart(process, index) => stopped
            .iter()
            .filter(|key| {
                let (p, i) = key.rsplit_once('.').unwrap_or((key, ""));
                let picked = process.as_deref().is_none_or(|want| want == p)
                    && index.is_none_or(|want| want.to_string() == i);
                !picked
            })
            .cloned()
            .collect(),
    };
    desired.set_stopped(app, &left)
}

/// Shows the app's stopped instances as `stopped` rather than crashed.
pub(super) fn mark_stopped(
    state: &AgentState,
    app: &str,
    instances: &mut [Instance],
) -> Result<(), DesiredStateError> {
    let stopped = state.runtime.desired.stopped(app)?;
    for instance in instances {
        let down = matches!(instance.state, InstanceState::Crashed | InstanceState::Down);
        if down && stopped.contains(&stopped_key(instance.process.as_str(), instance.index)) {
            instance.state = InstanceState::Stopped;
        }
    }
    Ok(())
}

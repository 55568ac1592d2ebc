//! `paas nodes`, `nodes:drain` and `nodes:activate`: the agent's infrastructure map handed to
//! admins, and a node's availability changed through it. Only admins: the hosts, their
//! addresses and capacity, and every tenant's instances on them are the operator's business,
//! as on Heroku, where a tenant never sees the machines under its dynos (`paas ps` shows a
//! user their own app's instances). Bad input — an unknown node, draining on a single host —
//! is refused here, before the agent is asked to change anything.

use axum::extract::State;
use paas_api::ErrorCode;
use paas_api::nodes::{
    Availability, AvailabilityChange, NEEDS_SWARM, Node, NodeMap, NodeName, Topology, no_such_node,
};

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::ops::OpsError;
use crate::state::SharedState;

fn agent_error(what: &str, err: paas_agent_client::RuntimeError) -> ApiError {
    ApiError::from(OpsError::Agent {
        what: what.to_owned(),
        reason: err.to_string(),
        logs: Vec::new(),
    })
}

async fn node_map(state: &SharedState) -> ApiResult<NodeMap> {
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    agent
        .nodes()
        .await
        .map_err(|err| agent_error("Could not list the nodes", err))
}

pub async fn list(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<Json<NodeMap>> {
    auth.require_admin()?;
    node_map(&state).await.map(Json)
}

pub async fn set_availability(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(node): Path<NodeName>,
    Json(change): Json<AvailabilityChange>,
) -> ApiResult<Json<Node>> {
    auth.require_admin()?;
    let map = node_map(&state).await?;
    if map.topology == Topology::SingleHost {
        return Err(ApiError::invalid(NEEDS_SWARM));
    }
    if map.find(&node).is_none() {
        return Err(ApiError::new(ErrorCode::NotFound, no_such_node(&node)));
    }
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let updated = agent
        .set_node_availability(&node, change.availability)
        .await
        .map_err(|err| agent_error(&format!("Could not change {node}"), err))?;
    let verb = match change.availability {
        Availability::Drain => "drained",
        Availability::Active => "activated",
        Availability::Pause => "paused",
    };
    tracing::info!(%node, by = %auth.user.username, "node {verb}");
    Ok(Json(updated))
}

//! The infrastructure map and draining (contract in `paas_api::nodes`): `GET /v1/nodes` reads
//! the nodes from the agent's Docker engine — Swarm's nodes when the engine is a Swarm manager,
//! else the one host from `docker info` — each with this agent's app instances on it; `PUT
//! /v1/nodes/{node}/availability` drains a Swarm node (Swarm moves its tasks elsewhere) or
//! makes it active again. A single host has nowhere to move work to, so it is refused there.
//!
//! With the docker engine the app instances are the agent's containers, which all run on its
//! own engine's node; with the swarm engine they are its services' tasks, on whichever node
//! Swarm placed each.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, put};
use axum::{Json, Router};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    Node as SwarmNode, NodeSpecAvailabilityEnum, NodeSpecRoleEnum, NodeState as SwarmState,
    SystemInfo,
};
use bollard::query_parameters::{ListContainersOptions, ListNodesOptions, UpdateNodeOptions};
use bollard::secret::ContainerSummaryStateEnum;
use paas_api::ErrorCode;
use paas_api::nodes::{
    Availability, AvailabilityChange, NEEDS_SWARM, Node, NodeInstance, NodeMap, NodeName, NodeRole,
    NodeState, Topology, no_such_node,
};
use tracing::info;

use crate::config::{AgentConfig, EngineKind};
use crate::error::{ApiError, Path};
use crate::naming::{InstanceKey, docker_filters, labels::InstanceLabels};
use crate::state::AgentState;

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/nodes", get(list))
        .route("/v1/nodes/{node}/availability", put(set_availability))
}

fn docker_error(err: DockerError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("Docker: {err}"))
}

async fn list(State(state): State<AgentState>) -> Result<Json<NodeMap>, ApiError> {
    node_map(&state.docker, &state.config)
        .await
        .map(Json)
        .map_err(docker_error)
}

async fn set_availability(
    State(state): State<AgentState>,
    Path(name): Path<NodeName>,
    body: Bytes,
) -> Result<Json<Node>, ApiError> {
    let change: AvailabilityChange = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid availability change: {err}"),
        )
    })?;
    let docker = &state.docker;
    let info = docker.info().await.map_err(docker_error)?;
    if !is_swarm_manager(&info) {
        return Err(ApiError::new(ErrorCode::InvalidInput, NEEDS_SWARM));
    }
    let nodes = docker
        .list_nodes(None::<ListNodesOptions>)
        .await
        .map_err(docker_error)?;
    let found = nodes.into_iter().find(|node| {
        node.id.as_deref() == Some(name.as_str()) || hostname(node) == Some(name.as_str())
    });
    let Some(node) = found else {
        return Err(ApiError::new(ErrorCode::NotFound, no_such_node(&name)));
    };
    let id = node.id.clone().unwrap_or_default();
    let version = node.version.as_ref().and_then(|version| version.index);
    let spec = bollard::models::NodeSpec {
        availability: Some(swarm_availability(change.availability)),
        ..node.spec.clone().unwrap_or_default()
    };
    docker
        .update_node(
            &id,
            spec,
            UpdateNodeOptions {
                version: version
                    .and_then(|index| i64::try_from(index).ok())
                    .unwrap_or(0),
            },
        )
        .await
        .map_err(docker_error)?;
    info!(node = %name, availability = change.availability.as_str(), "node availability changed");
    let map = node_map(docker, &state.config)
        .await
        .map_err(docker_error)?;
    map.find(&name).cloned().map(Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("Node {name} left the swarm meanwhile."),
        )
    })
}

fn is_swarm_manager(info: &SystemInfo) -> bool {
    info.swarm
        .as_ref()
        .and_then(|swarm| swarm.control_available)
        .unwrap_or(false)
}

fn hostname(node: &SwarmNode) -> Option<&str> {
    node.description.as_ref()?.hostname.as_deref()
}

async fn node_map(docker: &Docker, config: &AgentConfig) -> Result<NodeMap, DockerError> {
    let info = docker.info().await?;
    let instances = local_instances(docker, config.instance_key()).await?;
    if !is_swarm_manager(&info) {
        return Ok(NodeMap {
            topology: Topology::SingleHost,
            nodes: vec![single_host(&info, instances)],
        });
    }
    let local = info.swarm.as_ref().and_then(|swarm| swarm.node_id.clone());
    let mut nodes: Vec<Node> = docker
        .list_nodes(None::<ListNodesOptions>)
        .await?
        .into_iter()
        .map(swarm_node)
        .collect();
    match config.engine {
        EngineKind::Docker => {
            if let Some(node) = nodes
                .iter_mut()
                .find(|node| Some(&node.id) == local.as_ref())
            {
                node.instances = instances;
            }
        }
        EngineKind::Swarm => {
            let mut placed = crate::runtime::instances_by_node(docker, config).await?;
            for node in &mut nodes {
                node.instances = placed.remove(&node.id).unwrap_or_default();
            }
        }
    }
    nodes.sort_by(|a, b| {
        (a.role != NodeRole::Manager, &a.name).cmp(&(b.role != NodeRole::Manager, &b.name))
    });
    Ok(NodeMap {
        topology: Topology::Swarm,
        nodes,
    })
}

fn single_host(info: &SystemInfo, instances: Vec<NodeInstance>) -> Node {
    Node {
        name: info.name.clone().unwrap_or_default(),
        id: info.id.clone().unwrap_or_default(),
        role: NodeRole::Host,
        leader: false,
        state: NodeState::Ready,
        availability: Availability::Active,
        address: None,
        engine_version: info.server_version.clone().unwrap_or_default(),
        cpus: info
            .ncpu
            .and_then(|cpus| u32::try_from(cpus).ok())
            .unwrap_or(0),
        memory_bytes: info
            .mem_total
            .and_then(|bytes| u64::try_from(bytes).ok())
            .unwrap_or(0),
        instances,
    }
}

/// Swarm's description of a node in the API's words.
fn swarm_node(node: SwarmNode) -> Node {
    let spec = node.spec.unwrap_or_default();
    let description = node.description.unwrap_or_default();
    let status = node.status.unwrap_or_default();
    let resources = description.resources.unwrap_or_default();
    Node {
        name: description.hostname.unwrap_or_default(),
        id: node.id.unwrap_or_default(),
        role: match spec.role {
            Some(NodeSpecRoleEnum::MANAGER) => NodeRole::Manager,
            _ => NodeRole::Worker,
        },
        leader: node
            .manager_status
            .and_then(|manager| manager.leader)
            .unwrap_or(false),
        state: match status.state {
            Some(SwarmState::READY) => NodeState::Ready,
            Some(SwarmState::DOWN) => NodeState::Down,
            Some(SwarmState::DISCONNECTED) => NodeState::Disconnected,
            _ => NodeState::Unknown,
        },
        availability: match spec.availability {
            Some(NodeSpecAvailabilityEnum::DRAIN) => Availability::Drain,
            Some(NodeSpecAvailabilityEnum::PAUSE) => Availability::Pause,
            _ => Availability::Active,
        },
        address: status.addr.filter(|addr| !addr.is_empty()),
        engine_version: description
            .engine
            .and_then(|engine| engine.engine_version)
            .unwrap_or_default(),
        cpus: resources
            .nano_cpus
            .and_then(|nanos| u32::try_from(nanos / 1_000_000_000).ok())
            .unwrap_or(0),
        memory_bytes: resources
            .memory_bytes
            .and_then(|bytes| u64::try_from(bytes).ok())
            .unwrap_or(0),
        instances: Vec::new(),
    }
}

fn swarm_availability(availability: Availability) -> NodeSpecAvailabilityEnum {
    match availability {
        Availability::Active => NodeSpecAvailabilityEnum::ACTIVE,
        Availability::Pause => NodeSpecAvailabilityEnum::PAUSE,
        Availability::Drain => NodeSpecAvailabilityEnum::DRAIN,
    }
}

/// This agent's app instances (one-offs and add-ons are not), by app, process and index.
async fn local_instances(
    docker: &Docker,
    key: &InstanceKey,
) -> Result<Vec<NodeInstance>, DockerError> {
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(docker_filters(key, None, None)),
            ..Default::default()
        }))
        .await?;
    let mut instances: Vec<NodeInstance> = summaries
        .into_iter()
        .filter_map(|summary| {
            let labels = InstanceLabels::parse(summary.labels.as_ref()?)?;
            Some(NodeInstance {
                app: labels.app,
                process: labels.process,
                index: labels.index,
                release: labels.release,
                running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
            })
        })
        .collect();
    instances.sort_by(|a, b| (&a.app, &a.process, a.index).cmp(&(&b.app, &b.process, b.index)));
    Ok(instances)
}

#[cfg(test)]
mod tests {
    use bollard::models::{
        EngineDescription, ManagerStatus, NodeDescription, NodeSpec, NodeStatus, ResourceObject,
    };

    use super::*;

    #[test]
    fn a_swarm_node_reads_in_the_apis_words() {
        let node = swarm_node(SwarmNode {
            id: Some("x8w2kq".into()),
            spec: Some(NodeSpec {
                role: Some(NodeSpecRoleEnum::MANAGER),
                availability: Some(NodeSpecAvailabilityEnum::DRAIN),
                ..Default::default()
            }),
            description: Some(NodeDescription {
                hostname: Some("paascl-1".into()),
                resources: Some(ResourceObject {
                    nano_cpus: Some(2_000_000_000),
                    memory_bytes: Some(1 << 30),
                    ..Default::default()
                }),
                engine: Some(EngineDescription {
                    engine_version: Some("20.10.24".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            status: Some(NodeStatus {
                state: Some(SwarmState::READY),
                addr: Some("10.231.0.1".into()),
                ..Default::default()
            }),
            manager_status: Some(ManagerStatus {
                leader: Some(true),
                ..Default::default()
            }),
            ..Default::default()
        });
        assert_eq!(node.name, "paascl-1");
        assert_eq!(node.role, NodeRole::Manager);
        assert!(node.leader);
        assert_eq!(node.state, NodeState::Ready);
        assert_eq!(node.availability, Availability::Drain);
        assert_eq!(node.address.as_deref(), Some("10.231.0.1"));
        assert_eq!((node.cpus, node.memory_bytes), (2, 1 << 30));
        assert_eq!(node.engine_version, "20.10.24");
    }

    #[test]
    fn an_engine_outside_a_swarm_is_one_host() {
        let info = SystemInfo {
            name: Some("vm".into()),
            id: Some("E4NE".into()),
            ncpu: Some(2),
            mem_total: Some(1 << 33),
            server_version: Some("20.10.24".into()),
            ..Default::default()
        };
        assert!(!is_swarm_manager(&info));
        let node = single_host(&info, Vec::new());
        assert_eq!(node.role, NodeRole::Host);
        assert_eq!(node.availability, Availability::Active);
        assert_eq!(node.address, None);
        assert_eq!((node.cpus, node.memory_bytes), (2, 1 << 33));
    }
}

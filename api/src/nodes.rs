//! The infrastructure map (`paas nodes`): the hosts the platform runs on as the agent reads
//! them from Docker — Swarm's nodes when its engine is a Swarm manager, else the one host —
//! each with the app instances it runs; and the availability change `paas nodes:drain` and
//! `nodes:activate` ask for, which only a Swarm can make.
//!
//! Agent: `GET /v1/nodes` → [`NodeMap`]; `PUT /v1/nodes/{node}/availability`
//! ([`AvailabilityChange`]) → [`Node`]. gitd serves the same two routes to admins only: the
//! hosts, their addresses and capacity are the operator's business, as on Heroku, where a
//! tenant never sees the machines under its dynos.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// What the platform runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Topology {
    /// One Docker engine, no Swarm: nothing can be drained.
    SingleHost,
    /// The agent's engine is a manager of a Swarm cluster.
    Swarm,
}

/// `GET /v1/nodes`: every node, in the order Docker lists them (managers first, then by name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeMap {
    pub topology: Topology,
    pub nodes: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// The node's hostname, which `nodes:drain` names it by.
    pub name: String,
    /// Swarm's node id (on a single host, Docker's engine id).
    pub id: String,
    pub role: NodeRole,
    /// The Raft leader among the managers.
    #[serde(default)]
    pub leader: bool,
    pub state: NodeState,
    pub availability: Availability,
    /// The address Swarm reaches the node at; `None` on a single host.
    pub address: Option<String>,
    pub engine_version: String,
    pub cpus: u32,
    pub memory_bytes: u64,
    /// The app instances on this node, by app then process type and index.
    pub instances: Vec<NodeInstance>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeRole {
    Manager,
    Worker,
    /// The one Docker host of a platform without Swarm.
    Host,
}

/// Swarm's view of whether a node answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Ready,
    Down,
    Disconnected,
    Unknown,
}

/// Whether Swarm places work on a node: `drain` moves its tasks elsewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    Active,
    Pause,
    Drain,
}

impl Availability {
    pub fn as_str(self) -> &'static str {
        match self {
            Availability::Active => "active",
            Availability::Pause => "pause",
            Availability::Drain => "drain",
        }
    }
}

impl NodeRole {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeRole::Manager => "manager",
            NodeRole::Worker => "worker",
            NodeRole::Host => "host",
        }
    }
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Ready => "ready",
            NodeState::Down => "down",
            NodeState::Disconnected => "disconnected",
            NodeState::Unknown => "unknown",
        }
    }
}

/// One of an app's instances on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInstance {
    pub app: String,
    pub process: String,
    pub index: u32,
    pub release: u32,
    pub running: bool,
}

/// `PUT /v1/nodes/{node}/availability`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityChange {
    pub availability: Availability,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid node name {0:?}: use 1 to 64 letters, digits, dots, dashes and underscores, starting with a letter or digit"
)]
pub struct NodeNameError(String);

/// How a node is named on the command line and in paths: its hostname or its Swarm id.
static NODE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$").unwrap());

crate::names::string_newtype!(
    /// A node's hostname or Swarm id, as `nodes:drain NODE` takes it.
    NodeName,
    NodeNameError,
    |value| {
        if NODE_NAME.is_match(value) {
            Ok(())
        } else {
            Err(NodeNameError(value.to_owned()))
        }
    }
);

/// Why a single host refuses `nodes:drain` and `nodes:activate` (agent and gitd alike).
pub const NEEDS_SWARM: &str =
    "Draining needs the swarm engine: this platform runs on a single Docker host.";

/// The answer for a node name no node has.
pub fn no_such_node(name: &NodeName) -> String {
    format!("No node named {name}; `paas nodes` lists them.")
}

impl NodeMap {
    /// The node `name` names, by hostname or by id.
    pub fn find(&self, name: &NodeName) -> Option<&Node> {
        self.nodes
            .iter()
            .find(|node| node.name == name.as_str() || node.id == name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, id: &str) -> Node {
        Node {
            name: name.to_owned(),
            id: id.to_owned(),
            role: NodeRole::Worker,
            leader: false,
            state: NodeState::Ready,
            availability: Availability::Active,
            address: Some("10.231.0.2".to_owned()),
            engine_version: "20.10.24".to_owned(),
            cpus: 2,
            memory_bytes: 1 << 30,
            instances: Vec::new(),
        }
    }

    #[test]
    fn node_names_are_hostnames_or_ids_and_nothing_else() {
        for good in [
            "paascl-2",
            "node_1.example.com",
            "x8w2kq0n3c1v5d6e7f8g9h0j1",
        ] {
            assert!(good.parse::<NodeName>().is_ok(), "{good}");
        }
        for bad in ["", "-a", "a/b", "a b", "../x", &"a".repeat(65)] {
            let err = bad.parse::<NodeName>().unwrap_err();
            assert!(err.to_string().contains("invalid node name"), "{bad}");
        }
    }

    #[test]
    fn a_node_is_found_by_name_or_by_id() {
        let map = NodeMap {
            topology: Topology::Swarm,
            nodes: vec![node("paascl-1", "id1"), node("paascl-2", "id2")],
        };
        let name = |text: &str| text.parse::<NodeName>().unwrap();
        assert_eq!(map.find(&name("paascl-2")).unwrap().id, "id2");
        assert_eq!(map.find(&name("id1")).unwrap().name, "paascl-1");
        assert!(map.find(&name("paascl-3")).is_none());
    }

    #[test]
    fn states_are_snake_case_on_the_wire() {
        let change = AvailabilityChange {
            availability: Availability::Drain,
        };
        assert_eq!(
            serde_json::to_string(&change).unwrap(),
            r#"{"availability":"drain"}"#
        );
        assert_eq!(
            serde_json::to_string(&Topology::SingleHost).unwrap(),
            r#""single_host""#
        );
        assert!(serde_json::from_str::<AvailabilityChange>(r#"{"availability":"gone"}"#).is_err());
    }
}

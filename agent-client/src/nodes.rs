//! The agent's infrastructure map (contract in `paas_api::nodes`): the nodes its engine runs
//! on, and a node's availability changed (drain, activate).

use std::time::Duration;

use paas_api::nodes::{Availability, AvailabilityChange, Node, NodeMap, NodeName};
use reqwest::Method;

use super::{AgentClient, RuntimeError};

/// Both read or change Docker's state only; they answer quickly or not at all.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl AgentClient {
    /// `GET /v1/nodes`.
    pub async fn nodes(&self) -> Result<NodeMap, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, "/v1/nodes")
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }

    /// `PUT /v1/nodes/{node}/availability`: the node as it is afterwards.
    pub async fn set_node_availability(
        &self,
        node: &NodeName,
        availability: Availability,
    ) -> Result<Node, RuntimeError> {
        let builder = self
            .runtime_request(Method::PUT, &format!("/v1/nodes/{node}/availability"))
            .json(&AvailabilityChange { availability })
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }
}

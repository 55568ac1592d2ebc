//! The agent's instance events (contract in `paas_api::agent`, "Instance events"): what happens
//! to every app's containers, as a long-lived stream gitd follows.

use futures::Stream;
use paas_api::agent::InstanceEvent;
use reqwest::Method;

use super::AgentClient;
use super::RuntimeError;
use super::logs::ndjson;

impl AgentClient {
    /// `GET /v1/events`: the events from now on as they happen; the stream ends (or fails)
    /// when the agent goes away.
    pub async fn events(
        &self,
    ) -> Result<
        impl Stream<Item = Result<InstanceEvent, RuntimeError>> + Send + 'static,
        RuntimeError,
    > {
        let response = self
            .send_checked(self.agent_request(Method::GET, "/v1/events"))
            .await?;
        Ok(ndjson(response))
    }
}

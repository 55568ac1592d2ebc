//! The agent's metrics rounds (contract in `paas_api::metrics`): the rounds it kept since a
//! cursor, a page at a time.

use std::time::Duration;

use paas_api::metrics::{SampleBatch, SampleQuery};
use reqwest::Method;

use super::{AgentClient, RuntimeError};

/// The agent answers from memory.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl AgentClient {
    /// `GET /v1/metrics?after=<ms>`: the kept rounds taken after `query.after`, oldest first.
    pub async fn metrics(&self, query: SampleQuery) -> Result<SampleBatch, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, "/v1/metrics")
            .query(&query)
            .timeout(CALL_TIMEOUT);
        self.answer(builder).await
    }
}

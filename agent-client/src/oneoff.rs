//! The agent's one-off container API (contract in `paas_api::oneoff`): run a command to
//! completion in a container of a release and follow its output and outcome as they arrive.
//! Dropping the stream hangs up, which has the agent kill and remove the container.

use futures::Stream;
use paas_api::oneoff::{OneOffEvent, OneOffSpec};
use reqwest::Method;

use super::logs::ndjson;
use super::{AgentClient, RuntimeError};

impl AgentClient {
    /// `POST /v1/apps/{app}/oneoff`: the container's events, ending with its outcome.
    pub async fn oneoff(
        &self,
        app: &str,
        spec: &OneOffSpec,
    ) -> Result<impl Stream<Item = Result<OneOffEvent, RuntimeError>> + Send + 'static, RuntimeError>
    {
        let builder = self
            .agent_request(Method::POST, &format!("/v1/apps/{app}/oneoff"))
            .json(spec);
        let response = self.send_checked(builder).await?;
        Ok(ndjson(response))
    }
}

//! The agent's attached sessions (contract in `paas_api::attach`): the connection upgraded to
//! `paas-attach/1` for a one-off, an exec or an add-on console, with the session's request sent as its first
//! frame. Closing it hangs up, which has the agent remove the one-off.

use paas_api::addons::AddonConsole;
use paas_api::attach::{AgentAttach, AgentExec, Frame, PROTOCOL};
use reqwest::Method;
use reqwest::header::{CONNECTION, UPGRADE};
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::{AgentClient, RuntimeError, describe};

/// The upgraded connection to the agent, read and written in frames.
pub type AttachStream = reqwest::Upgraded;

impl AgentClient {
    /// `GET /v1/apps/{app}/oneoff/attach`: an attached one-off.
    pub async fn attach_oneoff(
        &self,
        app: &str,
        request: &AgentAttach,
    ) -> Result<AttachStream, RuntimeError> {
        self.attach(&format!("/v1/apps/{app}/oneoff/attach"), request)
            .await
    }

    /// `GET /v1/apps/{app}/exec`: a command in a running instance.
    pub async fn attach_exec(
        &self,
        app: &str,
        request: &AgentExec,
    ) -> Result<AttachStream, RuntimeError> {
        self.attach(&format!("/v1/apps/{app}/exec"), request).await
    }

    /// `GET /v1/addons/{owner}/{name}/console`: `psql` or `redis-cli` in the add-on.
    pub async fn attach_console(
        &self,
        owner: &str,
        name: &str,
        request: &AddonConsole,
    ) -> Result<AttachStream, RuntimeError> {
        self.attach(&format!("/v1/addons/{owner}/{name}/console"), request)
            .await
    }

    async fn attach(
        &self,
        path: &str,
        request: &impl Serialize,
    ) -> Result<AttachStream, RuntimeError> {
        let builder = self
            .agent_request(Method::GET, path)
            .header(CONNECTION, "Upgrade")
            .header(UPGRADE, PROTOCOL);
        let response = self.send_checked(builder).await?;
        let mut stream = response
            .upgrade()
            .await
            .map_err(|err| RuntimeError::Stream(describe(&err)))?;
        let open = serde_json::to_vec(request).expect("attach requests always serialize");
        stream
            .write_all(&Frame::Open(open).encode())
            .await
            .map_err(|err| RuntimeError::Stream(err.to_string()))?;
        Ok(stream)
    }
}

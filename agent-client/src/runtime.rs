//! The agent's runtime API (contract in `paas_api::agent`, under "Runtime"): hand it an app's
//! desired state and follow the rollout as it streams, restart or stop processes, list what runs, put
//! an app into maintenance or out of it, and remove an app's containers, images and volumes, or
//! one of its volumes.

use std::time::Duration;

use futures::StreamExt;
use paas_api::agent::{AppSpec, Instance, RestartRequest, RolloutEvent};
use paas_api::progress::{Progress, is_unknown_event};
use paas_api::routing::Maintenance;
use paas_api::types::StopRequest;
use reqwest::{Method, RequestBuilder, Response};

use super::{AgentClient, describe};

/// Listing instances reads Docker's state only; it answers quickly or not at all.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
/// Removing an app stops each container with its stop timeout; this bounds a stuck engine.
const DELETE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot reach the agent at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the agent refused gitd's token; check the agent token in gitd's config")]
    Unauthorized,
    #[error("the agent refused the request: {0}")]
    Rejected(String),
    /// The rollout failed; what ran before keeps running. `logs` are the last lines of the
    /// container that failed, if one did.
    #[error("{reason}")]
    RolloutFailed { reason: String, logs: Vec<String> },
    #[error("the rollout stream from the agent broke: {0}")]
    Stream(String),
    #[error("the agent sent an unreadable rollout event: {0}")]
    BadEvent(String),
    #[error("the agent's rollout stream ended without a result")]
    Truncated,
    #[error("the agent sent an unreadable answer: {0}")]
    BadAnswer(String),
}

impl RuntimeError {
    /// The failed container's last log lines (empty unless a rollout failed on one).
    pub fn logs(&self) -> &[String] {
        match self {
            RuntimeError::RolloutFailed { logs, .. } => logs,
            _ => &[],
        }
    }
}

/// What a rollout reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RolloutProgress {
    /// One line of progress, for the user.
    Line(String),
    /// The new instances serve; the old ones are draining and the result follows.
    Serving,
    /// What the rollout waits for, or a line a new instance printed.
    Progress(Progress),
}

impl AgentClient {
    /// `PUT /v1/apps/{app}`: makes the app run as `spec` says. `on_progress` sees each progress
    /// line, and the moment the new instances serve, as they arrive; the result is the
    /// rollout's outcome.
    pub async fn put_app(
        &self,
        app: &str,
        spec: &AppSpec,
        on_progress: impl FnMut(RolloutProgress),
    ) -> Result<(), RuntimeError> {
        let request = self.runtime_request(Method::PUT, &format!("/v1/apps/{app}"));
        let response = self.send_checked(request.json(spec)).await?;
        follow_rollout(response, on_progress).await
    }

    /// `POST /v1/apps/{app}/restart`: replaces the instances of one process type (or all),
    /// web without downtime; streams like [`put_app`](Self::put_app).
    pub async fn restart(
        &self,
        app: &str,
        request: &RestartRequest,
        on_progress: impl FnMut(RolloutProgress),
    ) -> Result<(), RuntimeError> {
        let builder = self.runtime_request(Method::POST, &format!("/v1/apps/{app}/restart"));
        let response = self.send_checked(builder.json(request)).await?;
        follow_rollout(response, on_progress).await
    }

    /// `POST /v1/apps/{app}/stop`: stops the instances `request` names and keeps them down
    /// (one-offs among them are removed); answers once they are stopped.
    pub async fn stop(&self, app: &str, request: &StopRequest) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::POST, &format!("/v1/apps/{app}/stop"))
            .timeout(DELETE_TIMEOUT)
            .json(request);
        self.send_checked(builder).await.map(drop)
    }

    /// `GET /v1/apps/{app}/instances`: the app's containers as Docker sees them.
    pub async fn instances(&self, app: &str) -> Result<Vec<Instance>, RuntimeError> {
        let builder = self
            .runtime_request(Method::GET, &format!("/v1/apps/{app}/instances"))
            .timeout(LIST_TIMEOUT);
        let response = self.send_checked(builder).await?;
        let body = response
            .bytes()
            .await
            .map_err(|err| RuntimeError::Stream(describe(&err)))?;
        serde_json::from_slice(&body).map_err(|err| RuntimeError::BadAnswer(err.to_string()))
    }

    /// `PUT /v1/apps/{app}/maintenance`: answers once Traefik routes the app's hosts to the
    /// maintenance page (or, off, to the app again).
    pub async fn put_maintenance(
        &self,
        app: &str,
        maintenance: Maintenance,
    ) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::PUT, &format!("/v1/apps/{app}/maintenance"))
            .timeout(LIST_TIMEOUT)
            .json(&maintenance);
        self.send_checked(builder).await.map(drop)
    }

    /// `DELETE /v1/apps/{app}`: removes the app's containers, network and images.
    pub async fn delete_app(&self, app: &str) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::DELETE, &format!("/v1/apps/{app}"))
            .timeout(DELETE_TIMEOUT);
        self.send_checked(builder).await.map(drop)
    }

    /// `DELETE /v1/apps/{app}/volumes/{volume}`: removes one of the app's volumes and its
    /// files (done also when there was none); refused while a container mounts it.
    pub async fn delete_volume(&self, app: &str, volume: &str) -> Result<(), RuntimeError> {
        let builder = self
            .runtime_request(Method::DELETE, &format!("/v1/apps/{app}/volumes/{volume}"))
            .timeout(LIST_TIMEOUT);
        self.send_checked(builder).await.map(drop)
    }

    pub(crate) fn runtime_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
    }
}

/// Reads NDJSON rollout events until the one `done` or `failed`.
async fn follow_rollout(
    response: Response,
    mut on_progress: impl FnMut(RolloutProgress),
) -> Result<(), RuntimeError> {
    let mut chunks = response.bytes_stream();
    let mut pending = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| RuntimeError::Stream(describe(&err)))?;
        pending.extend_from_slice(&chunk);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let event: RolloutEvent = match serde_json::from_slice(&line) {
                Ok(event) => event,
                // A newer agent's kind of event.
                Err(_) if is_unknown_event(&line, &RolloutEvent::KINDS) => continue,
                Err(err) => return Err(RuntimeError::BadEvent(err.to_string())),
            };
            match event {
                RolloutEvent::Line(text) => on_progress(RolloutProgress::Line(text)),
                RolloutEvent::Serving => on_progress(RolloutProgress::Serving),
                RolloutEvent::Waiting(waiting) => {
                    on_progress(RolloutProgress::Progress(Progress::Waiting(waiting)))
                }
                RolloutEvent::Output { instance, line } => {
                    on_progress(RolloutProgress::Progress(Progress::Output {
                        instance,
                        line,
                    }))
                }
                RolloutEvent::Done => return Ok(()),
                RolloutEvent::Failed { reason, logs } => {
                    return Err(RuntimeError::RolloutFailed { reason, logs });
                }
            }
        }
    }
    Err(RuntimeError::Truncated)
}

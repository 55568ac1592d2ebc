//! The HTTP client of paas-agent's API (contract in `paas_api::agent`), as gitd uses it: builds
//! (the build context is streamed to the agent, never held in memory whole), rollouts, instances,
//! logs, instance events, image pruning, one-off containers, add-on services and their backups, metrics rounds, the nodes, each answer handed on as it arrives. It is a client
//! only: it never talks to Docker or touches gitd's database.

use std::error::Error as _;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use paas_api::ErrorBody;
use paas_api::agent::{BuildEvent, BuildSpec};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// The image a build produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    pub image: String,
    pub image_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("cannot reach the agent at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the agent refused gitd's token; check the agent token in gitd's config")]
    Unauthorized,
    #[error("the agent refused the build: {0}")]
    Rejected(String),
    #[error("{0}")]
    BuildFailed(String),
    #[error("the build stream from the agent broke: {0}")]
    Stream(String),
    #[error("the agent sent an unreadable build event: {0}")]
    BadEvent(String),
    #[error("the agent's build stream ended without a result")]
    Truncated,
}

pub struct AgentClient {
    http: reqwest::Client,
    base_url: String,
    token: String,
}

impl AgentClient {
    /// `url` is the agent's base URL, e.g. `http://127.0.0.1:8751`.
    pub fn new(url: impl Into<String>, token: impl Into<String>) -> Self {
        let http = reqwest::Client::builder()
            // Builds take as long as they take; only connecting is bounded.
            .connect_timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client with static settings always builds");
        AgentClient {
            http,
            base_url: url.into().trim_end_matches('/').to_owned(),
            token: token.into(),
        }
    }

    /// Builds `spec` from the tar read from `context`. `on_event` sees every event in order as
    /// it arrives, the final `done` or `failed` included; the result repeats the outcome.
    pub async fn build(
        &self,
        spec: &BuildSpec,
        context: impl AsyncRead + Send + 'static,
        mut on_event: impl FnMut(BuildEvent),
    ) -> Result<BuiltImage, AgentError> {
        let mut spec_line = serde_json::to_vec(spec).expect("a build spec always serializes");
        spec_line.push(b'\n');
        let body = futures::stream::once(async move { Ok(Bytes::from(spec_line)) })
            .chain(ReaderStream::new(context));

        let url = format!("{}/v1/builds", self.base_url);
        let response = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
            .header(CONTENT_TYPE, "application/octet-stream")
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .map_err(|err| AgentError::Unreachable {
                url: self.base_url.clone(),
                reason: describe(&err),
            })?;

        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(AgentError::Unauthorized);
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|body| body.error.message)
                .unwrap_or_else(|_| format!("HTTP {status}"));
            return Err(AgentError::Rejected(message));
        }

        let mut chunks = response.bytes_stream();
        let mut pending = Vec::new();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|err| AgentError::Stream(describe(&err)))?;
            pending.extend_from_slice(&chunk);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let event: BuildEvent = serde_json::from_slice(&line)
                    .map_err(|err| AgentError::BadEvent(err.to_string()))?;
                let outcome = match &event {
                    BuildEvent::Line(_) => None,
                    BuildEvent::Done { image, image_id } => Some(Ok(BuiltImage {
                        image: image.clone(),
                        image_id: image_id.clone(),
                    })),
                    BuildEvent::Failed { reason } => {
                        Some(Err(AgentError::BuildFailed(reason.clone())))
                    }
                };
                on_event(event);
                if let Some(outcome) = outcome {
                    return outcome;
                }
            }
        }
        Err(AgentError::Truncated)
    }
}

/// reqwest's message plus its causes, on one line ("error sending request: connection refused").
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

mod addons;
mod attach;
mod backups;
mod events;
mod logs;
mod metrics;
mod nodes;
mod oneoff;
mod runtime;

pub use attach::AttachStream;
pub use events::EventStream;
pub use logs::LogsRequest;
pub use runtime::{RolloutProgress, RuntimeError};

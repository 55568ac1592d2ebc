//! The agent's log and image API (contract in `paas_api::agent`, "Logs and images"): follow
//! an app's log stream message by message, list the app's images, prune the ones not kept.

use std::time::Duration;

use futures::{Stream, StreamExt};
use paas_api::ErrorBody;
use paas_api::agent::{LogMessage, PruneRequest, PruneResult};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;

use super::{AgentClient, RuntimeError, describe};

/// Listing and pruning images are quick engine calls.
const IMAGES_TIMEOUT: Duration = Duration::from_secs(120);
/// One NDJSON line larger than this is a broken stream, not a log line.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What the agent's log stream is asked for.
pub struct LogsRequest<'a> {
    pub tail: usize,
    pub follow: bool,
    pub process: Option<&'a str>,
    /// The router's lines too.
    pub router: bool,
    /// Only the lines of this release's instances.
    pub release: Option<u32>,
}

impl AgentClient {
    /// `GET /v1/apps/{app}/logs`: the messages as they arrive, never buffered whole.
    pub async fn logs(
        &self,
        app: &str,
        request: &LogsRequest<'_>,
    ) -> Result<impl Stream<Item = Result<LogMessage, RuntimeError>> + Send + 'static, RuntimeError>
    {
        let mut query = vec![
            ("tail", request.tail.to_string()),
            ("follow", request.follow.to_string()),
        ];
        if let Some(process) = request.process {
            query.push(("process", process.to_owned()));
        }
        if !request.router {
            query.push(("router", "false".to_owned()));
        }
        if let Some(release) = request.release {
            query.push(("release", release.to_string()));
        }
        let builder = self
            .agent_request(Method::GET, &format!("/v1/apps/{app}/logs"))
            .query(&query);
        let response = self.send_checked(builder).await?;
        Ok(ndjson(response))
    }

    /// `GET /v1/apps/{app}/images`: the app's image tags on the agent's host.
    pub async fn images(&self, app: &str) -> Result<Vec<String>, RuntimeError> {
        let builder = self
            .agent_request(Method::GET, &format!("/v1/apps/{app}/images"))
            .timeout(IMAGES_TIMEOUT);
        let body = self
            .send_checked(builder)
            .await?
            .bytes()
            .await
            .map_err(|err| RuntimeError::Stream(describe(&err)))?;
        serde_json::from_slice(&body).map_err(|err| RuntimeError::BadAnswer(err.to_string()))
    }

    /// `POST /v1/apps/{app}/prune`: removes the app's images but `keep`.
    pub async fn prune(&self, app: &str, keep: Vec<String>) -> Result<PruneResult, RuntimeError> {
        let builder = self
            .agent_request(Method::POST, &format!("/v1/apps/{app}/prune"))
            .timeout(IMAGES_TIMEOUT)
            .json(&PruneRequest { keep });
        let body = self
            .send_checked(builder)
            .await?
            .bytes()
            .await
            .map_err(|err| RuntimeError::Stream(describe(&err)))?;
        serde_json::from_slice(&body).map_err(|err| RuntimeError::BadAnswer(err.to_string()))
    }

    pub(crate) fn agent_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(&self.token)
    }

    /// Sends the request; a non-2xx answer becomes an error carrying the agent's message.
    pub(crate) async fn send_checked(
        &self,
        builder: RequestBuilder,
    ) -> Result<Response, RuntimeError> {
        let response = builder
            .send()
            .await
            .map_err(|err| RuntimeError::Unreachable {
                url: self.base_url.clone(),
                reason: describe(&err),
            })?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED {
            return Err(RuntimeError::Unauthorized);
        }
        // 101: an attached session's upgrade.
        if !status.is_success() && status != StatusCode::SWITCHING_PROTOCOLS {
            let text = response.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|body| body.error.message)
                .unwrap_or_else(|_| format!("HTTP {status}"));
            return Err(RuntimeError::Rejected(message));
        }
        Ok(response)
    }
}

/// The response body as one message per NDJSON line.
pub(crate) fn ndjson<T: DeserializeOwned + Send + 'static>(
    response: Response,
) -> impl Stream<Item = Result<T, RuntimeError>> + Send + 'static {
    let chunks = response.bytes_stream();
    futures::stream::unfold(
        (chunks, Vec::<u8>::new(), false),
        |(mut chunks, mut pending, done)| async move {
            if done {
                return None;
            }
            loop {
                if let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    let message = serde_json::from_slice(&line)
                        .map_err(|err| RuntimeError::BadEvent(err.to_string()));
                    let failed = message.is_err();
                    return Some((message, (chunks, pending, failed)));
                }
                if pending.len() > MAX_MESSAGE_BYTES {
                    let err = RuntimeError::BadEvent("a message over 4 MiB".to_owned());
                    return Some((Err(err), (chunks, pending, true)));
                }
                match chunks.next().await {
                    Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
                    Some(Err(err)) => {
                        let err = RuntimeError::Stream(describe(&err));
                        return Some((Err(err), (chunks, pending, true)));
                    }
                    None => return None,
                }
            }
        },
    )
}

//! The agent's instance events (contract in `paas_api::agent`, "Instance events"): what happens
//! to every app's containers, as a long-lived stream gitd follows, numbered so that a reader
//! that was away catches up from where it was.

use futures::Stream;
use paas_api::agent::{EVENTS_CURSOR_HEADER, EventCursor, NumberedEvent};
use reqwest::Method;

use super::AgentClient;
use super::RuntimeError;
use super::logs::ndjson;

/// An open `GET /v1/events`.
pub struct EventStream<S> {
    /// Where the stream's new events start (after the replayed ones); `None` from an agent that
    /// does not number its events.
    pub position: Option<EventCursor>,
    pub events: S,
}

impl AgentClient {
    /// `GET /v1/events`: the events after `cursor` the agent still keeps (none without a
    /// cursor), then the new ones as they happen; the stream ends (or fails) when the agent
    /// goes away.
    pub async fn events(
        &self,
        cursor: Option<&EventCursor>,
    ) -> Result<
        EventStream<impl Stream<Item = Result<NumberedEvent, RuntimeError>> + Send + 'static>,
        RuntimeError,
    > {
        let mut request = self.agent_request(Method::GET, "/v1/events");
        if let Some(cursor) = cursor {
            request = request.query(&[
                ("boot", cursor.boot.clone()),
                ("since", cursor.since.to_string()),
            ]);
        }
        let response = self.send_checked(request).await?;
        let position = response
            .headers()
            .get(EVENTS_CURSOR_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse().ok());
        Ok(EventStream {
            position,
            events: ndjson(response),
        })
    }
}

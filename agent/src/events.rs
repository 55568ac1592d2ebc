//! Instance events (contract in `paas_api::agent`, "Instance events"): Docker's events for every
//! container of the agent's (label `paas.instance` with its key), told in Heroku's words (`State changed from starting to
//! up`, `Process exited with status 137`, `State changed from up to crashed`) and streamed as
//! NDJSON while the client stays connected. gitd follows this stream and keeps the events, so
//! a crash shows in `paas logs` even when nobody was watching.
//!
//! Route: `GET /v1/events`.

use std::collections::HashSet;
use std::convert::Infallible;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use bollard::Docker;
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::InstanceEvent;
use tokio::sync::mpsc;
use tracing::warn;

use crate::runtime::InstanceKey;
use crate::runtime::container::{
    DRAIN_MARKER, LABEL_APP, LABEL_INDEX, LABEL_PROCESS, LABEL_RELEASE, WEB, docker_filters,
    is_ours, parse_release_label,
};
use crate::state::AgentState;

/// Events buffered for a slow reader before Docker's stream waits for it.
const EVENT_BUFFER: usize = 256;

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/events", get(events))
}

async fn events(State(state): State<AgentState>) -> Response {
    let (sender, mut receiver) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    tokio::spawn(stream_events(
        state.docker.clone(),
        state.config.instance_key().clone(),
        sender,
    ));
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<_, Infallible>);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static headers are valid")
}

/// Sends every paas container's events from now on until the client hangs up (or Docker's
/// stream ends, which ends the response so the client reconnects).
async fn stream_events(docker: Docker, key: InstanceKey, sender: mpsc::Sender<Bytes>) {
    let mut filters = docker_filters(&key, None, None);
    filters.insert("type".to_owned(), vec!["container".to_owned()]);
    let events = docker.events(Some(EventsOptions {
        filters: Some(filters),
        ..Default::default()
    }));
    let mut events = std::pin::pin!(events);
    let mut lifecycle = Lifecycle::default();
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = sender.closed() => return,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(err)) => {
                warn!(error = %err, "Docker events stream failed");
                return;
            }
            None => return,
        };
        let Some((subject, action)) = event_subject(&key, &event) else {
            continue;
        };
        let timestamp = event
            .time_nano
            .map(DateTime::from_timestamp_nanos)
            .unwrap_or_else(Utc::now);
        for message in lifecycle.describe(&subject, &action, &event) {
            let event = InstanceEvent {
                timestamp,
                app: subject.app.clone(),
                process: subject.process.clone(),
                index: subject.index,
                release: subject.release,
                message,
            };
            let mut line = serde_json::to_vec(&event).expect("instance events always serialize");
            line.push(b'\n');
            if sender.send(Bytes::from(line)).await.is_err() {
                return;
            }
        }
    }
}

/// The container an event is about, from its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Subject {
    id: String,
    app: String,
    process: String,
    index: u32,
    release: u32,
}

/// The container and action an event is about (`start`, `die`, `health_status: healthy`, …);
/// `None` for containers that are not the agent's (without its key) or lack a paas label.
fn event_subject(key: &InstanceKey, event: &EventMessage) -> Option<(Subject, String)> {
    let actor = event.actor.as_ref()?;
    let labels = actor.attributes.as_ref()?;
    if !is_ours(key, labels) {
        return None;
    }
    let subject = Subject {
        id: actor.id.clone()?,
        app: labels.get(LABEL_APP)?.clone(),
        process: labels.get(LABEL_PROCESS)?.clone(),
        index: labels.get(LABEL_INDEX)?.parse().ok()?,
        release: parse_release_label(labels.get(LABEL_RELEASE)?)?,
    };
    Some((subject, event.action.clone()?))
}

/// Remembers how containers are being stopped, to tell a crash from a retirement.
#[derive(Default)]
struct Lifecycle {
    /// Containers sent SIGTERM or drained (a stop by the platform), by id.
    terminated: HashSet<String>,
}

impl Lifecycle {
    /// Heroku's words for what happened to an instance.
    fn describe(&mut self, subject: &Subject, action: &str, event: &EventMessage) -> Vec<String> {
        let attribute = |key: &str| {
            event
                .actor
                .as_ref()
                .and_then(|actor| actor.attributes.as_ref())
                .and_then(|attributes| attributes.get(key))
                .cloned()
        };
        match action {
            "start" => {
                self.terminated.remove(&subject.id);
                let mut lines = vec!["Starting process".to_owned()];
                // Only web is health-checked; the others are up once they run.
                if subject.process != WEB {
                    lines.push("State changed from starting to up".to_owned());
                }
                lines
            }
            "health_status: healthy" => vec!["State changed from starting to up".to_owned()],
            // A drained container fails its check on purpose.
            "health_status: unhealthy" if self.terminated.contains(&subject.id) => Vec::new(),
            "health_status: unhealthy" => vec!["Health check failing".to_owned()],
            // The health probe mentions the marker too (`test -e`); the drain creates it.
            exec if exec.starts_with("exec_start: ")
                && exec.contains(&format!("touch {DRAIN_MARKER}")) =>
            {
                if !self.terminated.insert(subject.id.clone()) {
                    return Vec::new();
                }
                vec!["Draining: no new requests are routed to it".to_owned()]
            }
            "kill" => {
                if attribute("signal").as_deref() == Some("15") {
                    self.terminated.insert(subject.id.clone());
                }
                Vec::new()
            }
            "die" => {
                let status = attribute("exitCode").unwrap_or_else(|| "unknown".to_owned());
                let to = if self.terminated.contains(&subject.id) {
                    "down"
                } else {
                    "crashed"
                };
                vec![
                    format!("Process exited with status {status}"),
                    format!("State changed from up to {to}"),
                ]
            }
            "destroy" => {
                self.terminated.remove(&subject.id);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }
}

/// A Docker event about a paas container (`hello` web.2 of v7), for the tests of the modules
/// that read Docker events.
#[cfg(test)]
pub(crate) fn test_event(action: &str, attributes: &[(&str, &str)]) -> EventMessage {
    let key = crate::runtime::container::test_key();
    let mut all: std::collections::HashMap<String, String> = std::collections::HashMap::from([
        (LABEL_APP.into(), "hello".into()),
        (LABEL_PROCESS.into(), "web".into()),
        (LABEL_INDEX.into(), "2".into()),
        (LABEL_RELEASE.into(), "v7".into()),
        (
            crate::runtime::container::LABEL_INSTANCE.into(),
            key.as_str().into(),
        ),
    ]);
    all.extend(
        attributes
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    EventMessage {
        action: Some(action.into()),
        actor: Some(bollard::models::EventActor {
            id: Some("abc".into()),
            attributes: Some(all),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::test_event as event;
    use super::*;
    use crate::runtime::container::{LABEL_INSTANCE, test_key};

    fn describe(lifecycle: &mut Lifecycle, event: &EventMessage) -> Vec<String> {
        let (subject, action) = event_subject(&test_key(), event).unwrap();
        assert_eq!(
            subject,
            Subject {
                id: "abc".into(),
                app: "hello".into(),
                process: "web".into(),
                index: 2,
                release: 7,
            }
        );
        lifecycle.describe(&subject, &action, event)
    }

    #[test]
    fn lifecycle_events_read_like_heroku() {
        let mut lifecycle = Lifecycle::default();
        assert_eq!(
            describe(&mut lifecycle, &event("start", &[])),
            ["Starting process"]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("health_status: healthy", &[])),
            ["State changed from starting to up"]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "3")])),
            [
                "Process exited with status 3",
                "State changed from up to crashed"
            ]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("health_status: unhealthy", &[])),
            ["Health check failing"]
        );
        assert_eq!(
            describe(
                &mut lifecycle,
                &event(
                    "exec_start: /.paas/busybox sh -c /.paas/busybox touch /tmp/.paas-drain",
                    &[]
                )
            ),
            ["Draining: no new requests are routed to it"]
        );
        assert!(describe(&mut lifecycle, &event("health_status: unhealthy", &[])).is_empty());
        let probe = "exec_start: /.paas/busybox sh -c ! /.paas/busybox test -e /tmp/.paas-drain";
        assert!(describe(&mut lifecycle, &event(probe, &[])).is_empty());
        assert!(describe(&mut lifecycle, &event("kill", &[("signal", "15")])).is_empty());
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "143")])),
            [
                "Process exited with status 143",
                "State changed from up to down"
            ]
        );
    }

    #[test]
    fn workers_are_up_once_started() {
        let mut lifecycle = Lifecycle::default();
        let mut start = event("start", &[]);
        let labels = start.actor.as_mut().unwrap().attributes.as_mut().unwrap();
        labels.insert(LABEL_PROCESS.into(), "worker".into());
        let (subject, action) = event_subject(&test_key(), &start).unwrap();
        assert_eq!(
            lifecycle.describe(&subject, &action, &start),
            ["Starting process", "State changed from starting to up"]
        );
    }

    #[test]
    fn events_without_every_paas_label_are_ignored() {
        for label in [LABEL_PROCESS, LABEL_INDEX, LABEL_RELEASE, LABEL_INSTANCE] {
            let mut foreign = event("start", &[]);
            let labels = foreign.actor.as_mut().unwrap().attributes.as_mut().unwrap();
            labels.remove(label);
            assert!(
                event_subject(&test_key(), &foreign).is_none(),
                "without {label}"
            );
        }
        let mut bad_release = event("start", &[]);
        let labels = bad_release
            .actor
            .as_mut()
            .unwrap()
            .attributes
            .as_mut()
            .unwrap();
        labels.insert(LABEL_RELEASE.into(), "7".into());
        assert!(event_subject(&test_key(), &bad_release).is_none());
        // A build step's container labelled like an app's, with a guessed key.
        let mut forged = event("start", &[]);
        let labels = forged.actor.as_mut().unwrap().attributes.as_mut().unwrap();
        labels.insert(LABEL_INSTANCE.into(), "0".repeat(32));
        assert!(event_subject(&test_key(), &forged).is_none());
    }
}

//! Instance events (contract in `paas_api::agent`, "Instance events"): Docker's events for every
//! container of the agent's (label `paas.instance` with its key), told in Heroku's words (`State
//! changed from starting to up`, `Process exited with status 137`, `State changed from up to
//! crashed`, and Heroku's R15 when the kernel's OOM killer ends a process). One task follows Docker's stream for as long as the agent runs ([`watch_docker`]),
//! numbering each event within this run of the agent (a random boot id) and keeping the last
//! [`KEPT_EVENTS`] in an [`EventLog`]; `GET /v1/events` replays those a reader missed (its
//! `boot` and `since`) and then streams new ones as NDJSON while the client stays connected.
//! gitd follows this stream and keeps the events, so a crash shows in `paas logs` even when
//! gitd was down or cut off when it happened. Nothing is persisted: a restarted agent is a new
//! boot, and a reader of an earlier boot gets every kept event of the new one.
//!
//! Route: `GET /v1/events`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use bollard::Docker;
use bollard::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::{
    EVENTS_CURSOR_HEADER, EventCursor, InstanceEvent, NumberedEvent, OUT_OF_MEMORY,
};
use rand::RngCore;
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tracing::warn;

use crate::instances::InstanceCache;
use crate::naming::labels::InstanceLabels;
use crate::naming::{InstanceKey, LABEL_APP, LABEL_ONEOFF, docker_filters, is_ours};
use crate::runtime::container::{DRAIN_MARKER, WEB};
use crate::state::AgentState;

/// Events kept for readers that were away (a few per container start or stop: thousands of
/// container changes).
pub const KEPT_EVENTS: usize = 4096;
/// Events buffered for a slow reader before its stream ends (it reconnects and catches up
/// from the kept ones).
const EVENT_BUFFER: usize = 256;
/// The wait before following Docker's stream again after it broke off.
const DOCKER_RECONNECT: Duration = Duration::from_secs(1);

/// The numbered instance events of this run of the agent: the last [`KEPT_EVENTS`], and the
/// new ones as they happen.
pub struct EventLog {
    boot: String,
    kept: Mutex<Kept>,
    live: broadcast::Sender<NumberedEvent>,
}

struct Kept {
    last_seq: u64,
    events: VecDeque<NumberedEvent>,
}

impl Default for EventLog {
    fn default() -> Self {
        let mut bytes = [0u8; 8];
        rand::rng().fill_bytes(&mut bytes);
        EventLog {
            boot: hex::encode(bytes),
            kept: Mutex::new(Kept {
                last_seq: 0,
                events: VecDeque::with_capacity(KEPT_EVENTS),
            }),
            live: broadcast::channel(EVENT_BUFFER).0,
        }
    }
}

impl EventLog {
    /// Numbers the event, keeps it and announces it.
    pub fn publish(&self, event: InstanceEvent) {
        let mut kept = self
            .kept
            .lock()
            .expect("the event log lock is never poisoned");
        kept.last_seq += 1;
        let numbered = NumberedEvent {
            boot: self.boot.clone(),
            seq: kept.last_seq,
            event,
        };
        if kept.events.len() == KEPT_EVENTS {
            kept.events.pop_front();
        }
        kept.events.push_back(numbered.clone());
        // Nobody following is fine.
        let _ = self.live.send(numbered);
    }

    /// The kept events after `cursor` (none without one; all of them when the cursor is of an
    /// earlier boot), the position after them, and a receiver of the events after that, taken
    /// under one lock so that no event falls between the two.
    fn replay_and_follow(
        &self,
        cursor: Option<&EventCursor>,
    ) -> (
        Vec<NumberedEvent>,
        EventCursor,
        broadcast::Receiver<NumberedEvent>,
    ) {
        let kept = self
            .kept
            .lock()
            .expect("the event log lock is never poisoned");
        let replay = match cursor {
            None => Vec::new(),
            Some(cursor) => {
                let since = if cursor.boot == self.boot {
                    cursor.since
                } else {
                    0
                };
                kept.events
                    .iter()
                    .filter(|event| event.seq > since)
                    .cloned()
                    .collect()
            }
        };
        let position = EventCursor {
            boot: self.boot.clone(),
            since: kept.last_seq,
        };
        (replay, position, self.live.subscribe())
    }
}

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/events", get(events))
}

#[derive(Deserialize)]
struct EventsQuery {
    boot: Option<String>,
    since: Option<u64>,
}

async fn events(State(state): State<AgentState>, Query(query): Query<EventsQuery>) -> Response {
    let cursor = query.since.map(|since| EventCursor {
        boot: query.boot.unwrap_or_else(|| state.events.boot.clone()),
        since,
    });
    let (replay, position, live) = state.events.replay_and_follow(cursor.as_ref());
    let (sender, mut receiver) = mpsc::channel::<Bytes>(EVENT_BUFFER);
    tokio::spawn(send_events(replay, position.since, live, sender));
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<_, Infallible>);
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .header(EVENTS_CURSOR_HEADER, position.to_string())
        .body(Body::from_stream(body))
        .expect("hex and digits make a valid header")
}

/// Sends the replayed events, then the new ones after `last_seq`, until the client hangs up.
/// A reader that falls [`EVENT_BUFFER`] events behind is cut off: it catches up from the kept
/// events when it reconnects.
async fn send_events(
    replay: Vec<NumberedEvent>,
    mut last_seq: u64,
    mut live: broadcast::Receiver<NumberedEvent>,
    sender: mpsc::Sender<Bytes>,
) {
    for event in replay {
        if sender.send(ndjson_line(&event)).await.is_err() {
            return;
        }
    }
    loop {
        let event = tokio::select! {
            event = live.recv() => event,
            () = sender.closed() => return,
        };
        match event {
            Ok(event) if event.seq > last_seq => {
                last_seq = event.seq;
                if sender.send(ndjson_line(&event)).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    missed,
                    "an instance event reader fell behind; it will catch up"
                );
                return;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn ndjson_line(event: &NumberedEvent) -> Bytes {
    let mut line = serde_json::to_vec(event).expect("instance events always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// Follows Docker's events of every paas container for as long as the agent runs, publishing
/// each in Heroku's words to `log` and telling `instances` which app changed. When Docker's
/// stream breaks off (dockerd restarting) it follows again from the time of the last event it
/// saw, so Docker replays what happened meanwhile (skipping what was already seen at that very
/// time), and nothing `instances` kept is trusted.
pub async fn watch_docker(
    docker: Docker,
    key: InstanceKey,
    log: Arc<EventLog>,
    instances: Arc<InstanceCache>,
) {
    tokio::spawn(watch_oneoffs(
        docker.clone(),
        key.clone(),
        instances.clone(),
    ));
    let mut filters = docker_filters(&key, None, None);
    filters.insert("type".to_owned(), vec!["container".to_owned()]);
    let mut lifecycle = Lifecycle::default();
    let mut seen = SeenAt::default();
    loop {
        let events = docker.events(Some(EventsOptions {
            filters: Some(filters.clone()),
            since: seen.since(),
            ..Default::default()
        }));
        let mut events = std::pin::pin!(events);
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(err) => {
                    warn!(error = %err, "Docker events stream failed; following it again");
                    break;
                }
            };
            if !seen.first_time(&event) {
                continue;
            }
            if let Some(app) = app_label(&key, &event)
                && changes_instances(&event)
            {
                instances.changed(app);
            }
            let Some((subject, action)) = event_subject(&key, &event) else {
                continue;
            };
            let timestamp = event
                .time_nano
                .map(DateTime::from_timestamp_nanos)
                .unwrap_or_else(Utc::now);
            for message in lifecycle.describe(&subject, &action, &event) {
                log.publish(InstanceEvent {
                    timestamp,
                    app: subject.app.clone(),
                    process: subject.process.clone(),
                    index: subject.index,
                    release: subject.release,
                    message,
                });
            }
        }
        instances.all_changed();
        tokio::time::sleep(DOCKER_RECONNECT).await;
    }
}

/// Keeps the instance cache true for one-off containers, which carry `paas.oneoff` instead of
/// `paas.instance` (Docker ANDs label filters, so they need a stream of their own). Their
/// lifecycle is told by the one-off's own stream, not here.
async fn watch_oneoffs(docker: Docker, key: InstanceKey, instances: Arc<InstanceCache>) {
    let filters = HashMap::from([
        ("type".to_owned(), vec!["container".to_owned()]),
        (
            "label".to_owned(),
            vec![format!("{LABEL_ONEOFF}={}", key.as_str())],
        ),
    ]);
    loop {
        let events = docker.events(Some(EventsOptions {
            filters: Some(filters.clone()),
            ..Default::default()
        }));
        let mut events = std::pin::pin!(events);
        while let Some(Ok(event)) = events.next().await {
            let app = event
                .actor
                .as_ref()
                .and_then(|actor| actor.attributes.as_ref())
                .and_then(|labels| labels.get(LABEL_APP));
            if let Some(app) = app
                && changes_instances(&event)
            {
                instances.changed(app);
            }
        }
        // Broken off: what happened meanwhile is unknown.
        instances.all_changed();
        tokio::time::sleep(DOCKER_RECONNECT).await;
    }
}

/// Whether the event can change what an instance listing shows: every action but the `exec_*`
/// ones, which every health probe makes (twice a second per web container) and which change
/// nothing listed (a probe's verdict comes as its own `health_status` event).
fn changes_instances(event: &EventMessage) -> bool {
    !event
        .action
        .as_deref()
        .is_some_and(|action| action.starts_with("exec_"))
}

/// The app of an event about one of the agent's containers.
fn app_label<'a>(key: &InstanceKey, event: &'a EventMessage) -> Option<&'a str> {
    let labels = event.actor.as_ref()?.attributes.as_ref()?;
    is_ours(key, labels).then(|| labels.get(LABEL_APP).map(String::as_str))?
}

/// The time of the last Docker event seen, and which events were seen at that time: Docker's
/// `since` is inclusive, so following again from there replays those.
#[derive(Default)]
struct SeenAt {
    time_nano: i64,
    events: HashSet<(String, String)>,
}

impl SeenAt {
    /// Docker's `since` for following again: `<seconds>.<nanoseconds>` of the last event seen.
    fn since(&self) -> Option<String> {
        (self.time_nano > 0).then(|| {
            format!(
                "{}.{:09}",
                self.time_nano / 1_000_000_000,
                self.time_nano % 1_000_000_000
            )
        })
    }

    /// Whether `event` is new (not before the last one seen, nor the same one again).
    fn first_time(&mut self, event: &EventMessage) -> bool {
        let Some(time_nano) = event.time_nano else {
            return true;
        };
        let identity = (
            event
                .actor
                .as_ref()
                .and_then(|actor| actor.id.clone())
                .unwrap_or_default(),
            event.action.clone().unwrap_or_default(),
        );
        if time_nano < self.time_nano {
            return false;
        }
        if time_nano > self.time_nano {
            self.time_nano = time_nano;
            self.events.clear();
        }
        self.events.insert(identity)
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
    let instance = InstanceLabels::parse(labels)?;
    let subject = Subject {
        id: actor.id.clone()?,
        app: instance.app,
        process: instance.process,
        index: instance.index,
        release: instance.release,
    };
    Some((subject, event.action.clone()?))
}

/// Remembers what each container is doing, to tell a crash from a retirement and say from
/// which state an instance changed.
#[derive(Default)]
struct Lifecycle {
    /// Containers sent SIGTERM or drained (a stop by the platform), by id.
    terminated: HashSet<String>,
    /// Each container's state in Heroku's words (`starting`, `up`, `crashed`, `stopped`).
    states: HashMap<String, &'static str>,
    /// How often each container was started again after it exited (Docker's restart policy,
    /// or the agent converging).
    restarts: HashMap<String, u32>,
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
        let id = &subject.id;
        match action {
            "start" => {
                self.terminated.remove(id);
                let before = self.states.get(id).copied();
                let release = format!("v{}", subject.release);
                let mut lines = if before.is_some() {
                    let restarts = self.restarts.entry(id.clone()).or_default();
                    *restarts += 1;
                    vec![format!("Starting process ({release}, restart {restarts})")]
                } else {
                    vec![format!("Starting process ({release})")]
                };
                // Only web is health-checked; the others are up once they run.
                let now = if subject.process == WEB {
                    "starting"
                } else {
                    "up"
                };
                let from = before.unwrap_or("starting");
                if from != now {
                    lines.push(format!("State changed from {from} to {now}"));
                }
                self.states.insert(id.clone(), now);
                lines
            }
            "health_status: healthy" => {
                let from = self.states.insert(id.clone(), "up").unwrap_or("starting");
                if from == "up" {
                    return Vec::new();
                }
                vec![format!("State changed from {from} to up")]
            }
            // A drained container fails its check on purpose.
            "health_status: unhealthy" if self.terminated.contains(id) => Vec::new(),
            "health_status: unhealthy" => vec!["Health check failing".to_owned()],
            // The health probe mentions the marker too (`test -e`); the drain creates it.
            exec if exec.starts_with("exec_start: ")
                && exec.contains(&format!("touch {DRAIN_MARKER}")) =>
            {
                if !self.terminated.insert(id.clone()) {
                    return Vec::new();
                }
                vec!["Draining: no new requests are routed to it".to_owned()]
            }
            "oom" if !self.terminated.contains(id) => vec![OUT_OF_MEMORY.to_owned()],
            "kill" => {
                if attribute("signal").as_deref() == Some("15") {
                    self.terminated.insert(id.clone());
                    return vec!["Stopping process with SIGTERM".to_owned()];
                }
                Vec::new()
            }
            "die" => {
                let status = attribute("exitCode").unwrap_or_else(|| "unknown".to_owned());
                let from = self.states.get(id).copied().unwrap_or("up");
                if self.terminated.contains(id) {
                    self.states.insert(id.clone(), "stopped");
                    // A stop by the platform is no failure: 137 here is the stop timeout's
                    // SIGKILL, not a crash.
                    let exited = if status == "137" {
                        "Process did not exit after SIGTERM within the stop timeout: killed"
                            .to_owned()
                    } else {
                        format!("Process exited with status {status}")
                    };
                    return vec![exited, format!("State changed from {from} to stopped")];
                }
                self.states.insert(id.clone(), "crashed");
                vec![
                    format!("Process exited with status {status}"),
                    format!("State changed from {from} to crashed"),
                ]
            }
            "destroy" => {
                self.terminated.remove(id);
                self.states.remove(id);
                self.restarts.remove(id);
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
    let key = crate::naming::test_key();
    let mut all: std::collections::HashMap<String, String> = std::collections::HashMap::from([
        (LABEL_APP.into(), "hello".into()),
        (crate::naming::LABEL_PROCESS.into(), "web".into()),
        (crate::naming::LABEL_INDEX.into(), "2".into()),
        (crate::naming::LABEL_RELEASE.into(), "v7".into()),
        (crate::naming::LABEL_INSTANCE.into(), key.as_str().into()),
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
    use crate::naming::{LABEL_INDEX, LABEL_INSTANCE, LABEL_PROCESS, LABEL_RELEASE, test_key};

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
            ["Starting process (v7)"]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("health_status: healthy", &[])),
            ["State changed from starting to up"]
        );
        assert!(
            describe(&mut lifecycle, &event("health_status: healthy", &[])).is_empty(),
            "no change, nothing said"
        );
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "3")])),
            [
                "Process exited with status 3",
                "State changed from up to crashed"
            ]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("start", &[])),
            [
                "Starting process (v7, restart 1)",
                "State changed from crashed to starting"
            ]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("health_status: unhealthy", &[])),
            ["Health check failing"]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "1")])),
            [
                "Process exited with status 1",
                "State changed from starting to crashed"
            ]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("start", &[]))[0],
            "Starting process (v7, restart 2)"
        );
        assert_eq!(
            describe(&mut lifecycle, &event("oom", &[])),
            [OUT_OF_MEMORY],
            "the OOM killer is told before the exit it causes"
        );
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "137")])),
            [
                "Process exited with status 137",
                "State changed from starting to crashed"
            ]
        );
        assert_eq!(
            describe(&mut lifecycle, &event("start", &[]))[0],
            "Starting process (v7, restart 3)"
        );
        describe(&mut lifecycle, &event("health_status: healthy", &[]));
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
        assert_eq!(
            describe(&mut lifecycle, &event("kill", &[("signal", "15")])),
            ["Stopping process with SIGTERM"]
        );
        assert!(describe(&mut lifecycle, &event("kill", &[("signal", "9")])).is_empty());
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "137")])),
            [
                "Process did not exit after SIGTERM within the stop timeout: killed",
                "State changed from up to stopped"
            ]
        );
        assert!(describe(&mut lifecycle, &event("destroy", &[])).is_empty());
        assert_eq!(
            describe(&mut lifecycle, &event("start", &[])),
            ["Starting process (v7)"],
            "a new container of the same id counts from nothing"
        );
        describe(&mut lifecycle, &event("health_status: healthy", &[]));
        describe(&mut lifecycle, &event("kill", &[("signal", "15")]));
        assert_eq!(
            describe(&mut lifecycle, &event("die", &[("exitCode", "143")])),
            [
                "Process exited with status 143",
                "State changed from up to stopped"
            ]
        );
    }

    fn instance_event(message: &str) -> InstanceEvent {
        InstanceEvent {
            timestamp: Utc::now(),
            app: "hello".into(),
            process: "web".into(),
            index: 1,
            release: 1,
            message: message.into(),
        }
    }

    fn messages(events: &[NumberedEvent]) -> Vec<&str> {
        events.iter().map(|e| e.event.message.as_str()).collect()
    }

    #[test]
    fn a_reader_gets_what_it_missed_then_what_follows() {
        let log = EventLog::default();
        let (replay, start, _) = log.replay_and_follow(None);
        assert!(replay.is_empty());
        assert_eq!(start.since, 0);
        for message in ["one", "two", "three"] {
            log.publish(instance_event(message));
        }
        let seen = EventCursor {
            boot: log.boot.clone(),
            since: 1,
        };
        let (replay, position, mut live) = log.replay_and_follow(Some(&seen));
        assert_eq!(messages(&replay), ["two", "three"]);
        assert_eq!(
            replay.iter().map(|e| e.seq).collect::<Vec<_>>(),
            [2, 3],
            "numbered one by one"
        );
        assert_eq!(position.since, 3);
        log.publish(instance_event("four"));
        let next = live.try_recv().unwrap();
        assert_eq!((next.seq, next.event.message.as_str()), (4, "four"));

        let (replay, ..) = log.replay_and_follow(None);
        assert!(replay.is_empty(), "no cursor: new events only");
        let (replay, ..) = log.replay_and_follow(Some(&EventCursor {
            boot: log.boot.clone(),
            since: 4,
        }));
        assert!(replay.is_empty(), "nothing missed");
    }

    #[test]
    fn a_reader_of_an_earlier_boot_gets_every_kept_event() {
        let earlier = EventLog::default();
        earlier.publish(instance_event("before the restart"));
        let log = EventLog::default();
        assert_ne!(log.boot, earlier.boot);
        log.publish(instance_event("after the restart"));
        let (replay, ..) = log.replay_and_follow(Some(&EventCursor {
            boot: earlier.boot.clone(),
            since: 1,
        }));
        assert_eq!(messages(&replay), ["after the restart"]);
        assert_eq!(replay[0].boot, log.boot);
    }

    #[test]
    fn only_the_last_events_are_kept() {
        let log = EventLog::default();
        for n in 0..KEPT_EVENTS + 10 {
            log.publish(instance_event(&n.to_string()));
        }
        let (replay, position, _) = log.replay_and_follow(Some(&EventCursor {
            boot: log.boot.clone(),
            since: 0,
        }));
        assert_eq!(replay.len(), KEPT_EVENTS);
        assert_eq!(replay[0].seq, 11);
        assert_eq!(position.since, (KEPT_EVENTS + 10) as u64);
    }

    #[test]
    fn health_probes_do_not_change_the_listing() {
        let probe = "exec_start: /.paas/busybox sh -c ! /.paas/busybox test -e /tmp/.paas-drain";
        assert!(!changes_instances(&event(probe, &[])));
        assert!(!changes_instances(&event("exec_die", &[])));
        for action in [
            "start",
            "die",
            "destroy",
            "health_status: healthy",
            "rename",
        ] {
            assert!(changes_instances(&event(action, &[])), "{action}");
        }
        assert_eq!(app_label(&test_key(), &event("start", &[])), Some("hello"));
        let mut foreign = event("start", &[]);
        let labels = foreign.actor.as_mut().unwrap().attributes.as_mut().unwrap();
        labels.insert(LABEL_INSTANCE.into(), "0".repeat(32));
        assert_eq!(app_label(&test_key(), &foreign), None);
    }

    #[test]
    fn following_docker_again_skips_what_was_seen() {
        let mut seen = SeenAt::default();
        assert_eq!(seen.since(), None);
        let at = |action: &str, time_nano: i64| EventMessage {
            time_nano: Some(time_nano),
            ..event(action, &[])
        };
        assert!(seen.first_time(&at("start", 1_700_000_000_000_000_005)));
        assert!(seen.first_time(&at("die", 1_700_000_000_000_000_005)));
        assert_eq!(seen.since().as_deref(), Some("1700000000.000000005"));
        assert!(!seen.first_time(&at("start", 1_700_000_000_000_000_005)));
        assert!(!seen.first_time(&at("start", 1_600_000_000_000_000_000)));
        assert!(seen.first_time(&at("start", 1_700_000_000_000_000_006)));
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
            ["Starting process (v7)", "State changed from starting to up"]
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

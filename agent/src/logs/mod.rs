//! App logs (contract in `paas_api::agent`, "Logs and images"): the output of an app's
//! containers, stdout and stderr, read through Docker's logs API with timestamps, merged in
//! time order and streamed as NDJSON. Only the agent's own containers count (its instance
//! key, see `runtime::container`): a build step labelled `paas.app=<app>` is never read. With
//! `follow`, Docker's events for the app's containers decide what is followed: a container that starts joins the stream,
//! one that stops or is removed leaves it. Their lifecycle (`State changed from starting to
//! up`) is not told here but by `GET /v1/events` (`crate::events`), which gitd keeps.
//!
//! The containers the agent removes leave their output in the app's [`archive`] first; a
//! request's backlog is the archive's lines and the existing containers' merged. The archive
//! also holds the app's [`router`] lines (requests to its hosts, from Traefik's access log),
//! which a followed stream gets as they are read.
//!
//! On the swarm engine the app's output is its tasks' on every node, read through the manager
//! ([`swarm`]); the archive and the router lines are the same.
//!
//! Route: `GET /v1/apps/{app}/logs?tail=N&follow=true&process=web&router=false&release=N`.

pub(crate) mod archive;
pub(crate) mod lines;
pub(crate) mod router;
mod swarm;
mod swarm_api;

pub(crate) use swarm::last_task_lines;
pub(crate) use swarm_api::task_addresses;

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::EventMessage;
use bollard::query_parameters::{EventsOptions, ListContainersOptions, LogsOptions};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::{LogEntry, LogMessage, LogStream};
use paas_api::types::ProcessFilter;
use paas_api::{AppName, ErrorCode};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tracing::warn;

use crate::config::{AgentConfig, EngineKind};
use crate::error::{ApiError, Path};
use crate::naming::{
    InstanceKey, LABEL_APP, LABEL_INDEX, LABEL_PROCESS, LABEL_RELEASE, is_ours, label_filters,
    parse_release_label, release_label,
};
use crate::state::AgentState;
use archive::{KEEP_LINES, LogArchive};
use lines::LineAssembler;

/// Lines sent when the request names no `tail`.
const DEFAULT_TAIL: usize = 100;
/// The most backlog lines one request may ask for.
const MAX_TAIL: usize = 100_000;
/// Lines buffered for a slow reader before the container streams wait for it.
const LINE_BUFFER: usize = 1024;

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/apps/{app}/logs", get(logs))
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    tail: Option<usize>,
    #[serde(default)]
    follow: bool,
    /// A process type (`web`) or one instance (`web.1`).
    process: Option<String>,
    /// The router's lines too (the default).
    router: Option<bool>,
    /// Only the lines of this release's instances.
    release: Option<u32>,
}

/// What a log request reads: the agent's own containers (its instance key) of the app.
#[derive(Clone)]
struct Selection {
    key: InstanceKey,
    app: String,
    process: Option<String>,
    /// One instance of `process` only.
    index: Option<u32>,
    /// The lines of this release's instances only.
    release: Option<u32>,
    /// Whether the router's lines are wanted.
    router: bool,
}

impl Selection {
    fn wants(&self, source: &Source) -> bool {
        self.index.is_none_or(|index| index == source.index)
            && self
                .release
                .is_none_or(|release| source.release == Some(release))
    }

    /// Whether a line of the archive or the router is wanted.
    fn wants_entry(&self, entry: &LogEntry) -> bool {
        let process_ok = self.process.as_deref().is_none_or(|process| {
            process == entry.process && self.index.is_none_or(|index| index == entry.index)
        });
        (self.router || entry.stream != LogStream::Router)
            && process_ok
            && self
                .release
                .is_none_or(|release| entry.release == Some(release))
    }

    /// Docker filters for the app's containers (of one process type and release, if asked).
    fn label_filters(&self) -> Vec<String> {
        let mut filters = label_filters(&self.key, Some(&self.app), self.process.as_deref());
        if let Some(release) = self.release {
            filters.push(format!("{LABEL_RELEASE}={}", release_label(release)));
        }
        filters
    }
}

async fn logs(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    Query(query): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let invalid = |message: String| ApiError::new(ErrorCode::InvalidInput, message);
    let filter = query
        .process
        .as_deref()
        .map(str::parse::<ProcessFilter>)
        .transpose()
        .map_err(|err| invalid(err.to_string()))?;
    let tail = query.tail.unwrap_or(DEFAULT_TAIL);
    if tail > MAX_TAIL {
        return Err(invalid(format!(
            "tail {tail} is over the limit of {MAX_TAIL} lines"
        )));
    }
    let selection = Selection {
        key: state.config.instance_key().clone(),
        app: app.to_string(),
        process: filter.as_ref().map(|filter| filter.process().to_string()),
        index: filter.as_ref().and_then(ProcessFilter::index),
        release: query.release,
        router: query.router.unwrap_or(true),
    };
    // Before the archive is read, so a router line archived meanwhile is not missed.
    let router_lines = query.follow.then(|| state.router.subscribe());
    let mut archived = {
        let archive = LogArchive::of(&state.config);
        let (app, filter) = (app.clone(), filter.clone());
        tokio::task::spawn_blocking(move || archive.read(&app, filter.as_ref()))
            .await
            .expect("reading the archive does not panic")
            .map_err(|err| {
                ApiError::new(
                    ErrorCode::Internal,
                    format!("cannot read the app's archived logs: {err}"),
                )
            })?
    };
    archived.retain(|entry| selection.wants_entry(entry));
    let (sender, mut receiver) = mpsc::channel::<Bytes>(LINE_BUFFER);
    let router = router_lines.map(|lines| RouterFollow {
        selection: selection.clone(),
        lines,
        sent: router_backlog(&archived),
    });
    match state.config.engine {
        EngineKind::Docker => tokio::spawn(stream_logs(
            state.docker.clone(),
            selection,
            archived,
            tail,
            router,
            sender,
        )),
        EngineKind::Swarm => tokio::spawn(swarm::stream_logs(
            state.docker.clone(),
            state.config.clone(),
            selection,
            archived,
            tail,
            router,
            sender,
        )),
    };
    let body = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(Ok::<_, Infallible>);
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static headers are valid"))
}

fn encode(message: &LogMessage) -> Bytes {
    let mut line = serde_json::to_vec(message).expect("log messages always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

/// One of the app's containers, from its labels.
#[derive(Debug, Clone)]
struct Source {
    id: String,
    process: String,
    index: u32,
    release: Option<u32>,
    running: bool,
}

impl Source {
    fn from_labels(id: String, labels: &HashMap<String, String>, running: bool) -> Option<Source> {
        Some(Source {
            id,
            process: labels.get(LABEL_PROCESS)?.clone(),
            index: labels.get(LABEL_INDEX)?.parse().ok()?,
            release: labels
                .get(LABEL_RELEASE)
                .and_then(|label| parse_release_label(label)),
            running,
        })
    }

    fn entry(&self, timestamp: DateTime<Utc>, stream: LogStream, line: String) -> LogEntry {
        LogEntry {
            timestamp,
            process: self.process.clone(),
            index: self.index,
            stream,
            line,
            release: self.release,
        }
    }
}

/// The newest line sent per container, so a container followed again (after a restart)
/// does not repeat what was already sent.
type LastSent = Arc<Mutex<HashMap<String, DateTime<Utc>>>>;

/// The router lines of a backlog, which the live ones may repeat (archived after the
/// subscription, before the archive was read).
fn router_backlog(archived: &[LogEntry]) -> HashSet<(DateTime<Utc>, String)> {
    archived
        .iter()
        .filter(|entry| entry.stream == LogStream::Router)
        .map(|entry| (entry.timestamp, entry.line.clone()))
        .collect()
}

/// What a followed stream needs to go on with the router's lines once its backlog is sent:
/// the app's lines as they are read, subscribed before the archive was, and the backlog's.
struct RouterFollow {
    selection: Selection,
    lines: broadcast::Receiver<(AppName, LogEntry)>,
    sent: HashSet<(DateTime<Utc>, String)>,
}

impl RouterFollow {
    /// Forwards the new router lines until the client hangs up (or the handle is aborted).
    fn start(self, sender: mpsc::Sender<Bytes>) -> JoinHandle<()> {
        tokio::spawn(forward_router_lines(self, sender))
    }
}

/// Sends the app's router lines as they are read, but those of the backlog, until the client
/// hangs up.
async fn forward_router_lines(router: RouterFollow, sender: mpsc::Sender<Bytes>) {
    let RouterFollow {
        selection,
        mut lines,
        mut sent,
    } = router;
    loop {
        let line = tokio::select! {
            line = lines.recv() => line,
            () = sender.closed() => return,
        };
        match line {
            Ok((app, entry))
                if app.as_str() == selection.app
                    && selection.wants_entry(&entry)
                    && !sent.remove(&(entry.timestamp, entry.line.clone())) =>
            {
                if sender.send(encode(&LogMessage::Line(entry))).await.is_err() {
                    return;
                }
            }
            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Sends `merged` (the archive's and the engine's lines) in time order, its last `tail`
/// lines, then `Live`; false once the client hung up.
async fn send_backlog(
    mut merged: Vec<LogEntry>,
    tail: usize,
    sender: &mpsc::Sender<Bytes>,
) -> bool {
    // Stable: lines of one source with equal times keep their order.
    merged.sort_by_key(|entry| entry.timestamp);
    let skip = merged.len().saturating_sub(tail);
    for entry in merged.into_iter().skip(skip) {
        if sender.send(encode(&LogMessage::Line(entry))).await.is_err() {
            return false;
        }
    }
    sender.send(encode(&LogMessage::Live)).await.is_ok()
}

/// Sends the backlog (`archived` and the containers' own lines) and `Live`, then, when
/// following, the containers' new lines until the client hangs up.
async fn stream_logs(
    docker: Docker,
    selection: Selection,
    archived: Vec<LogEntry>,
    tail: usize,
    router: Option<RouterFollow>,
    sender: mpsc::Sender<Bytes>,
) {
    let follow = router.is_some();
    let began = Utc::now();
    // Subscribed before the backlog is read, so a container starting meanwhile is not missed.
    let events = follow.then(|| {
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), selection.label_filters()),
        ]);
        docker.events(Some(EventsOptions {
            since: Some(began.timestamp().to_string()),
            filters: Some(filters),
            ..Default::default()
        }))
    });
    let sources = match containers(&docker, &selection).await {
        Ok(sources) => sources,
        Err(err) => {
            warn!(app = %selection.app, error = %err, "cannot list containers for logs");
            return;
        }
    };
    let last_sent: LastSent = Arc::default();
    let backlogs =
        futures::future::join_all(sources.iter().map(|source| backlog(&docker, source, tail)))
            .await;
    let mut merged = archived;
    for (source, entries) in sources.iter().zip(backlogs) {
        if let Some(last) = entries.last() {
            last_sent
                .lock()
                .expect("never poisoned")
                .insert(source.id.clone(), last.timestamp);
        }
        merged.extend(entries);
    }
    if !send_backlog(merged, tail, &sender).await {
        return;
    }
    let (Some(events), Some(router)) = (events, router) else {
        return;
    };
    let router = router.start(sender.clone());

    let mut followers: HashMap<String, JoinHandle<()>> = HashMap::new();
    for source in sources.into_iter().filter(|source| source.running) {
        let handle = tokio::spawn(follow_container(
            docker.clone(),
            source.clone(),
            last_sent.clone(),
            sender.clone(),
        ));
        followers.insert(source.id, handle);
    }
    let mut events = std::pin::pin!(events);
    loop {
        let event = tokio::select! {
            event = events.next() => event,
            () = sender.closed() => break,
        };
        let event = match event {
            Some(Ok(event)) => event,
            Some(Err(err)) => {
                warn!(app = %selection.app, error = %err, "Docker events stream failed");
                break;
            }
            None => break,
        };
        if event
            .time_nano
            .is_some_and(|nanos| nanos < began.timestamp_nanos_opt().unwrap_or(0))
        {
            continue;
        }
        let Some((source, action)) =
            event_source(&selection.key, &event).filter(|(source, _)| selection.wants(source))
        else {
            continue;
        };
        if action == "start" {
            let stale = followers
                .get(&source.id)
                .is_none_or(JoinHandle::is_finished);
            if stale {
                let handle = tokio::spawn(follow_container(
                    docker.clone(),
                    source.clone(),
                    last_sent.clone(),
                    sender.clone(),
                ));
                followers.insert(source.id.clone(), handle);
            }
        }
        if action == "destroy" {
            followers.remove(&source.id);
            last_sent.lock().expect("never poisoned").remove(&source.id);
        }
    }
    for follower in followers.values() {
        follower.abort();
    }
    router.abort();
}

/// The app's containers (stopped ones too: a crashed instance's last words matter).
async fn containers(
    docker: &Docker,
    selection: &Selection,
) -> Result<Vec<Source>, bollard::errors::Error> {
    let filters = HashMap::from([("label".to_owned(), selection.label_filters())]);
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    Ok(summaries
        .into_iter()
        .filter_map(|summary| {
            let running =
                summary.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING);
            let labels = summary
                .labels
                .as_ref()
                .filter(|l| is_ours(&selection.key, l))?;
            Source::from_labels(summary.id?, labels, running)
        })
        .filter(|source| selection.wants(source))
        .collect())
}

/// The container's last `tail` lines, oldest first.
async fn backlog(docker: &Docker, source: &Source, tail: usize) -> Vec<LogEntry> {
    if tail == 0 {
        return Vec::new();
    }
    let options = LogsOptions {
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: tail.to_string(),
        ..Default::default()
    };
    let mut entries = Vec::new();
    let mut reader = Reader::new(source);
    let mut frames = docker.logs(&source.id, Some(options));
    while let Some(frame) = frames.next().await {
        match frame {
            Ok(frame) => entries.extend(reader.push(frame)),
            // Removed meanwhile, or the engine went away: what was read stands.
            Err(_) => break,
        }
    }
    entries.extend(reader.finish());
    entries
}

/// Streams a running container's new lines until it stops or the client hangs up.
async fn follow_container(
    docker: Docker,
    source: Source,
    last_sent: LastSent,
    sender: mpsc::Sender<Bytes>,
) {
    let after = last_sent
        .lock()
        .expect("never poisoned")
        .get(&source.id)
        .copied();
    let options = LogsOptions {
        follow: true,
        stdout: true,
        stderr: true,
        timestamps: true,
        // Docker's `since` has whole seconds; lines of that second already sent are skipped
        // below by their exact time.
        since: after.map_or(0, |time| i32::try_from(time.timestamp()).unwrap_or(0)),
        tail: "all".to_owned(),
        ..Default::default()
    };
    let mut frames = docker.logs(&source.id, Some(options));
    let mut reader = Reader::new(&source);
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            () = sender.closed() => return,
        };
        let (entries, done) = match frame {
            Some(Ok(frame)) => (reader.push(frame), false),
            // The container stopped (or the engine went away): flush and leave.
            Some(Err(_)) | None => (reader.finish(), true),
        };
        for entry in entries {
            if after.is_some_and(|after| entry.timestamp <= after) {
                continue;
            }
            last_sent
                .lock()
                .expect("never poisoned")
                .insert(source.id.clone(), entry.timestamp);
            if sender.send(encode(&LogMessage::Line(entry))).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
    }
}

/// Keeps the output of container `id` in its app's archive, as it is about to be removed. A
/// container that is not the agent's, or whose logs cannot be read, is left as it is: the
/// removal goes on either way.
pub(crate) async fn archive_container(docker: &Docker, config: &AgentConfig, id: &str) {
    let Ok(container) = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    else {
        return;
    };
    let Some(labels) = container
        .config
        .and_then(|config| config.labels)
        .filter(|labels| is_ours(config.instance_key(), labels))
    else {
        return;
    };
    let Some(app) = labels
        .get(LABEL_APP)
        .and_then(|app| app.parse::<AppName>().ok())
    else {
        return;
    };
    let Some(source) = Source::from_labels(id.to_owned(), &labels, false) else {
        return;
    };
    let entries = backlog(docker, &source, KEEP_LINES).await;
    let archive = LogArchive::of(config);
    let kept = tokio::task::spawn_blocking(move || archive.append(&app, &entries)).await;
    if let Ok(Err(err)) = kept {
        warn!(container = id, error = %err, "cannot archive a removed container's logs");
    }
}

/// Lines of one container, stdout and stderr assembled apart (their partial entries may
/// interleave).
struct Reader {
    source: Source,
    stdout: LineAssembler,
    stderr: LineAssembler,
}

impl Reader {
    fn new(source: &Source) -> Reader {
        Reader {
            source: source.clone(),
            stdout: LineAssembler::default(),
            stderr: LineAssembler::default(),
        }
    }

    fn push(&mut self, frame: LogOutput) -> Vec<LogEntry> {
        let (stream, lines) = match frame {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                (LogStream::Stdout, self.stdout.push(&message))
            }
            LogOutput::StdErr { message } => (LogStream::Stderr, self.stderr.push(&message)),
            LogOutput::StdIn { .. } => return Vec::new(),
        };
        lines
            .into_iter()
            .map(|(time, line)| self.source.entry(time, stream, line))
            .collect()
    }

    /// The unfinished last lines, once the stream is over.
    fn finish(&mut self) -> Vec<LogEntry> {
        let mut entries = Vec::new();
        if let Some((time, line)) = self.stdout.finish() {
            entries.push(self.source.entry(time, LogStream::Stdout, line));
        }
        if let Some((time, line)) = self.stderr.finish() {
            entries.push(self.source.entry(time, LogStream::Stderr, line));
        }
        entries.sort_by_key(|entry| entry.timestamp);
        entries
    }
}

/// The container and action an event is about (`start`, `die`, `health_status: healthy`, …);
/// `None` for a container that is not the agent's.
fn event_source(key: &InstanceKey, event: &EventMessage) -> Option<(Source, String)> {
    let actor = event.actor.as_ref()?;
    let labels = actor.attributes.as_ref().filter(|l| is_ours(key, l))?;
    let source = Source::from_labels(actor.id.clone()?, labels, true)?;
    Some((source, event.action.clone()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::test_event as event;
    use crate::naming::{LABEL_INSTANCE, test_key};

    #[test]
    fn events_without_our_labels_are_ignored() {
        let mut foreign = event("start", &[]);
        foreign
            .actor
            .as_mut()
            .unwrap()
            .attributes
            .as_mut()
            .unwrap()
            .remove(LABEL_INDEX);
        assert!(event_source(&test_key(), &foreign).is_none());
        assert!(event_source(&test_key(), &event("start", &[])).is_some());
        let forged = event("start", &[(LABEL_INSTANCE, "guessed")]);
        assert!(event_source(&test_key(), &forged).is_none());
    }
}

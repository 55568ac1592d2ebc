//! The contract between gitd and paas-agent (the agent's HTTP API, bearer-token protected).
//!
//! `POST /v1/builds`: the body is one line of JSON ([`BuildSpec`]) followed by a tar archive
//! of the build context. The answer streams NDJSON [`BuildEvent`]s as the build runs, ending
//! with exactly one `done` or `failed` event.
//!
//! Every request carries `Authorization: Bearer <agent token>`; without it (or with another
//! token) the answer is 401 with the usual error envelope. A spec line that is missing, not
//! JSON, or invalid (bad app name, release 0, a commit that is not a hex object id, paths
//! leaving the tree, env keys that are not config keys) is answered 400 before anything is
//! built. Once the 200 NDJSON stream has started, every problem (a tar entry leaving the tree,
//! no Dockerfile, a failed step, no `pack` on the build host) arrives as the final `failed`
//! event.
//!
//! gitd speaks of apps, release numbers and commits only: the agent names the image it builds
//! and labels it, and reports that name ([`BuildEvent::Done`]). gitd keeps the name as it got
//! it and hands it back unread ([`AppSpec::image`], [`PruneRequest::keep`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::app_json::healthchecks::Healthchecks;
use crate::names::{HealthPath, ProcessType};
use crate::resources::{Cpus, Memory, ProcessResources};
use crate::types::InstanceState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub app: String,
    /// The release the image is built for.
    pub release: u32,
    /// The commit being built (hex object id), recorded on the image.
    pub commit: String,
    pub builder: Builder,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Builder {
    /// `docker build` of the context; `dockerfile` is relative to the context root.
    Dockerfile {
        dockerfile: String,
        build_args: BTreeMap<String, String>,
    },
    /// `pack build` of `path` (relative to the context root).
    Pack {
        builder: String,
        buildpacks: Vec<String>,
        path: String,
        /// Passed to pack through its environment and named with `--env KEY`, never in argv.
        env: BTreeMap<String, String>,
        trust_builder: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuildEvent {
    /// One line of builder output.
    Line(String),
    /// The image was built and tagged; `image` is the name the agent gave it, which later
    /// requests about it carry back.
    Done { image: String, image_id: String },
    /// The build failed; `reason` is one line.
    Failed { reason: String },
}

// Runtime
//
// `PUT /v1/apps/{app}` with an [`AppSpec`]: the agent reconciles the app's containers with it and
// streams NDJSON [`RolloutEvent`]s, ending with exactly one `done` or `failed`.
// `GET /v1/apps/{app}/instances` → `Vec<`[`Instance`]`>`.
// `POST /v1/apps/{app}/restart` with a [`RestartRequest`] streams [`RolloutEvent`]s like a PUT.
// `POST /v1/apps/{app}/stop` with a [`StopRequest`](crate::types::StopRequest) → 204 once the
// instances are stopped (they stay so until a restart or a PUT), 404 when none matched.
// `DELETE /v1/apps/{app}` → 204: removes the app's containers, network and images.

/// The desired state of one app on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// Release number; containers are named and labelled `v<release>`.
    pub release: u32,
    /// Image to run, as a build's [`BuildEvent::Done`] named it (a rollback or config change
    /// reuses an older one).
    pub image: String,
    /// The app's config vars; the agent adds `PORT`, `PAAS_APP`, `PAAS_RELEASE`, `PAAS_PROCESS`.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Process types by name (`web`, `worker`, …).
    pub processes: BTreeMap<ProcessType, ProcessSpec>,
    /// Custom hostnames routed to `web` besides `<app>.<domain>`.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Path `web` containers must answer 2xx/3xx on; `None` = the agent's default (`/`).
    #[serde(default)]
    pub health_check_path: Option<HealthPath>,
    /// The app's startup checks of `web` (its `app.json`): a new instance is ready once it
    /// passes them all, within their budget instead of the agent's ready timeout. The first
    /// one's path is `health_check_path`.
    #[serde(default, skip_serializing_if = "Healthchecks::is_empty")]
    pub healthchecks: Healthchecks,
    /// Lock-downs the app opted into (`paas features:enable`), on top of the platform's own.
    #[serde(default)]
    pub container: ContainerOptions,
    /// Whether Traefik keeps a client on the `web` instance that first answered it, by a
    /// cookie (`paas ps:sticky`).
    #[serde(default)]
    pub sticky_sessions: bool,
    /// The app's volumes and where every container of it mounts them (`paas storage:mount`).
    #[serde(default)]
    pub volumes: Vec<crate::storage::Mount>,
}

/// Per-app hardening of the app's containers, beyond what every container gets (dropped
/// capabilities, pids limit, CPU shares, `no-new-privileges`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerOptions {
    /// Run every process as `nobody` (65534:65534) instead of the image's user.
    #[serde(default)]
    pub non_root: bool,
    /// Mount the root filesystem read-only; `/tmp` stays writable (a tmpfs).
    #[serde(default)]
    pub read_only_root_fs: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSpec {
    /// Shell command (run with `/bin/sh -c`); `None` runs the image's default command.
    #[serde(default)]
    pub command: Option<String>,
    /// How many containers of this type should run (0..=100).
    pub quantity: u32,
    /// Its memory and CPU limits; what is not given is the agent's default, and the agent
    /// refuses sizes above its maximums.
    #[serde(default, skip_serializing_if = "ProcessResources::is_default")]
    pub resources: ProcessResources,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutEvent {
    /// One line of progress, e.g. `Starting web.1 (<instance name>)… healthy`.
    Line(String),
    /// The new instances are started, ready and routed: the app serves the new state. What
    /// follows is the old instances draining and retiring, then `done`.
    Serving,
    /// The app runs as specified.
    Done,
    /// What the rollout waits for (a new instance's health check, Traefik, a drain) and for
    /// how long so far, at least every two seconds while it waits. Added later than the
    /// others: readers skip event kinds they do not know
    /// ([`crate::progress::is_unknown_event`] with [`RolloutEvent::KINDS`]).
    Waiting(crate::progress::Waiting),
    /// One of the first lines a new instance printed while it started.
    Output { instance: String, line: String },
    /// Nothing changed for the previously running containers; `logs` are the last lines of the
    /// container that failed, if one did.
    Failed { reason: String, logs: Vec<String> },
}

impl RolloutEvent {
    /// The names of the event kinds on the wire.
    pub const KINDS: [&str; 6] = ["line", "serving", "done", "failed", "waiting", "output"];
}

/// `POST /v1/apps/{app}/restart`: `process: None` restarts every process type. With `index`
/// (and a process type), only that instance (`web.1`): the others keep running.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    #[serde(default)]
    pub process: Option<ProcessType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// One container of an app, as read back from its labels and Docker's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub process: ProcessType,
    pub index: u32,
    pub release: u32,
    /// The instance's name (the agent's, unique on the host).
    pub name: String,
    pub container_id: String,
    /// Docker's state and health, in Heroku's words.
    pub state: InstanceState,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The memory and CPU limits the container runs with (`None`: unlimited).
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub cpus: Option<Cpus>,
    /// The kernel's OOM killer ended its last run (Docker's `State.OOMKilled`).
    #[serde(default)]
    pub out_of_memory: bool,
    /// How often Docker started it again after it exited (its restart policy): a crash loop.
    #[serde(default)]
    pub restarts: u32,
    /// Set for a one-off container (`run.N`, `cron.N`, `release.1`): its command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oneoff: Option<String>,
    /// The cluster node the instance runs on; `None` on a single host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

// Logs and images
//
// `GET /v1/apps/{app}/logs?tail=N&follow=true&process=web` streams NDJSON [`LogMessage`]s: the
// last `tail` lines of the app's containers merged in time order, then `live`, then (with
// `follow`) new lines as they happen, until the client hangs up. With them come the router's
// lines about requests to the app's hosts (stream `router`, process `router`) unless
// `router=false`; `release=N` keeps only the lines of release N's instances. What happens to the
// containers themselves is told by `GET /v1/events` ("Instance events") instead.
// `GET /v1/apps/{app}/images` → `Vec<String>`: the app's images present, as builds named them.
// `POST /v1/apps/{app}/prune` with a [`PruneRequest`] → [`PruneResult`].

/// Which output stream a line came from. The agent sends `stdout` and `stderr` of containers
/// and `router` for Traefik's requests to the app; `platform` is kept for readers of older
/// agents, whose log streams carried instance events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    Platform,
    /// A request through the router: `paas[router]: at=info method=GET …`.
    Router,
}

/// One line of one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub process: String,
    pub index: u32,
    pub stream: LogStream,
    /// The line without its line break; bytes that are not UTF-8 are replaced by U+FFFD.
    pub line: String,
    /// The release of the instance that wrote it (for a router line: that served the request);
    /// absent in archives written before releases were kept with lines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogMessage {
    Line(LogEntry),
    /// The backlog is over: what follows happens now.
    Live,
}

/// `POST /v1/apps/{app}/prune`: remove the app's images except these (as builds named them)
/// and any image a container still uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneRequest {
    pub keep: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResult {
    pub removed: Vec<String>,
}

// Instance events
//
// `GET /v1/events` streams NDJSON [`InstanceEvent`]s, one per thing that happened to any app's
// container from the moment of the request on (started, up, crashed, retired, …), until the
// client hangs up. gitd follows it to keep these events with its other platform events.
//
// Each line also carries the agent run's `boot` id (new each time the agent starts) and a `seq`
// number, increasing by one per event within a run ([`NumberedEvent`]). The agent keeps its
// recent events, so a reader that was away asks `GET /v1/events?boot=B&since=N` and first gets
// what it missed (the events after `seq` N of run B; every kept event when B is an earlier
// run), then the stream as above.

/// Something that happened to one container of an app, in Heroku's words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceEvent {
    pub timestamp: chrono::DateTime<chrono::Utc>,
    pub app: String,
    pub process: String,
    pub index: u32,
    pub release: u32,
    /// `State changed from starting to up`, `Process exited with status 137`, …
    pub message: String,
}

/// The [`InstanceEvent`] message of a process the kernel killed for going past its memory
/// limit (Heroku's R15), told just before its exit.
pub const OUT_OF_MEMORY: &str = "Error R15 (Memory quota vastly exceeded): killed by the kernel";

/// An [`InstanceEvent`] as `GET /v1/events` numbers it. Both numbers default to empty for the
/// lines of agents that did not number their events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberedEvent {
    #[serde(default)]
    pub boot: String,
    #[serde(default)]
    pub seq: u64,
    #[serde(flatten)]
    pub event: InstanceEvent,
}

/// How far a reader of the instance events got: the last event it has (`GET /v1/events`'s
/// `boot` and `since` query parameters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCursor {
    pub boot: String,
    pub since: u64,
}

/// The response header of `GET /v1/events` with the position its new events follow
/// (`<boot>:<since>`, [`EventCursor`]'s `Display`), so a reader that gets no event yet still
/// knows where to catch up from.
pub const EVENTS_CURSOR_HEADER: &str = "x-paas-events-cursor";

impl std::fmt::Display for EventCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.boot, self.since)
    }
}

impl std::str::FromStr for EventCursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (boot, since) = text
            .split_once(':')
            .ok_or_else(|| format!("not <boot>:<seq>: {text:?}"))?;
        let since = since
            .parse()
            .map_err(|_| format!("not a sequence number: {since:?}"))?;
        Ok(EventCursor {
            boot: boot.to_owned(),
            since,
        })
    }
}

#[cfg(test)]
mod event_cursor_tests {
    use super::*;

    #[test]
    fn a_cursor_reads_back_as_written() {
        let cursor = EventCursor {
            boot: "0a1b2c3d4e5f6071".into(),
            since: 42,
        };
        assert_eq!(cursor.to_string(), "0a1b2c3d4e5f6071:42");
        assert_eq!(cursor.to_string().parse::<EventCursor>(), Ok(cursor));
        assert!("no-colon".parse::<EventCursor>().is_err());
        assert!("boot:-1".parse::<EventCursor>().is_err());
    }

    #[test]
    fn an_event_without_numbers_reads_as_unnumbered() {
        let line = r#"{"timestamp":"2026-01-01T00:00:00Z","app":"hello","process":"web","index":1,"release":3,"message":"Starting process"}"#;
        let event: NumberedEvent = serde_json::from_str(line).unwrap();
        assert_eq!((event.boot.as_str(), event.seq), ("", 0));
        assert_eq!(event.event.message, "Starting process");
        let numbered = NumberedEvent {
            boot: "b".into(),
            seq: 7,
            ..event
        };
        let text = serde_json::to_string(&numbered).unwrap();
        let plain: InstanceEvent = serde_json::from_str(&text).unwrap();
        assert_eq!(
            plain, numbered.event,
            "readers of plain events still read it"
        );
    }
}

#[cfg(test)]
mod instance_tests {
    use super::*;

    #[test]
    fn the_node_is_on_the_wire_only_on_a_cluster() {
        let line = r#"{"process":"web","index":1,"release":3,"name":"paas-hello-v3-web-1","container_id":"abc","state":"up","started_at":null}"#;
        let single: Instance = serde_json::from_str(line).unwrap();
        assert_eq!(single.node, None, "an older agent's instance");
        assert!(!serde_json::to_string(&single).unwrap().contains("node"));
        let placed = Instance {
            node: Some("paascl-2".into()),
            ..single
        };
        let text = serde_json::to_string(&placed).unwrap();
        assert!(text.contains(r#""node":"paascl-2""#), "{text}");
        assert_eq!(serde_json::from_str::<Instance>(&text).unwrap(), placed);
    }
}

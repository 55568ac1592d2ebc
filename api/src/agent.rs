//! The contract between gitd and paas-agent (the agent's HTTP API, bearer-token protected).
//!
//! `POST /v1/builds`: the body is one line of JSON ([`BuildSpec`]) followed by a tar archive
//! of the build context. The answer streams NDJSON [`BuildEvent`]s as the build runs, ending
//! with exactly one `done` or `failed` event.
//!
//! Every request carries `Authorization: Bearer <agent token>`; without it (or with another
//! token) the answer is 401 with the usual error envelope. A spec line that is missing, not
//! JSON, or invalid (bad app name, `image` other than `paas/<app>:v<release>`, labels without
//! `paas.app` = app, `paas.release` and `paas.commit`, paths leaving the tree, env keys that are
//! not config keys) is answered 400 before anything is built. Once the 200 NDJSON stream has
//! started, every problem (a tar entry leaving the tree, no Dockerfile, a failed step, no
//! `pack` on the build host) arrives as the final `failed` event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::names::{HealthPath, ProcessType};
use crate::types::InstanceState;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub app: String,
    pub release: u32,
    /// Tag to produce, `paas/<app>:v<release>`.
    pub image: String,
    /// Labels put on the image (`paas.app`, `paas.release`, `paas.commit`).
    pub labels: BTreeMap<String, String>,
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
    /// The image was built and tagged.
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
// `DELETE /v1/apps/{app}` → 204: removes the app's containers, network and `paas/<app>:*` images.

/// The desired state of one app on this host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppSpec {
    /// Release number; containers are named and labelled `v<release>`.
    pub release: u32,
    /// Image to run, e.g. `paas/<app>:v<N>` (a rollback or config change reuses an older one).
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
    /// Lock-downs the app opted into (`paas features:enable`), on top of the platform's own.
    #[serde(default)]
    pub container: ContainerOptions,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RolloutEvent {
    /// One line of progress, e.g. `Starting web.1 (paas-hello-v3-web-1)… healthy`.
    Line(String),
    /// The new instances are started, ready and routed: the app serves the new state. What
    /// follows is the old instances draining and retiring, then `done`.
    Serving,
    /// The app runs as specified.
    Done,
    /// Nothing changed for the previously running containers; `logs` are the last lines of the
    /// container that failed, if one did.
    Failed { reason: String, logs: Vec<String> },
}

/// `POST /v1/apps/{app}/restart`: `process: None` restarts every process type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartRequest {
    #[serde(default)]
    pub process: Option<ProcessType>,
}

/// One container of an app, as read back from its labels and Docker's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    pub process: ProcessType,
    pub index: u32,
    pub release: u32,
    /// Docker container name, `paas-<app>-v<N>-<process>-<i>`.
    pub name: String,
    pub container_id: String,
    /// Docker's state and health, in Heroku's words.
    pub state: InstanceState,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
}

// Logs and images
//
// `GET /v1/apps/{app}/logs?tail=N&follow=true&process=web` streams NDJSON [`LogMessage`]s: the
// last `tail` lines of the app's containers merged in time order, then `live`, then (with
// `follow`) new lines as they happen, until the client hangs up. What happens to the
// containers themselves is told by `GET /v1/events` ("Instance events") instead.
// `GET /v1/apps/{app}/images` → `Vec<String>`: the app's `paas/<app>:*` tags present.
// `POST /v1/apps/{app}/prune` with a [`PruneRequest`] → [`PruneResult`].

/// Which output stream a line came from. The agent sends only `stdout` and `stderr`; `platform`
/// is kept for readers of older agents, whose log streams carried instance events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    Platform,
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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogMessage {
    Line(LogEntry),
    /// The backlog is over: what follows happens now.
    Live,
}

/// `POST /v1/apps/{app}/prune`: remove the app's images except these (and any image a
/// container still uses).
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

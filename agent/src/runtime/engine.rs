//! The seam between the rollout logic ([`super::rollout`], [`super::supervisor`], the routes of
//! [`super`]) and what runs an app's instances. The rollout decides what to start, keep and
//! retire and in which order; an [`Engine`] carries out each step in paas terms (an instance
//! of a process type, its readiness, its restart policy), never in those of a client library.
//! [`super::docker::DockerEngine`] runs instances as containers on this host; a second engine
//! (Swarm) implements the same trait.

use std::collections::HashMap;
use std::future::Future;

use futures::stream::BoxStream;
use paas_api::agent::{AppSpec, Instance};
use paas_api::storage::Mount;

use crate::naming;

/// Why an engine could not do what it was asked; one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EngineError(pub String);

impl From<bollard::errors::Error> for EngineError {
    fn from(err: bollard::errors::Error) -> Self {
        EngineError(err.to_string())
    }
}

/// One of an app's instances, as the engine reads it back.
#[derive(Debug, Clone)]
pub struct Existing {
    pub id: String,
    pub name: String,
    pub process: String,
    pub index: u32,
    pub release: u32,
    pub fingerprint: String,
    pub running: bool,
    /// The engine's restart policy is bringing it back (after a crash, with its own back-off).
    pub restarting: bool,
}

impl Existing {
    /// Its name as the naming convention gives it (an instance being replaced is renamed).
    pub fn canonical_name(&self, app: &str) -> String {
        naming::container_name(app, self.release, &self.process, self.index)
    }
}

/// An instance to create: its identity, and what the engine creates it from (`T`, the
/// engine's own template, which the rollout only hands back).
#[derive(Debug, Clone)]
pub struct Wanted<T> {
    pub process: String,
    pub index: u32,
    pub name: String,
    pub fingerprint: String,
    pub template: T,
}

/// Readiness as the engine sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Running and, if checked, healthy; `ip` is its address on the app network, `pid` its
    /// process when it runs on this host.
    Up {
        ip: Option<String>,
        pid: Option<i64>,
    },
    /// Still starting (or not yet healthy).
    Pending { last_check: Option<String> },
    /// Exited, dead, or restarted by the restart policy since it was created.
    Down { reason: String },
}

/// An instance creation that failed; `created` is the instance that exists anyway (created
/// but not started) and must be cleaned up.
#[derive(Debug)]
pub struct StartFailure {
    pub created: Option<String>,
    pub error: EngineError,
}

/// Something happened to one of the agent's instances outside the agent's doing, maybe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceChange {
    pub app: String,
    pub id: String,
    /// It stopped (rather than was removed).
    pub stopped: bool,
}

/// What an app removal took away.
#[derive(Debug, Default)]
pub struct Removed {
    pub instances: usize,
    pub images: Vec<String>,
    pub volumes: Vec<String>,
}

/// Everything the runtime asks of what runs instances. Every future is `Send`: rollouts run
/// on spawned tasks.
pub trait Engine: Send + Sync {
    /// What an instance is created from.
    type Template: Clone + Send + Sync + std::fmt::Debug;

    /// Every instance `spec` asks for, in process then index order.
    fn wanted(&self, app: &str, spec: &AppSpec) -> Vec<Wanted<Self::Template>>;

    /// The template `existing` was created from, to start its twin.
    fn twin(
        &self,
        existing: &Existing,
    ) -> impl Future<Output = Result<Self::Template, EngineError>> + Send;

    /// The labels of the image `spec` runs; `None` when there is no such image.
    fn image_labels(
        &self,
        app: &str,
        spec: &AppSpec,
    ) -> impl Future<Output = Result<Option<HashMap<String, String>>, EngineError>> + Send;

    /// Makes ready what the app's instances need (its network, the router's way to it, its
    /// `volumes`).
    fn prepare_app(
        &self,
        app: &str,
        volumes: &[Mount],
    ) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// The app's instances, stopped ones included. `settled`: each one's state as it is now,
    /// not as a listing that may lag behind the engine's events says.
    fn list(
        &self,
        app: &str,
        settled: bool,
    ) -> impl Future<Output = Result<Vec<Existing>, EngineError>> + Send;

    /// The app's instances for `GET …/instances`.
    fn instances(
        &self,
        app: &str,
    ) -> impl Future<Output = Result<Vec<Instance>, EngineError>> + Send;

    /// Creates and starts a new instance without a restart policy (a failing one stays down
    /// with its exit code); its id.
    fn start_new(
        &self,
        wanted: Wanted<Self::Template>,
    ) -> impl Future<Output = Result<String, StartFailure>> + Send;

    /// Starts a stopped instance again, as it was created.
    fn start_again(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Restarts an instance in place (stop, then start).
    fn restart(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Starts `id` again if it is one of the app's serving instances and stopped outside a
    /// rollout and the engine's restart policy will not bring it back; its name if it did.
    fn revive(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = Result<Option<String>, EngineError>> + Send;

    fn rename(&self, id: &str, name: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    fn liveness(
        &self,
        app: &str,
        id: &str,
        needs_health: bool,
    ) -> impl Future<Output = Result<Liveness, EngineError>> + Send;

    /// The last `lines` lines of an instance's output.
    fn log_tail(&self, id: &str, lines: usize) -> impl Future<Output = Vec<String>> + Send;

    /// An instance's output (stdout and stderr) line by line from its start, as it prints
    /// it; the stream ends when the instance stops or its output cannot be read.
    fn output(&self, id: &str) -> BoxStream<'static, String>;

    /// The restart policy an instance keeps once it serves: crashes and engine restarts
    /// bring it back.
    fn keep_running(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Makes the instance's health check fail from its next probe on, so the router lets go.
    fn mark_draining(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Connections open to the app port of the process `pid`; `None` when unreadable.
    fn open_connections(&self, pid: i64) -> Option<usize>;

    /// Removes an instance at once; one already gone is fine.
    fn remove(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Stops (SIGTERM, then SIGKILL after the stop timeout) and removes an instance; one
    /// already gone is fine.
    fn stop_and_remove(&self, id: &str) -> impl Future<Output = Result<(), EngineError>> + Send;

    /// Removes every instance, the network, the images and the volumes of the app.
    fn remove_app(&self, app: &str) -> impl Future<Output = Result<Removed, EngineError>> + Send;

    /// Instances of any app that stopped or were removed, from now on; the stream ends with
    /// an error when the engine's event stream breaks (the caller subscribes again).
    fn changes(&self) -> BoxStream<'static, Result<InstanceChange, EngineError>>;
}

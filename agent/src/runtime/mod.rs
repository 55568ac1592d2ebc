//! App containers (contract in `paas_api::agent`, "Runtime"): desired state per app reconciled
//! into labelled containers behind Traefik, zero-downtime rollouts and restarts, instance
//! listings read back from Docker labels, app removal, and convergence: the last spec each
//! app's rollout put live is kept on disk ([`desired`]), and whenever the agent starts, Docker's
//! event stream comes back or a container of the app dies or is removed, the app is brought
//! back to it. What runs is always read back from Docker, never remembered, so restarting the
//! agent changes nothing that is as it should be.
//!
//! Routes: `PUT /v1/apps/{app}` ([`AppSpec`] → NDJSON [`RolloutEvent`]s),
//! `GET /v1/apps/{app}/instances`, `POST /v1/apps/{app}/restart` ([`RestartRequest`] →
//! NDJSON [`RolloutEvent`]s), `POST /v1/apps/{app}/stop` ([`stop`]),
//! `DELETE /v1/apps/{app}` (→ 204, its volumes too),
//! `DELETE /v1/apps/{app}/volumes/{volume}` (→ 204, 409 while mounted).

mod checks;
pub(crate) mod container;
mod desired;
mod docker;
mod engine;
pub(crate) mod progress;
pub(crate) mod resources;
mod rollout;
mod stop;
mod supervisor;
mod swarm;
mod traefik;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use paas_api::ErrorCode;
use paas_api::agent::{AppSpec, Instance, RestartRequest, RolloutEvent};
use paas_api::domains::{is_wildcard, validate_domain};
use paas_api::formation::MAX_QUANTITY;
use paas_api::storage::{MAX_MOUNTS_PER_APP, Mount, VolumeName};
use paas_api::{AppName, ConfigKey, HealthPath};
use regex::Regex;
use tokio::sync::{OwnedMutexGuard, mpsc};
use tracing::{info, warn};

use crate::config::{EngineKind, RuntimeConfig};
use crate::error::{ApiError, Path};
use crate::state::AgentState;
pub use container::APP_PORT;
pub use desired::DesiredState;
pub(crate) use docker::ensure_network;
pub use docker::{DockerEngine, VolumeRemoval};
pub(crate) use engine::{Engine, EngineError};
use rollout::{Rollout, RolloutError};
pub use supervisor::supervise;
#[cfg(test)]
pub(crate) use swarm::test_task;
pub(crate) use swarm::{TaskFacts, app_tasks, ensure_overlay, instances_by_node, update_options};
pub(crate) use traefik::TraefikApi;

/// Events buffered for a slow reader before the rollout waits for it.
const EVENT_BUFFER: usize = 64;

static ENTRYPOINT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_-]{1,64}$").unwrap());

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/apps/{app}", put(put_app).delete(delete_app))
        .route("/v1/apps/{app}/instances", get(list_instances))
        .route("/v1/apps/{app}/restart", post(restart_app))
        .route("/v1/apps/{app}/stop", post(stop::stop))
        .route("/v1/apps/{app}/volumes/{volume}", delete(delete_volume))
}

/// One lock per app: rollouts, restarts, convergence and removal of the same app run one at
/// a time.
pub struct RuntimeState {
    /// What runs the instances; everything here talks to it through [`Engine`] only.
    engine: DockerEngine,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    desired: DesiredState,
    /// Apps with a convergence queued and not yet begun: a burst of events costs one.
    converging: Mutex<HashSet<String>>,
}

impl RuntimeState {
    pub fn new(engine: DockerEngine, desired: DesiredState) -> RuntimeState {
        RuntimeState {
            engine,
            locks: Mutex::default(),
            desired,
            converging: Mutex::default(),
        }
    }

    pub(crate) async fn lock(&self, app: &str) -> OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .expect("the lock table is never poisoned")
            .entry(app.to_owned())
            .or_default()
            .clone();
        lock.lock_owned().await
    }
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, message)
}

fn check_app(app: &str) -> Result<(), ApiError> {
    app.parse::<AppName>()
        .map(drop)
        .map_err(|err| invalid(err.to_string()))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|err| invalid(format!("invalid {what}: {err}")))
}

/// A container's environment: config keys by the config rule, values without NUL bytes.
pub(crate) fn check_env(env: &std::collections::BTreeMap<String, String>) -> Result<(), ApiError> {
    for (key, value) in env {
        key.parse::<ConfigKey>()
            .map_err(|err| invalid(err.to_string()))?;
        if value.contains('\0') {
            return Err(invalid(format!(
                "config value of {key} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

pub fn validate_spec(app: &str, spec: &AppSpec) -> Result<(), ApiError> {
    check_app(app)?;
    if spec.release == 0 {
        return Err(invalid("release must be 1 or more"));
    }
    if spec.image.is_empty() || spec.image.len() > 255 || spec.image.contains(char::is_whitespace) {
        return Err(invalid(format!("invalid image {:?}", spec.image)));
    }
    check_env(&spec.env)?;
    for (process, process_spec) in &spec.processes {
        if process_spec.quantity > MAX_QUANTITY {
            return Err(invalid(format!(
                "{process} quantity {} is over the limit of {MAX_QUANTITY}",
                process_spec.quantity
            )));
        }
        if process_spec
            .command
            .as_deref()
            .is_some_and(|command| command.trim().is_empty() || command.contains('\0'))
        {
            return Err(invalid(format!(
                "the command of {process} is empty or has a NUL byte"
            )));
        }
    }
    for domain in &spec.domains {
        validate_domain(domain).map_err(|err| invalid(err.to_string()))?;
    }
    check_volumes(&spec.volumes)?;
    Ok(())
}

/// Refuses more mounts than an app may have, or two at one path (each name and path passed
/// its rule when the spec was read).
pub fn check_volumes(volumes: &[Mount]) -> Result<(), ApiError> {
    if volumes.len() > MAX_MOUNTS_PER_APP {
        return Err(invalid(format!(
            "{} mounts is over the limit of {MAX_MOUNTS_PER_APP}",
            volumes.len()
        )));
    }
    let paths: HashSet<_> = volumes.iter().map(|mount| &mount.path).collect();
    if paths.len() < volumes.len() {
        return Err(invalid("two mounts at the same path"));
    }
    Ok(())
}

/// The `[runtime]` settings that end up in labels and the health command, checked at start-up.
pub fn check_config(config: &RuntimeConfig) -> Result<(), String> {
    if is_wildcard(&config.domain) {
        return Err("runtime.domain must be a plain host name, not a wildcard".to_owned());
    }
    validate_domain(&config.domain).map_err(|err| format!("runtime.domain: {err}"))?;
    if !ENTRYPOINT.is_match(&config.traefik_entrypoint) {
        return Err(format!(
            "runtime.traefik_entrypoint {:?} must be letters, digits, dashes or underscores",
            config.traefik_entrypoint
        ));
    }
    if let Some(resolver) = &config.traefik_cert_resolver
        && !ENTRYPOINT.is_match(resolver)
    {
        return Err(format!(
            "runtime.traefik_cert_resolver {resolver:?} must be letters, digits, dashes or underscores"
        ));
    }
    if !ENTRYPOINT.is_match(&config.traefik_tls_entrypoint) {
        return Err(format!(
            "runtime.traefik_tls_entrypoint {:?} must be letters, digits, dashes or underscores",
            config.traefik_tls_entrypoint
        ));
    }
    config
        .health_path
        .parse::<HealthPath>()
        .map_err(|err| format!("runtime.health_path: {err}"))?;
    if config.health_interval_ms < 100 {
        return Err("runtime.health_interval_ms must be at least 100".to_owned());
    }
    // Fewer would not leave room for an init, a shell and a server with a few threads.
    if config.pids_limit < 16 {
        return Err("runtime.pids_limit must be at least 16".to_owned());
    }
    // Docker's own bounds of a CPU weight.
    if !(2..=262_144).contains(&config.cpu_shares) {
        return Err("runtime.cpu_shares must be between 2 and 262144".to_owned());
    }
    // Docker refuses memory limits under 6 MiB.
    if config.memory_limit_mb < 6 {
        return Err("runtime.memory_limit_mb must be at least 6".to_owned());
    }
    resources::check_config(config)
}

/// The hosts `app` is routed on: its own host, then the custom domains of its saved spec.
pub fn app_hosts(state: &AgentState, app: &str) -> Result<Vec<String>, desired::DesiredStateError> {
    let config = &state.config.runtime;
    Ok(match state.runtime.desired.load(app)? {
        Some(spec) => container::hostnames(app, &spec, config),
        None => vec![format!("{app}.{}", config.domain)],
    })
}

/// The app's own network, made if missing: a bridge network on one host, an attachable
/// overlay on Swarm.
pub(crate) async fn ensure_app_network(
    state: &AgentState,
    app: &str,
) -> Result<(), bollard::errors::Error> {
    match state.config.engine {
        EngineKind::Docker => ensure_network(&state.docker, app, None).await,
        EngineKind::Swarm => swarm::ensure_overlay(&state.docker, app).await,
    }
}

/// The client of Traefik's API, when the config names it.
pub fn traefik_api(config: &RuntimeConfig, engine: EngineKind) -> Option<TraefikApi> {
    config
        .traefik_api
        .as_deref()
        .map(|base| TraefikApi::new(base, engine))
}

fn rollout<'a>(
    state: &'a AgentState,
    app: &'a str,
    events: mpsc::Sender<RolloutEvent>,
) -> Rollout<'a, DockerEngine> {
    let config = &state.config.runtime;
    Rollout {
        engine: &state.runtime.engine,
        config,
        traefik: traefik_api(config, state.config.engine),
        desired: &state.runtime.desired,
        app,
        events,
    }
}

fn swarm_rollout<'a>(
    state: &'a AgentState,
    app: &'a str,
    events: mpsc::Sender<RolloutEvent>,
) -> swarm::SwarmRollout<'a> {
    swarm::SwarmRollout {
        docker: &state.docker,
        config: &state.config,
        desired: &state.runtime.desired,
        app,
        events,
    }
}

/// What a streamed request asks for.
enum Work {
    Apply(Box<AppSpec>),
    Restart(Option<String>, Option<u32>),
}

/// Runs `work` in the background under the app's lock and streams its events, ending with
/// exactly one `done` or `failed`; the work finishes even if the caller hangs up.
fn stream_rollout(state: AgentState, app: String, work: Work) -> Response {
    let (sender, receiver) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(async move {
        let _guard = state.runtime.lock(&app).await;
        let (what, outcome) = match state.config.engine {
            EngineKind::Docker => {
                let rollout = rollout(&state, &app, sender.clone());
                match &work {
                    Work::Apply(spec) => ("rollout", rollout.apply(spec).await),
                    Work::Restart(process, index) => {
                        ("restart", rollout.restart(process.as_deref(), *index).await)
                    }
                }
            }
            EngineKind::Swarm => {
                let rollout = swarm_rollout(&state, &app, sender.clone());
                match &work {
                    Work::Apply(spec) => ("rollout", rollout.apply(spec).await),
                    Work::Restart(process, None) => {
                        ("restart", rollout.restart(process.as_deref()).await)
                    }
                    Work::Restart(_, Some(_)) => (
                        "restart",
                        Err(RolloutError::new(
                            "Swarm restarts a process type's tasks together; name the type alone",
                        )),
                    ),
                }
            }
        };
        // The app's hosts or its web quantity may have changed: its page routes follow them.
        crate::pages::refresh(&state, &app);
        let outcome = outcome.and_then(|()| {
            stop::started_again(&state, &app, &work).map_err(|err| RolloutError {
                reason: err.to_string(),
                logs: Vec::new(),
            })
        });
        let terminal = match outcome {
            Ok(()) => {
                info!(%app, what, "done");
                RolloutEvent::Done
            }
            Err(RolloutError { reason, logs }) => {
                warn!(%app, what, %reason, "failed");
                RolloutEvent::Failed { reason, logs }
            }
        };
        let _ = sender.send(terminal).await;
    });
    progress::ndjson(receiver)
}

async fn put_app(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: AppSpec = parse_json(&body, "app spec")?;
    validate_spec(&app, &spec)?;
    resources::check(&spec, &state.config.runtime).map_err(invalid)?;
    info!(%app, release = spec.release, "rollout requested");
    Ok(stream_rollout(
        state,
        app.into(),
        Work::Apply(Box::new(spec)),
    ))
}

async fn restart_app(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: RestartRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RestartRequest::default()
    } else {
        parse_json(&body, "restart request")?
    };
    Ok(stream_rollout(
        state,
        app.into(),
        Work::Restart(request.process.map(String::from), request.index),
    ))
}

async fn list_instances(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
) -> Result<Json<Vec<Instance>>, ApiError> {
    check_app(&app)?;
    if state.config.engine == EngineKind::Swarm {
        let instances = swarm::instances(&state.docker, &app, &state.config)
            .await
            .map_err(|err| ApiError::new(ErrorCode::Internal, format!("Swarm: {err}")))?;
        return Ok(Json(instances));
    }
    let engine = &state.runtime.engine;
    // One listing of the processes and the one-offs, kept by the cache until an event about
    // either (`crate::events` follows both).
    let from_engine = async {
        let (instances, oneoffs) =
            tokio::join!(engine.instances(&app), engine.oneoff_instances(&app));
        let mut instances = instances?;
        instances.extend(oneoffs?);
        Ok::<_, EngineError>(instances)
    };
    let mut instances = state
        .instances
        .read(&app, from_engine)
        .await
        .map_err(|err| ApiError::new(ErrorCode::Internal, format!("Docker: {err}")))?;
    stop::mark_stopped(&state, &app, &mut instances)
        .map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))?;
    Ok(Json(instances))
}

async fn delete_app(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
) -> Result<Response, ApiError> {
    let _guard = state.runtime.lock(&app).await;
    // First: an agent killed half-way must not bring the containers back.
    state
        .runtime
        .desired
        .remove(&app)
        .map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))?;
    state
        .pages
        .remove_app(&app)
        .map_err(|err| ApiError::new(ErrorCode::Internal, err.to_string()))?;
    let removed = match state.config.engine {
        EngineKind::Docker => state.runtime.engine.remove_app(&app).await,
        EngineKind::Swarm => swarm::remove_app(&state.docker, &app, &state.config).await,
    }
    .map_err(|err| ApiError::new(ErrorCode::Internal, format!("Docker: {err}")))?;
    crate::logs::archive::forget(&state.config, &app)
        .await
        .map_err(|err| {
            ApiError::new(
                ErrorCode::Internal,
                format!("cannot remove the app's archived logs: {err}"),
            )
        })?;
    info!(%app, containers = removed.instances, images = removed.images.len(), volumes = ?removed.volumes, "app removed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /v1/apps/{app}/volumes/{volume}`: the volume and its files go (204, also when
/// there was none); 409 while a container still mounts it. Under the app's lock, so no
/// rollout mounts it meanwhile.
async fn delete_volume(
    State(state): State<AgentState>,
    Path((app, volume)): Path<(AppName, VolumeName)>,
) -> Result<Response, ApiError> {
    let _guard = state.runtime.lock(&app).await;
    let removal = state
        .runtime
        .engine
        .remove_volume(&app, &volume)
        .await
        .map_err(|err| ApiError::new(ErrorCode::Internal, format!("Docker: {err}")))?;
    info!(%app, %volume, ?removal, "volume removal");
    match removal {
        VolumeRemoval::Removed | VolumeRemoval::Absent => {
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        VolumeRemoval::InUse => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("volume {volume} is in use by a container of {app}; nothing was removed"),
        )),
    }
}

/// Queues a convergence of `app` to its desired state, unless one is queued already. Apps
/// without a desired state are left as they are, and so is everything on Swarm, which keeps
/// its services converged itself.
pub fn converge_soon(state: &AgentState, app: &str) {
    if state.config.engine == EngineKind::Swarm {
        return;
    }
    let queued = state
        .runtime
        .converging
        .lock()
        .expect("the convergence queue is never poisoned")
        .insert(app.to_owned());
    if queued {
        tokio::spawn(converge(state.clone(), app.to_owned()));
    }
}

/// Queues a convergence of every app that has a desired state.
pub fn converge_all(state: &AgentState) {
    match state.runtime.desired.apps() {
        Ok(apps) => {
            for app in apps {
                converge_soon(state, &app);
            }
        }
        Err(err) => warn!(error = %err, "cannot list the apps' desired states"),
    }
}

/// Whether `app` has a desired state to converge to.
pub fn has_desired_state(state: &AgentState, app: &str) -> bool {
    state
        .runtime
        .desired
        .load(app)
        .is_ok_and(|spec| spec.is_some())
}

/// The spec `app`'s last rollout put live, if any.
pub fn saved_spec(
    state: &AgentState,
    app: &str,
) -> Result<Option<AppSpec>, desired::DesiredStateError> {
    state.runtime.desired.load(app)
}

/// Every app that has a desired state, in name order.
pub fn apps_with_spec(state: &AgentState) -> Result<Vec<String>, desired::DesiredStateError> {
    state.runtime.desired.apps()
}

async fn converge(state: AgentState, app: String) {
    let _guard = state.runtime.lock(&app).await;
    state
        .runtime
        .converging
        .lock()
        .expect("the convergence queue is never poisoned")
        .remove(&app);
    let spec = match state.runtime.desired.load(&app) {
        Ok(Some(spec)) => spec,
        // Removed since it was queued.
        Ok(None) => return,
        Err(err) => {
            warn!(%app, error = %err, "cannot read the desired state");
            return;
        }
    };
    let (sender, mut receiver) = mpsc::channel(EVENT_BUFFER);
    let logged = tokio::spawn({
        let app = app.clone();
        async move {
            while let Some(event) = receiver.recv().await {
                if let RolloutEvent::Line(line) = event {
                    info!(%app, "converging: {line}");
                }
            }
        }
    });
    let outcome = rollout(&state, &app, sender).converge(&spec).await;
    let _ = logged.await;
    if let Err(RolloutError { reason, .. }) = outcome {
        warn!(%app, %reason, "could not converge to the desired state");
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::agent::ProcessSpec;

    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            release: 1,
            image: "paas/hello:v1".into(),
            env: BTreeMap::from([("GREETING".into(), "Hi".into())]),
            processes: BTreeMap::from([(
                "web".parse().unwrap(),
                ProcessSpec {
                    command: None,
                    quantity: 1,
                    resources: Default::default(),
                },
            )]),
            domains: vec!["www.example.com".into()],
            health_check_path: Some("/health?full=1".parse().unwrap()),
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    fn refused(change: impl FnOnce(&mut AppSpec)) -> String {
        let mut spec = spec();
        change(&mut spec);
        validate_spec("hello", &spec).unwrap_err().message
    }

    /// The message a PUT of `spec()` changed by `change` as JSON is refused with.
    fn refused_as_json(change: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut body = serde_json::to_value(spec()).unwrap();
        change(&mut body);
        let body = Bytes::from(serde_json::to_vec(&body).unwrap());
        parse_json::<AppSpec>(&body, "app spec")
            .unwrap_err()
            .message
    }

    #[test]
    fn checks_the_runtime_config() {
        assert!(check_config(&RuntimeConfig::default()).is_ok());
        let bad_domain = RuntimeConfig {
            domain: "x`) || Host(`y".into(),
            ..RuntimeConfig::default()
        };
        assert!(
            check_config(&bad_domain)
                .unwrap_err()
                .contains("runtime.domain")
        );
        let bad_path = RuntimeConfig {
            health_path: "/'$(reboot)'".into(),
            ..RuntimeConfig::default()
        };
        assert!(check_config(&bad_path).unwrap_err().contains("health_path"));
    }

    #[test]
    fn accepts_a_well_formed_spec() {
        assert!(validate_spec("hello", &spec()).is_ok());
    }

    #[test]
    fn refuses_what_could_break_out_of_labels_or_the_health_command() {
        assert!(validate_spec("Hello", &spec()).is_err());
        assert!(refused(|s| s.release = 0).contains("release"));
        assert!(refused(|s| s.domains = vec!["a.com`) || Host(`b.com".into()]).contains("domain"));
        assert!(refused(|s| s.domains = vec!["Example.com".into()]).contains("domain"));
        assert!(
            refused_as_json(|s| s["health_check_path"] = "/x' ; rm -rf /".into())
                .contains("health")
        );
        assert!(refused_as_json(|s| s["health_check_path"] = "health".into()).contains("health"));
        assert!(
            refused(|s| {
                s.env.insert("A-B".into(), "x".into());
            })
            .contains("config key")
        );
        assert!(
            refused_as_json(|s| {
                s["processes"]["Web"] = serde_json::json!({"command": null, "quantity": 1});
            })
            .contains("process type")
        );
        assert!(refused(|s| s.processes.get_mut("web").unwrap().quantity = 101).contains("limit"));
        assert!(refused(|s| s.image = "a b".into()).contains("image"));
    }
}

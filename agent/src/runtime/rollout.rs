//! Reconciling an app's containers with its desired state, and restarts, without dropping a
//! request: new containers start and must become healthy (and, when Traefik's API is known,
//! routed) before old ones are drained out of Traefik and only then stopped. A new container
//! that exits or never becomes healthy fails the rollout: the new containers are removed and
//! the old ones never stopped serving.
//!
//! The desired state is saved once the new containers serve and before anyone is told so
//! ([`RolloutEvent::Serving`]): an agent killed before that point converges back to the old
//! state (the new containers are leftovers), one killed after it converges to the new one (the
//! old containers are). Either way exactly one release serves. What to start, keep and retire
//! is decided by [`plan`] and [`converge_plan`], from labels alone; the rest carries it out.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::ContainerCreateBody;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use paas_api::agent::{AppSpec, RolloutEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::container::{
    APP_PORT, InstanceKey, WEB, Wanted, first_routing_label, wanted_containers,
};
use super::desired::DesiredState;
use super::docker::{self, Existing, Liveness};
use super::traefik::{TraefikApi, server_url};
use crate::config::RuntimeConfig;

/// How often Docker and Traefik are asked whether a change took effect.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Log lines of a failing container returned with the failure.
const FAILURE_LOG_LINES: usize = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutError {
    pub reason: String,
    pub logs: Vec<String>,
}

impl RolloutError {
    fn new(reason: impl Into<String>) -> Self {
        RolloutError {
            reason: reason.into(),
            logs: Vec::new(),
        }
    }
}

impl From<bollard::errors::Error> for RolloutError {
    fn from(err: bollard::errors::Error) -> Self {
        RolloutError::new(format!("Docker: {err}"))
    }
}

/// Everything a rollout of one app works with.
pub struct Rollout<'a> {
    pub docker: &'a Docker,
    pub config: &'a RuntimeConfig,
    pub key: &'a InstanceKey,
    pub traefik: Option<TraefikApi>,
    pub desired: &'a DesiredState,
    pub app: &'a str,
    pub events: mpsc::Sender<RolloutEvent>,
}

/// What to do to go from the containers that exist to the ones wanted.
#[derive(Debug)]
pub struct Plan {
    pub keep: Vec<Existing>,
    pub start: Vec<Wanted>,
    pub retire: Vec<Existing>,
}

/// For a requested change: a running container with the wanted name and fingerprint stays;
/// every wanted container without one is started fresh; every other container (a stopped or
/// crash-looping one included) is retired.
pub fn plan(app: &str, existing: Vec<Existing>, wanted: Vec<Wanted>) -> Plan {
    let converging = converge_plan(app, existing, wanted.clone());
    let (keep, down): (Vec<Existing>, Vec<Existing>) = converging
        .keep
        .into_iter()
        .chain(converging.revive)
        .partition(|c| c.running);
    let start = wanted
        .into_iter()
        .filter(|w| !keep.iter().any(|c| c.name == w.name))
        .collect();
    let retire = converging.retire.into_iter().chain(down).collect();
    Plan {
        keep,
        start,
        retire,
    }
}

/// What bringing the app back to its desired state takes, when nobody asked for a change
/// (the agent started, Docker's events came back, a container died or was removed).
#[derive(Debug)]
pub struct Convergence {
    /// Wanted and running, or being restarted by Docker's restart policy (which is left to
    /// its own back-off rather than raced).
    pub keep: Vec<Existing>,
    /// Wanted but stopped (killed, exited): started again in place.
    pub revive: Vec<Existing>,
    /// Wanted and missing (removed): created.
    pub start: Vec<Wanted>,
    /// Not wanted: leftovers of an interrupted rollout, retired once the rest is ready.
    pub retire: Vec<Existing>,
}

impl Convergence {
    pub fn changes_nothing(&self) -> bool {
        self.revive.is_empty() && self.start.is_empty() && self.retire.is_empty()
    }
}

/// A container is wanted when it has a wanted name (its canonical one: a renamed container is
/// being replaced) and that name's fingerprint.
pub fn converge_plan(app: &str, existing: Vec<Existing>, wanted: Vec<Wanted>) -> Convergence {
    let mut unmatched: HashMap<String, Wanted> =
        wanted.iter().map(|w| (w.name.clone(), w.clone())).collect();
    let (mut keep, mut revive, mut retire) = (Vec::new(), Vec::new(), Vec::new());
    for container in existing {
        let is_wanted = container.name == container.canonical_name(app)
            && unmatched
                .get(&container.name)
                .is_some_and(|w| w.fingerprint == container.fingerprint);
        if !is_wanted {
            retire.push(container);
            continue;
        }
        unmatched.remove(&container.name);
        if container.running || container.restarting {
            keep.push(container);
        } else {
            revive.push(container);
        }
    }
    let start = wanted
        .into_iter()
        .filter(|w| unmatched.contains_key(&w.name))
        .collect();
    Convergence {
        keep,
        revive,
        start,
        retire,
    }
}

/// A container this rollout created.
struct Started {
    process: String,
    index: u32,
    name: String,
    id: String,
}

impl Rollout<'_> {
    async fn say(&self, line: impl Into<String>) {
        // A caller that hung up does not stop the rollout: half-done is worse than unseen.
        let _ = self.events.send(RolloutEvent::Line(line.into())).await;
    }

    /// `PUT /v1/apps/{app}`.
    pub async fn apply(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        let wants_web = spec.processes.get(WEB).is_some_and(|web| web.quantity > 0);
        if wants_web && !self.config.busybox.is_file() {
            return Err(RolloutError::new(format!(
                "no static busybox at {} for the web health check; install busybox-static or set runtime.busybox",
                self.config.busybox.display()
            )));
        }
        // A missing image fails below, where the container is created.
        if let Some(labels) = docker::image_labels(self.docker, &spec.image).await?
            && let Some(label) = first_routing_label(&labels)
        {
            return Err(RolloutError::new(format!(
                "image {} carries label `{label}`: labels under traefik. are reserved for the platform; push the app again to rebuild it",
                spec.image
            )));
        }
        docker::ensure_network(
            self.docker,
            self.app,
            self.config.traefik_container.as_deref(),
        )
        .await?;
        let existing = docker::list(self.docker, self.key, self.app).await?;
        let wanted = wanted_containers(self.app, spec, self.config, self.key);
        let plan = plan(self.app, existing, wanted);
        if plan.start.is_empty() && plan.retire.is_empty() {
            self.save_desired(spec)?;
            self.say(format!(
                "Nothing to change: {} instance(s) of v{} running",
                plan.keep.len(),
                spec.release
            ))
            .await;
            return Ok(());
        }
        self.replace(Vec::new(), plan.start, plan.retire, Some(spec))
            .await
    }

    /// Brings the app back to `spec`, its saved desired state, without a request: stopped
    /// containers start again in place, missing ones are created, and only once all of them
    /// are ready are the leftovers retired. Routing comes back with them (the app network,
    /// Traefik's connection to it, the containers' labels).
    pub async fn converge(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        docker::ensure_network(
            self.docker,
            self.app,
            self.config.traefik_container.as_deref(),
        )
        .await?;
        let existing = docker::list_settled(self.docker, self.key, self.app).await?;
        let wanted = wanted_containers(self.app, spec, self.config, self.key);
        let convergence = converge_plan(self.app, existing, wanted);
        if convergence.changes_nothing() {
            return Ok(());
        }
        let mut revived = Vec::new();
        for container in convergence.revive {
            docker::start(self.docker, &container.id).await?;
            self.say(format!(
                "Started {}.{} ({}) again",
                container.process, container.index, container.name
            ))
            .await;
            revived.push(Started {
                process: container.process,
                index: container.index,
                name: container.name,
                id: container.id,
            });
        }
        self.replace(revived, convergence.start, convergence.retire, None)
            .await
    }

    fn save_desired(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        self.desired
            .save(self.app, spec)
            .map_err(|err| RolloutError::new(format!("cannot save the desired state: {err}")))
    }

    /// `POST /v1/apps/{app}/restart`: `web` is replaced by fresh containers with zero
    /// downtime; other process types are restarted in place. Stopped instances are restarted
    /// too, and instances of the desired state that are missing altogether are created.
    pub async fn restart(&self, process: Option<&str>) -> Result<(), RolloutError> {
        let desired = self
            .desired
            .load(self.app)
            .map_err(|err| RolloutError::new(err.to_string()))?;
        let wanted = desired
            .map(|spec| wanted_containers(self.app, &spec, self.config, self.key))
            .map(|wanted| {
                wanted
                    .into_iter()
                    .filter(|w| process.is_none_or(|p| p == w.process))
                    .collect::<Vec<_>>()
            });
        // With a desired state, its instances; without (an app deployed by an agent that kept
        // none), whatever carries a serving name.
        let targets: Vec<Existing> = docker::list(self.docker, self.key, self.app)
            .await?
            .into_iter()
            .filter(|c| c.name == c.canonical_name(self.app))
            .filter(|c| process.is_none_or(|p| p == c.process))
            .filter(|c| {
                wanted
                    .as_ref()
                    .is_none_or(|wanted| wanted.iter().any(|w| w.name == c.name))
            })
            .collect();
        let missing: Vec<Wanted> = wanted
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !targets.iter().any(|c| c.name == w.name))
            .collect();
        if targets.is_empty() && missing.is_empty() {
            return Err(RolloutError::new(match process {
                Some(process) => format!("{} has no {process} instances", self.app),
                None => format!("{} has no instances", self.app),
            }));
        }
        if !missing.is_empty() {
            docker::ensure_network(
                self.docker,
                self.app,
                self.config.traefik_container.as_deref(),
            )
            .await?;
        }
        let (web, others): (Vec<_>, Vec<_>) = targets.into_iter().partition(|c| c.process == WEB);
        for container in &others {
            self.docker
                .restart_container(
                    &container.id,
                    Some(bollard::query_parameters::RestartContainerOptions {
                        t: Some(i32::try_from(self.config.stop_timeout_secs).unwrap_or(i32::MAX)),
                        signal: None,
                    }),
                )
                .await?;
            self.say(format!(
                "Restarted {}.{} ({})",
                container.process, container.index, container.name
            ))
            .await;
        }
        if web.is_empty() && missing.is_empty() {
            return Ok(());
        }
        let mut replacements = missing;
        for container in &web {
            replacements.push(Wanted {
                process: container.process.clone(),
                index: container.index,
                name: container.name.clone(),
                fingerprint: container.fingerprint.clone(),
                body: self.clone_body(&container.id).await?,
            });
        }
        self.replace(Vec::new(), replacements, web, None).await
    }

    /// The create body a running container was made from, to start its twin.
    async fn clone_body(&self, id: &str) -> Result<ContainerCreateBody, RolloutError> {
        let details = docker::inspect(self.docker, id).await?;
        let config = serde_json::to_value(details.config.unwrap_or_default())
            .map_err(|err| RolloutError::new(format!("reading container {id}: {err}")))?;
        let mut body: ContainerCreateBody = serde_json::from_value(config)
            .map_err(|err| RolloutError::new(format!("reading container {id}: {err}")))?;
        // Its own host name (the new container id), so instances stay distinguishable.
        body.hostname = None;
        body.mac_address = None;
        body.host_config = details.host_config;
        Ok(body)
    }

    /// Starts `start`, waits until all of them and `revived` (started again in place) are
    /// ready, saves `commit` as the desired state, then retires `retire`; on failure removes
    /// what it created and leaves `retire` serving.
    async fn replace(
        &self,
        revived: Vec<Started>,
        start: Vec<Wanted>,
        retire: Vec<Existing>,
        commit: Option<&AppSpec>,
    ) -> Result<(), RolloutError> {
        // A container keeping a wanted name steps aside under a temporary one until retired.
        let mut renamed = Vec::new();
        for wanted in &start {
            if let Some(old) = retire.iter().find(|old| old.name == wanted.name) {
                let temporary =
                    format!("{}-replaced-{}", old.name, &old.id[..12.min(old.id.len())]);
                docker::rename(self.docker, &old.id, &temporary).await?;
                renamed.push((old.id.clone(), old.name.clone()));
            }
        }
        let mut started = Vec::new();
        let mut outcome = self.start_all(start, &mut started, &revived).await;
        if let (Ok(()), Some(spec)) = (&outcome, commit) {
            outcome = self.save_desired(spec);
        }
        if let Err(err) = outcome {
            self.undo(&started, &renamed).await;
            return Err(err);
        }
        let _ = self.events.send(RolloutEvent::Serving).await;
        self.retire_all(retire).await;
        Ok(())
    }

    async fn start_all(
        &self,
        start: Vec<Wanted>,
        started: &mut Vec<Started>,
        revived: &[Started],
    ) -> Result<(), RolloutError> {
        for mut wanted in start {
            if let Some(host_config) = wanted.body.host_config.as_mut() {
                host_config.restart_policy = Some(docker::no_restart_policy());
            }
            let id = docker::create_and_start(self.docker, &wanted.name, wanted.body)
                .await
                .map_err(|err| {
                    RolloutError::new(format!(
                        "cannot start {}.{} ({}): {err}",
                        wanted.process, wanted.index, wanted.name
                    ))
                });
            // Created but not started still has to be cleaned up.
            let id = match id {
                Ok(id) => id,
                Err(err) => {
                    started.push(Started {
                        process: wanted.process,
                        index: wanted.index,
                        id: wanted.name.clone(),
                        name: wanted.name,
                    });
                    return Err(err);
                }
            };
            started.push(Started {
                process: wanted.process,
                index: wanted.index,
                name: wanted.name,
                id,
            });
        }
        let mut waits: FuturesUnordered<_> = started
            .iter()
            .chain(revived)
            .map(|s| self.wait_ready(s))
            .collect();
        while let Some(ready) = waits.next().await {
            self.say(ready?).await;
        }
        drop(waits);
        for container in started.iter().chain(revived) {
            docker::keep_running(self.docker, &container.id)
                .await
                .map_err(|err| {
                    RolloutError::new(format!(
                        "cannot set the restart policy of {}: {err}",
                        container.name
                    ))
                })?;
        }
        Ok(())
    }

    /// Polls until the container runs (and for `web`: is healthy and routed by Traefik).
    async fn wait_ready(&self, started: &Started) -> Result<String, RolloutError> {
        let is_web = started.process == WEB;
        let deadline = Instant::now() + Duration::from_secs(self.config.ready_timeout_secs);
        let label = format!("{}.{} ({})", started.process, started.index, started.name);
        let mut last_check = None;
        loop {
            let details = docker::inspect(self.docker, &started.id).await?;
            match docker::liveness(self.app, &details, is_web) {
                Liveness::Up { ip } => {
                    if !is_web {
                        return Ok(format!("Starting {label}… up"));
                    }
                    self.wait_routed(&label, ip.as_deref(), deadline).await?;
                    return Ok(format!("Starting {label}… healthy"));
                }
                Liveness::Down { reason } => {
                    return Err(RolloutError {
                        reason: format!("{label} {reason}"),
                        logs: docker::log_tail(self.docker, &started.id, FAILURE_LOG_LINES).await,
                    });
                }
                Liveness::Pending { last_check: check } => last_check = check.or(last_check),
            }
            if Instant::now() >= deadline {
                let check = last_check.map(|c| format!(" (last health check: {c})"));
                return Err(RolloutError {
                    reason: format!(
                        "{label} did not become healthy within {} s{}",
                        self.config.ready_timeout_secs,
                        check.unwrap_or_default()
                    ),
                    logs: docker::log_tail(self.docker, &started.id, FAILURE_LOG_LINES).await,
                });
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn wait_routed(
        &self,
        label: &str,
        ip: Option<&str>,
        deadline: Instant,
    ) -> Result<(), RolloutError> {
        let (Some(traefik), Some(ip)) = (&self.traefik, ip) else {
            return Ok(());
        };
        let url = server_url(ip);
        loop {
            let last_error = match traefik.servers(self.app).await {
                Ok(servers) if servers.contains(&url) => return Ok(()),
                Ok(_) => None,
                Err(err) => Some(err),
            };
            if Instant::now() >= deadline {
                return Err(RolloutError::new(format!(
                    "{label} is healthy but Traefik did not route to it within {} s{}",
                    self.config.ready_timeout_secs,
                    last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    async fn undo(&self, started: &[Started], renamed: &[(String, String)]) {
        for container in started {
            if let Err(err) = docker::remove(self.docker, &container.id).await {
                self.say(format!(
                    "Warning: could not remove {}: {err}",
                    container.name
                ))
                .await;
            }
        }
        for (id, name) in renamed {
            if let Err(err) = docker::rename(self.docker, id, name).await {
                self.say(format!(
                    "Warning: could not rename {id} back to {name}: {err}"
                ))
                .await;
            }
        }
    }

    /// Drains and stops the old containers, all at once. A failure here leaves a stray
    /// container (retired by the next reconcile) while the new ones already serve, so it is a
    /// warning, not a failed rollout.
    async fn retire_all(&self, retire: Vec<Existing>) {
        let results = futures::future::join_all(retire.iter().map(|old| self.retire(old))).await;
        for (old, result) in retire.iter().zip(results) {
            let label = format!(
                "{}.{} ({})",
                old.process,
                old.index,
                old.canonical_name(self.app)
            );
            match result {
                Ok(()) => self.say(format!("Stopped {label}")).await,
                Err(err) => {
                    self.say(format!("Warning: could not retire {label}: {err}"))
                        .await
                }
            }
        }
    }

    async fn retire(&self, old: &Existing) -> Result<(), String> {
        if old.running && old.process == WEB {
            self.drain(old).await?;
        }
        docker::stop_and_remove(self.docker, &old.id, self.config.stop_timeout_secs)
            .await
            .map_err(|err| err.to_string())
    }

    /// Takes a container out of Traefik before it is stopped: its health check starts failing,
    /// the wait lasts until Traefik (or, without its API, Docker) has let go of it, and then
    /// until the requests Traefik sent just before are answered.
    async fn drain(&self, old: &Existing) -> Result<(), String> {
        let details = docker::inspect(self.docker, &old.id)
            .await
            .map_err(|err| err.to_string())?;
        let ip = match docker::liveness(self.app, &details, true) {
            Liveness::Up { ip } => ip,
            // Not healthy, hence not routed already.
            _ => return Ok(()),
        };
        docker::mark_draining(self.docker, &old.id).await?;
        let deadline = Instant::now() + Duration::from_secs(self.config.ready_timeout_secs);
        loop {
            let released = match (&self.traefik, &ip) {
                (Some(traefik), Some(ip)) => {
                    !traefik.servers(self.app).await?.contains(&server_url(ip))
                }
                _ => {
                    let details = docker::inspect(self.docker, &old.id)
                        .await
                        .map_err(|err| err.to_string())?;
                    !matches!(
                        docker::liveness(self.app, &details, true),
                        Liveness::Up { .. }
                    )
                }
            };
            if released {
                break;
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "still routed {} s after draining started",
                    self.config.ready_timeout_secs
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        if let Some(pid) = details
            .state
            .and_then(|state| state.pid)
            .filter(|pid| *pid > 0)
        {
            self.wait_for_requests(pid).await;
        }
        Ok(())
    }

    /// Polls the container's open connections to the app port until there are none, or until
    /// `drain_timeout_secs` (an app keeping idle keep-alive connections open reaches it).
    async fn wait_for_requests(&self, pid: i64) {
        let deadline = Instant::now() + Duration::from_secs(self.config.drain_timeout_secs);
        // Unreadable (the container is gone, or /proc is hidden): nothing to wait for.
        while docker::open_connections(pid, APP_PORT).is_ok_and(|open| open > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::agent::ProcessSpec;

    use super::super::container::test_key;
    use super::*;

    fn spec(release: u32, web: u32, worker: u32) -> AppSpec {
        AppSpec {
            release,
            image: format!("paas/hello:v{release}"),
            env: BTreeMap::new(),
            processes: BTreeMap::from([
                (
                    "web".parse().unwrap(),
                    ProcessSpec {
                        command: None,
                        quantity: web,
                        resources: Default::default(),
                    },
                ),
                (
                    "worker".parse().unwrap(),
                    ProcessSpec {
                        command: Some("work".into()),
                        quantity: worker,
                        resources: Default::default(),
                    },
                ),
            ]),
            domains: vec![],
            health_check_path: None,
            container: Default::default(),
        }
    }

    /// The containers `spec` would create, as if they were running.
    fn running(spec: &AppSpec) -> Vec<Existing> {
        wanted_containers("hello", spec, &RuntimeConfig::default(), &test_key())
            .into_iter()
            .map(|w| Existing {
                id: format!("id-{}", w.name),
                name: w.name,
                process: w.process,
                index: w.index,
                release: spec.release,
                fingerprint: w.fingerprint,
                running: true,
                restarting: false,
            })
            .collect()
    }

    fn names<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        let mut names: Vec<_> = items.into_iter().collect();
        names.sort();
        names
    }

    fn run(existing: Vec<Existing>, desired: &AppSpec) -> Plan {
        plan(
            "hello",
            existing,
            wanted_containers("hello", desired, &RuntimeConfig::default(), &test_key()),
        )
    }

    #[test]
    fn the_same_state_changes_nothing() {
        let plan = run(running(&spec(3, 2, 1)), &spec(3, 2, 1));
        assert_eq!(plan.keep.len(), 3);
        assert!(plan.start.is_empty() && plan.retire.is_empty());
    }

    #[test]
    fn scaling_touches_only_the_difference() {
        let plan = run(running(&spec(3, 1, 1)), &spec(3, 3, 0));
        assert_eq!(
            names(plan.start.iter().map(|w| w.name.as_str())),
            ["paas-hello-v3-web-2", "paas-hello-v3-web-3"]
        );
        assert_eq!(
            names(plan.retire.iter().map(|c| c.name.as_str())),
            ["paas-hello-v3-worker-1"]
        );
        assert_eq!(
            names(plan.keep.iter().map(|c| c.name.as_str())),
            ["paas-hello-v3-web-1"]
        );
    }

    #[test]
    fn a_new_release_replaces_everything() {
        let plan = run(running(&spec(3, 2, 1)), &spec(4, 2, 1));
        assert!(plan.keep.is_empty());
        assert_eq!(plan.start.len(), 3);
        assert_eq!(plan.retire.len(), 3);
        assert!(plan.start.iter().all(|w| w.name.contains("-v4-")));
    }

    #[test]
    fn stopped_renamed_or_changed_containers_are_replaced() {
        let mut existing = running(&spec(3, 3, 0));
        existing[0].running = false;
        existing[1].name = format!("{}-replaced-abc", existing[1].name);
        existing[2].fingerprint = "other".into();
        let plan = run(existing, &spec(3, 3, 0));
        assert!(plan.keep.is_empty());
        assert_eq!(plan.start.len(), 3);
        assert_eq!(plan.retire.len(), 3);
    }

    #[test]
    fn converging_revives_in_place_creates_the_missing_and_retires_leftovers() {
        // web.1 killed, web.2 crash-looping under Docker's restart policy, web.3 removed, and
        // the v2 containers of a rollout that never committed.
        let mut existing = running(&spec(3, 3, 0));
        existing[0].running = false;
        existing[1].running = false;
        existing[1].restarting = true;
        existing.remove(2);
        existing.extend(running(&spec(4, 1, 0)));
        let wanted = wanted_containers(
            "hello",
            &spec(3, 3, 0),
            &RuntimeConfig::default(),
            &test_key(),
        );
        let convergence = converge_plan("hello", existing, wanted);
        assert_eq!(
            names(convergence.revive.iter().map(|c| c.name.as_str())),
            ["paas-hello-v3-web-1"]
        );
        assert_eq!(
            names(convergence.keep.iter().map(|c| c.name.as_str())),
            ["paas-hello-v3-web-2"]
        );
        assert_eq!(
            names(convergence.start.iter().map(|w| w.name.as_str())),
            ["paas-hello-v3-web-3"]
        );
        assert_eq!(
            names(convergence.retire.iter().map(|c| c.name.as_str())),
            ["paas-hello-v4-web-1"]
        );
        assert!(!convergence.changes_nothing());
    }

    #[test]
    fn converging_a_committed_rollout_retires_the_old_release_only() {
        let mut existing = running(&spec(3, 2, 0));
        existing.extend(running(&spec(4, 2, 0)));
        let convergence = run_converge(existing, &spec(4, 2, 0));
        assert!(convergence.revive.is_empty() && convergence.start.is_empty());
        assert_eq!(
            names(convergence.retire.iter().map(|c| c.name.as_str())),
            ["paas-hello-v3-web-1", "paas-hello-v3-web-2"]
        );
        let settled = run_converge(running(&spec(4, 2, 0)), &spec(4, 2, 0));
        assert!(settled.changes_nothing());
    }

    #[test]
    fn a_request_replaces_a_crash_looping_container() {
        let mut existing = running(&spec(3, 1, 0));
        existing[0].running = false;
        existing[0].restarting = true;
        let plan = run(existing, &spec(3, 1, 0));
        assert!(plan.keep.is_empty());
        assert_eq!(plan.start.len(), 1);
        assert_eq!(plan.retire.len(), 1);
    }

    fn run_converge(existing: Vec<Existing>, desired: &AppSpec) -> Convergence {
        converge_plan(
            "hello",
            existing,
            wanted_containers("hello", desired, &RuntimeConfig::default(), &test_key()),
        )
    }
}

//! Reconciling an app's instances with its desired state, and restarts, without dropping a
//! request: new instances start and must become healthy (and, when Traefik's API is known,
//! routed) before old ones are drained out of Traefik and only then stopped. A new instance
//! that exits or never becomes healthy fails the rollout: every new instance is removed and
//! the old ones never stopped serving.
//!
//! The desired state is saved once the new instances serve and before anyone is told so
//! ([`RolloutEvent::Serving`]): an agent killed before that point converges back to the old
//! state (the new instances are leftovers), one killed after it converges to the new one (the
//! old instances are). Either way exactly one release serves. What to start, keep and retire
//! is decided by [`plan`] and [`converge_plan`], from labels alone; the rest carries it out
//! through the [`Engine`], all new instances of a change at once ([`START_CONCURRENCY`]),
//! `web` first: the other process types start only once every new `web` instance is ready, so
//! a release whose web never passes its check runs none of its workers.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use paas_api::agent::{AppSpec, RolloutEvent};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::Instant;

use futures::future::Either;
use paas_api::progress::WaitSubject;

use super::checks::Readiness;
use super::container::WEB;
use super::desired::DesiredState;
use super::engine::{Engine, EngineError, Existing, Liveness, StartFailure, Wanted};
use super::progress::{relay_output, while_waiting};
use super::traefik::{TraefikApi, server_url};
use crate::config::RuntimeConfig;
use crate::naming::{self, first_routing_label};

/// How often the engine and Traefik are asked whether a change took effect.
pub(super) const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Log lines of a failing instance returned with the failure.
pub(super) const FAILURE_LOG_LINES: usize = 30;
/// New instances being created, started and waited for at the same time: enough for a
/// scale-up of ten at once, few enough that a hundred do not swamp the engine with polls.
pub const START_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutError {
    pub reason: String,
    pub logs: Vec<String>,
}

impl RolloutError {
    pub(super) fn new(reason: impl Into<String>) -> Self {
        RolloutError {
            reason: reason.into(),
            logs: Vec::new(),
        }
    }
}

impl From<EngineError> for RolloutError {
    fn from(err: EngineError) -> Self {
        RolloutError::new(format!("Docker: {err}"))
    }
}

/// Everything a rollout of one app works with.
pub struct Rollout<'a, E: Engine> {
    pub engine: &'a E,
    pub config: &'a RuntimeConfig,
    pub traefik: Option<TraefikApi>,
    pub desired: &'a DesiredState,
    pub app: &'a str,
    pub events: mpsc::Sender<RolloutEvent>,
}

/// What to do to go from the instances that exist to the ones wanted.
#[derive(Debug)]
pub struct Plan<T> {
    pub keep: Vec<Existing>,
    pub start: Vec<Wanted<T>>,
    pub retire: Vec<Existing>,
}

/// For a requested change: a running instance with the wanted name and fingerprint stays;
/// every wanted instance without one is started fresh; every other instance (a stopped or
/// crash-looping one included) is retired.
pub fn plan<T: Clone>(app: &str, existing: Vec<Existing>, wanted: Vec<Wanted<T>>) -> Plan<T> {
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
/// (the agent started, the engine's events came back, an instance died or was removed).
#[derive(Debug)]
pub struct Convergence<T> {
    /// Wanted and running, or being restarted by the engine's restart policy (which is left
    /// to its own back-off rather than raced).
    pub keep: Vec<Existing>,
    /// Wanted but stopped (killed, exited): started again in place.
    pub revive: Vec<Existing>,
    /// Wanted and missing (removed): created.
    pub start: Vec<Wanted<T>>,
    /// Not wanted: leftovers of an interrupted rollout, retired once the rest is ready.
    pub retire: Vec<Existing>,
}

impl<T> Convergence<T> {
    pub fn changes_nothing(&self) -> bool {
        self.revive.is_empty() && self.start.is_empty() && self.retire.is_empty()
    }
}

/// An instance is wanted when it has a wanted name (its canonical one: a renamed instance is
/// being replaced) and that name's fingerprint.
pub fn converge_plan<T: Clone>(
    app: &str,
    existing: Vec<Existing>,
    wanted: Vec<Wanted<T>>,
) -> Convergence<T> {
    let mut unmatched: HashMap<String, Wanted<T>> =
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

/// An instance this rollout created or started again.
#[derive(Debug, Clone)]
struct Started {
    process: String,
    index: u32,
    name: String,
    id: String,
}

impl Started {
    fn label(&self) -> String {
        format!("{}.{} ({})", self.process, self.index, self.name)
    }

    /// `web.1`.
    fn instance(&self) -> String {
        format!("{}.{}", self.process, self.index)
    }
}

/// A wait cut short because another instance of the same change failed.
struct Abandoned;

impl<E: Engine> Rollout<'_, E> {
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
        // A missing image fails below, where the instances are created.
        if let Some(labels) = self.engine.image_labels(self.app, spec).await?
            && let Some(label) = first_routing_label(&labels)
        {
            return Err(RolloutError::new(format!(
                "image {} carries label `{label}`: labels under traefik. are reserved for the platform; push the app again to rebuild it",
                spec.image
            )));
        }
        self.engine.prepare_app(self.app, &spec.volumes).await?;
        let existing = self.engine.list(self.app, false).await?;
        let wanted = self.engine.wanted(self.app, spec);
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
        let readiness = Readiness::of(Some(spec), self.config);
        self.replace(Vec::new(), plan.start, plan.retire, Some(spec), &readiness)
            .await
    }

    /// Brings the app back to `spec`, its saved desired state, without a request: stopped
    /// instances start again in place, missing ones are created, and only once all of them
    /// are ready are the leftovers retired. Routing comes back with them (the app network,
    /// Traefik's connection to it, the instances' labels).
    pub async fn converge(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        self.engine.prepare_app(self.app, &spec.volumes).await?;
        let existing = self.engine.list(self.app, true).await?;
        let wanted = self.engine.wanted(self.app, spec);
        let mut convergence = converge_plan(self.app, existing, wanted);
        // What `paas ps:stop` stopped stays down until it is restarted or a new spec comes.
        let stopped = self
            .desired
            .stopped(self.app)
            .map_err(|err| RolloutError::new(err.to_string()))?;
        convergence
            .revive
            .retain(|c| !stopped.contains(&super::desired::stopped_key(&c.process, c.index)));
        if convergence.changes_nothing() {
            return Ok(());
        }
        let mut revived = Vec::new();
        for container in convergence.revive {
            self.engine.start_again(&container.id).await?;
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
        let readiness = Readiness::of(Some(spec), self.config);
        self.replace(
            revived,
            convergence.start,
            convergence.retire,
            None,
            &readiness,
        )
        .await
    }

    fn save_desired(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        self.desired
            .save(self.app, spec)
            .map_err(|err| RolloutError::new(format!("cannot save the desired state: {err}")))
    }

    /// `POST /v1/apps/{app}/restart`: `web` is replaced by fresh instances with zero
    /// downtime; other process types are restarted in place. Stopped instances are restarted
    /// too, and instances of the desired state that are missing altogether are created.
    pub async fn restart(
        &self,
        process: Option<&str>,
        index: Option<u32>,
    ) -> Result<(), RolloutError> {
        let picked = |p: &str, i: u32| {
            process.is_none_or(|want| want == p) && index.is_none_or(|want| want == i)
        };
        let desired = self
            .desired
            .load(self.app)
            .map_err(|err| RolloutError::new(err.to_string()))?;
        let volumes = desired
            .as_ref()
            .map(|spec| spec.volumes.clone())
            .unwrap_or_default();
        let readiness = Readiness::of(desired.as_ref(), self.config);
        let wanted = desired
            .map(|spec| self.engine.wanted(self.app, &spec))
            .map(|wanted| {
                wanted
                    .into_iter()
                    .filter(|w| picked(&w.process, w.index))
                    .collect::<Vec<_>>()
            });
        // With a desired state, its instances; without (an app deployed by an agent that kept
        // none), whatever carries a serving name.
        let targets: Vec<Existing> = self
            .engine
            .list(self.app, false)
            .await?
            .into_iter()
            .filter(|c| c.name == c.canonical_name(self.app))
            .filter(|c| picked(&c.process, c.index))
            .filter(|c| {
                wanted
                    .as_ref()
                    .is_none_or(|wanted| wanted.iter().any(|w| w.name == c.name))
            })
            .collect();
        let missing: Vec<Wanted<E::Template>> = wanted
            .unwrap_or_default()
            .into_iter()
            .filter(|w| !targets.iter().any(|c| c.name == w.name))
            .collect();
        if targets.is_empty() && missing.is_empty() {
            return Err(RolloutError::new(match (process, index) {
                (Some(process), Some(index)) => format!("{} has no {process}.{index}", self.app),
                (Some(process), None) => format!("{} has no {process} instances", self.app),
                (None, _) => format!("{} has no instances", self.app),
            }));
        }
        if !missing.is_empty() {
            self.engine.prepare_app(self.app, &volumes).await?;
        }
        let (web, others): (Vec<_>, Vec<_>) = targets.into_iter().partition(|c| c.process == WEB);
        for container in &others {
            self.engine.restart(&container.id).await?;
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
                template: self.engine.twin(container).await?,
            });
        }
        self.replace(Vec::new(), replacements, web, None, &readiness)
            .await
    }

    /// Starts `start`, waits until all of them and `revived` (started again in place) are
    /// ready, saves `commit` as the desired state, then retires `retire`; on failure removes
    /// what it created and leaves `retire` serving.
    async fn replace(
        &self,
        revived: Vec<Started>,
        start: Vec<Wanted<E::Template>>,
        retire: Vec<Existing>,
        commit: Option<&AppSpec>,
        readiness: &Readiness,
    ) -> Result<(), RolloutError> {
        // An instance keeping a wanted name steps aside under a temporary one until retired.
        let mut renamed = Vec::new();
        for wanted in &start {
            if let Some(old) = retire.iter().find(|old| old.name == wanted.name) {
                let temporary = naming::replaced_name(&old.name, &old.id);
                self.engine.rename(&old.id, &temporary).await?;
                renamed.push((old.id.clone(), old.name.clone()));
            }
        }
        let (started, mut outcome) = self.start_web_first(start, revived, readiness).await;
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

    /// Brings up the `web` instances of `start` and `revived` first and the other process
    /// types only once every `web` one is ready: a release whose web fails its check never
    /// runs its workers beside the old release's.
    async fn start_web_first(
        &self,
        start: Vec<Wanted<E::Template>>,
        revived: Vec<Started>,
        readiness: &Readiness,
    ) -> (Vec<Started>, Result<(), RolloutError>) {
        let (web_start, other_start): (Vec<_>, Vec<_>) =
            start.into_iter().partition(|w| w.process == WEB);
        let (web_revived, other_revived): (Vec<_>, Vec<_>) =
            revived.into_iter().partition(|s| s.process == WEB);
        let (mut started, outcome) = self.start_all(web_start, &web_revived, readiness).await;
        if outcome.is_err() {
            return (started, outcome);
        }
        let (others, outcome) = self.start_all(other_start, &other_revived, readiness).await;
        started.extend(others);
        (started, outcome)
    }

    /// Creates and starts every instance of `start` and waits for each (and for `revived`)
    /// to be ready and then to keep running, all at once (at most [`START_CONCURRENCY`] at a
    /// time). The first failure cuts the other waits short; every create that was sent is
    /// let finish, so what it created is among the instances returned, for [`Self::undo`].
    async fn start_all(
        &self,
        start: Vec<Wanted<E::Template>>,
        revived: &[Started],
        readiness: &Readiness,
    ) -> (Vec<Started>, Result<(), RolloutError>) {
        let started = Mutex::new(Vec::new());
        let failure: Mutex<Option<RolloutError>> = Mutex::new(None);
        let abandoned = AtomicBool::new(false);
        let slots = Semaphore::new(START_CONCURRENCY);
        let (started_ref, abandoned, slots) = (&started, &abandoned, &slots);
        let fail = &|err: RolloutError| {
            abandoned.store(true, Ordering::SeqCst);
            failure
                .lock()
                .expect("the failure slot is never poisoned")
                .get_or_insert(err);
        };
        let new = start.into_iter().map(|wanted| async move {
            let _slot = slots
                .acquire()
                .await
                .expect("the semaphore is never closed");
            if abandoned.load(Ordering::SeqCst) {
                return;
            }
            let mut instance = Started {
                process: wanted.process.clone(),
                index: wanted.index,
                name: wanted.name.clone(),
                id: wanted.name.clone(),
            };
            match self.engine.start_new(wanted).await {
                Ok(id) => instance.id = id,
                Err(StartFailure { created, error }) => {
                    if let Some(id) = created {
                        instance.id = id;
                        push(started_ref, instance.clone());
                    }
                    fail(RolloutError::new(format!(
                        "cannot start {}: {error}",
                        instance.label()
                    )));
                    return;
                }
            }
            push(started_ref, instance.clone());
            if let Err(err) = self.bring_up(&instance, abandoned, readiness).await {
                fail(err);
            }
        });
        let again = revived.iter().map(|instance| async move {
            if let Err(err) = self.bring_up(instance, abandoned, readiness).await {
                fail(err);
            }
        });
        futures::future::join(
            futures::future::join_all(new),
            futures::future::join_all(again),
        )
        .await;
        let started = started.into_inner().expect("never poisoned");
        match failure.into_inner().expect("never poisoned") {
            Some(err) => (started, Err(err)),
            None => (started, Ok(())),
        }
    }

    /// Waits until `instance` is ready (with the restart policy of a serving one), relaying
    /// the first lines it prints meanwhile. A failure of its own is returned; an abandoned
    /// wait returns `Ok` (the other failure is the one that counts).
    async fn bring_up(
        &self,
        instance: &Started,
        abandoned: &AtomicBool,
        readiness: &Readiness,
    ) -> Result<(), RolloutError> {
        let ready = std::pin::pin!(self.wait_ready(instance, abandoned, readiness));
        let name = instance.instance();
        let relay = std::pin::pin!(relay_output(
            &self.events,
            &name,
            self.engine.output(&instance.id)
        ));
        let ready = match futures::future::select(ready, relay).await {
            Either::Left((ready, _)) => ready,
            Either::Right((never, _)) => match never {},
        };
        if let Ok(line) = ready? {
            self.say(line).await;
        }
        Ok(())
    }

    /// Polls until the instance runs (and for `web`: is healthy, routed by Traefik and
    /// passes the app's checks). Once it runs (is healthy) it gets the restart policy of a
    /// serving instance, while Traefik picks it up: from then on a crash is Docker's to
    /// restart rather than a failed start, and the engine's update is off the critical path.
    async fn wait_ready(
        &self,
        started: &Started,
        abandoned: &AtomicBool,
        readiness: &Readiness,
    ) -> Result<Result<String, Abandoned>, RolloutError> {
        let is_web = started.process == WEB;
        let begun = Instant::now();
        let deadline = begun + Duration::from_secs(readiness.timeout_secs);
        let label = started.label();
        let instance = started.instance();
        let limit = readiness.timeout_secs;
        let subject = if is_web {
            WaitSubject::Answer {
                instance: instance.clone(),
            }
        } else {
            WaitSubject::Start {
                instance: instance.clone(),
            }
        };
        let up = self.wait_up(started, abandoned, readiness, deadline);
        let ip = match while_waiting(&self.events, subject, begun, limit, up).await? {
            Ok(ip) => ip,
            Err(abandoned) => return Ok(Err(abandoned)),
        };
        let kept = async {
            self.engine.keep_running(&started.id).await.map_err(|err| {
                RolloutError::new(format!(
                    "cannot set the restart policy of {}: {err}",
                    started.name
                ))
            })
        };
        if !is_web {
            kept.await?;
            return Ok(Ok(format!("Starting {label}… up")));
        }
        let served = async {
            let route = WaitSubject::Route {
                instance: instance.clone(),
            };
            let routed = self.wait_routed(&label, ip.as_deref(), deadline, readiness, abandoned);
            if let Err(abandoned) = while_waiting(&self.events, route, begun, limit, routed).await?
            {
                return Ok(Err(abandoned));
            }
            if let Some(ip) = &ip {
                let checks = WaitSubject::Checks {
                    instance: instance.clone(),
                };
                let checked = readiness.run_checks(&label, ip, begun);
                if let Err(reason) =
                    while_waiting(&self.events, checks, begun, limit, checked).await
                {
                    return Err(RolloutError {
                        reason,
                        logs: self.engine.log_tail(&started.id, FAILURE_LOG_LINES).await,
                    });
                }
            }
            Ok(Ok(()))
        };
        let (kept, served) = tokio::join!(kept, served);
        if let Err(abandoned) = served? {
            return Ok(Err(abandoned));
        }
        kept?;
        Ok(Ok(format!("Starting {label}… healthy")))
    }

    /// Polls until the instance runs (for `web`: is healthy); its address, if it has one.
    async fn wait_up(
        &self,
        started: &Started,
        abandoned: &AtomicBool,
        readiness: &Readiness,
        deadline: Instant,
    ) -> Result<Result<Option<String>, Abandoned>, RolloutError> {
        let label = started.label();
        let mut last_check = None;
        loop {
            if abandoned.load(Ordering::SeqCst) {
                return Ok(Err(Abandoned));
            }
            match self
                .engine
                .liveness(self.app, &started.id, started.process == WEB)
                .await?
            {
                Liveness::Up { ip, .. } => return Ok(Ok(ip)),
                Liveness::Down { reason } => {
                    return Err(RolloutError {
                        reason: format!("{label} {reason}"),
                        logs: self.engine.log_tail(&started.id, FAILURE_LOG_LINES).await,
                    });
                }
                Liveness::Pending { last_check: check } => last_check = check.or(last_check),
            }
            if Instant::now() >= deadline {
                return Err(RolloutError {
                    reason: readiness.not_healthy(&label, last_check.as_deref()),
                    logs: self.engine.log_tail(&started.id, FAILURE_LOG_LINES).await,
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
        readiness: &Readiness,
        abandoned: &AtomicBool,
    ) -> Result<Result<(), Abandoned>, RolloutError> {
        let (Some(traefik), Some(ip)) = (&self.traefik, ip) else {
            return Ok(Ok(()));
        };
        let url = server_url(ip);
        loop {
            if abandoned.load(Ordering::SeqCst) {
                return Ok(Err(Abandoned));
            }
            let last_error = match traefik.servers(self.app).await {
                Ok(servers) if servers.contains(&url) => return Ok(Ok(())),
                Ok(_) => None,
                Err(err) => Some(err),
            };
            if Instant::now() >= deadline {
                return Err(RolloutError::new(format!(
                    "{label} is healthy but Traefik did not route to it within {} s{}",
                    readiness.timeout_secs,
                    last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                )));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Removes every instance this change created, all at once, and gives the old ones
    /// their names back.
    async fn undo(&self, started: &[Started], renamed: &[(String, String)]) {
        let removed =
            futures::future::join_all(started.iter().map(|s| self.engine.remove(&s.id))).await;
        for (container, result) in started.iter().zip(removed) {
            if let Err(err) = result {
                self.say(format!(
                    "Warning: could not remove {}: {err}",
                    container.name
                ))
                .await;
            }
        }
        for (id, name) in renamed {
            if let Err(err) = self.engine.rename(id, name).await {
                self.say(format!(
                    "Warning: could not rename {id} back to {name}: {err}"
                ))
                .await;
            }
        }
    }

    /// Drains and stops the old instances, all at once. A failure here leaves a stray
    /// instance (retired by the next reconcile) while the new ones already serve, so it is a
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
        self.engine
            .stop_and_remove(&old.id)
            .await
            .map_err(|err| err.to_string())
    }

    /// Takes an instance out of Traefik before it is stopped: its health check starts
    /// failing, the wait lasts until Traefik (or, without its API, the engine) has let go of
    /// it, and then until the requests Traefik sent just before are answered.
    async fn drain(&self, old: &Existing) -> Result<(), String> {
        let liveness = || self.engine.liveness(self.app, &old.id, true);
        let (ip, pid) = match liveness().await.map_err(|e| e.to_string())? {
            Liveness::Up { ip, pid } => (ip, pid),
            // Not healthy, hence not routed already.
            _ => return Ok(()),
        };
        self.engine
            .mark_draining(&old.id)
            .await
            .map_err(|e| e.to_string())?;
        let instance = format!("{}.{}", old.process, old.index);
        let unroute = WaitSubject::Unroute {
            instance: instance.clone(),
        };
        let released = self.until_released(old, ip.as_deref());
        let limit = self.config.ready_timeout_secs;
        while_waiting(&self.events, unroute, Instant::now(), limit, released).await?;
        if let Some(pid) = pid {
            let drain = WaitSubject::Drain { instance };
            let answered = self.wait_for_requests(pid);
            let limit = self.config.drain_timeout_secs;
            while_waiting(&self.events, drain, Instant::now(), limit, answered).await;
        }
        Ok(())
    }

    /// Polls until Traefik (or, without its API, the engine) no longer routes to `old`.
    async fn until_released(&self, old: &Existing, ip: Option<&str>) -> Result<(), String> {
        let liveness = || self.engine.liveness(self.app, &old.id, true);
        let deadline = Instant::now() + Duration::from_secs(self.config.ready_timeout_secs);
        loop {
            let released = match (&self.traefik, ip) {
                (Some(traefik), Some(ip)) => {
                    !traefik.servers(self.app).await?.contains(&server_url(ip))
                }
                _ => !matches!(
                    liveness().await.map_err(|e| e.to_string())?,
                    Liveness::Up { .. }
                ),
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
        Ok(())
    }

    /// Polls the instance's open connections to the app port until there are none, or until
    /// `drain_timeout_secs` (an app keeping idle keep-alive connections open reaches it).
    async fn wait_for_requests(&self, pid: i64) {
        let deadline = Instant::now() + Duration::from_secs(self.config.drain_timeout_secs);
        // Unreadable (the instance is gone, or /proc is hidden): nothing to wait for.
        while self
            .engine
            .open_connections(pid)
            .is_some_and(|open| open > 0)
            && Instant::now() < deadline
        {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

fn push(started: &Mutex<Vec<Started>>, instance: Started) {
    started
        .lock()
        .expect("the started list is never poisoned")
        .push(instance);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use bollard::models::ContainerCreateBody;
    use paas_api::agent::ProcessSpec;
    use paas_api::storage::Mount;

    use super::super::container::wanted_containers;
    use super::*;
    use crate::naming::test_key;

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
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
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

    fn run(existing: Vec<Existing>, desired: &AppSpec) -> Plan<ContainerCreateBody> {
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

    fn run_converge(
        existing: Vec<Existing>,
        desired: &AppSpec,
    ) -> Convergence<ContainerCreateBody> {
        converge_plan(
            "hello",
            existing,
            wanted_containers("hello", desired, &RuntimeConfig::default(), &test_key()),
        )
    }

    /// An engine in memory: instances are names in a table, every new one becomes ready
    /// after a few polls except those named in `failing`, and creates wait at a barrier
    /// that only opens once `together` of them are in flight at the same time.
    #[derive(Default)]
    struct MemoryEngine {
        table: Mutex<Table>,
        failing: Vec<String>,
        together: Option<tokio::sync::Barrier>,
    }

    #[derive(Default)]
    struct Table {
        instances: Vec<Existing>,
        created: Vec<String>,
        removed: Vec<String>,
        kept_running: Vec<String>,
        polls: HashMap<String, u32>,
    }

    impl MemoryEngine {
        fn table(&self) -> std::sync::MutexGuard<'_, Table> {
            self.table.lock().unwrap()
        }
    }

    impl Engine for MemoryEngine {
        type Template = ();

        fn wanted(&self, app: &str, spec: &AppSpec) -> Vec<Wanted<()>> {
            spec.processes
                .iter()
                .flat_map(|(process, p)| {
                    (1..=p.quantity).map(move |index| Wanted {
                        process: process.to_string(),
                        index,
                        name: naming::container_name(app, spec.release, process, index),
                        fingerprint: spec.image.clone(),
                        template: (),
                    })
                })
                .collect()
        }

        async fn twin(&self, _existing: &Existing) -> Result<(), EngineError> {
            Ok(())
        }

        async fn image_labels(
            &self,
            _app: &str,
            _spec: &AppSpec,
        ) -> Result<Option<HashMap<String, String>>, EngineError> {
            Ok(Some(HashMap::new()))
        }

        async fn prepare_app(&self, _app: &str, _volumes: &[Mount]) -> Result<(), EngineError> {
            Ok(())
        }

        async fn list(&self, _app: &str, _settled: bool) -> Result<Vec<Existing>, EngineError> {
            Ok(self.table().instances.clone())
        }

        async fn instances(
            &self,
            _app: &str,
        ) -> Result<Vec<paas_api::agent::Instance>, EngineError> {
            Ok(Vec::new())
        }

        async fn start_new(&self, wanted: Wanted<()>) -> Result<String, StartFailure> {
            if let Some(barrier) = &self.together {
                tokio::time::timeout(Duration::from_secs(10), barrier.wait())
                    .await
                    .map_err(|_| StartFailure {
                        created: None,
                        error: EngineError("the creates did not run side by side".into()),
                    })?;
            }
            let id = format!("id-{}", wanted.name);
            let mut table = self.table();
            table.created.push(id.clone());
            table.instances.push(Existing {
                id: id.clone(),
                name: wanted.name,
                process: wanted.process,
                index: wanted.index,
                release: 3,
                fingerprint: wanted.fingerprint,
                running: true,
                restarting: false,
            });
            Ok(id)
        }

        async fn start_again(&self, _id: &str) -> Result<(), EngineError> {
            Ok(())
        }

        async fn restart(&self, _id: &str) -> Result<(), EngineError> {
            Ok(())
        }

        async fn revive(&self, _app: &str, _id: &str) -> Result<Option<String>, EngineError> {
            Ok(None)
        }

        async fn rename(&self, _id: &str, _name: &str) -> Result<(), EngineError> {
            Ok(())
        }

        async fn liveness(
            &self,
            _app: &str,
            id: &str,
            _needs_health: bool,
        ) -> Result<Liveness, EngineError> {
            if self.failing.iter().any(|name| id == format!("id-{name}")) {
                return Ok(Liveness::Down {
                    reason: "exited with code 1".into(),
                });
            }
            let mut table = self.table();
            let polls = table.polls.entry(id.to_owned()).or_default();
            *polls += 1;
            Ok(if *polls < 3 {
                Liveness::Pending { last_check: None }
            } else {
                Liveness::Up {
                    ip: None,
                    pid: None,
                }
            })
        }

        async fn log_tail(&self, _id: &str, _lines: usize) -> Vec<String> {
            vec!["boom".into()]
        }

        fn output(&self, _id: &str) -> futures::stream::BoxStream<'static, String> {
            Box::pin(futures::stream::empty())
        }

        async fn keep_running(&self, id: &str) -> Result<(), EngineError> {
            self.table().kept_running.push(id.to_owned());
            Ok(())
        }

        async fn mark_draining(&self, _id: &str) -> Result<(), EngineError> {
            Ok(())
        }

        fn open_connections(&self, _pid: i64) -> Option<usize> {
            None
        }

        async fn remove(&self, id: &str) -> Result<(), EngineError> {
            let mut table = self.table();
            table.removed.push(id.to_owned());
            table.instances.retain(|i| i.id != id);
            Ok(())
        }

        async fn stop_and_remove(&self, id: &str) -> Result<(), EngineError> {
            self.remove(id).await
        }

        async fn remove_app(
            &self,
            _app: &str,
        ) -> Result<super::super::engine::Removed, EngineError> {
            Ok(Default::default())
        }

        fn changes(
            &self,
        ) -> futures::stream::BoxStream<
            'static,
            Result<super::super::engine::InstanceChange, EngineError>,
        > {
            Box::pin(futures::stream::empty())
        }
    }

    /// Applies `spec` with `engine` after a first rollout of `before`, and what it said.
    async fn scale(
        engine: &MemoryEngine,
        before: &AppSpec,
        spec: &AppSpec,
    ) -> (Result<(), RolloutError>, DesiredState, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let busybox = dir.path().join("busybox");
        std::fs::write(&busybox, "").unwrap();
        let config = RuntimeConfig {
            busybox,
            ..RuntimeConfig::default()
        };
        let desired = DesiredState::open(dir.path()).unwrap();
        engine.table().instances = engine
            .wanted("hello", before)
            .into_iter()
            .map(|w| Existing {
                id: format!("id-{}", w.name),
                name: w.name,
                process: w.process,
                index: w.index,
                release: before.release,
                fingerprint: w.fingerprint,
                running: true,
                restarting: false,
            })
            .collect();
        desired.save("hello", before).unwrap();
        let (events, mut receiver) = mpsc::channel(256);
        let drained = tokio::spawn(async move { while receiver.recv().await.is_some() {} });
        let rollout = Rollout {
            engine,
            config: &config,
            traefik: None,
            desired: &desired,
            app: "hello",
            events,
        };
        let outcome = rollout.apply(spec).await;
        drop(rollout);
        drained.await.unwrap();
        (outcome, desired, dir)
    }

    #[tokio::test]
    async fn a_scale_up_starts_every_new_instance_at_once() {
        let engine = MemoryEngine {
            together: Some(tokio::sync::Barrier::new(9)),
            ..MemoryEngine::default()
        };
        let (outcome, desired, _dir) = scale(&engine, &spec(3, 1, 0), &spec(3, 10, 0)).await;
        // Created one after another, the first create would wait at the barrier for ever.
        outcome.unwrap();
        let table = engine.table();
        assert_eq!(table.created.len(), 9);
        assert!(table.removed.is_empty());
        let mut kept = table.kept_running.clone();
        kept.sort();
        let mut created = table.created.clone();
        created.sort();
        assert_eq!(kept, created, "every new instance keeps running");
        assert_eq!(desired.load("hello").unwrap(), Some(spec(3, 10, 0)));
    }

    #[tokio::test]
    async fn one_failing_instance_undoes_the_whole_scale() {
        let engine = MemoryEngine {
            failing: vec![naming::container_name("hello", 3, "web", 6)],
            ..MemoryEngine::default()
        };
        let (outcome, desired, _dir) = scale(&engine, &spec(3, 1, 0), &spec(3, 10, 0)).await;
        let err = outcome.unwrap_err();
        assert_eq!(err.reason, "web.6 (paas-hello-v3-web-6) exited with code 1");
        assert_eq!(err.logs, ["boom"]);
        let table = engine.table();
        let mut removed = table.removed.clone();
        removed.sort();
        let mut created = table.created.clone();
        created.sort();
        assert!(!created.is_empty());
        assert_eq!(removed, created, "every started instance is removed again");
        assert_eq!(
            table
                .instances
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>(),
            ["paas-hello-v3-web-1"],
            "the instance from before still runs"
        );
        assert_eq!(desired.load("hello").unwrap(), Some(spec(3, 1, 0)));
    }
    #[tokio::test]
    async fn a_release_whose_web_fails_never_starts_its_workers() {
        let engine = MemoryEngine {
            failing: vec![naming::container_name("hello", 4, "web", 1)],
            ..MemoryEngine::default()
        };
        let (outcome, desired, _dir) = scale(&engine, &spec(3, 1, 1), &spec(4, 1, 1)).await;
        assert_eq!(
            outcome.unwrap_err().reason,
            "web.1 (paas-hello-v4-web-1) exited with code 1"
        );
        let table = engine.table();
        assert_eq!(
            table.created,
            ["id-paas-hello-v4-web-1"],
            "no worker of v4 was created"
        );
        assert_eq!(table.removed, ["id-paas-hello-v4-web-1"]);
        assert_eq!(desired.load("hello").unwrap(), Some(spec(3, 1, 1)));
    }

    #[tokio::test]
    async fn workers_start_once_the_web_is_ready() {
        let engine = MemoryEngine::default();
        let (outcome, _desired, _dir) = scale(&engine, &spec(3, 1, 1), &spec(4, 1, 2)).await;
        outcome.unwrap();
        assert_eq!(
            engine.table().created,
            [
                "id-paas-hello-v4-web-1",
                "id-paas-hello-v4-worker-1",
                "id-paas-hello-v4-worker-2"
            ]
        );
    }
}

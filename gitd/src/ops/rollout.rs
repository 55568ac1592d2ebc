//! Putting a release live through the agent: the desired state ([`AppSpec`]) built from a
//! release and the app's formation, the formation a release starts with, and the rollout as
//! it streams ([`Rolling`]: the moment the new instances serve, then the old ones' drain).
//! Only operations ([`crate::ops`]) start rollouts, under the app's lock.

use std::collections::{BTreeMap, BTreeSet};
use std::pin::Pin;

use paas_api::agent::{AppSpec, ContainerOptions, ProcessSpec, RestartRequest};
use paas_api::procfile::is_formation_process;
use paas_api::types::{Feature, Release};
use paas_api::{ConfigKey, HealthPath, ProcessType};
use tokio::sync::mpsc;

use super::Reporter;
use crate::state::SharedState;
use crate::store::AppRow;
use paas_agent_client::{RolloutProgress, RuntimeError};

/// The process type that gets traffic, and one instance on a first deploy.
pub const WEB: &str = "web";

/// Config var naming the path `web` instances must answer on (default: the agent's, `/`).
pub const HEALTH_CHECK_PATH_VAR: &str = "PAAS_HEALTH_CHECK_PATH";

/// Why a rollout did not happen or did not finish; what ran before keeps running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutFailure {
    pub reason: String,
    /// The last log lines of the container that failed, if one did.
    pub logs: Vec<String>,
}

impl std::fmt::Display for RolloutFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl RolloutFailure {
    fn new(reason: impl Into<String>) -> Self {
        RolloutFailure {
            reason: reason.into(),
            logs: Vec::new(),
        }
    }

    /// The reason and, if any, the failed container's last log lines, on one line.
    pub fn with_logs(&self) -> String {
        if self.logs.is_empty() {
            return self.reason.clone();
        }
        format!(
            "{}; last log lines: {}",
            self.reason,
            self.logs
                .iter()
                .map(|line| line.trim())
                .collect::<Vec<_>>()
                .join(" | ")
        )
    }
}

impl From<RuntimeError> for RolloutFailure {
    fn from(err: RuntimeError) -> Self {
        RolloutFailure {
            reason: err.to_string(),
            logs: err.logs().to_vec(),
        }
    }
}

/// The quantity of every process type `processes` defines: the stored one where there is
/// one, else one `web` and none of the others (as Heroku starts a new app). Types the release
/// no longer defines drop out.
pub fn formation_for(
    processes: &BTreeMap<ProcessType, Option<String>>,
    stored: &BTreeMap<ProcessType, u32>,
) -> BTreeMap<ProcessType, u32> {
    processes
        .keys()
        .filter(|process| is_formation_process(process))
        .map(|process| {
            let default = u32::from(process == WEB);
            let quantity = stored.get(process).copied().unwrap_or(default);
            (process.clone(), quantity)
        })
        .collect()
}

/// What the agent should run for `release` (which must have an image) with `formation`.
pub fn app_spec(
    release: &Release,
    formation: &BTreeMap<ProcessType, u32>,
) -> Result<AppSpec, String> {
    let image = release
        .image
        .clone()
        .ok_or_else(|| format!("release v{} has no image", release.version))?;
    let processes = release
        .processes
        .iter()
        .filter(|(process, _)| is_formation_process(process))
        .map(|(process, command)| {
            let spec = ProcessSpec {
                command: command.clone(),
                quantity: formation.get(process).copied().unwrap_or(0),
                resources: release.resources.get(process).copied().unwrap_or_default(),
            };
            (process.clone(), spec)
        })
        .collect();
    Ok(AppSpec {
        release: release.version,
        image,
        env: agent_env(&release.config),
        processes,
        domains: Vec::new(),
        // The app.json's first check is what Docker's probe asks, so it decides routing;
        // without checks, the config var's path or the agent's default.
        health_check_path: match release.app_json.healthchecks.web.first() {
            Some(check) => Some(check.path.clone()),
            None => check_health_check_path(&release.config)?,
        },
        healthchecks: release.app_json.healthchecks.clone(),
        container: Default::default(),
        sticky_sessions: false,
        volumes: Vec::new(),
    })
}

/// The container lock-downs the app's enabled features ask for.
pub fn container_options(features: &BTreeSet<Feature>) -> ContainerOptions {
    ContainerOptions {
        non_root: features.contains(&Feature::NonRoot),
        read_only_root_fs: features.contains(&Feature::ReadOnlyFs),
    }
}

/// A release's config as the environment the agent gives its containers.
pub(super) fn agent_env(config: &BTreeMap<ConfigKey, String>) -> BTreeMap<String, String> {
    config
        .iter()
        .map(|(key, value)| (key.to_string(), value.clone()))
        .collect()
}

/// The app's own health-check path, if its config names one; an error if it breaks
/// [`HealthPath`]'s rule.
pub fn check_health_check_path(
    config: &BTreeMap<ConfigKey, String>,
) -> Result<Option<HealthPath>, String> {
    config
        .get(HEALTH_CHECK_PATH_VAR)
        .map(|path| path.parse())
        .transpose()
        .map_err(|err| format!("{HEALTH_CHECK_PATH_VAR}: {err}"))
}

/// A rollout handed to the agent, followed as it streams.
pub struct Rolling {
    rollout: Pin<Box<dyn Future<Output = Result<(), RuntimeError>> + Send>>,
    progress: mpsc::UnboundedReceiver<RolloutProgress>,
    outcome: Option<Result<(), RuntimeError>>,
}

/// How far a rollout got when [`Rolling::until_serving`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reached {
    /// The new instances serve; the old ones drain until [`Rolling::until_done`].
    Serving,
    /// The rollout is over (there was nothing to drain).
    Done,
}

impl Rolling {
    fn new<F>(rollout: impl FnOnce(mpsc::UnboundedSender<RolloutProgress>) -> F) -> Rolling
    where
        F: Future<Output = Result<(), RuntimeError>> + Send + 'static,
    {
        let (sender, progress) = mpsc::unbounded_channel();
        Rolling {
            rollout: Box::pin(rollout(sender)),
            progress,
            outcome: None,
        }
    }

    /// Relays the agent's lines to `reporter` until the new instances serve or the rollout
    /// ends; a failed rollout changed nothing that ran before.
    pub async fn until_serving(&mut self, reporter: &Reporter) -> Result<Reached, RolloutFailure> {
        if self.outcome.is_none() {
            loop {
                tokio::select! {
                    biased;
                    progress = self.progress.recv() => match progress {
                        Some(RolloutProgress::Line(line)) => reporter.step(&line),
                        Some(RolloutProgress::Progress(progress)) => reporter.progress(progress),
                        Some(RolloutProgress::Serving) => return Ok(Reached::Serving),
                        None => {}
                    },
                    outcome = &mut self.rollout => {
                        self.outcome = Some(outcome);
                        break;
                    }
                }
            }
        }
        // Done: what the agent said before its result is relayed first.
        while let Ok(progress) = self.progress.try_recv() {
            match progress {
                RolloutProgress::Line(line) => reporter.step(&line),
                RolloutProgress::Progress(progress) => reporter.progress(progress),
                RolloutProgress::Serving => {}
            }
        }
        match self.outcome.take().expect("the outcome was just stored") {
            Ok(()) => Ok(Reached::Done),
            Err(err) => Err(err.into()),
        }
    }

    /// Relays the rest of the rollout (the old instances draining and retiring) until it
    /// ends.
    pub async fn until_done(mut self, reporter: &Reporter) -> Result<(), RolloutFailure> {
        loop {
            match self.until_serving(reporter).await? {
                Reached::Done => return Ok(()),
                Reached::Serving => {}
            }
        }
    }
}

/// Hands the agent `release` with `formation`, and the app's domains, features and volume
/// mounts (`features` in place of the stored ones when given: a feature change is rolled out
/// before it is stored). The mounts are always the app's current ones, whatever release
/// rolls out: a rollback keeps the volumes as they are.
pub async fn start(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    formation: &BTreeMap<ProcessType, u32>,
    features: Option<BTreeSet<Feature>>,
) -> Result<Rolling, RolloutFailure> {
    let agent = agent(state)?;
    let mut spec = app_spec(release, formation).map_err(RolloutFailure::new)?;
    let settings = state.store.rollout_settings(app.id).await.map_err(|err| {
        tracing::error!(error = %err, "cannot read the app's domains and features");
        RolloutFailure::new("cannot read the app's domains and features; see the paas-gitd log")
    })?;
    spec.domains = settings.domains.iter().map(ToString::to_string).collect();
    spec.container = container_options(&features.unwrap_or(settings.features));
    spec.sticky_sessions = settings.sticky_sessions;
    spec.volumes = settings.mounts;
    tracing::info!(
        app = %app.name,
        release = spec.release,
        non_root = spec.container.non_root,
        read_only_root_fs = spec.container.read_only_root_fs,
        "rolling out"
    );
    let app = app.name.clone();
    Ok(Rolling::new(move |progress| async move {
        agent
            .put_app(&app, &spec, move |event| {
                let _ = progress.send(event);
            })
            .await
    }))
}

/// Restarts `process` (or every process type) of the running release.
pub fn start_restart(
    state: &SharedState,
    app: &AppRow,
    process: Option<ProcessType>,
    index: Option<u32>,
) -> Result<Rolling, RolloutFailure> {
    let agent = agent(state)?;
    let app = app.name.clone();
    Ok(Rolling::new(move |progress| async move {
        agent
            .restart(&app, &RestartRequest { process, index }, move |event| {
                let _ = progress.send(event);
            })
            .await
    }))
}

/// The agent client, shared with the rollout task.
fn agent(state: &SharedState) -> Result<AgentHandle, RolloutFailure> {
    if state.agent.is_none() {
        return Err(RolloutFailure::new(
            "no agent is configured: set [agent] url and token in gitd.toml",
        ));
    }
    Ok(AgentHandle(state.clone()))
}

/// The state's agent, known to be configured.
struct AgentHandle(SharedState);

impl std::ops::Deref for AgentHandle {
    type Target = paas_agent_client::AgentClient;
    fn deref(&self) -> &Self::Target {
        self.0
            .agent
            .as_ref()
            .expect("checked when the handle was made")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_api::types::ReleaseStatus;

    fn processes(names: &[&str]) -> BTreeMap<ProcessType, Option<String>> {
        names
            .iter()
            .map(|name| (name.parse().unwrap(), Some(format!("run-{name}"))))
            .collect()
    }

    fn counts(pairs: &[(&str, u32)]) -> BTreeMap<ProcessType, u32> {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), *v))
            .collect()
    }

    fn release(config: &[(&str, &str)]) -> Release {
        Release {
            version: 4,
            description: "Deploy abc1234".into(),
            user: "alice".parse().unwrap(),
            created_at: chrono::DateTime::default(),
            status: ReleaseStatus::Building,
            image: Some("paas/hello:v4".into()),
            commit: None,
            processes: processes(&["web", "worker"]),
            config: config
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), (*v).to_owned()))
                .collect(),
            resources: [(
                "web".parse().unwrap(),
                paas_api::resources::ProcessResources {
                    memory: Some("256M".parse().unwrap()),
                    cpus: None,
                },
            )]
            .into(),
            app_json: Default::default(),
        }
    }

    #[test]
    fn a_first_deploy_runs_one_web_and_nothing_else() {
        assert_eq!(
            formation_for(&processes(&["web", "worker", "clock"]), &BTreeMap::new()),
            counts(&[("clock", 0), ("web", 1), ("worker", 0)])
        );
        assert_eq!(
            formation_for(&processes(&["worker"]), &BTreeMap::new()),
            counts(&[("worker", 0)])
        );
    }

    #[test]
    fn the_release_command_is_neither_formation_nor_spec() {
        let mut processes = processes(&["web", "release"]);
        assert_eq!(
            formation_for(&processes, &counts(&[("release", 1)])),
            counts(&[("web", 1)])
        );
        let mut with_release = release(&[]);
        processes.insert("worker".parse().unwrap(), Some("work".into()));
        with_release.processes = processes;
        let spec = app_spec(&with_release, &counts(&[("web", 1), ("release", 1)])).unwrap();
        let types: Vec<&str> = spec.processes.keys().map(|p| p.as_str()).collect();
        assert_eq!(types, ["web", "worker"]);
    }

    #[test]
    fn later_deploys_keep_the_stored_quantities_of_known_types() {
        let stored = counts(&[("web", 3), ("old", 2), ("worker", 0)]);
        assert_eq!(
            formation_for(&processes(&["web", "worker", "clock"]), &stored),
            counts(&[("clock", 0), ("web", 3), ("worker", 0)])
        );
    }

    #[test]
    fn the_spec_carries_image_env_commands_and_quantities() {
        let spec = app_spec(
            &release(&[("GREETING", "hi")]),
            &counts(&[("web", 2), ("worker", 1)]),
        )
        .unwrap();
        assert_eq!(spec.release, 4);
        assert_eq!(spec.image, "paas/hello:v4");
        assert_eq!(spec.env["GREETING"], "hi");
        assert_eq!(spec.processes["web"].quantity, 2);
        assert_eq!(spec.processes["web"].command.as_deref(), Some("run-web"));
        assert_eq!(spec.processes["worker"].quantity, 1);
        assert_eq!(
            spec.processes["web"].resources.memory.map(|m| m.mb()),
            Some(256)
        );
        assert!(spec.processes["worker"].resources.is_default());
        assert_eq!(spec.health_check_path, None);

        let mut no_image = release(&[]);
        no_image.image = None;
        assert!(app_spec(&no_image, &BTreeMap::new()).is_err());
    }

    #[test]
    fn the_health_check_path_comes_from_config_and_must_be_plain() {
        let spec = app_spec(
            &release(&[(HEALTH_CHECK_PATH_VAR, "/health?full=1")]),
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(spec.health_check_path.as_deref(), Some("/health?full=1"));
        for bad in ["health", "/x'; rm -rf /", "/a b", "/$(id)"] {
            assert!(
                app_spec(&release(&[(HEALTH_CHECK_PATH_VAR, bad)]), &BTreeMap::new()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn features_become_container_options() {
        assert_eq!(
            container_options(&BTreeSet::new()),
            ContainerOptions::default()
        );
        assert_eq!(
            container_options(&[Feature::ReadOnlyFs].into()),
            ContainerOptions {
                non_root: false,
                read_only_root_fs: true
            }
        );
        assert_eq!(
            container_options(&Feature::ALL.into()),
            ContainerOptions {
                non_root: true,
                read_only_root_fs: true
            }
        );
    }

    #[test]
    fn failures_show_the_last_log_lines_on_one_line() {
        let failure = RolloutFailure {
            reason: "web.1 exited with code 3".into(),
            logs: vec!["booting\n".into(), "boom".into()],
        };
        assert_eq!(
            failure.with_logs(),
            "web.1 exited with code 3; last log lines: booting | boom"
        );
        assert_eq!(RolloutFailure::new("x").with_logs(), "x");
    }
}

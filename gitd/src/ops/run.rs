//! One-off containers of an app's current release (its image, its config with a run's own
//! vars on top, its features), started through the agent: `paas run:detached` and the runs
//! of cron jobs ([`super::cron`]) both go through [`start`] (an attached `paas run` takes its
//! spec from [`oneoff_spec`], [`super::attach`]), and a task follows each to its
//! end, recording its output as the app's `run.N`/`cron.N` log lines and its exit status, for
//! as long as gitd runs. They change nothing the app runs, so they take no lock and go on
//! beside deploys; a rollout never touches them (the agent marks them apart from instances).

use std::collections::BTreeMap;

use futures::StreamExt;
use futures::stream::BoxStream;
use paas_agent_client::RuntimeError;
use paas_api::oneoff::{
    MAX_TIMEOUT_SECS, OneOffEvent, OneOffKind, OneOffSpec, RunRequest, RunStarted,
};
use paas_api::resources::ProcessResources;
use paas_api::types::Release;

use super::OpsError;
use super::rollout::{self, RolloutFailure};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

/// A one-off that runs: its name in the logs (`run.2`) and what it reports from now on.
pub(super) struct Started {
    pub dyno: String,
    events: BoxStream<'static, Result<OneOffEvent, RuntimeError>>,
}

/// How a followed one-off ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended {
    Exited(i64),
    /// It timed out, failed to run, or gitd lost track of it.
    Failed,
}

/// The app's current release and its image, or why there is none to run.
pub(super) async fn current(
    state: &SharedState,
    app: &AppRow,
) -> Result<(Release, String), OpsError> {
    let deployed = state.store.deployed_state(app.id).await?;
    deployed
        .current
        .and_then(|release| release.image.clone().map(|image| (release, image)))
        .ok_or_else(|| {
            OpsError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            ))
        })
}

/// The one-off of `command` of `kind` in `release` (whose image is `image`): `env` on top of
/// the release's config, the app's features and volume mounts.
async fn spec(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    image: String,
    kind: OneOffKind,
    command: String,
    env: BTreeMap<String, String>,
) -> Result<OneOffSpec, OpsError> {
    let mut vars = rollout::agent_env(&release.config);
    vars.extend(env);
    let settings = state.store.rollout_settings(app.id).await?;
    Ok(OneOffSpec {
        kind,
        release: release.version,
        image,
        env: vars,
        command,
        timeout_secs: MAX_TIMEOUT_SECS,
        container: rollout::container_options(&settings.features),
        volumes: settings.mounts,
        resources: ProcessResources::default(),
    })
}

/// Refuses a one-off the app has no room for: its formation's instances and the one-offs
/// running now count against `instances_per_app`.
pub(super) async fn check_quota(state: &SharedState, app: &AppRow) -> Result<(), OpsError> {
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let (_, formation) = super::changes::current_formation(state, app).await?;
    let formation: u64 = formation
        .values()
        .map(|&quantity| u64::from(quantity))
        .sum();
    let running = agent.instances(&app.name).await.map_err(|err| {
        OpsError::agent(
            "Could not count the app's one-offs",
            RolloutFailure {
                reason: err.to_string(),
                logs: Vec::new(),
            },
        )
    })?;
    let oneoffs = running.iter().filter(|i| i.oneoff.is_some()).count();
    Ok(state.config.quotas.check_oneoff(formation, oneoffs)?)
}

/// The one-off of `request` (kind `run`) in the app's current release, and its command line:
/// what `run:detached` and an attached `paas run` ask the agent for.
pub(super) async fn oneoff_spec(
    state: &SharedState,
    app: &AppRow,
    request: RunRequest,
) -> Result<(OneOffSpec, String), OpsError> {
    let command = request.command_line().map_err(OpsError::Invalid)?;
    let (release, image) = current(state, app).await?;
    let env = request
        .env
        .into_iter()
        .map(|(key, value)| (key.into(), value))
        .collect();
    let spec = spec(
        state,
        app,
        &release,
        image,
        OneOffKind::Run,
        command.clone(),
        env,
    )
    .await?;
    let spec = OneOffSpec {
        resources: request.size,
        ..spec
    };
    Ok((spec, command))
}

/// Starts `command` as a one-off of `kind` in `release` (whose image is `image`), with `env`
/// on top of the release's config; answers once it runs.
pub(super) async fn start(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    image: String,
    kind: OneOffKind,
    command: String,
    env: BTreeMap<String, String>,
) -> Result<Started, OpsError> {
    state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let spec = spec(state, app, release, image, kind, command, env).await?;
    launch(state, app, &spec).await
}

/// Starts the one-off `spec` through the agent, if the app's quota leaves room; answers once
/// it runs.
async fn launch(state: &SharedState, app: &AppRow, spec: &OneOffSpec) -> Result<Started, OpsError> {
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    check_quota(state, app).await?;
    let refused = |reason: String| {
        OpsError::agent(
            "Could not start the one-off",
            RolloutFailure {
                reason,
                logs: Vec::new(),
            },
        )
    };
    let mut events = agent
        .oneoff(&app.name, spec)
        .await
        .map_err(|err| refused(err.to_string()))?
        .boxed();
    let index = match events.next().await {
        Some(Ok(OneOffEvent::Started { index, .. })) => index,
        Some(Ok(OneOffEvent::Failed { reason })) => return Err(refused(reason)),
        Some(Ok(other)) => return Err(refused(format!("unexpected first event {other:?}"))),
        Some(Err(err)) => return Err(refused(err.to_string())),
        None => return Err(refused("the agent's stream ended at once".to_owned())),
    };
    Ok(Started {
        dyno: format!("{}.{index}", spec.kind.as_str()),
        events,
    })
}

impl Started {
    /// Records the one-off's output as the app's log lines, then how it ended.
    pub(super) async fn follow(mut self, state: SharedState, app_id: i64) -> Ended {
        let (message, ended) = loop {
            match self.events.next().await {
                Some(Ok(OneOffEvent::Output { line, .. })) => {
                    events::record(&state, app_id, &self.dyno, line).await;
                }
                Some(Ok(OneOffEvent::Started { .. })) => {}
                Some(Ok(OneOffEvent::Exited { status })) => {
                    break (
                        format!("Process exited with status {status}"),
                        Ended::Exited(status),
                    );
                }
                Some(Ok(OneOffEvent::TimedOut { after_secs })) => {
                    break (
                        format!("Process ran longer than {after_secs} s and was stopped"),
                        Ended::Failed,
                    );
                }
                Some(Ok(OneOffEvent::Failed { reason })) => {
                    break (format!("Process failed: {reason}"), Ended::Failed);
                }
                Some(Err(err)) => {
                    break (format!("Lost track of the process: {err}"), Ended::Failed);
                }
                None => break ("Lost track of the process".to_owned(), Ended::Failed),
            }
        };
        events::record(&state, app_id, &self.dyno, message).await;
        ended
    }
}

/// Starts `request` detached; answers once the container runs.
pub async fn detached(
    state: &SharedState,
    app: &AppRow,
    by: &UserRow,
    request: RunRequest,
) -> Result<RunStarted, OpsError> {
    state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let (spec, command) = oneoff_spec(state, app, request).await?;
    let started = launch(state, app, &spec).await?;
    let dyno = started.dyno.clone();
    tracing::info!(app = %app.name, %dyno, by = %by.username, "one-off started");
    let message = format!(
        "Starting process with command `{command}` by user {}",
        by.username
    );
    events::record(state, app.id, &dyno, message).await;
    tokio::spawn(started.follow(state.clone(), app.id));
    Ok(RunStarted {
        name: dyno,
        release: spec.release,
    })
}

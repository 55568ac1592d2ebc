//! `paas run:detached`: a command in a one-off container of the app's current release (its
//! image, its config with the run's own vars on top, its features), started through the
//! agent and answered with its name (`run.N`) once it runs. It changes nothing the app runs,
//! so it takes no lock and goes on beside deploys; a task follows it to its end, recording its
//! output as the app's `run.N` log lines and its exit status, for as long as gitd runs.

use futures::StreamExt;
use paas_api::oneoff::{
    MAX_TIMEOUT_SECS, OneOffEvent, OneOffKind, OneOffSpec, RunRequest, RunStarted,
};

use super::OpsError;
use super::rollout::{self, RolloutFailure};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

/// Starts `request` detached; answers once the container runs.
pub async fn detached(
    state: &SharedState,
    app: &AppRow,
    by: &UserRow,
    request: RunRequest,
) -> Result<RunStarted, OpsError> {
    let (spec, command) = oneoff_spec(state, app, request).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let release = spec.release;
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
        .oneoff(&app.name, &spec)
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
    let dyno = format!("{}.{index}", OneOffKind::Run.as_str());
    tracing::info!(app = %app.name, %dyno, by = %by.username, "one-off started");
    let message = format!(
        "Starting process with command `{command}` by user {}",
        by.username
    );
    events::record(state, app.id, &dyno, message).await;
    let (follower, app_id, name) = (state.clone(), app.id, dyno.clone());
    tokio::spawn(async move {
        let state = follower;
        let ended = loop {
            match events.next().await {
                Some(Ok(OneOffEvent::Output { line, .. })) => {
                    events::record(&state, app_id, &name, line).await;
                }
                Some(Ok(OneOffEvent::Started { .. })) => {}
                Some(Ok(OneOffEvent::Exited { status })) => {
                    break format!("Process exited with status {status}");
                }
                Some(Ok(OneOffEvent::TimedOut { after_secs })) => {
                    break format!("Process ran longer than {after_secs} s and was stopped");
                }
                Some(Ok(OneOffEvent::Failed { reason })) => {
                    break format!("Process failed: {reason}");
                }
                Some(Err(err)) => break format!("Lost track of the process: {err}"),
                None => break "Lost track of the process".to_owned(),
            }
        };
        events::record(&state, app_id, &name, ended).await;
    });
    Ok(RunStarted {
        name: dyno,
        release,
    })
}

/// The one-off of `request` (kind `run`) in the app's current release, and its command line.
pub(super) async fn oneoff_spec(
    state: &SharedState,
    app: &AppRow,
    request: RunRequest,
) -> Result<(OneOffSpec, String), OpsError> {
    let command = request.command_line().map_err(OpsError::Invalid)?;
    let deployed = state.store.deployed_state(app.id).await?;
    let Some((release, image)) = deployed
        .current
        .and_then(|release| release.image.clone().map(|image| (release, image)))
    else {
        return Err(OpsError::invalid(format!(
            "{} has no running release: deploy it first.",
            app.name
        )));
    };
    let mut env = rollout::agent_env(&release.config);
    env.extend(
        request
            .env
            .into_iter()
            .map(|(key, value)| (key.into(), value)),
    );
    let settings = state.store.rollout_settings(app.id).await?;
    let spec = OneOffSpec {
        kind: OneOffKind::Run,
        release: release.version,
        image,
        env,
        command: command.clone(),
        timeout_secs: MAX_TIMEOUT_SECS,
        container: rollout::container_options(&settings.features),
        volumes: settings.mounts,
    };
    Ok((spec, command))
}

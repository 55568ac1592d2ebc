//! The release phase: step 2 of the release lifecycle ([`super::release`]). A release whose
//! Procfile declares `release: CMD` runs CMD once, in a one-off container of the release's own
//! image and config on the agent, before anything switches. Its output streams to the
//! requester (a push shows it as it comes) and to `paas logs` as `release.1`; a non-zero exit,
//! a timeout, or a command that cannot run fails the release, and what ran before keeps
//! serving. How long it may run is the app's `PAAS_RELEASE_TIMEOUT` config var (seconds).
//!
//! A pusher who goes away during the release phase stops it (the agent kills the container)
//! as it stops a build: nothing was switched yet, and the push cannot succeed any more.
//! Other requesters (config, rollback) going away never cancel it, as for every operation.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use futures::StreamExt;
use paas_api::ConfigKey;
use paas_api::oneoff::{MAX_TIMEOUT_SECS, OneOffEvent, OneOffKind, OneOffSpec};
use paas_api::procfile::{RELEASE_PROCESS, release_command};
use paas_api::types::Release;

use super::release::ReleaseKind;
use super::rollout::{agent_env, container_options};
use super::{OpsError, Reporter};
use crate::events;
use crate::state::SharedState;
use crate::store::AppRow;

/// Config var: how many seconds the release command may run before it is killed.
pub const RELEASE_TIMEOUT_VAR: &str = "PAAS_RELEASE_TIMEOUT";
/// Without [`RELEASE_TIMEOUT_VAR`]: five minutes, long enough for most migrations.
pub const DEFAULT_RELEASE_TIMEOUT_SECS: u64 = 300;
/// How long gitd waits past the timeout for the agent's verdict before it gives up itself.
const AGENT_GRACE: Duration = Duration::from_secs(60);
/// The last lines of the release command's output kept for the error of an HTTP requester.
const KEPT_LINES: usize = 20;
/// The release command's instance name in `paas logs`.
const DYNO: &str = "release.1";

/// The app's release timeout in seconds, from its config; an error if it is not a number from
/// 1 to [`MAX_TIMEOUT_SECS`].
pub fn release_timeout(config: &BTreeMap<ConfigKey, String>) -> Result<u64, String> {
    let Some(text) = config.get(RELEASE_TIMEOUT_VAR) else {
        return Ok(DEFAULT_RELEASE_TIMEOUT_SECS);
    };
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|secs| (1..=MAX_TIMEOUT_SECS).contains(secs))
        .ok_or_else(|| {
            format!(
                "{RELEASE_TIMEOUT_VAR} must be a number of seconds from 1 to {MAX_TIMEOUT_SECS}, not {text:?}"
            )
        })
}

/// Runs the release command of `release`, if it has one; `Ok` lets the release go on.
pub async fn run(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    kind: ReleaseKind,
    reporter: &Reporter,
) -> Result<(), OpsError> {
    // A resize changes neither code nor config: there is nothing for a release command to do.
    if kind == ReleaseKind::Resize {
        return Ok(());
    }
    let Some(command) = release_command(&release.processes) else {
        return Ok(());
    };
    let failed = |reason: String, logs: Vec<String>| OpsError::Agent {
        what: failure_what(release, kind),
        reason,
        logs,
    };
    let timeout_secs = release_timeout(&release.config).map_err(|reason| failed(reason, vec![]))?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let image = release
        .image
        .clone()
        .ok_or_else(|| failed(format!("release v{} has no image", release.version), vec![]))?;
    let settings = state.store.rollout_settings(app.id).await?;
    let spec = OneOffSpec {
        kind: OneOffKind::Release,
        release: release.version,
        image,
        env: agent_env(&release.config),
        command: command.to_owned(),
        timeout_secs,
        container: container_options(&settings.features),
        volumes: settings.mounts,
        resources: Default::default(),
    };
    reporter.step(&format!("Running release command: {command}"));
    tracing::info!(app = %app.name, version = release.version, "release phase");

    let mut kept = VecDeque::new();
    let followed = async {
        let mut events = agent
            .oneoff(&app.name, &spec)
            .await
            .map_err(|err| err.to_string())?
            .boxed();
        while let Some(event) = events.next().await {
            match event.map_err(|err| err.to_string())? {
                OneOffEvent::Started { .. } => {}
                OneOffEvent::Output { line, .. } => {
                    reporter.detail(&line);
                    events::record_in(state, app.id, Some(release.version), DYNO, line.clone())
                        .await;
                    if kept.len() == KEPT_LINES {
                        kept.pop_front();
                    }
                    kept.push_back(line);
                }
                OneOffEvent::Exited { status } => return Ok(status),
                OneOffEvent::TimedOut { after_secs } => {
                    return Err(format!(
                        "the {RELEASE_PROCESS} command ran longer than {after_secs} s and was stopped (raise {RELEASE_TIMEOUT_VAR} to give it longer)"
                    ));
                }
                OneOffEvent::Failed { reason } => {
                    return Err(format!(
                        "the {RELEASE_PROCESS} command could not run: {reason}"
                    ));
                }
            }
        }
        Err("the agent's one-off stream ended without a result".to_owned())
    };
    let bounded = tokio::time::timeout(Duration::from_secs(timeout_secs) + AGENT_GRACE, followed);
    let outcome = tokio::select! {
        outcome = bounded => outcome.unwrap_or_else(|_| {
            Err(format!("the agent did not report the {RELEASE_PROCESS} command's end"))
        }),
        () = cancelled(kind, reporter) => {
            Err("the push was cancelled during the release phase; the release command was stopped".to_owned())
        }
    };
    let logs = kept.into();
    match outcome {
        Ok(0) => {
            events::record_in(
                state,
                app.id,
                Some(release.version),
                DYNO,
                "Process exited with status 0",
            )
            .await;
            reporter.step("Release command succeeded");
            Ok(())
        }
        Ok(status) => {
            let message = format!("Process exited with status {status}");
            events::record_in(state, app.id, Some(release.version), DYNO, message).await;
            Err(failed(
                format!("the {RELEASE_PROCESS} command exited with status {status}"),
                logs,
            ))
        }
        Err(reason) => {
            events::record_in(state, app.id, Some(release.version), DYNO, reason.clone()).await;
            Err(failed(reason, logs))
        }
    }
}

/// Resolves when the release phase should stop because its requester left: only a pusher's
/// leaving counts.
async fn cancelled(kind: ReleaseKind, reporter: &Reporter) {
    match kind {
        ReleaseKind::Deploy => reporter.requester_gone().await,
        ReleaseKind::Config
        | ReleaseKind::Rollback { .. }
        | ReleaseKind::Resize
        | ReleaseKind::Storage => std::future::pending().await,
    }
}

/// What failed, in the words of the change the release is.
fn failure_what(release: &Release, kind: ReleaseKind) -> String {
    let version = release.version;
    match kind {
        ReleaseKind::Deploy => format!("Release v{version} failed in the release phase"),
        ReleaseKind::Config => format!(
            "Release v{version} failed in the release phase; the config vars were not changed"
        ),
        ReleaseKind::Resize => {
            format!("Release v{version} failed in the release phase; the sizes were not changed")
        }
        ReleaseKind::Storage => {
            format!("Release v{version} failed in the release phase; the mounts were not changed")
        }
        ReleaseKind::Rollback { to } => format!(
            "Rollback to v{to} failed in the release phase (release v{version}); the app keeps running as before"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<ConfigKey, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn the_timeout_comes_from_config_within_bounds() {
        assert_eq!(
            release_timeout(&config(&[])),
            Ok(DEFAULT_RELEASE_TIMEOUT_SECS)
        );
        assert_eq!(
            release_timeout(&config(&[(RELEASE_TIMEOUT_VAR, "30")])),
            Ok(30)
        );
        assert_eq!(
            release_timeout(&config(&[(RELEASE_TIMEOUT_VAR, "3600")])),
            Ok(3600)
        );
        for bad in ["0", "3601", "-1", "ten", "", "1.5"] {
            let err = release_timeout(&config(&[(RELEASE_TIMEOUT_VAR, bad)])).unwrap_err();
            assert!(err.starts_with(RELEASE_TIMEOUT_VAR), "{bad:?}: {err}");
        }
    }
}

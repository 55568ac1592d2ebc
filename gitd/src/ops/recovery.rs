//! What gitd settles when it starts, before it accepts any change: a previous run that died
//! mid-change (killed, crashed, the host lost power) leaves no build `pending` and no release
//! `building`, and the agent is brought back to what the store says is current.
//!
//! A release left `building` was cut off somewhere between its build and the moment it
//! served. It is marked failed, and the app's last good release is put back: handed to the
//! agent again, which keeps what already runs it and replaces whatever the cut-off change
//! had started. Adopting the cut-off release instead (when the agent happens to serve it
//! healthy) was rejected: its requester was never answered — a push's hook never said
//! `success`, so git did not update the branch — and serving code the repository does not
//! have, or config the user was told nothing about, would make store, repository and user
//! disagree. A release that had reached serving was recorded `succeeded` at that moment, so
//! it is current and stays.

use std::time::Duration;

use super::changes::current_formation;
use super::rollout;
use super::{OpsError, Reporter};
use crate::events;
use crate::state::SharedState;
use crate::store::AppRow;

/// How many times putting the last good release back is tried while the agent is away…
const RESTORE_ATTEMPTS: u32 = 30;
/// …waiting this long between tries, at most.
const RESTORE_WAIT_MAX: Duration = Duration::from_secs(5);

/// Marks the releases a previous run left unfinished as failed and, detached under each such
/// app's lock (taken here, before any listener accepts), puts its last good release back.
pub async fn recover(state: &SharedState) -> Result<(), OpsError> {
    let apps = state.store.apps_with_unfinished_releases().await?;
    let mut held = Vec::new();
    for app in apps {
        let lock = state.app_locks.acquire(&app.name).await;
        held.push((app, lock));
    }
    // A build cut off switched nothing: marking it failed is all there is to settle for it.
    let interrupted = state.store.fail_interrupted().await?;
    if interrupted.releases > 0 {
        tracing::warn!(
            releases = interrupted.releases,
            "releases interrupted by a restart marked failed"
        );
    }
    if interrupted.builds > 0 {
        let builds = interrupted.builds;
        tracing::warn!(builds, "builds interrupted by a restart marked failed");
    }
    for (app, lock) in held {
        let op_state = state.clone();
        let name = app.name.clone();
        // Nobody waits for it; the outcome is in gitd's log and the app's events.
        drop(super::spawn(
            state,
            &name,
            Some(lock),
            move |reporter| async move { restore(&op_state, &app, &reporter).await },
        ));
    }
    Ok(())
}

/// Hands the agent the app's current release again, retrying while the agent is away.
async fn restore(state: &SharedState, app: &AppRow, reporter: &Reporter) -> Result<(), OpsError> {
    let mut wait = Duration::from_millis(250);
    let mut attempt = 1;
    loop {
        match restore_once(state, app, reporter).await {
            Ok(Some(version)) => {
                tracing::info!(app = %app.name, version, "last good release put back after an interrupted change");
                let message = format!(
                    "Release v{version} restored: a change cut off by a restart of paas-gitd was rolled back"
                );
                events::record_in(state, app.id, Some(version), "deploy", message).await;
                return Ok(());
            }
            Ok(None) => return Ok(()),
            Err(err) if attempt < RESTORE_ATTEMPTS => {
                tracing::warn!(app = %app.name, attempt, error = %err.with_logs(), "cannot put the last good release back yet; retrying");
            }
            Err(err) => {
                tracing::error!(app = %app.name, error = %err.with_logs(), "gave up putting the last good release back");
                return Err(err);
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RESTORE_WAIT_MAX);
        attempt += 1;
    }
}

/// One try; the version put back, or `None` when the app never had a good release (the
/// agent then runs nothing of it).
async fn restore_once(
    state: &SharedState,
    app: &AppRow,
    reporter: &Reporter,
) -> Result<Option<u32>, OpsError> {
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let (release, formation) = current_formation(state, app).await?;
    let Some(release) = release else {
        agent.delete_app(&app.name).await.map_err(|err| {
            OpsError::agent(
                "Removing what the cut-off first deploy started failed",
                err.into(),
            )
        })?;
        return Ok(None);
    };
    let what = format!("Putting v{} back failed", release.version);
    let rolling = rollout::start(state, app, &release, &formation, None)
        .await
        .map_err(|failure| OpsError::agent(&what, failure))?;
    rolling
        .until_done(reporter)
        .await
        .map_err(|failure| OpsError::agent(&what, failure))?;
    Ok(Some(release.version))
}

//! The release lifecycle, one for every change that makes a release (a push after its build,
//! config set/unset, a rollback, a resize, a storage mount or unmount):
//!
//! 1. the release is recorded `building` ([`begin`]);
//! 2. the release phase runs the Procfile's `release` command, if any, in a one-off
//!    container of the new release ([`release_phase`]); its failure fails the release;
//! 3. the desired state goes to the agent, which starts the new instances;
//! 4. once they serve, the release is recorded current (`succeeded`, with the formation and,
//!    for config changes and rollbacks, the app's config vars), images no rollback can reach
//!    any more are pruned, and the requester is answered;
//! 5. the agent drains and retires the old instances, still under the app's lock;
//! 6. the rollout's output is saved as the release's and the events are recorded.
//!
//! A failure before step 4 records the release `failed` with its output; what ran before
//! keeps running and stays current.

use paas_api::types::{Release, ReleaseStatus};

use super::rollout::{self, Reached, RolloutFailure};
use super::{OpsError, Reporter, release_phase};
use crate::events;
use crate::images;
use crate::state::SharedState;
use crate::store::AppRow;
pub use crate::store::ReleaseKind;
use crate::store::{NewRelease, ReleaseOutcome};
use crate::webhooks;
use paas_api::webhooks::{EventDetails, WebhookEvent};

/// Records a new release as `building`.
pub async fn begin(state: &SharedState, new: NewRelease) -> Result<Release, OpsError> {
    Ok(state.store.create_release(new).await?)
}

/// Steps 2–6 of the lifecycle for `release` (recorded by [`begin`], with its image). `live`
/// reports what the requester sees once the release serves, before it is answered.
pub async fn go_live(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    kind: ReleaseKind,
    reporter: &Reporter,
    live: impl FnOnce(&Reporter),
) -> Result<(), OpsError> {
    if let Err(err) = release_phase::run(state, app, release, kind, reporter).await {
        let details = webhooks::release_details(release, err.to_string());
        webhooks::notify(
            state,
            app.id,
            &app.name,
            WebhookEvent::ReleasePhaseFailed,
            details,
        )
        .await;
        return Err(failed(state, app, release, kind, reporter, err).await);
    }
    let deployed = match state.store.deployed_state(app.id).await {
        Ok(deployed) => deployed,
        Err(err) => return Err(failed(state, app, release, kind, reporter, err.into()).await),
    };
    let formation = rollout::formation_for(&release.processes, &deployed.formation);
    if kind == ReleaseKind::Deploy {
        let summary = formation
            .iter()
            .map(|(process, quantity)| format!("{process}={quantity}"))
            .collect::<Vec<_>>()
            .join(" ");
        reporter.step(&format!("Launching v{}: {summary}", release.version));
    }
    let started = rollout::start(state, app, release, &formation, None).await;
    let reached = match started {
        Ok(mut rolling) => rolling
            .until_serving(reporter)
            .await
            .map(|reached| (reached, rolling)),
        Err(failure) => Err(failure),
    };
    let (reached, rolling) = match reached {
        Ok(reached) => reached,
        Err(failure) => {
            let err = rollout_failed(release, kind, reporter, failure);
            return Err(failed(state, app, release, kind, reporter, err).await);
        }
    };

    let config = match kind {
        ReleaseKind::Deploy | ReleaseKind::Resize | ReleaseKind::Storage => None,
        ReleaseKind::Config | ReleaseKind::Rollback { .. } => Some(release.config.clone()),
    };
    let serving = ReleaseOutcome {
        status: ReleaseStatus::Succeeded,
        image: None,
        processes: release.processes.clone(),
        config,
        output: None,
    };
    if let Err(err) = state
        .store
        .finish_release(app.id, release.version, serving)
        .await
    {
        // The agent serves it, the store could not say so: a restart settles it (recovery).
        tracing::error!(app = %app.name, version = release.version, error = %err, "cannot record a release that serves");
        return Err(err.into());
    }
    if let Err(err) = state.store.replace_formation(app.id, formation).await {
        tracing::error!(app = %app.name, error = %err, "cannot record the formation");
    }
    // Before the answer, so that when a push returns, what no rollback can reach is gone (the
    // images the draining instances run are among the kept ones).
    images::prune(state, app.id, &app.name).await;
    live(reporter);
    reporter.serving();

    if reached == Reached::Serving
        && let Err(failure) = rolling.until_done(reporter).await
    {
        // The new release serves already; what did not retire is retired by the next rollout.
        reporter.fail(&format!("Warning: {}", failure.with_logs()));
        tracing::warn!(app = %app.name, version = release.version, reason = %failure, "the old release did not retire cleanly");
    }
    finished(state, app, release, kind, reporter).await;
    Ok(())
}

/// The failure of a rollout, told to the requester with the failed container's last lines.
fn rollout_failed(
    release: &Release,
    kind: ReleaseKind,
    reporter: &Reporter,
    failure: RolloutFailure,
) -> OpsError {
    if !failure.logs.is_empty() {
        reporter.fail("Last log lines of the failed container:");
        for line in &failure.logs {
            reporter.detail(line.trim_end());
        }
    }
    let version = release.version;
    let what = match kind {
        ReleaseKind::Deploy => format!("Release v{version} failed to start"),
        ReleaseKind::Config => {
            format!("Release v{version} failed to start; the config vars were not changed")
        }
        ReleaseKind::Rollback { to } => format!(
            "Rollback to v{to} failed (release v{version}); the app keeps running as before"
        ),
        ReleaseKind::Resize => {
            format!("Release v{version} failed to start; the app keeps running with its old sizes")
        }
        ReleaseKind::Storage => {
            format!("Release v{version} failed to start; the app keeps running with its old mounts")
        }
    };
    OpsError::agent(what, failure)
}

/// Records `release` failed with its output and the event, and gives back `err`.
pub async fn failed(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    kind: ReleaseKind,
    reporter: &Reporter,
    err: OpsError,
) -> OpsError {
    let mut output = reporter.transcript();
    output.push_str(&format!("\n !     {err}"));
    let outcome = ReleaseOutcome {
        status: ReleaseStatus::Failed,
        image: None,
        processes: release.processes.clone(),
        config: None,
        output: Some(output),
    };
    if let Err(store) = state
        .store
        .finish_release(app.id, release.version, outcome)
        .await
    {
        tracing::error!(app = %app.name, error = %store, "cannot record a failed release");
    }
    let by = &release.user;
    match kind {
        ReleaseKind::Deploy => {
            let message = format!("{} by user {by} failed: {err}", release.description);
            let details = webhooks::release_details(release, &message);
            webhooks::notify(
                state,
                app.id,
                &app.name,
                WebhookEvent::DeployFailed,
                details,
            )
            .await;
            events::record_in(state, app.id, Some(release.version), "deploy", message).await;
        }
        ReleaseKind::Config => {}
        ReleaseKind::Resize => {
            let message = format!("{} by user {by} failed: {err}", release.description);
            events::record_in(state, app.id, Some(release.version), "resize", message).await;
        }
        ReleaseKind::Storage => {
            let message = format!("{} by user {by} failed: {err}", release.description);
            events::record_in(state, app.id, Some(release.version), "storage", message).await;
        }
        ReleaseKind::Rollback { to } => {
            let message = format!("Rollback to v{to} failed: {}", err.with_logs());
            events::record_in(state, app.id, Some(release.version), "rollback", message).await;
        }
    }
    tracing::info!(app = %app.name, version = release.version, reason = %err, "release failed");
    err
}

/// Step 6: the output and the events.
async fn finished(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    kind: ReleaseKind,
    reporter: &Reporter,
) {
    let saved = state
        .store
        .save_release_output(app.id, release.version, &reporter.transcript())
        .await;
    if let Err(err) = saved {
        tracing::error!(app = %app.name, error = %err, "cannot store the release output");
    }
    let (by, version) = (&release.user, release.version);
    match kind {
        ReleaseKind::Deploy => {
            let message = format!("{} by user {by}", release.description);
            events::record_in(state, app.id, Some(release.version), "deploy", message).await;
            let message = format!("Release v{version} created by user {by}");
            let details = webhooks::release_details(release, &message);
            webhooks::notify(
                state,
                app.id,
                &app.name,
                WebhookEvent::DeploySucceeded,
                details,
            )
            .await;
            events::record_in(state, app.id, Some(release.version), "deploy", message).await;
        }
        ReleaseKind::Config => {
            let message = format!("{} by user {by}: release v{version}", release.description);
            events::record_in(state, app.id, Some(release.version), "config", message).await;
        }
        ReleaseKind::Resize => {
            let message = format!("{} by user {by}: release v{version}", release.description);
            events::record_in(state, app.id, Some(release.version), "resize", message).await;
        }
        ReleaseKind::Storage => {
            let message = format!("{} by user {by}: release v{version}", release.description);
            events::record_in(state, app.id, Some(release.version), "storage", message).await;
        }
        ReleaseKind::Rollback { to } => {
            let message = format!("Rollback to v{to} by user {by}: release v{version}");
            let details = EventDetails {
                rolled_back_to: Some(to),
                ..webhooks::release_details(release, &message)
            };
            webhooks::notify(state, app.id, &app.name, WebhookEvent::Rollback, details).await;
            events::record_in(state, app.id, Some(release.version), "rollback", message).await;
        }
    }
    tracing::info!(app = %app.name, version, ?kind, "release live");
}

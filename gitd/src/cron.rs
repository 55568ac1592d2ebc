//! The cron scheduler: a task `serve` starts when an agent is configured. At the top of
//! every minute (UTC) it reads which apps' current releases have cron jobs due in that
//! minute and hands each due job to [`crate::ops::cron::run_due`], which claims the run in
//! the store before launching it. On start it first marks runs a previous gitd left running
//! as failed (their one-offs ended with it), then looks at the current minute: a job due in
//! the minute gitd comes back in runs then, unless it already ran; runs missed while gitd was
//! down are not replayed.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use crate::ops;
use crate::state::SharedState;

/// Runs the scheduler until the task is aborted.
pub async fn schedule(state: SharedState) {
    match state.store.fail_unfinished_cron_runs().await {
        Ok(0) => {}
        Ok(count) => tracing::info!(count, "cron runs cut off by a stop marked failed"),
        Err(err) => tracing::warn!(error = %err, "cannot settle unfinished cron runs"),
    }
    loop {
        let now = Utc::now();
        let minute = now.duration_trunc(TimeDelta::minutes(1)).unwrap_or(now);
        start_due(&state, minute).await;
        let next = minute + TimeDelta::minutes(1);
        let wait = (next - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(wait).await;
    }
}

/// Starts every job due in `minute`, each in a task of its own.
async fn start_due(state: &SharedState, minute: DateTime<Utc>) {
    let apps = match state.store.apps_with_cron().await {
        Ok(apps) => apps,
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the apps' cron jobs");
            return;
        }
    };
    for (app, release) in apps {
        for job in release.app_json.cron {
            if job.schedule.matches(minute) {
                tokio::spawn(ops::cron::run_due(state.clone(), app.clone(), job, minute));
            }
        }
    }
}

//! One run of an `app.json` cron job: claimed in the store for its minute before anything is
//! launched (so a gitd restart or a deploy within the minute never starts it twice), skipped
//! and recorded when its previous run still runs (concurrency policy `forbid`, the default),
//! else started as a `cron.N` one-off of the app's release current at that moment, through
//! the same path as `paas run:detached` ([`super::run`]). Its output goes to `paas logs` as
//! `cron.N` lines, the first naming the job and the run; its outcome goes to the run's record.
//! Like every one-off it takes no app lock, and rollouts never stop it.

use chrono::{DateTime, Utc};
use paas_api::app_json::cron::{ConcurrencyPolicy, CronJob};
use paas_api::app_json::status::CronRunStatus;
use paas_api::oneoff::OneOffKind;

use super::run::{self, Ended};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, CronClaim};

/// The dyno platform lines about cron runs that never started are logged under.
const CRON_DYNO: &str = "cron";

/// Runs `job` of `app` for `minute`, unless it ran (or was skipped) for that minute already;
/// returns once the run has been followed to its end.
pub async fn run_due(state: SharedState, app: AppRow, job: CronJob, minute: DateTime<Utc>) {
    let job_id = job.id();
    let forbid = job.concurrency_policy == ConcurrencyPolicy::Forbid;
    let claim = state
        .store
        .claim_cron_run(app.id, &job_id, minute.timestamp(), forbid)
        .await;
    let run_id = match claim {
        Ok(CronClaim::Claimed(id)) => id,
        Ok(CronClaim::Taken) => return,
        Ok(CronClaim::Skipped(id)) => {
            let message = format!(
                "Skipped run {id} of cron job {job_id} due at {}: its previous run is still running",
                minute.format("%H:%M UTC")
            );
            events::record(&state, app.id, CRON_DYNO, message).await;
            return;
        }
        Err(err) => {
            tracing::warn!(app = %app.name, %job_id, error = %err, "cannot claim a cron run");
            return;
        }
    };
    let started = match run::current(&state, &app).await {
        Ok((release, image)) => {
            run::start(
                &state,
                &app,
                &release,
                image,
                OneOffKind::Cron,
                job.command.clone(),
                Default::default(),
            )
            .await
        }
        Err(err) => Err(err),
    };
    let started = match started {
        Ok(started) => started,
        Err(err) => {
            let message = format!("Run {run_id} of cron job {job_id} could not start: {err}");
            events::record(&state, app.id, CRON_DYNO, message).await;
            finish(&state, run_id, CronRunStatus::Failed, None).await;
            return;
        }
    };
    let dyno = started.dyno.clone();
    if let Err(err) = state.store.set_cron_run_dyno(run_id, &dyno).await {
        tracing::warn!(app = %app.name, run_id, error = %err, "cannot record a cron run's name");
    }
    tracing::info!(app = %app.name, %dyno, %job_id, run_id, "cron run started");
    let message = format!(
        "Starting process with command `{}` (cron job {job_id}, run {run_id}, due {})",
        job.command,
        minute.format("%H:%M UTC")
    );
    events::record(&state, app.id, &dyno, message).await;
    match started.follow(state.clone(), app.id).await {
        Ended::Exited(0) => finish(&state, run_id, CronRunStatus::Succeeded, Some(0)).await,
        Ended::Exited(status) => {
            finish(&state, run_id, CronRunStatus::Failed, Some(status)).await;
        }
        Ended::Failed => finish(&state, run_id, CronRunStatus::Failed, None).await,
    }
}

async fn finish(state: &SharedState, run_id: i64, status: CronRunStatus, exit: Option<i64>) {
    if let Err(err) = state.store.finish_cron_run(run_id, status, exit).await {
        tracing::warn!(run_id, error = %err, "cannot record how a cron run ended");
    }
}

//! What `paas cron` and `paas checks` show, as gitd's API answers it:
//! `GET /v1/apps/{app}/cron` → `Vec<`[`CronJobStatus`]`>` (the current release's jobs, with
//! their next and last run), `GET /v1/apps/{app}/checks` → [`AppChecks`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cron::{ConcurrencyPolicy, Schedule};
use super::healthchecks::HealthCheck;

/// How one run of a job went, or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CronRunStatus {
    Running,
    Succeeded,
    /// Exited non-zero (`exit_status`), ran past its timeout, could not start, or was cut off
    /// by gitd stopping (no `exit_status`).
    Failed,
    /// Not started: the job's previous run was still running (concurrency policy forbid).
    Skipped,
}

/// One run of a cron job: the minute it was due in and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronRun {
    /// The run's id, as its log lines name it.
    pub id: i64,
    pub scheduled_for: DateTime<Utc>,
    pub status: CronRunStatus,
    #[serde(default)]
    pub exit_status: Option<i64>,
    /// Its one-off's name in `paas logs` (`cron.1`), once it started.
    #[serde(default)]
    pub dyno: Option<String>,
}

impl CronRun {
    /// `succeeded`, `failed (exit 3)`, `running`, `skipped`.
    pub fn describe(&self) -> String {
        match (self.status, self.exit_status) {
            (CronRunStatus::Running, _) => "running".to_owned(),
            (CronRunStatus::Succeeded, _) => "succeeded".to_owned(),
            (CronRunStatus::Failed, Some(status)) => format!("failed (exit {status})"),
            (CronRunStatus::Failed, None) => "failed".to_owned(),
            (CronRunStatus::Skipped, _) => "skipped".to_owned(),
        }
    }
}

/// One job of the current release's `app.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJobStatus {
    pub id: String,
    pub schedule: Schedule,
    pub command: String,
    pub concurrency_policy: ConcurrencyPolicy,
    /// The next minute it is due in (UTC); none if the schedule never comes round.
    pub next_run: Option<DateTime<Utc>>,
    pub last_run: Option<CronRun>,
}

/// The checks a new `web` instance must pass in the current release, or none (the
/// platform's default check: the health path within the agent's ready timeout).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppChecks {
    /// The release they are from, if the app has one.
    pub release: Option<u32>,
    pub web: Vec<HealthCheck>,
    /// How long a new instance may take to pass them all; none: the agent's default.
    pub ready_timeout_secs: Option<u64>,
    /// The path the default check asks when there are no checks (`PAAS_HEALTH_CHECK_PATH`),
    /// none: the agent's own default (`/`).
    pub default_path: Option<String>,
}

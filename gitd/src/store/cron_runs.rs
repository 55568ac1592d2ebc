//! Runs of `app.json` cron jobs: each claimed, unique per (app, job, minute), before its
//! one-off is launched, then finished with its outcome. The newest runs per app are kept.

use std::collections::BTreeMap;

use paas_api::app_json::status::{CronRun, CronRunStatus};
use paas_api::types::Release;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::apps::{APP_SELECT, AppRow};
use super::releases::current_release;
use super::{Store, StoreResult, to_time};

/// How many runs each app keeps (well over a minute's worth of its jobs).
const KEPT_RUNS_PER_APP: i64 = 1000;

/// What claiming a job's run for a minute came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronClaim {
    /// This caller owns run `id` and launches it.
    Claimed(i64),
    /// Recorded as skipped (run `id`): the job's previous run still runs.
    Skipped(i64),
    /// Someone (an earlier gitd, within the same minute) already claimed it.
    Taken,
}

fn status_name(status: CronRunStatus) -> &'static str {
    match status {
        CronRunStatus::Running => "running",
        CronRunStatus::Succeeded => "succeeded",
        CronRunStatus::Failed => "failed",
        CronRunStatus::Skipped => "skipped",
    }
}

fn run_from_row(row: &Row) -> rusqlite::Result<CronRun> {
    let status: String = row.get("status")?;
    Ok(CronRun {
        id: row.get("id")?,
        scheduled_for: to_time(row.get("scheduled_for")?),
        status: match status.as_str() {
            "running" => CronRunStatus::Running,
            "succeeded" => CronRunStatus::Succeeded,
            "skipped" => CronRunStatus::Skipped,
            _ => CronRunStatus::Failed,
        },
        exit_status: row.get("exit_status")?,
        dyno: row.get("dyno")?,
    })
}

fn insert_run(
    conn: &Connection,
    app_id: i64,
    job_id: &str,
    minute: i64,
    status: CronRunStatus,
) -> rusqlite::Result<i64> {
    conn.execute(
        "INSERT INTO cron_runs (app_id, job_id, scheduled_for, status) VALUES (?1, ?2, ?3, ?4)",
        params![app_id, job_id, minute, status_name(status)],
    )?;
    let id = conn.last_insert_rowid();
    conn.execute(
        "DELETE FROM cron_runs WHERE app_id = ?1 AND id <= ?2 - ?3",
        params![app_id, id, KEPT_RUNS_PER_APP],
    )?;
    Ok(id)
}

impl Store {
    /// Claims job `job_id`'s run for `minute` (Unix seconds of the minute it is due in):
    /// at most one claim per job and minute ever succeeds. With `forbid_overlap`, a job whose
    /// previous run is still running gets this run recorded as skipped instead.
    pub async fn claim_cron_run(
        &self,
        app_id: i64,
        job_id: &str,
        minute: i64,
        forbid_overlap: bool,
    ) -> StoreResult<CronClaim> {
        let job_id = job_id.to_owned();
        self.transaction(move |tx| {
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM cron_runs WHERE app_id = ?1 AND job_id = ?2 AND scheduled_for = ?3)",
                params![app_id, job_id, minute],
                |r| r.get(0),
            )?;
            if taken {
                return Ok(CronClaim::Taken);
            }
            let running: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM cron_runs WHERE app_id = ?1 AND job_id = ?2 AND status = 'running')",
                params![app_id, job_id],
                |r| r.get(0),
            )?;
            if forbid_overlap && running {
                let id = insert_run(tx, app_id, &job_id, minute, CronRunStatus::Skipped)?;
                return Ok(CronClaim::Skipped(id));
            }
            let id = insert_run(tx, app_id, &job_id, minute, CronRunStatus::Running)?;
            Ok(CronClaim::Claimed(id))
        })
        .await
    }

    /// Names the one-off run `id` started as (`cron.1`).
    pub async fn set_cron_run_dyno(&self, id: i64, dyno: &str) -> StoreResult<()> {
        let dyno = dyno.to_owned();
        self.run(move |conn| {
            conn.execute(
                "UPDATE cron_runs SET dyno = ?2 WHERE id = ?1",
                params![id, dyno],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn finish_cron_run(
        &self,
        id: i64,
        status: CronRunStatus,
        exit_status: Option<i64>,
    ) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute(
                "UPDATE cron_runs SET status = ?2, exit_status = ?3 WHERE id = ?1",
                params![id, status_name(status), exit_status],
            )?;
            Ok(())
        })
        .await
    }

    /// Runs left `running` by a gitd that stopped: their one-offs ended with it (the agent
    /// removes a one-off whose client hung up). Marked failed; returns how many.
    pub async fn fail_unfinished_cron_runs(&self) -> StoreResult<usize> {
        self.run(|conn| {
            Ok(conn.execute(
                "UPDATE cron_runs SET status = 'failed' WHERE status = 'running'",
                [],
            )?)
        })
        .await
    }

    /// The newest run of each of the app's jobs, by job id.
    pub async fn last_cron_runs(&self, app_id: i64) -> StoreResult<BTreeMap<String, CronRun>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT job_id, id, scheduled_for, status, exit_status, dyno FROM cron_runs
                 WHERE id IN (SELECT MAX(id) FROM cron_runs WHERE app_id = ?1 GROUP BY job_id)",
            )?;
            let runs = stmt
                .query_map([app_id], |row| Ok((row.get("job_id")?, run_from_row(row)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(runs)
        })
        .await
    }

    /// The run `id`, if it is kept.
    pub async fn cron_run(&self, id: i64) -> StoreResult<Option<CronRun>> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT id, scheduled_for, status, exit_status, dyno FROM cron_runs WHERE id = ?1",
                    [id],
                    run_from_row,
                )
                .optional()?)
        })
        .await
    }

    /// Every app whose current release has cron jobs, with that release.
    pub async fn apps_with_cron(&self) -> StoreResult<Vec<(AppRow, Release)>> {
        self.run(|conn| {
            let mut stmt = conn.prepare(APP_SELECT)?;
            let apps = stmt
                .query_map([], AppRow::from_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut with_cron = Vec::new();
            for app in apps {
                if let Some(release) = current_release(conn, app.id)?
                    && !release.app_json.cron.is_empty()
                {
                    with_cron.push((app, release));
                }
            }
            Ok(with_cron)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    #[tokio::test]
    async fn a_run_is_claimed_once_per_job_and_minute_and_overlaps_are_skipped() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let store = &test.store;
        let CronClaim::Claimed(first) = store.claim_cron_run(web.id, "j1", 60, true).await.unwrap()
        else {
            panic!("the first claim wins");
        };
        assert_eq!(
            store.claim_cron_run(web.id, "j1", 60, true).await.unwrap(),
            CronClaim::Taken,
            "a second claim of the same minute, as after a restart"
        );
        // The next minute while the first still runs: skipped, and recorded.
        let CronClaim::Skipped(skipped) =
            store.claim_cron_run(web.id, "j1", 120, true).await.unwrap()
        else {
            panic!("forbid skips");
        };
        assert_eq!(
            store.claim_cron_run(web.id, "j1", 120, true).await.unwrap(),
            CronClaim::Taken
        );
        // Allowed overlap, another job, another minute: each its own run.
        assert!(matches!(
            store
                .claim_cron_run(web.id, "j1", 180, false)
                .await
                .unwrap(),
            CronClaim::Claimed(_)
        ));
        assert!(matches!(
            store.claim_cron_run(web.id, "j2", 60, true).await.unwrap(),
            CronClaim::Claimed(_)
        ));
        store.set_cron_run_dyno(first, "cron.1").await.unwrap();
        store
            .finish_cron_run(first, CronRunStatus::Failed, Some(3))
            .await
            .unwrap();
        let run = store.cron_run(first).await.unwrap().unwrap();
        assert_eq!(run.describe(), "failed (exit 3)");
        assert_eq!(run.dyno.as_deref(), Some("cron.1"));
        assert_eq!(
            store.cron_run(skipped).await.unwrap().unwrap().describe(),
            "skipped"
        );
        let last = store.last_cron_runs(web.id).await.unwrap();
        assert_eq!(last["j1"].scheduled_for.timestamp(), 180);
        assert_eq!(last["j2"].status, CronRunStatus::Running);
        assert_eq!(store.fail_unfinished_cron_runs().await.unwrap(), 2);
        let last = store.last_cron_runs(web.id).await.unwrap();
        assert_eq!(last["j2"].status, CronRunStatus::Failed);
    }
}

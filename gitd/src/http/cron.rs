//! `paas cron` and `paas checks`: the cron jobs and the health checks of the app's current
//! release (from its `app.json`), the jobs with their next run and last run.

use axum::extract::State;
use chrono::Utc;
use paas_api::AppName;
use paas_api::app_json::status::{AppChecks, CronJobStatus};

use super::{ApiResult, AuthUser, Json, Path};
use crate::ops::rollout::HEALTH_CHECK_PATH_VAR;
use crate::state::SharedState;

pub async fn jobs(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<CronJobStatus>>> {
    let app = auth.app(&state, &name).await?;
    let Some(current) = state.store.current_release(app.id).await? else {
        return Ok(Json(Vec::new()));
    };
    let mut last_runs = state.store.last_cron_runs(app.id).await?;
    let now = Utc::now();
    let jobs = current
        .app_json
        .cron
        .into_iter()
        .map(|job| {
            let id = job.id();
            CronJobStatus {
                next_run: job.schedule.next_after(now),
                last_run: last_runs.remove(&id),
                id,
                schedule: job.schedule,
                command: job.command,
                concurrency_policy: job.concurrency_policy,
            }
        })
        .collect();
    Ok(Json(jobs))
}

pub async fn checks(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<AppChecks>> {
    let app = auth.app(&state, &name).await?;
    let current = state.store.current_release(app.id).await?;
    let Some(release) = current else {
        return Ok(Json(AppChecks {
            release: None,
            web: Vec::new(),
            ready_timeout_secs: None,
            default_path: None,
        }));
    };
    let checks = release.app_json.healthchecks;
    Ok(Json(AppChecks {
        release: Some(release.version),
        ready_timeout_secs: checks.ready_timeout_secs(),
        default_path: release.config.get(HEALTH_CHECK_PATH_VAR).cloned(),
        web: checks.web,
    }))
}

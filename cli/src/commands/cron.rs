//! `cron` and `checks`: what the current release's `app.json` schedules and checks.

use chrono::{DateTime, Utc};
use clap::Args;
use paas_api::app_json::status::{AppChecks, CronJobStatus};

use super::Context;
use crate::output::{Style, print_json, table, timestamp};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn cron(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let jobs = ctx.client()?.cron_jobs(&name)?;
    if json.json {
        return print_json(&jobs);
    }
    print!("{}", render_jobs(&name, &jobs, Style::stdout()));
    Ok(())
}

fn minute(time: DateTime<Utc>) -> String {
    timestamp(time)
}

fn render_jobs(app: &str, jobs: &[CronJobStatus], style: Style) -> String {
    let header = style.header(&format!("{} Cron Jobs", style.app(app)));
    if jobs.is_empty() {
        return format!("{header}\nNo cron jobs: add a \"cron\" list to app.json.\n");
    }
    let mut rows = vec![
        [
            "ID", "Schedule", "Command", "Next run", "Last run", "Status",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(jobs.iter().map(|job| {
        vec![
            job.id.clone(),
            job.schedule.to_string(),
            job.command.clone(),
            job.next_run.map_or_else(|| "never".to_owned(), minute),
            job.last_run
                .as_ref()
                .map_or_else(|| "-".to_owned(), |run| minute(run.scheduled_for)),
            job.last_run
                .as_ref()
                .map_or_else(|| "-".to_owned(), |run| run.describe()),
        ]
    }));
    format!("{header}\n{}", table(&rows))
}

pub fn checks(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let checks = ctx.client()?.checks(&name)?;
    if json.json {
        return print_json(&checks);
    }
    print!("{}", render_checks(&name, &checks, Style::stdout()));
    Ok(())
}

fn render_checks(app: &str, checks: &AppChecks, style: Style) -> String {
    let header = style.header(&format!("{} Health Checks", style.app(app)));
    if checks.web.is_empty() {
        let path = checks.default_path.as_deref().unwrap_or("/");
        return format!(
            "{header}\nweb: the default check: GET {path} answers 2xx or 3xx within the platform's ready timeout (no \"healthchecks\" in app.json)\n"
        );
    }
    let mut rows = vec![
        [
            "Name",
            "Type",
            "Path",
            "Attempts",
            "Timeout",
            "Wait",
            "Initial delay",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(checks.web.iter().map(|check| {
        vec![
            check.name.clone(),
            "startup".to_owned(),
            check.path.to_string(),
            check.attempts.to_string(),
            format!("{} s", check.timeout),
            format!("{} s", check.wait),
            format!("{} s", check.initial_delay),
        ]
    }));
    let timeout = checks
        .ready_timeout_secs
        .map(|secs| format!("web is ready within {secs} s of starting, or the rollout fails\n"))
        .unwrap_or_default();
    format!("{header}\n{}{timeout}", table(&rows))
}

#[cfg(test)]
mod tests {
    use paas_api::app_json::parse_app_json;
    use paas_api::app_json::status::{CronRun, CronRunStatus};

    use super::*;

    #[test]
    fn jobs_show_schedule_next_and_last_run() {
        let job = parse_app_json(r#"{"cron":[{"command":"echo tick","schedule":"*/5 * * * *"}]}"#)
            .unwrap()
            .cron
            .remove(0);
        let at = |text: &str| DateTime::parse_from_rfc3339(text).unwrap().to_utc();
        let jobs = [CronJobStatus {
            id: job.id(),
            schedule: job.schedule.clone(),
            command: job.command.clone(),
            concurrency_policy: job.concurrency_policy,
            next_run: Some(at("2026-12-03T14:10:00Z")),
            last_run: Some(CronRun {
                id: 7,
                scheduled_for: at("2026-12-03T14:05:00Z"),
                status: CronRunStatus::Failed,
                exit_status: Some(2),
                dyno: Some("cron.1".into()),
            }),
        }];
        let shown = render_jobs("web", &jobs, Style { colour: false });
        assert!(shown.contains("*/5 * * * *"), "{shown}");
        assert!(shown.contains("2026/12/03 14:10:00 UTC"), "{shown}");
        assert!(shown.contains("2026/12/03 14:05:00 UTC"), "{shown}");
        assert!(shown.contains("failed (exit 2)"), "{shown}");
        assert!(render_jobs("web", &[], Style { colour: false }).contains("No cron jobs"));
    }
}

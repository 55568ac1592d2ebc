//! `builds` and `builds:output`: every push that got as far as building, apart from the
//! releases it made (a failed build makes none), as on Heroku.

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Args;
use paas_api::builds::Build;

use super::Context;
use crate::output::{Style, print_json, table, timestamp_ago};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
    /// How many builds to show (at least 1)
    #[arg(short, long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub num: u32,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Build, e.g. 3 [default: the newest build]
    #[arg(value_name = "ID")]
    pub build: Option<String>,
}

pub fn list(ctx: &Context, ListArgs { app, json, num }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let builds = ctx.client()?.builds(&name, Some(*num))?;
    if json.json {
        return print_json(&builds);
    }
    print!(
        "{}",
        render_builds(&name, &builds, Utc::now(), Style::stdout())
    );
    Ok(())
}

/// `3  failed  1a2b3c4  alice  2026/11/22 10:00:00 UTC (~ 5m ago)`, then the release a
/// successful build made.
fn render_builds(app: &str, builds: &[Build], now: DateTime<Utc>, style: Style) -> String {
    if builds.is_empty() {
        return format!("{app} has no builds.\n");
    }
    let rows: Vec<Vec<String>> = builds
        .iter()
        .map(|build| {
            vec![
                build.id.to_string(),
                build.status.as_str().to_owned(),
                build.commit.chars().take(7).collect(),
                build.user.to_string(),
                timestamp_ago(build.created_at, now),
                build
                    .release
                    .map(|version| format!("v{version}"))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        style.header(&format!("{app} Builds")),
        table(&rows)
    )
}

/// `3` → 3.
fn parse_id(text: &str) -> anyhow::Result<u32> {
    match text.parse::<u32>() {
        Ok(id) if id > 0 => Ok(id),
        _ => bail!("Invalid build {text:?}: use 1, 2, … (see paas builds)"),
    }
}

pub fn output(ctx: &Context, OutputArgs { app, build }: &OutputArgs) -> anyhow::Result<()> {
    let wanted = build.as_deref().map(parse_id).transpose()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let id = match wanted {
        Some(id) => id,
        None => client
            .builds(&name, Some(1))?
            .first()
            .map(|build| build.id)
            .ok_or_else(|| anyhow::anyhow!("{name} has no builds."))?,
    };
    let output = client.build_output(&name, id)?;
    super::releases::print_push_output(&output.output);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use paas_api::builds::BuildStatus;

    fn build(id: u32, status: BuildStatus, release: Option<u32>) -> Build {
        let at = Utc.with_ymd_and_hms(2026, 11, 22, 1, 0, id).unwrap();
        Build {
            id,
            status,
            commit: format!("{id}a2b3c4d5e6f"),
            user: "alice".parse().unwrap(),
            created_at: at,
            finished_at: Some(at),
            release,
        }
    }

    #[test]
    fn builds_render_newest_first_with_the_release_each_made() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 1, 10, 0).unwrap();
        let builds = [
            build(3, BuildStatus::Pending, None),
            build(2, BuildStatus::Succeeded, Some(1)),
            build(1, BuildStatus::Failed, None),
        ];
        insta::assert_snapshot!(render_builds("web", &builds, now, Style { colour: false }));
        assert_eq!(
            render_builds("web", &[], now, Style { colour: false }),
            "web has no builds.\n"
        );
    }

    #[test]
    fn ids_are_build_numbers() {
        assert_eq!(parse_id("3").unwrap(), 3);
        assert!(parse_id("0").is_err());
        assert!(parse_id("v3").is_err());
    }
}

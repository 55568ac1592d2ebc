//! `releases`, `releases:info`, `releases:output` and `rollback`.

use anyhow::bail;
use chrono::{DateTime, Utc};
use clap::Args;
use paas_api::types::{Release, ReleaseStatus, RollbackRequest};

use super::Context;
use crate::output::{
    Style, key_values, print_json, stdout_is_terminal, table, tenant_text, timestamp_ago,
};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
    /// How many releases to show (at least 1)
    #[arg(short, long, default_value_t = 15, value_parser = clap::value_parser!(u32).range(1..))]
    pub num: u32,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
    /// Release, e.g. v3 [default: the newest release]
    #[arg(value_name = "vN")]
    pub release: Option<String>,
}

#[derive(Debug, Args)]
pub struct OutputArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Release, e.g. v3
    #[arg(value_name = "vN")]
    pub release: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Release to go back to [default: the successful release before the current one]
    #[arg(value_name = "vN")]
    pub release: Option<String>,
}

pub fn list(ctx: &Context, ListArgs { app, json, num }: &ListArgs) -> anyhow::Result<()> {
    let (json, num) = (json.json, *num);
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let mut releases = client.releases(&name, Some(num))?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    if json {
        return print_json(&releases);
    }
    // The current release may be older than the newest `num`: the app says which it is.
    let current = client.app(&name)?.current_release;
    let terminal = stdout_is_terminal();
    let releases: Vec<Release> = releases.iter().map(|r| shown(r, terminal)).collect();
    print!(
        "{}",
        render_releases(&name, current, &releases, Utc::now(), Style::stdout())
    );
    Ok(())
}

/// Heroku's layout: `v5  Deploy 1a2b3c4  alice  2026/11/22 10:00:00 UTC (~ 5m ago)`.
fn render_releases(
    app: &str,
    current: Option<u32>,
    releases: &[Release],
    now: DateTime<Utc>,
    style: Style,
) -> String {
    if releases.is_empty() {
        return format!("{app} has no releases.\n");
    }
    let title = match current {
        Some(v) => format!("{app} Releases - Current: v{v}"),
        None => format!("{app} Releases"),
    };
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            vec![
                format!("v{}", r.version),
                describe(r),
                r.user.to_string(),
                timestamp_ago(r.created_at, now),
            ]
        })
        .collect();
    format!("{}\n{}", style.header(&title), table(&rows))
}

/// The release with every text a tenant controls made safe for the output (see
/// [`tenant_text`]). Names (the user, process types, config keys) passed their rules, which
/// leave nothing to escape.
fn shown(release: &Release, terminal: bool) -> Release {
    let text = |value: &str| tenant_text(value, terminal).into_owned();
    Release {
        description: text(&release.description),
        image: release.image.as_deref().map(text),
        commit: release.commit.as_deref().map(text),
        processes: release
            .processes
            .iter()
            .map(|(process, command)| (process.clone(), command.as_deref().map(text)))
            .collect(),
        config: release
            .config
            .iter()
            .map(|(key, value)| (key.clone(), text(value)))
            .collect(),
        ..release.clone()
    }
}

fn describe(release: &Release) -> String {
    match release.status {
        ReleaseStatus::Succeeded => release.description.clone(),
        ReleaseStatus::Building => format!("{} (building)", release.description),
        ReleaseStatus::Failed => format!("{} (failed)", release.description),
    }
}

/// `v3` or `3` → 3.
pub(crate) fn parse_version(text: &str) -> anyhow::Result<u32> {
    match text.strip_prefix('v').unwrap_or(text).parse::<u32>() {
        Ok(version) if version > 0 => Ok(version),
        _ => bail!("Invalid release {text:?}: use v1, v2, …"),
    }
}

pub fn info(ctx: &Context, InfoArgs { app, json, release }: &InfoArgs) -> anyhow::Result<()> {
    let wanted = release.as_deref().map(parse_version).transpose()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    // As Heroku: without a version, the newest release, whether it succeeded or not.
    let version = match wanted {
        Some(version) => version,
        None => client
            .releases(&name, Some(1))?
            .first()
            .map(|release| release.version)
            .ok_or_else(|| anyhow::anyhow!("{name} has no releases."))?,
    };
    let release = client.release(&name, version)?;
    let json = json.json;
    if json {
        return print_json(&release);
    }
    let release = shown(&release, stdout_is_terminal());
    print!("{}", render_info(&release, Utc::now(), Style::stdout()));
    Ok(())
}

fn render_info(release: &Release, now: DateTime<Utc>, style: Style) -> String {
    let processes = if release.processes.is_empty() {
        "none".to_owned()
    } else {
        release
            .processes
            .iter()
            .map(|(process, command)| match command {
                Some(command) => format!("{process}: {command}"),
                None => format!("{process}: (the image's command)"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let status = match release.status {
        ReleaseStatus::Succeeded => "succeeded",
        ReleaseStatus::Building => "building",
        ReleaseStatus::Failed => "failed",
    };
    let mut out = format!(
        "{}\n{}",
        style.header(&format!("Release v{}", release.version)),
        key_values(&[
            ("By", release.user.as_str()),
            ("Change", &release.description),
            ("Commit", release.commit.as_deref().unwrap_or("none")),
            ("Image", release.image.as_deref().unwrap_or("none")),
            ("Processes", &processes),
            ("Status", status),
            ("When", &timestamp_ago(release.created_at, now)),
        ])
    );
    out.push('\n');
    out.push_str(&style.header(&format!("v{} Config vars", release.version)));
    out.push('\n');
    if release.config.is_empty() {
        out.push_str("none\n");
    } else {
        let pairs: Vec<(&str, &str)> = release
            .config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        out.push_str(&key_values(&pairs));
    }
    out
}

pub fn output(ctx: &Context, OutputArgs { app, release }: &OutputArgs) -> anyhow::Result<()> {
    let version = parse_version(release)?;
    let name = ctx.app(app)?;
    let output = ctx.client()?.release_output(&name, version)?;
    print_push_output(&output.output);
    Ok(())
}

/// What a push (or a change) printed, as gitd kept it: the tenant's text, shown as
/// `releases:output` and `builds:output` both show it.
pub(super) fn print_push_output(output: &str) {
    println!("{}", tenant_text(output.trim_end(), stdout_is_terminal()));
}

pub fn rollback(ctx: &Context, RollbackArgs { app, release }: &RollbackArgs) -> anyhow::Result<()> {
    let wanted = release.as_deref().map(parse_version).transpose()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    // Named up front so the progress line can say where it goes; the server checks again.
    let target = match wanted {
        Some(version) => version,
        None => previous_release(&client.releases(&name, Some(1000))?).ok_or_else(|| {
            anyhow::anyhow!(
                "{name} has no successful release before the current one to roll back to."
            )
        })?,
    };
    let style = Style::stderr();
    progress::action(
        &format!("Rolling back {} to v{target}", style.app(&name)),
        |on_progress| {
            let request = RollbackRequest {
                version: Some(target),
            };
            let release = client.rollback(&name, &request, on_progress)?;
            Ok(((), format!(", v{}", release.version)))
        },
    )
}

/// The newest successful release older than the current one (the newest successful one).
fn previous_release(releases: &[Release]) -> Option<u32> {
    let mut succeeded: Vec<u32> = releases
        .iter()
        .filter(|r| r.status == ReleaseStatus::Succeeded && r.image.is_some())
        .map(|r| r.version)
        .collect();
    succeeded.sort_unstable_by(|a, b| b.cmp(a));
    let current = releases
        .iter()
        .filter(|r| r.status == ReleaseStatus::Succeeded)
        .map(|r| r.version)
        .max()?;
    succeeded.into_iter().find(|version| *version < current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 1, 10, 0)
            .unwrap()
    }

    fn release(version: u32, description: &str, status: ReleaseStatus) -> Release {
        Release {
            version,
            description: description.into(),
            user: "alice".parse().unwrap(),
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 1, 0, version)
                .unwrap(),
            status,
            image: Some(format!("paas/web:v{version}")),
            commit: None,
            processes: Default::default(),
            config: Default::default(),
            resources: Default::default(),
            app_json: Default::default(),
        }
    }

    #[test]
    fn tenant_text_in_releases_is_escaped_on_a_terminal() {
        let mut evil = release(2, "Deploy \x1b]0;owned\x07 abc", ReleaseStatus::Succeeded);
        evil.config = [("GREETING".parse().unwrap(), "hi\x1b[2J".to_owned())].into();
        evil.processes = [("web".parse().unwrap(), Some("run \u{9b}1m".to_owned()))].into();
        let rendered = render_info(&shown(&evil, true), now(), Style { colour: false });
        assert!(
            !rendered.contains(['\x1b', '\x07', '\u{9b}']),
            "{rendered:?}"
        );
        assert!(
            rendered.contains("Change:    Deploy \\x1b]0;owned\\x07 abc\n"),
            "{rendered}"
        );
        assert!(rendered.contains("GREETING: hi\\x1b[2J\n"), "{rendered}");
        assert!(rendered.contains("web: run \\x9b1m"), "{rendered}");
        let listed = render_releases(
            "web",
            Some(2),
            &[shown(&evil, true)],
            now(),
            Style { colour: false },
        );
        assert_eq!(
            listed,
            "=== web Releases - Current: v2\n\
             v2  Deploy \\x1b]0;owned\\x07 abc  alice  2026/11/22 01:00:02 UTC (~ 9m ago)\n"
        );
        assert_eq!(shown(&evil, false), evil, "piped output is untouched");
    }

    #[test]
    fn releases_render_newest_first_like_heroku() {
        let releases = [
            release(3, "Deploy abc1234", ReleaseStatus::Failed),
            release(2, "Unset A config vars", ReleaseStatus::Succeeded),
            release(1, "Set A config vars", ReleaseStatus::Succeeded),
        ];
        assert_eq!(
            render_releases("web", Some(2), &releases, now(), Style { colour: false }),
            "=== web Releases - Current: v2\n\
             v3  Deploy abc1234 (failed)  alice  2026/11/22 01:00:03 UTC (~ 9m ago)\n\
             v2  Unset A config vars      alice  2026/11/22 01:00:02 UTC (~ 9m ago)\n\
             v1  Set A config vars        alice  2026/11/22 01:00:01 UTC (~ 9m ago)\n"
        );
        assert_eq!(
            render_releases("web", None, &[], now(), Style { colour: false }),
            "web has no releases.\n"
        );
        // `-n 1` after a failed deploy: the current release is not among those shown.
        assert_eq!(
            render_releases(
                "web",
                Some(2),
                &releases[..1],
                now(),
                Style { colour: false }
            ),
            "=== web Releases - Current: v2\n\
             v3  Deploy abc1234 (failed)  alice  2026/11/22 01:00:03 UTC (~ 9m ago)\n"
        );
    }

    #[test]
    fn release_info_shows_change_image_and_config() {
        let mut v2 = release(2, "Deploy 1a2b3c4", ReleaseStatus::Succeeded);
        v2.commit = Some("1a2b3c4d".into());
        v2.processes = [("web".parse().unwrap(), None)].into();
        v2.config = [("GREETING".parse().unwrap(), "Howdy".to_owned())].into();
        assert_eq!(
            render_info(&v2, now(), Style { colour: false }),
            "=== Release v2\n\
             By:        alice\n\
             Change:    Deploy 1a2b3c4\n\
             Commit:    1a2b3c4d\n\
             Image:     paas/web:v2\n\
             Processes: web: (the image's command)\n\
             Status:    succeeded\n\
             When:      2026/11/22 01:00:02 UTC (~ 9m ago)\n\
             \n=== v2 Config vars\n\
             GREETING: Howdy\n"
        );
    }

    #[test]
    fn the_default_rollback_target_is_the_successful_release_before_the_current_one() {
        let releases = [
            release(4, "Deploy d", ReleaseStatus::Failed),
            release(3, "Set A config vars", ReleaseStatus::Succeeded),
            release(2, "Deploy b", ReleaseStatus::Failed),
            release(1, "Deploy a", ReleaseStatus::Succeeded),
        ];
        assert_eq!(previous_release(&releases), Some(1));
        assert_eq!(previous_release(&releases[..2]), None);
    }

    #[test]
    fn versions_parse_with_or_without_v() {
        assert_eq!(parse_version("v3").unwrap(), 3);
        assert_eq!(parse_version("3").unwrap(), 3);
        assert!(parse_version("v0").is_err());
        assert!(parse_version("three").is_err());
    }
}

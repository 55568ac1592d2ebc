//! `releases`.

use paas_api::types::{Release, ReleaseStatus};

use super::Context;
use crate::AppArg;
use crate::output::{Style, print_json, table};

pub fn list(ctx: &Context, app: &AppArg, json: bool, num: u32) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let mut releases = ctx.client()?.releases(&name, Some(num))?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    if json {
        return print_json(&releases);
    }
    print!("{}", render_releases(&name, &releases, Style::stdout()));
    Ok(())
}

fn render_releases(app: &str, releases: &[Release], style: Style) -> String {
    if releases.is_empty() {
        return format!("{app} has no releases.\n");
    }
    let current = releases
        .iter()
        .filter(|r| r.status == ReleaseStatus::Succeeded)
        .map(|r| r.version)
        .max();
    let title = match current {
        Some(v) => format!("{app} Releases - Current: v{v}"),
        None => format!("{app} Releases"),
    };
    let rows: Vec<Vec<String>> = releases
        .iter()
        .map(|r| {
            let description = match r.status {
                ReleaseStatus::Succeeded => r.description.clone(),
                ReleaseStatus::Building => format!("{} (building)", r.description),
                ReleaseStatus::Failed => format!("{} (failed)", r.description),
            };
            vec![
                format!("v{}", r.version),
                description,
                r.user.clone(),
                r.created_at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            ]
        })
        .collect();
    format!("{}\n{}", style.header(&title), table(&rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn release(version: u32, description: &str, status: ReleaseStatus) -> Release {
        Release {
            version,
            description: description.into(),
            user: "alice".into(),
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 1, 0, version)
                .unwrap(),
            status,
            image: None,
            commit: None,
            processes: Default::default(),
            config: Default::default(),
        }
    }

    #[test]
    fn releases_render_newest_first_with_the_current_one() {
        let releases = [
            release(3, "Deploy abc1234", ReleaseStatus::Failed),
            release(2, "Unset A config vars", ReleaseStatus::Succeeded),
            release(1, "Set A config vars", ReleaseStatus::Succeeded),
        ];
        assert_eq!(
            render_releases("web", &releases, Style { colour: false }),
            "=== web Releases - Current: v2\n\
             v3  Deploy abc1234 (failed)  alice  2026-11-22 01:00:03 UTC\n\
             v2  Unset A config vars      alice  2026-11-22 01:00:02 UTC\n\
             v1  Set A config vars        alice  2026-11-22 01:00:01 UTC\n"
        );
        assert_eq!(
            render_releases("web", &[], Style { colour: false }),
            "web has no releases.\n"
        );
    }
}

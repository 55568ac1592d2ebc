//! `pg:psql` and `pg:info` (Heroku's): `psql` on a Postgres add-on, signed in as its user
//! (`-c SQL` runs one command; SQL piped on stdin runs as a script, stopping at the first
//! error), exiting with psql's status; and the database's numbers.

use clap::Args;
use paas_api::addons::{AddonKind, PostgresInfo};

use super::Context;
use super::addon_console::{choose, open};
use super::addons::{attachment_list, human_size};
use crate::output::{Style, key_values, print_json, timestamp};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct PsqlArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The postgres add-on [default: the app's only one]
    pub name: Option<String>,
    /// Run this SQL and exit, as `psql -c`
    #[arg(short = 'c', long = "command", value_name = "SQL")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The postgres add-on [default: the app's only one]
    pub name: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn psql(ctx: &Context, PsqlArgs { app, name, command }: &PsqlArgs) -> anyhow::Result<()> {
    open(
        ctx,
        app,
        name.as_deref(),
        AddonKind::Postgres,
        command.clone(),
    )
}

pub fn info(ctx: &Context, InfoArgs { app, name, json }: &InfoArgs) -> anyhow::Result<()> {
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let addon = choose(
        &client,
        &app,
        name.as_deref(),
        AddonKind::Postgres,
        "pg:info",
    )?;
    let info = client.pg_info(&app, &addon)?;
    if json.json {
        return print_json(&info);
    }
    print!("{}", render(&info, Style::stdout()));
    Ok(())
}

/// Heroku's `pg:info` lines, for what paas knows.
fn render(info: &PostgresInfo, style: Style) -> String {
    let stats = &info.stats;
    format!(
        "{}\n{}",
        style.header(&info.name),
        key_values(&[
            ("Data Size", human_size(stats.data_size_bytes)),
            ("Tables", stats.tables.to_string()),
            ("PG Version", stats.version.clone()),
            (
                "Connections",
                format!("{}/{}", stats.connections, stats.max_connections)
            ),
            ("Created", timestamp(stats.created_at)),
            ("App", info.app.to_string()),
            ("Attachments", attachment_list(&info.attachments)),
        ])
    )
}

#[cfg(test)]
mod tests {
    use paas_api::addons::{Attachment, PostgresStats};

    use super::*;

    #[test]
    fn pg_info_shows_herokus_lines() {
        let info = PostgresInfo {
            name: "db".parse().unwrap(),
            app: "web".parse().unwrap(),
            attachments: vec![
                Attachment {
                    app: "web".parse().unwrap(),
                    name: "DATABASE".parse().unwrap(),
                },
                Attachment {
                    app: "worker".parse().unwrap(),
                    name: "MAIN".parse().unwrap(),
                },
            ],
            stats: PostgresStats {
                version: "15.10".to_owned(),
                data_size_bytes: 7_717_379,
                tables: 2,
                connections: 1,
                max_connections: 100,
                created_at: "2026-12-01T10:00:00Z".parse().unwrap(),
            },
        };
        insta::assert_snapshot!("pg_info", render(&info, Style { colour: false }));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["max_connections"], 100, "flat, as the CLI prints it");
    }
}

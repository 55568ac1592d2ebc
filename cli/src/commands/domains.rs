//! `domains`, `domains:add` and `domains:remove`.

use clap::Args;
use paas_api::DomainName;
use paas_api::types::Domain;

use super::Context;
use crate::output::{Style, print_json, table, timestamp};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `domains:add` and `domains:remove`.
#[derive(Debug, Args)]
pub struct HostnameArgs {
    #[command(flatten)]
    pub app: AppArg,
    pub hostname: String,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let domains = ctx.client()?.domains(&name)?;
    let json = json.json;
    if json {
        return print_json(&domains);
    }
    print!("{}", render(&name, &domains, Style::stdout()));
    Ok(())
}

fn render(app: &str, domains: &[Domain], style: Style) -> String {
    if domains.is_empty() {
        return format!("{app} has no custom domains. Add one with `paas domains:add HOST`.\n");
    }
    let mut rows = vec![vec!["Domain Name".to_owned(), "Added".to_owned()]];
    rows.extend(
        domains
            .iter()
            .map(|domain| vec![domain.hostname.to_string(), timestamp(domain.created_at)]),
    );
    format!(
        "{}\n{}",
        style.header(&format!("{app} Custom Domains")),
        table(&rows)
    )
}

pub fn add(ctx: &Context, HostnameArgs { app, hostname }: &HostnameArgs) -> anyhow::Result<()> {
    let hostname: DomainName = hostname.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let style = Style::stderr();
    progress::action(
        &format!("Adding {hostname} to {}", style.app(&name)),
        |on_progress| {
            client.add_domain(&name, &hostname, on_progress)?;
            Ok(((), String::new()))
        },
    )
}

pub fn remove(ctx: &Context, HostnameArgs { app, hostname }: &HostnameArgs) -> anyhow::Result<()> {
    let hostname: DomainName = hostname.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let style = Style::stderr();
    progress::action(
        &format!("Removing {hostname} from {}", style.app(&name)),
        |on_progress| {
            client.remove_domain(&name, &hostname, on_progress)?;
            Ok(((), String::new()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn domains_render_as_a_table() {
        let domains = [Domain {
            hostname: "www.example.test".parse().unwrap(),
            created_at: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 1, 2, 3).unwrap(),
        }];
        assert_eq!(
            render("web", &domains, Style { colour: false }),
            "=== web Custom Domains\n\
             Domain Name       Added\n\
             www.example.test  2026/11/22 01:02:03 UTC\n"
        );
        assert!(render("web", &[], Style { colour: false }).contains("no custom domains"));
    }
}

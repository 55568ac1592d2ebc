//! Add-on consoles (`pg:psql`, `redis:cli`), attached as `paas run` is: a terminal when stdin
//! is one, a pipe otherwise; `paas` exits with the console's status. And which add-on a
//! console, `pg:info` or `pg:backups` acts on: the one named, else the app's add-on of the
//! command's kind attached as that kind's default (`DATABASE`, `REDIS`), else its only one;
//! none, or several, is a one-line error that says what to do.

use std::io::IsTerminal;

use anyhow::bail;
use paas_api::AppName;
use paas_api::addons::{Addon, AddonConsole, AddonKind, AddonName};

use super::Context;
use super::attach::attached;
use crate::AppArg;
use crate::client::Client;

/// Opens the console of the `kind` add-on `name` (or the app's only one), with `sql` as
/// `psql -c`.
pub(super) fn open(
    ctx: &Context,
    app: &AppArg,
    name: Option<&str>,
    kind: AddonKind,
    sql: Option<String>,
) -> anyhow::Result<()> {
    let app = ctx.app(app)?;
    let command = paas_api::addons::console_command(kind);
    let addon = choose(&ctx.client()?, &app, name, kind, command)?;
    let request = AddonConsole {
        kind,
        sql,
        tty: std::io::stdin().is_terminal(),
    };
    attached(
        ctx,
        &app,
        &["addons", &addon, "console"],
        &request,
        request.tty,
    )
}

/// The add-on `name`, or `app`'s default add-on of `kind` when no name is given; `command`
/// is the one a hint to name an add-on shows.
pub(super) fn choose(
    client: &Client,
    app: &AppName,
    name: Option<&str>,
    kind: AddonKind,
    command: &str,
) -> anyhow::Result<AddonName> {
    if let Some(name) = name {
        return Ok(name.parse()?);
    }
    match default_of_kind(app, &client.addons(app)?, kind, command) {
        Ok(name) => Ok(name),
        Err(message) => bail!("{message}"),
    }
}

fn default_of_kind(
    app: &AppName,
    addons: &[Addon],
    kind: AddonKind,
    command: &str,
) -> Result<AddonName, String> {
    let of_kind: Vec<&Addon> = addons.iter().filter(|addon| addon.kind == kind).collect();
    let default_attachment = kind.default_attachment();
    let attached_as_default = of_kind.iter().find(|addon| {
        addon
            .attachments
            .iter()
            .any(|attachment| attachment.app == *app && attachment.name == default_attachment)
    });
    if let Some(addon) = attached_as_default {
        return Ok(addon.name.clone());
    }
    let names: Vec<&AddonName> = of_kind.iter().map(|addon| &addon.name).collect();
    match names[..] {
        [only] => Ok(only.clone()),
        [] => Err(format!(
            "{app} has no {kind} add-on: create one with `paas addons:create {kind} -a {app}`."
        )),
        [first, ..] => {
            let listed: Vec<&str> = names.iter().map(|name| name.as_str()).collect();
            Err(format!(
                "{app} has several {kind} add-ons ({}): name one, e.g. `paas {command} {first} -a {app}`.",
                listed.join(", ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addon(name: &str, kind: AddonKind) -> Addon {
        Addon {
            name: name.parse().unwrap(),
            kind,
            app: "web".parse().unwrap(),
            attachments: Vec::new(),
            status: None,
        }
    }

    #[test]
    fn the_only_add_on_of_the_kind_is_chosen_and_none_or_several_are_explained() {
        let app: AppName = "web".parse().unwrap();
        let addons = [
            addon("db", AddonKind::Postgres),
            addon("cache", AddonKind::Redis),
        ];
        assert_eq!(
            default_of_kind(&app, &addons, AddonKind::Redis, "redis:cli").unwrap(),
            "cache"
        );
        assert_eq!(
            default_of_kind(&app, &addons[..1], AddonKind::Redis, "redis:cli").unwrap_err(),
            "web has no redis add-on: create one with `paas addons:create redis -a web`."
        );
        let two = [addons[0].clone(), addon("reports", AddonKind::Postgres)];
        assert_eq!(
            default_of_kind(&app, &two, AddonKind::Postgres, "pg:psql").unwrap_err(),
            "web has several postgres add-ons (db, reports): name one, e.g. `paas pg:psql db -a web`."
        );
    }

    #[test]
    fn the_add_on_attached_as_the_default_wins_over_others_of_its_kind() {
        let app: AppName = "web".parse().unwrap();
        let mut database = addon("reports", AddonKind::Postgres);
        database.attachments = vec![paas_api::addons::Attachment {
            app: app.clone(),
            name: AddonKind::Postgres.default_attachment(),
        }];
        let mut elsewhere = addon("db", AddonKind::Postgres);
        elsewhere.attachments = vec![paas_api::addons::Attachment {
            app: "other".parse().unwrap(),
            name: AddonKind::Postgres.default_attachment(),
        }];
        assert_eq!(
            default_of_kind(&app, &[elsewhere, database], AddonKind::Postgres, "pg:info").unwrap(),
            "reports"
        );
    }
}

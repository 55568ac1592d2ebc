//! Add-on consoles (`pg:psql`, `redis:cli`), attached as `paas run` is: a terminal when stdin
//! is one, a pipe otherwise; `paas` exits with the console's status. And which add-on a
//! console or `pg:info` acts on: the one named, else the app's only add-on of the command's
//! kind; none, or several, is a one-line error that says what to do.

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
    let addon = choose(&ctx.client()?, &app, name, kind)?;
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

/// The add-on `name`, or the one add-on of `kind` attached to `app` when no name is given.
pub(super) fn choose(
    client: &Client,
    app: &AppName,
    name: Option<&str>,
    kind: AddonKind,
) -> anyhow::Result<AddonName> {
    if let Some(name) = name {
        return Ok(name.parse()?);
    }
    match only_of_kind(app, &client.addons(app)?, kind) {
        Ok(name) => Ok(name),
        Err(message) => bail!("{message}"),
    }
}

fn only_of_kind(app: &AppName, addons: &[Addon], kind: AddonKind) -> Result<AddonName, String> {
    let names: Vec<&AddonName> = addons
        .iter()
        .filter(|addon| addon.kind == kind)
        .map(|addon| &addon.name)
        .collect();
    let command = paas_api::addons::console_command(kind);
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
            only_of_kind(&app, &addons, AddonKind::Redis).unwrap(),
            "cache"
        );
        assert_eq!(
            only_of_kind(&app, &addons[..1], AddonKind::Redis).unwrap_err(),
            "web has no redis add-on: create one with `paas addons:create redis -a web`."
        );
        let two = [addons[0].clone(), addon("reports", AddonKind::Postgres)];
        assert_eq!(
            only_of_kind(&app, &two, AddonKind::Postgres).unwrap_err(),
            "web has several postgres add-ons (db, reports): name one, e.g. `paas pg:psql db -a web`."
        );
    }
}

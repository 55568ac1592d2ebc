//! `maintenance`, `maintenance:on` and `maintenance:off`: whether the app's hosts answer 503
//! with a maintenance page while its processes keep running.

use clap::Args;

use super::Context;
use crate::output::{Style, action, print_json};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `maintenance:on` and `maintenance:off`.
#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub app: AppArg,
}

/// Heroku prints the state alone: `on` or `off`.
pub fn show(ctx: &Context, ShowArgs { app, json }: &ShowArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let maintenance = ctx.client()?.maintenance(&name)?;
    if json.json {
        return print_json(&maintenance);
    }
    println!("{}", super::sticky::on_off(maintenance.enabled));
    Ok(())
}

pub fn set(ctx: &Context, SetArgs { app }: &SetArgs, enabled: bool) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let verb = if enabled { "Enabling" } else { "Disabling" };
    let style = Style::stderr();
    action(
        &format!("{verb} maintenance mode for {}", style.app(&name)),
        || {
            client.set_maintenance(&name, enabled)?;
            Ok(((), String::new()))
        },
    )
}

//! `ps:sticky [on|off]`: whether a browser keeps reaching the `web` instance that first
//! answered it (a cookie Traefik sets), shown without an argument.

use clap::{Args, ValueEnum};

use super::Context;
use crate::output::{Style, print_json};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Toggle {
    On,
    Off,
}

#[derive(Debug, Args)]
pub struct StickyArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
    /// Turn sticky sessions on or off (rolls `web` out again); without it, show the state
    pub state: Option<Toggle>,
}

pub fn on_off(enabled: bool) -> &'static str {
    if enabled { "on" } else { "off" }
}

pub fn sticky(ctx: &Context, StickyArgs { app, json, state }: &StickyArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let Some(state) = state else {
        let sticky = client.sticky_sessions(&name)?;
        if json.json {
            return print_json(&sticky);
        }
        println!("{}", on_off(sticky.enabled));
        return Ok(());
    };
    let enabled = *state == Toggle::On;
    let style = Style::stderr();
    let sticky = progress::action(
        &format!(
            "Turning sticky sessions {} for {}",
            on_off(enabled),
            style.app(&name)
        ),
        |on_progress| {
            let sticky = client.set_sticky_sessions(&name, enabled, on_progress)?;
            Ok((sticky, String::new()))
        },
    )?;
    if json.json {
        print_json(&sticky)?;
    }
    Ok(())
}

//! `redis:cli` (Heroku's): `redis-cli` on a Redis add-on, signed in with its password; commands
//! are typed on a terminal or piped on stdin.

use clap::Args;
use paas_api::addons::AddonKind;

use super::Context;
use super::addon_console::open;
use crate::AppArg;

#[derive(Debug, Args)]
pub struct CliArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The redis add-on [default: the app's only one]
    pub name: Option<String>,
}

pub fn cli(ctx: &Context, CliArgs { app, name }: &CliArgs) -> anyhow::Result<()> {
    open(ctx, app, name.as_deref(), AddonKind::Redis, None)
}

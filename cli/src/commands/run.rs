//! `run:detached`: a command in a one-off container of the app's current release, its output
//! in `paas logs` as `run.N`.

use clap::Args;
use paas_api::oneoff::RunRequest;
use paas_api::resources::{ProcessResources, parse_size};

use super::Context;
use super::config_vars::parse_assignments;
use crate::AppArg;
use crate::output::Style;

#[derive(Debug, Args)]
pub struct RunDetachedArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// A config var for this run only (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Memory and CPUs of the one-off: 512M, 0.5 or 1G,2 [default: the host's]
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size)]
    pub size: Option<ProcessResources>,
    /// The command and its arguments, run with /bin/sh -c (put them after `--`)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn detached(ctx: &Context, args: &RunDetachedArgs) -> anyhow::Result<()> {
    let name = ctx.app(&args.app)?;
    let request = RunRequest {
        command: args.command.clone(),
        env: parse_assignments(&args.env)?.into_iter().collect(),
        size: args.size.unwrap_or_default(),
    };
    let command = request.command_line().map_err(anyhow::Error::msg)?;
    let started = ctx.client()?.run_detached(&name, &request)?;
    eprintln!(
        "Running `{command}` on {}... up, {}",
        Style::stderr().app(&name),
        started.name
    );
    eprintln!(
        "Use `paas logs -a {name} -p {}` to view the output.",
        started.name
    );
    println!("{}", started.name);
    Ok(())
}

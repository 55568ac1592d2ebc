//! `paas`, the user's command-line tool for a paas server, with Heroku's verbs and output
//! (`paas login`, `paas apps:create`, `paas config:set K=V`, …). It talks HTTP+JSON to
//! paas-gitd only, keeps its settings under `$XDG_CONFIG_HOME/paas` and its token in the
//! system keyring (or a 0600 file where there is none). It never touches the server's data
//! directory, Docker or the database.
//!
//! Exit status: 0 success, 1 error (one `error: …` line on stderr), 2 usage error.

mod client;
mod commands;
mod config;
mod credentials;
mod git;
mod output;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "paas",
    version,
    about = "Deploy and manage apps on a paas server",
    propagate_version = true,
    disable_help_subcommand = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// `-a/--app`: the app to act on; defaults to the one the `paas` git remote points at.
#[derive(Debug, Clone, Args)]
pub struct AppArg {
    /// App to run the command against [default: the app of the `paas` git remote]
    #[arg(short, long, value_name = "NAME")]
    pub app: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct JsonArg {
    /// Print JSON instead of text
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in to a paas server and keep the token
    Login {
        /// Server URL [default: PAAS_SERVER, the last server, or http://127.0.0.1:8750]
        #[arg(long, value_name = "URL")]
        server: Option<String>,
        /// Username [prompted for on a terminal]
        #[arg(long, short = 'u', value_name = "USER")]
        username: Option<String>,
        /// Read the password from standard input
        #[arg(long)]
        password_stdin: bool,
    },
    /// Revoke the token on the server and forget it
    Logout,
    /// Show the logged-in user
    Whoami {
        #[command(flatten)]
        json: JsonArg,
    },
    /// List your apps and the apps you collaborate on
    #[command(name = "apps", visible_alias = "apps:list")]
    Apps {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Create an app; inside a git repository also add the `paas` remote
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate {
        /// Name of the app [default: the server picks one]
        name: Option<String>,
        /// Git remote to add
        #[arg(short, long, default_value = git::DEFAULT_REMOTE)]
        remote: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show an app's details
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Permanently destroy an app, its repository and its config
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy {
        /// App to destroy (same as -a)
        #[arg(value_name = "NAME", conflicts_with = "app")]
        name: Option<String>,
        #[command(flatten)]
        app: AppArg,
        /// Skip the prompt by repeating the app's name
        #[arg(long, value_name = "NAME")]
        confirm: Option<String>,
    },
    /// Add or fix the `paas` git remote of the current repository
    #[command(name = "git:remote")]
    GitRemote {
        #[command(flatten)]
        app: AppArg,
        /// Git remote to set
        #[arg(short, long, default_value = git::DEFAULT_REMOTE)]
        remote: String,
    },
    /// List your SSH keys
    Keys {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add an SSH public key [default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub]
    #[command(name = "keys:add")]
    KeysAdd {
        /// Public key file
        path: Option<PathBuf>,
    },
    /// Remove an SSH key by id or fingerprint
    #[command(name = "keys:remove")]
    KeysRemove {
        /// Key id or `SHA256:…` fingerprint (see `paas keys`)
        key: String,
    },
    /// Show an app's config vars
    Config {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
        /// Print KEY=value lines for a shell or an .env file
        #[arg(short, long, conflicts_with = "json")]
        shell: bool,
    },
    /// Print one config var's value
    #[command(name = "config:get")]
    ConfigGet {
        #[command(flatten)]
        app: AppArg,
        key: String,
    },
    /// Set config vars (makes a new release)
    #[command(name = "config:set")]
    ConfigSet {
        #[command(flatten)]
        app: AppArg,
        /// KEY=VALUE pairs
        #[arg(required = true, value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Unset config vars (makes a new release)
    #[command(name = "config:unset")]
    ConfigUnset {
        #[command(flatten)]
        app: AppArg,
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
    },
    /// List an app's releases, newest first
    Releases {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
        /// How many releases to show
        #[arg(short, long, default_value_t = 15)]
        num: u32,
    },
    /// Show one release: who made it, what changed, its image and config
    #[command(name = "releases:info")]
    ReleasesInfo {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
        /// Release, e.g. v3
        #[arg(value_name = "vN")]
        release: String,
    },
    /// Print the build and rollout output of a release
    #[command(name = "releases:output")]
    ReleasesOutput {
        #[command(flatten)]
        app: AppArg,
        /// Release, e.g. v3
        #[arg(value_name = "vN")]
        release: String,
    },
    /// Roll back to an earlier release's code and config (makes a new release)
    #[command(name = "rollback", visible_alias = "releases:rollback")]
    Rollback {
        #[command(flatten)]
        app: AppArg,
        /// Release to go back to [default: the successful release before the current one]
        #[arg(value_name = "vN")]
        release: Option<String>,
    },
    /// Show the app's logs and platform events, or follow them live
    Logs {
        #[command(flatten)]
        app: AppArg,
        /// How many lines to show
        #[arg(short, long, value_name = "N", default_value_t = 100)]
        num: usize,
        /// Keep streaming new lines until Ctrl-C
        #[arg(short, long, visible_short_alias = 'f', visible_alias = "follow")]
        tail: bool,
        /// Only this process type (web, worker, …)
        #[arg(short, long, visible_alias = "ps", value_name = "PROCESS")]
        process: Option<String>,
        /// Only the app's own output (app) or platform events (paas)
        #[arg(short, long, value_name = "SOURCE", value_parser = ["app", "paas"])]
        source: Option<String>,
    },
    /// List the app's custom domains
    Domains {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Route a custom domain (www.example.com or *.example.com) to the app
    #[command(name = "domains:add")]
    DomainsAdd {
        #[command(flatten)]
        app: AppArg,
        hostname: String,
    },
    /// Stop routing a custom domain to the app
    #[command(name = "domains:remove")]
    DomainsRemove {
        #[command(flatten)]
        app: AppArg,
        hostname: String,
    },
    /// List the app's features (container lock-downs) and whether each is on
    Features {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Turn a feature on (non-root, read-only-fs) and roll the app out with it
    #[command(name = "features:enable")]
    FeaturesEnable {
        #[command(flatten)]
        app: AppArg,
        feature: String,
    },
    /// Turn a feature off and roll the app out without it
    #[command(name = "features:disable")]
    FeaturesDisable {
        #[command(flatten)]
        app: AppArg,
        feature: String,
    },
    /// Print the app's URL (and open it in a browser on a desktop)
    Open {
        #[command(flatten)]
        app: AppArg,
    },
    /// List users (admins only)
    Users {
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add a user (admins only)
    #[command(name = "users:add")]
    UsersAdd {
        username: String,
        /// Make the user an admin
        #[arg(long)]
        admin: bool,
        /// Read the new user's password from standard input
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Remove a user (admins only)
    #[command(name = "users:remove")]
    UsersRemove { username: String },
    /// List who can access an app
    Access {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Give a user access to an app
    #[command(name = "access:add")]
    AccessAdd {
        #[command(flatten)]
        app: AppArg,
        username: String,
    },
    /// Take a user's access to an app away
    #[command(name = "access:remove")]
    AccessRemove {
        #[command(flatten)]
        app: AppArg,
        username: String,
    },
    /// List an app's processes and their state
    Ps {
        #[command(flatten)]
        app: AppArg,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Scale process types (web=3 worker=1, web+1, web-1) and wait until they run
    #[command(name = "scale", visible_alias = "ps:scale")]
    Scale {
        #[command(flatten)]
        app: AppArg,
        /// TYPE=N, TYPE+N or TYPE-N
        #[arg(required = true, value_name = "TYPE=N")]
        changes: Vec<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Restart an app's processes (web without downtime)
    #[command(name = "restart", visible_alias = "ps:restart")]
    Restart {
        #[command(flatten)]
        app: AppArg,
        /// Only this process type [default: all]
        process: Option<String>,
    },
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        clap_complete::generate(shell, &mut Cli::command(), "paas", &mut std::io::stdout());
        return ExitCode::SUCCESS;
    }
    match commands::run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}");
            eprintln!("error: {}", message.lines().collect::<Vec<_>>().join(" "));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn heroku_style_names_parse() {
        let cli = Cli::try_parse_from(["paas", "config:set", "-a", "web", "A=1", "B=2"]).unwrap();
        match cli.command {
            Command::ConfigSet { app, pairs } => {
                assert_eq!(app.app.as_deref(), Some("web"));
                assert_eq!(pairs, ["A=1", "B=2"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["paas", "config:set", "-a", "web"]).is_err());
    }
}

//! `paas`, the user's command-line tool for a paas server, with Heroku's verbs and output
//! (`paas login`, `paas apps:create`, `paas config:set K=V`, …). It talks HTTP+JSON to
//! paas-gitd only, keeps its settings under `$XDG_CONFIG_HOME/paas` and its token in the
//! system keyring (or a 0600 file where there is none). It never touches the server's data
//! directory, Docker or the database.
//!
//! Exit status: 0 success, 1 error (one `error: …` line on stderr), 2 usage error.

mod client;
mod commands;
mod completions;
mod config;
mod credentials;
mod git;
mod help;
mod output;
mod progress;
mod terminal;

use std::process::ExitCode;

use clap::{Args, FromArgMatches, Parser, Subcommand};

use commands::{
    access, addons, apps, attach, auth, builds, config_vars, cron, domains, features, keys, logs,
    maintenance, metrics, nodes, open, pg, pg_backups, ps, redis, releases, resize, run, sticky,
    storage, users, webhooks,
};

#[derive(Debug, Parser)]
#[command(
    name = "paas",
    version,
    about = "Deploy and manage apps on a paas server",
    propagate_version = true
)]
pub struct Cli {
    /// None for a bare `paas`, which shows the help (as a bare `heroku` does).
    #[command(subcommand)]
    command: Option<Command>,
}

/// `-a/--app` or `-r/--remote`: the app to act on; defaults to the one the `paas` git remote
/// points at, else the one the repository's only remote on this server points at.
#[derive(Debug, Clone, Default, Args)]
pub struct AppArg {
    /// App to run the command against [default: the app of the `paas` git remote]
    #[arg(short, long, value_name = "NAME")]
    pub app: Option<String>,
    /// Git remote of the app to run the command against
    #[arg(short, long, value_name = "REMOTE", conflicts_with = "app")]
    pub remote: Option<String>,
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
    Login(auth::LoginArgs),
    /// Revoke the token on the server and forget it
    Logout,
    /// Show the logged-in user
    Whoami(auth::WhoamiArgs),
    /// List your apps and the apps you collaborate on
    #[command(name = "apps", visible_alias = "apps:list")]
    Apps(apps::ListArgs),
    /// Create an app; inside a git repository also add the `paas` remote
    #[command(name = "apps:create", visible_alias = "create")]
    AppsCreate(apps::CreateArgs),
    /// Show an app's details
    #[command(name = "apps:info", visible_alias = "info")]
    AppsInfo(apps::InfoArgs),
    /// Permanently destroy an app, its repository and its config
    #[command(name = "apps:destroy", visible_alias = "destroy")]
    AppsDestroy(apps::DestroyArgs),
    /// Add or fix the `paas` git remote of the current repository
    #[command(name = "git:remote")]
    GitRemote(apps::GitRemoteArgs),
    /// Clone an app's repository, with a `paas` remote pointing at it
    #[command(name = "git:clone")]
    GitClone(apps::GitCloneArgs),
    /// List your SSH keys
    Keys(keys::ListArgs),
    /// Add an SSH public key [default: ~/.ssh/id_ed25519.pub, id_ecdsa.pub or id_rsa.pub]
    #[command(name = "keys:add")]
    KeysAdd(keys::AddArgs),
    /// Remove an SSH key by id or fingerprint
    #[command(name = "keys:remove")]
    KeysRemove(keys::RemoveArgs),
    /// Show an app's config vars
    Config(config_vars::ShowArgs),
    /// Print one config var's value
    #[command(name = "config:get")]
    ConfigGet(config_vars::GetArgs),
    /// Set config vars (makes a new release)
    #[command(name = "config:set")]
    ConfigSet(config_vars::SetArgs),
    /// Unset config vars (makes a new release)
    #[command(name = "config:unset")]
    ConfigUnset(config_vars::UnsetArgs),
    /// List an app's releases, newest first
    Releases(releases::ListArgs),
    /// Show one release: who made it, what changed, its image and config
    #[command(name = "releases:info")]
    ReleasesInfo(releases::InfoArgs),
    /// Print the build and rollout output of a release
    #[command(name = "releases:output")]
    ReleasesOutput(releases::OutputArgs),
    /// Roll back to an earlier release's code and config (makes a new release)
    #[command(name = "rollback", visible_alias = "releases:rollback")]
    Rollback(releases::RollbackArgs),
    /// List an app's builds, newest first: each push that got as far as building
    Builds(builds::ListArgs),
    /// Print a build's output [default: the newest build's]
    #[command(name = "builds:output")]
    BuildsOutput(builds::OutputArgs),
    /// Show the app's logs and platform events, or follow them live
    Logs(logs::LogsArgs),
    /// Show the app's CPU, memory and request metrics over the last hour or day
    Metrics(metrics::MetricsArgs),
    /// List the app's custom domains
    Domains(domains::ListArgs),
    /// Route a custom domain (www.example.com or *.example.com) to the app
    #[command(name = "domains:add")]
    DomainsAdd(domains::HostnameArgs),
    /// Stop routing a custom domain to the app
    #[command(name = "domains:remove")]
    DomainsRemove(domains::HostnameArgs),
    /// List the app's webhooks
    Webhooks(webhooks::ListArgs),
    /// Post the app's events (deploys, crashes, rollbacks, scaling) to a URL, signed
    #[command(name = "webhooks:add")]
    WebhooksAdd(webhooks::AddArgs),
    /// Stop posting the app's events to a webhook
    #[command(name = "webhooks:remove")]
    WebhooksRemove(webhooks::RemoveArgs),
    /// Show the latest attempts to post the app's events, and what happens next
    #[command(name = "webhooks:deliveries")]
    WebhooksDeliveries(webhooks::DeliveriesArgs),
    /// List the app's features (container lock-downs) and whether each is on
    Features(features::ListArgs),
    /// Turn a feature on (non-root, read-only-fs) and roll the app out with it
    #[command(name = "features:enable")]
    FeaturesEnable(features::FeatureArgs),
    /// Turn a feature off and roll the app out without it
    #[command(name = "features:disable")]
    FeaturesDisable(features::FeatureArgs),
    /// List the cron jobs of the app's app.json with their next and last run (UTC)
    Cron(cron::ListArgs),
    /// Show the health checks new web instances must pass (app.json's healthchecks)
    Checks(cron::ListArgs),
    /// Print the app's URL (and open it in a browser on a desktop)
    Open(open::OpenArgs),
    /// List users (admins only)
    Users(users::ListArgs),
    /// Add a user (admins only)
    #[command(name = "users:add")]
    UsersAdd(users::AddArgs),
    /// Remove a user (admins only)
    #[command(name = "users:remove")]
    UsersRemove(users::RemoveArgs),
    /// List the platform's nodes and the app instances on each (admins only)
    Nodes(nodes::ListArgs),
    /// Move the work off a Swarm node and place none there (admins only)
    #[command(name = "nodes:drain")]
    NodesDrain(nodes::AvailabilityArgs),
    /// Let Swarm place work on a drained node again (admins only)
    #[command(name = "nodes:activate")]
    NodesActivate(nodes::AvailabilityArgs),
    /// List who can access an app
    Access(access::ListArgs),
    /// Give a user access to an app
    #[command(name = "access:add")]
    AccessAdd(access::UserArgs),
    /// Take a user's access to an app away
    #[command(name = "access:remove")]
    AccessRemove(access::UserArgs),
    /// List an app's processes and their state
    Ps(ps::ListArgs),
    /// Scale process types (web=3 worker=1, web+1, web-1) and wait until they run
    #[command(name = "scale", visible_alias = "ps:scale")]
    Scale(ps::ScaleArgs),
    /// Restart an app's processes, one type (web) or one instance (web.1); web without downtime
    #[command(name = "restart", visible_alias = "ps:restart")]
    Restart(ps::RestartArgs),
    /// Stop one instance (web.1), every instance of a type (web) or a one-off (run.1); it stays
    /// stopped until a restart, a scale or a new release
    #[command(name = "ps:stop")]
    PsStop(ps::StopArgs),
    /// Set the memory and CPU limits of a process type (--memory 256M --cpus 0.5; makes a
    /// new release), or list them
    #[command(name = "ps:resize")]
    Resize(resize::ResizeArgs),
    /// Run a command in a one-off container of the current release, attached to the terminal
    Run(attach::RunArgs),
    /// Run a command (default /bin/sh) in a running instance of the app, attached
    #[command(name = "ps:exec")]
    PsExec(attach::ExecArgs),
    /// Run a command in a one-off container of the current release, in the background
    #[command(name = "run:detached")]
    RunDetached(run::RunDetachedArgs),
    /// Show whether the app is in maintenance mode (on or off)
    Maintenance(maintenance::ShowArgs),
    /// Answer every request to the app with a 503 maintenance page; its processes keep running
    #[command(name = "maintenance:on")]
    MaintenanceOn(maintenance::SetArgs),
    /// Route requests to the app again
    #[command(name = "maintenance:off")]
    MaintenanceOff(maintenance::SetArgs),
    /// Keep each browser on the web instance that first answered it (on or off), or show it
    #[command(name = "ps:sticky")]
    Sticky(sticky::StickyArgs),
    /// List an app's volumes and where they are mounted
    Storage(storage::ListArgs),
    /// Mount the app's volume NAME (made on first use) at /path in all its containers (makes a
    /// new release)
    #[command(name = "storage:mount")]
    StorageMount(storage::MountArgs),
    /// Unmount a volume from /path (makes a new release; the volume keeps its files)
    #[command(name = "storage:unmount")]
    StorageUnmount(storage::MountArgs),
    /// Destroy an unmounted volume and its files (--confirm APP)
    #[command(name = "storage:destroy")]
    StorageDestroy(storage::DestroyArgs),
    /// List the add-ons attached to an app: name, kind, version, state, size on disk
    Addons(addons::ListArgs),
    /// Create a postgres or redis add-on on the app and set DATABASE_URL or REDIS_URL (makes a
    /// new release)
    #[command(name = "addons:create")]
    AddonsCreate(addons::CreateArgs),
    /// Show an add-on: its kind, attachments, state, version and size
    #[command(name = "addons:info")]
    AddonsInfo(addons::InfoArgs),
    /// Attach one of your add-ons to another of your apps (makes a new release there)
    #[command(name = "addons:attach")]
    AddonsAttach(addons::AttachArgs),
    /// Detach an add-on from an app and unset its var (makes a new release)
    #[command(name = "addons:detach")]
    AddonsDetach(addons::DetachArgs),
    /// Destroy an add-on and all its data (--confirm NAME; --force if attached elsewhere)
    #[command(name = "addons:destroy")]
    AddonsDestroy(addons::DestroyArgs),
    /// List the backups of the app's Postgres add-ons: id, time, size, status, add-on
    #[command(name = "pg:backups")]
    PgBackups(pg_backups::ListArgs),
    /// Capture a backup of a Postgres add-on (pg_dump, kept on the server)
    #[command(name = "pg:backups:capture")]
    PgBackupsCapture(pg_backups::CaptureArgs),
    /// Replace a Postgres add-on's data with a backup, in one transaction (--confirm APP)
    #[command(name = "pg:backups:restore")]
    PgBackupsRestore(pg_backups::RestoreArgs),
    /// Download a backup as a pg_dump custom-format file (latest.dump)
    #[command(name = "pg:backups:download")]
    PgBackupsDownload(pg_backups::DownloadArgs),
    /// Delete a backup (--confirm APP)
    #[command(name = "pg:backups:delete")]
    PgBackupsDelete(pg_backups::DeleteArgs),
    /// Open psql on a postgres add-on (default: the app's only one); -c SQL runs one command,
    /// SQL piped on stdin runs as a script; exits with psql's status
    #[command(name = "pg:psql")]
    PgPsql(pg::PsqlArgs),
    /// Show a postgres add-on's version, data size, tables, connections and attachments
    #[command(name = "pg:info")]
    PgInfo(pg::InfoArgs),
    /// Open redis-cli on a redis add-on (default: the app's only one); commands may be piped
    /// on stdin
    #[command(name = "redis:cli")]
    RedisCli(redis::CliArgs),
    /// Print a shell completion script
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let matches = help::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    let command = match cli.command {
        None => {
            print!("{}", help::command().render_help());
            return ExitCode::SUCCESS;
        }
        Some(Command::Completions { shell }) => {
            return match completions::print(shell, &mut std::io::stdout()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("error: {error}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(command) => command,
    };
    match commands::run(command) {
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
        help::command().debug_assert();
    }

    #[test]
    fn a_bare_paas_is_not_a_usage_error() {
        let cli = Cli::try_parse_from(["paas"]).unwrap();
        assert!(cli.command.is_none(), "main shows the help and exits 0");
        let error = help::command()
            .try_get_matches_from(["paas", "help", "logs"])
            .unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::DisplayHelp);
        assert_eq!(error.exit_code(), 0);
    }

    #[test]
    fn heroku_style_names_parse() {
        let cli = Cli::try_parse_from(["paas", "config:set", "-a", "web", "A=1", "B=2"]).unwrap();
        match cli.command.unwrap() {
            Command::ConfigSet(args) => {
                assert_eq!(args.app.app.as_deref(), Some("web"));
                assert_eq!(args.pairs, ["A=1", "B=2"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["paas", "config:set", "-a", "web"]).is_err());
    }

    #[test]
    fn an_app_is_named_by_app_or_by_remote_not_both() {
        let cli = Cli::try_parse_from(["paas", "ps", "-r", "staging"]).unwrap();
        match cli.command.unwrap() {
            Command::Ps(args) => {
                assert_eq!(args.app.remote.as_deref(), Some("staging"));
                assert_eq!(args.app.app, None);
            }
            other => panic!("parsed as {other:?}"),
        }
        let error =
            Cli::try_parse_from(["paas", "ps", "-a", "web", "--remote", "staging"]).unwrap_err();
        assert_eq!(error.kind(), clap::error::ErrorKind::ArgumentConflict);
        let cli = Cli::try_parse_from(["paas", "git:clone", "-a", "web", "src/web"]).unwrap();
        match cli.command.unwrap() {
            Command::GitClone(args) => {
                assert_eq!(args.app, "web");
                assert_eq!(args.directory.as_deref(), Some("src/web".as_ref()));
                assert_eq!(args.remote, "paas");
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["paas", "git:clone"]).is_err());
    }

    #[test]
    fn run_detached_takes_its_command_after_the_options() {
        let cli = Cli::try_parse_from([
            "paas",
            "run:detached",
            "-a",
            "web",
            "-e",
            "A=1",
            "--",
            "echo",
            "-a",
            "hi",
        ])
        .unwrap();
        match cli.command.unwrap() {
            Command::RunDetached(args) => {
                assert_eq!(args.app.app.as_deref(), Some("web"));
                assert_eq!(args.env, ["A=1"]);
                assert_eq!(args.command, ["echo", "-a", "hi"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["paas", "run:detached", "-a", "web"]).is_err());
    }

    #[test]
    fn run_and_ps_exec_take_their_command_after_the_options() {
        let cli = Cli::try_parse_from(["paas", "run", "-a", "web", "--no-tty", "--", "sh", "-x"])
            .unwrap();
        match cli.command.unwrap() {
            Command::Run(args) => {
                assert!(args.no_tty);
                assert_eq!(args.command, ["sh", "-x"]);
            }
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["paas", "ps:exec", "-d", "web.1"]).unwrap();
        match cli.command.unwrap() {
            Command::PsExec(args) => {
                assert_eq!(args.dyno, "web.1");
                assert!(
                    args.command.is_empty(),
                    "the default shell is the command's to pick"
                );
            }
            other => panic!("parsed as {other:?}"),
        }
        assert!(Cli::try_parse_from(["paas", "run", "-a", "web"]).is_err());
        assert!(Cli::try_parse_from(["paas", "ps:exec", "--", "sh"]).is_err());
    }
}

//! One module per topic, each owning its commands' clap `Args` structs beside their code;
//! [`run`] dispatches a parsed command. [`Context`] resolves what every command needs: the
//! server, the token, the app. Commands talk to gitd through [`Client`]'s typed methods only.

pub mod access;
mod addon_console;
pub mod addons;
pub mod apps;
pub mod attach;
pub mod auth;
pub mod builds;
pub mod config_vars;
pub mod cron;
pub mod domains;
pub mod features;
pub mod keys;
pub mod logs;
pub mod maintenance;
pub mod metrics;
pub mod nodes;
pub mod open;
pub mod pg;
pub mod pg_backups;
pub mod ps;
pub mod redis;
pub mod releases;
pub mod resize;
pub mod run;
pub mod sticky;
pub mod storage;
pub mod users;
pub mod webhooks;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use paas_api::AppName;

use crate::client::Client;
use crate::config::{DEFAULT_SERVER, Settings, config_dir, normalize_server};
use crate::credentials::CredentialStore;
use crate::{AppArg, Command, git};

pub fn run(command: Command) -> anyhow::Result<()> {
    let mut ctx = Context::load()?;
    dispatch(&mut ctx, command)
}

fn dispatch(ctx: &mut Context, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Login(args) => auth::login(ctx, args),
        Command::Logout => auth::logout(ctx),
        Command::Whoami(args) => auth::whoami(ctx, &args),
        Command::Apps(args) => apps::list(ctx, &args),
        Command::AppsCreate(args) => apps::create(ctx, &args),
        Command::AppsInfo(args) => apps::info(ctx, &args),
        Command::AppsDestroy(args) => apps::destroy(ctx, &args),
        Command::GitRemote(args) => apps::git_remote(ctx, &args),
        Command::GitClone(args) => apps::git_clone(ctx, &args),
        Command::Keys(args) => keys::list(ctx, &args),
        Command::KeysAdd(args) => keys::add(ctx, &args),
        Command::KeysRemove(args) => keys::remove(ctx, &args),
        Command::Config(args) => config_vars::show(ctx, &args),
        Command::ConfigGet(args) => config_vars::get(ctx, &args),
        Command::ConfigSet(args) => config_vars::set(ctx, &args),
        Command::ConfigUnset(args) => config_vars::unset(ctx, &args),
        Command::Releases(args) => releases::list(ctx, &args),
        Command::ReleasesInfo(args) => releases::info(ctx, &args),
        Command::ReleasesOutput(args) => releases::output(ctx, &args),
        Command::Rollback(args) => releases::rollback(ctx, &args),
        Command::Builds(args) => builds::list(ctx, &args),
        Command::BuildsOutput(args) => builds::output(ctx, &args),
        Command::Logs(args) => logs::show(ctx, &args),
        Command::Metrics(args) => metrics::show(ctx, &args),
        Command::Domains(args) => domains::list(ctx, &args),
        Command::DomainsAdd(args) => domains::add(ctx, &args),
        Command::DomainsRemove(args) => domains::remove(ctx, &args),
        Command::Features(args) => features::list(ctx, &args),
        Command::Cron(args) => cron::cron(ctx, &args),
        Command::Checks(args) => cron::checks(ctx, &args),
        Command::FeaturesEnable(args) => features::set(ctx, &args, true),
        Command::FeaturesDisable(args) => features::set(ctx, &args, false),
        Command::Open(args) => open::open(ctx, &args),
        Command::Users(args) => users::list(ctx, &args),
        Command::UsersAdd(args) => users::add(ctx, &args),
        Command::UsersRemove(args) => users::remove(ctx, &args),
        Command::Nodes(args) => nodes::list(ctx, &args),
        Command::NodesDrain(args) => nodes::drain(ctx, &args),
        Command::NodesActivate(args) => nodes::activate(ctx, &args),
        Command::Access(args) => access::list(ctx, &args),
        Command::AccessAdd(args) => access::add(ctx, &args),
        Command::AccessRemove(args) => access::remove(ctx, &args),
        Command::Ps(args) => ps::list(ctx, &args),
        Command::Scale(args) => ps::scale(ctx, &args),
        Command::Restart(args) => ps::restart(ctx, &args),
        Command::PsStop(args) => ps::stop(ctx, &args),
        Command::Resize(args) => resize::resize(ctx, &args),
        Command::RunDetached(args) => run::detached(ctx, &args),
        Command::Maintenance(args) => maintenance::show(ctx, &args),
        Command::MaintenanceOn(args) => maintenance::set(ctx, &args, true),
        Command::MaintenanceOff(args) => maintenance::set(ctx, &args, false),
        Command::Sticky(args) => sticky::sticky(ctx, &args),
        Command::Run(args) => attach::run(ctx, &args),
        Command::PsExec(args) => attach::exec(ctx, &args),
        Command::Storage(args) => storage::list(ctx, &args),
        Command::Addons(args) => addons::list(ctx, &args),
        Command::AddonsCreate(args) => addons::create(ctx, &args),
        Command::AddonsInfo(args) => addons::info(ctx, &args),
        Command::AddonsAttach(args) => addons::attach(ctx, &args),
        Command::AddonsDetach(args) => addons::detach(ctx, &args),
        Command::AddonsDestroy(args) => addons::destroy(ctx, &args),
        Command::PgBackups(args) => pg_backups::list(ctx, &args),
        Command::PgBackupsCapture(args) => pg_backups::capture(ctx, &args),
        Command::PgBackupsRestore(args) => pg_backups::restore(ctx, &args),
        Command::PgBackupsDownload(args) => pg_backups::download(ctx, &args),
        Command::PgBackupsDelete(args) => pg_backups::delete(ctx, &args),
        Command::PgPsql(args) => pg::psql(ctx, &args),
        Command::PgInfo(args) => pg::info(ctx, &args),
        Command::RedisCli(args) => redis::cli(ctx, &args),
        Command::StorageMount(args) => storage::mount(ctx, &args),
        Command::StorageUnmount(args) => storage::unmount(ctx, &args),
        Command::StorageDestroy(args) => storage::destroy(ctx, &args),
        Command::Webhooks(args) => webhooks::list(ctx, &args),
        Command::WebhooksAdd(args) => webhooks::add(ctx, &args),
        Command::WebhooksRemove(args) => webhooks::remove(ctx, &args),
        Command::WebhooksDeliveries(args) => webhooks::deliveries(ctx, &args),
        Command::Completions { .. } => unreachable!("handled before any config is read"),
    }
}

/// Where the token in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Environment,
    Store,
}

pub struct Context {
    pub config_dir: PathBuf,
    pub settings: Settings,
    /// `PAAS_SERVER`, else the server of the last login, else [`DEFAULT_SERVER`].
    pub server: String,
    pub credentials: CredentialStore,
}

impl Context {
    fn load() -> anyhow::Result<Context> {
        let config_dir = config_dir()?;
        let settings = Settings::load(&config_dir)?;
        let server = match env_var("PAAS_SERVER") {
            Some(server) => normalize_server(&server).context("PAAS_SERVER")?,
            None => settings
                .server
                .clone()
                .unwrap_or_else(|| DEFAULT_SERVER.to_owned()),
        };
        let credentials = CredentialStore::new(&config_dir);
        Ok(Context {
            config_dir,
            settings,
            server,
            credentials,
        })
    }

    /// `PAAS_TOKEN`, else the token stored for the server.
    pub fn token(&self) -> anyhow::Result<Option<(String, TokenSource)>> {
        if let Some(token) = env_var("PAAS_TOKEN") {
            return Ok(Some((token, TokenSource::Environment)));
        }
        Ok(self
            .credentials
            .load(&self.server)?
            .map(|token| (token, TokenSource::Store)))
    }

    /// A client carrying the token; fails when the user is not logged in.
    pub fn client(&self) -> anyhow::Result<Client> {
        match self.token()? {
            Some((token, _)) => Ok(Client::new(&self.server, Some(token))?),
            None => bail!("Not logged in to {}. Run `paas login` first.", self.server),
        }
    }

    /// The app named by `-a`, else the one the remote named by `-r` points at, else the one
    /// of the `paas` remote, else the one every remote on this server points at.
    pub fn app(&self, arg: &AppArg) -> anyhow::Result<AppName> {
        if let Some(name) = &arg.app {
            return Ok(name.parse()?);
        }
        if let Some(remote) = &arg.remote {
            return app_of_remote(remote);
        }
        if git::remote_url(git::DEFAULT_REMOTE).is_some() {
            return app_of_remote(git::DEFAULT_REMOTE);
        }
        let remotes = git::remotes();
        let no_app = || {
            anyhow::anyhow!(
                "No app specified. Use -a NAME, -r REMOTE or run inside a repo with a '{}' remote.",
                git::DEFAULT_REMOTE
            )
        };
        if !remotes
            .iter()
            .any(|(_, url)| git::app_from_remote_url(url).is_some())
        {
            return Err(no_app());
        }
        // Which remotes point at this server: the one the URLs of the user's apps name.
        let git_urls: Vec<String> = self
            .client()?
            .apps()?
            .into_iter()
            .map(|app| app.git_url)
            .collect();
        let servers: Vec<&str> = git_urls
            .iter()
            .filter_map(|url| git::server_of_remote_url(url))
            .collect();
        let found = git::paas_remotes(&remotes, &servers);
        match found.as_slice() {
            [] => Err(no_app()),
            [(_, app), rest @ ..] if rest.iter().all(|(_, other)| other == app) => Ok(app.clone()),
            _ => {
                let listed: Vec<String> = found
                    .iter()
                    .map(|(remote, app)| format!("{remote} ({app})"))
                    .collect();
                bail!(
                    "Several git remotes point at paas apps: {}. Use -a NAME or -r REMOTE.",
                    listed.join(", ")
                )
            }
        }
    }
}

/// The app the git remote `remote` of the current repository points at.
fn app_of_remote(remote: &str) -> anyhow::Result<AppName> {
    let Some(url) = git::remote_url(remote) else {
        bail!("No git remote named '{remote}' in this directory. See `git remote -v`.");
    };
    git::app_from_remote_url(&url).with_context(|| {
        format!(
            "The '{remote}' git remote ({url}) does not point at a paas app. Use -a NAME or fix it with `paas git:remote -a NAME -r {remote}`."
        )
    })
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Whether the user can be prompted: both standard input and standard error are terminals.
pub fn interactive() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// A secret piped on standard input, without its final line break.
pub fn read_secret_from_stdin() -> anyhow::Result<String> {
    let mut secret = String::new();
    std::io::stdin()
        .read_to_string(&mut secret)
        .context("cannot read the password from standard input")?;
    let secret = secret
        .strip_suffix('\n')
        .map(|s| s.strip_suffix('\r').unwrap_or(s))
        .unwrap_or(&secret);
    if secret.is_empty() {
        bail!("The password read from standard input is empty.");
    }
    Ok(secret.to_owned())
}

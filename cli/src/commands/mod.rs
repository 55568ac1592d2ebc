//! One module per topic; [`run`] dispatches a parsed command. [`Context`] resolves what
//! every command needs: the server, the token, the app.

mod access;
mod apps;
mod auth;
mod config_vars;
mod domains;
mod features;
mod keys;
mod logs;
mod open;
mod ps;
mod releases;
mod users;

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context as _, bail};

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
        Command::Login {
            server,
            username,
            password_stdin,
        } => auth::login(ctx, server, username, password_stdin),
        Command::Logout => auth::logout(ctx),
        Command::Whoami { json } => auth::whoami(ctx, json.json),
        Command::Apps { json } => apps::list(ctx, json.json),
        Command::AppsCreate { name, remote, json } => apps::create(ctx, name, &remote, json.json),
        Command::AppsInfo { app, json } => apps::info(ctx, &app, json.json),
        Command::AppsDestroy { name, app, confirm } => {
            let app = AppArg {
                app: name.or(app.app),
            };
            apps::destroy(ctx, &app, confirm)
        }
        Command::GitRemote { app, remote } => apps::git_remote(ctx, &app, &remote),
        Command::Keys { json } => keys::list(ctx, json.json),
        Command::KeysAdd { path } => keys::add(ctx, path),
        Command::KeysRemove { key } => keys::remove(ctx, &key),
        Command::Config { app, json, shell } => config_vars::show(ctx, &app, json.json, shell),
        Command::ConfigGet { app, key } => config_vars::get(ctx, &app, &key),
        Command::ConfigSet { app, pairs } => config_vars::set(ctx, &app, &pairs),
        Command::ConfigUnset { app, keys } => config_vars::unset(ctx, &app, &keys),
        Command::Releases { app, json, num } => releases::list(ctx, &app, json.json, num),
        Command::ReleasesInfo { app, json, release } => {
            releases::info(ctx, &app, &release, json.json)
        }
        Command::ReleasesOutput { app, release } => releases::output(ctx, &app, &release),
        Command::Rollback { app, release } => releases::rollback(ctx, &app, release.as_deref()),
        Command::Logs {
            app,
            num,
            tail,
            process,
            source,
        } => logs::show(
            ctx,
            &app,
            &logs::LogsArgs {
                num,
                tail,
                process,
                source,
            },
        ),
        Command::Domains { app, json } => domains::list(ctx, &app, json.json),
        Command::DomainsAdd { app, hostname } => domains::add(ctx, &app, &hostname),
        Command::DomainsRemove { app, hostname } => domains::remove(ctx, &app, &hostname),
        Command::Features { app, json } => features::list(ctx, &app, json.json),
        Command::FeaturesEnable { app, feature } => features::set(ctx, &app, &feature, true),
        Command::FeaturesDisable { app, feature } => features::set(ctx, &app, &feature, false),
        Command::Open { app } => open::open(ctx, &app),
        Command::Users { json } => users::list(ctx, json.json),
        Command::UsersAdd {
            username,
            admin,
            password_stdin,
            json,
        } => users::add(ctx, &username, admin, password_stdin, json.json),
        Command::UsersRemove { username } => users::remove(ctx, &username),
        Command::Access { app, json } => access::list(ctx, &app, json.json),
        Command::AccessAdd { app, username } => access::add(ctx, &app, &username),
        Command::AccessRemove { app, username } => access::remove(ctx, &app, &username),
        Command::Ps { app, json } => ps::list(ctx, &app, json.json),
        Command::Scale { app, changes, json } => ps::scale(ctx, &app, &changes, json.json),
        Command::Restart { app, process } => ps::restart(ctx, &app, process),
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

    /// The app named by `-a`, else the one the `paas` remote of the current repository
    /// points at.
    pub fn app(&self, arg: &AppArg) -> anyhow::Result<String> {
        let name = match &arg.app {
            Some(name) => name.clone(),
            None => match git::remote_url(git::DEFAULT_REMOTE) {
                Some(url) => git::app_from_remote_url(&url).with_context(|| {
                    format!(
                        "The '{}' git remote ({url}) does not point at a paas app. Use -a NAME or fix it with `paas git:remote -a NAME`.",
                        git::DEFAULT_REMOTE
                    )
                })?,
                None => bail!(
                    "No app specified. Use -a NAME or run inside a repo with a '{}' remote.",
                    git::DEFAULT_REMOTE
                ),
            },
        };
        paas_api::validate_app_name(&name)?;
        Ok(name)
    }
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

//! paas-gitd, the control plane. It owns the database (nothing else opens it), the app
//! repositories, the HTTP API the CLI talks to, the SSH endpoint `git push` reaches, and the
//! deploy pipeline. It never talks to Docker itself: builds and containers are the agent's,
//! reached over the agent's HTTP API.

mod auth;
mod config;
mod deploy;
mod events;
mod hook;
mod http;
mod images;
mod init;
mod quotas;
mod repos;
mod ssh;
mod state;
mod store;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::config::GitdConfig;
use crate::state::ServerState;

#[derive(Parser)]
#[command(name = "paas-gitd", version, about = "The paas control plane")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a data dir: database, SSH host key, config file and the first admin user.
    Init(init::InitArgs),
    /// Run the HTTP API and the SSH git endpoint.
    Serve {
        #[arg(long, env = "PAAS_DATA")]
        data: PathBuf,
        /// Overrides `http_listen` from gitd.toml.
        #[arg(long)]
        http_listen: Option<SocketAddr>,
        /// Overrides `ssh_listen` from gitd.toml.
        #[arg(long)]
        ssh_listen: Option<SocketAddr>,
    },
    /// Git hooks call back into the daemon through these; not for direct use.
    #[command(subcommand, hide = true)]
    Hook(HookCommand),
}

#[derive(Subcommand)]
enum HookCommand {
    /// Deploys the pushed revision through the running daemon; non-zero rejects the push.
    PreReceive,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Init(args) => init::run(args),
        Command::Serve {
            data,
            http_listen,
            ssh_listen,
        } => serve(&data, http_listen, ssh_listen),
        Command::Hook(HookCommand::PreReceive) => match hook::pre_receive() {
            Ok(true) => Ok(()),
            Ok(false) => return std::process::ExitCode::FAILURE,
            Err(err) => Err(err),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("paas-gitd: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn serve(
    data_dir: &Path,
    http_listen: Option<SocketAddr>,
    ssh_listen: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = GitdConfig::load(data_dir)?;
    if let Some(addr) = http_listen {
        config.http_listen = addr;
    }
    if let Some(addr) = ssh_listen {
        config.ssh_listen = addr;
    }
    config.http.validate()?;
    let store = store::Store::open(data_dir)?;
    let interrupted = store.fail_unfinished_releases().await?;
    if interrupted > 0 {
        tracing::warn!(
            releases = interrupted,
            "builds interrupted by a restart marked failed"
        );
    }
    let repositories =
        repos::refresh_everywhere(&data_dir.join("repos"), config.quotas.max_push_bytes)
            .context("cannot refresh the hooks and settings of the app repositories")?;
    tracing::info!(repositories, "hooks and settings refreshed");

    let http_listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_listen))?;
    let ssh_listener = tokio::net::TcpListener::bind(config.ssh_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.ssh_listen))?;
    let http_addr = http_listener.local_addr()?;
    let ssh_addr = ssh_listener.local_addr()?;

    let host_key = ssh::load_host_key(data_dir)?;
    let deploy_socket = deploy::bind_socket(data_dir)?;

    let login_throttle = auth::LoginThrottle::new(&config.http.login);
    let state = Arc::new(ServerState {
        store,
        ssh_public_port: config.ssh_public_port.unwrap_or(ssh_addr.port()),
        agent: config
            .agent
            .as_ref()
            .map(|agent| paas_agent_client::AgentClient::new(&agent.url, &agent.token)),
        config,
        data_dir: data_dir.to_owned(),
        login_throttle,
        app_locks: Default::default(),
        push_sessions: Default::default(),
        events: Default::default(),
        ssh_access: Default::default(),
        key_challenges: Default::default(),
    });
    if state.agent.is_none() {
        tracing::warn!("no [agent] in gitd.toml: pushes will be refused until one is set");
    }
    tokio::spawn(deploy::serve_socket(state.clone(), deploy_socket));
    tokio::spawn(events::follow_agent(state.clone()));
    let ssh_server = tokio::spawn(ssh::serve(state.clone(), ssh_listener, host_key));

    write_run_file(data_dir, "http.addr", &http_addr.to_string())?;
    write_run_file(data_dir, "ssh.addr", &ssh_addr.to_string())?;
    tracing::info!(%http_addr, %ssh_addr, "paas-gitd listening");

    http::server::serve(
        http_listener,
        http::router(state.clone()),
        state.config.http.clone(),
        shutdown_signal(),
    )
    .await?;
    ssh_server.abort();
    tracing::info!("paas-gitd stopped");
    Ok(())
}

/// Writes `<data>/run/<name>` atomically, so readers never see half an address.
fn write_run_file(data_dir: &Path, name: &str, contents: &str) -> anyhow::Result<()> {
    let run = data_dir.join("run");
    std::fs::create_dir_all(&run)?;
    let staging = run.join(format!(".{name}.new"));
    std::fs::write(&staging, contents)?;
    std::fs::rename(&staging, run.join(name))?;
    Ok(())
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler");
    tokio::select! {
        _ = terminate.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}

//! The `paas-gitd` binary: `init` a data dir, `serve` it ([`paas_gitd::serve`] on the
//! configured addresses), and the hook entry point git runs during a push.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};
use paas_gitd::config::GitdConfig;
use paas_gitd::{Listeners, ServeConfig, deploy, hook, init, write_run_file};

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
        Command::Init(args) => init::run(args).map_err(anyhow::Error::from),
        Command::Serve {
            data,
            http_listen,
            ssh_listen,
        } => serve(&data, http_listen, ssh_listen),
        Command::Hook(HookCommand::PreReceive) => match hook::pre_receive() {
            Ok(true) => Ok(()),
            Ok(false) => return std::process::ExitCode::FAILURE,
            Err(err) => Err(err.into()),
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
    let http = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_listen))?;
    let ssh = tokio::net::TcpListener::bind(config.ssh_listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.ssh_listen))?;
    let agent = config
        .agent
        .as_ref()
        .map(|agent| paas_agent_client::AgentClient::new(&agent.url, &agent.token));
    let listeners = Listeners {
        http,
        ssh,
        deploy_socket: deploy::socket_path(data_dir),
    };
    let server = paas_gitd::serve(
        ServeConfig {
            data_dir: data_dir.to_owned(),
            gitd: config,
        },
        listeners,
        agent,
    )
    .await?;
    write_run_file(data_dir, "http.addr", &server.http_addr.to_string())?;
    write_run_file(data_dir, "ssh.addr", &server.ssh_addr.to_string())?;
    server.run_until(shutdown_signal()).await?;
    tracing::info!("paas-gitd stopped");
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

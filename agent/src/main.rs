//! paas-agent: the per-host agent, and the only paas component that talks to Docker (through
//! bollard, against the local engine). It owns image builds (Dockerfile through the engine,
//! buildpacks through `pack`) and, later, the app containers; it serves gitd over an HTTP API
//! protected by a bearer token from its config file. It must not touch gitd's database or git
//! repositories: everything it needs arrives in requests.

mod addons;
mod attach;
mod builds;
mod config;
mod error;
mod events;
mod http;
mod images;
mod instances;
mod logs;
mod maintenance;
mod metrics;
mod naming;
mod nodes;
mod oneoff;
mod pages;
mod runtime;
mod state;
mod traefik_config;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use bollard::Docker;
use clap::{Parser, Subcommand};
use tracing::info;

use crate::config::{AgentConfig, DEFAULT_LISTEN, write_secret_file};
use crate::state::AgentState;

#[derive(Parser)]
#[command(
    name = "paas-agent",
    version,
    about = "The paas per-host agent (Docker builds and containers)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a new config file with a freshly generated token.
    Init {
        #[arg(long)]
        config: PathBuf,
        /// Also write the token alone to this file (for gitd's config).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
    /// Print the `constraints` expression Traefik's Docker provider needs, so that it only
    /// routes to this agent's containers (`providers.docker.constraints` in traefik.yml).
    TraefikConstraint {
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the static Traefik config (traefik.yml) that agrees with this agent's container
    /// labels: the Docker provider constrained to its instance key, its HTTP entrypoint on
    /// `--web` and the read-only API and `/ping` on `--api`.
    TraefikConfig {
        #[arg(long)]
        config: PathBuf,
        /// Address of the HTTP entrypoint apps are routed on.
        #[arg(long)]
        web: SocketAddr,
        /// Address of Traefik's API (point the agent's `runtime.traefik_api` at it).
        #[arg(long)]
        api: SocketAddr,
        #[arg(long, value_enum, default_value = "warn")]
        log_level: traefik_config::LogLevel,
        /// Seconds an app may take to start answering a request before Traefik answers 504
        /// (logged as H12; Heroku's router allows 30 s).
        #[arg(long, value_name = "SECS", default_value_t = traefik_config::DEFAULT_RESPONSE_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..))]
        response_timeout: u64,
    },
    /// Give a config written before instance keys existed a fresh one (a config that has
    /// one is left alone).
    AddInstanceKey {
        #[arg(long)]
        config: PathBuf,
    },
    /// Serve the agent API.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on [default: the config's `listen`, else 127.0.0.1:8751].
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Write the bound address here once listening (useful with port 0).
        #[arg(long)]
        addr_file: Option<PathBuf>,
    },
}

fn main() {
    if let Err(err) = run() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    match Cli::parse().command {
        Command::Init {
            config,
            token_file,
            force,
        } => init(&config, token_file.as_deref(), force),
        Command::TraefikConstraint { config } => {
            let config = AgentConfig::load(&config)?;
            println!(
                "{}",
                naming::labels::traefik_constraint(config.instance_key())
            );
            Ok(())
        }
        Command::TraefikConfig {
            config,
            web,
            api,
            log_level,
            response_timeout,
        } => {
            let config = AgentConfig::load(&config)?;
            // Traefik's file provider and access log need their directories before the agent
            // first runs.
            let access_log = logs::router::access_log_path(&config);
            for dir in [
                pages::routes_dir(&config).as_path(),
                access_log.parent().unwrap_or(Path::new(".")),
            ] {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
            let listeners = traefik_config::Listeners { web, api };
            print!(
                "{}",
                traefik_config::render(&config, &listeners, log_level, response_timeout)
            );
            Ok(())
        }
        Command::AddInstanceKey { config } => add_instance_key(&config),
        Command::Serve {
            config,
            listen,
            addr_file,
        } => {
            let config = AgentConfig::load(&config)?;
            tokio::runtime::Runtime::new()
                .context("cannot start the async runtime")?
                .block_on(serve(config, listen, addr_file))
        }
    }
}

fn init(config_path: &Path, token_file: Option<&Path>, force: bool) -> Result<()> {
    let config = AgentConfig::generate();
    if let Some(token_file) = token_file
        && !force
        && token_file.exists()
    {
        anyhow::bail!(
            "{} exists; pass --force to overwrite it",
            token_file.display()
        );
    }
    write_secret_file(config_path, &config.to_toml(), force)?;
    if let Some(token_file) = token_file {
        write_secret_file(token_file, &format!("{}\n", config.token), force)?;
    }
    println!("wrote {}", config_path.display());
    Ok(())
}

/// Prepends `instance_key = "…"` (a top-level key, so it goes before any table) and keeps
/// the rest of the file as it is, comments included.
fn add_instance_key(path: &Path) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("invalid config {}", path.display()))?;
    if table.contains_key("instance_key") {
        println!("{} already has an instance_key", path.display());
        return Ok(());
    }
    let key = naming::InstanceKey::generate();
    let line = toml::to_string(&toml::Table::from_iter([(
        "instance_key".to_owned(),
        toml::Value::String(key.as_str().to_owned()),
    )]))
    .expect("a string key serializes");
    write_secret_file(path, &format!("{line}{text}"), true)?;
    println!("added an instance_key to {}", path.display());
    Ok(())
}

async fn serve(
    config: AgentConfig,
    listen: Option<SocketAddr>,
    addr_file: Option<PathBuf>,
) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let docker = Docker::connect_with_local_defaults()
        .context("cannot connect to Docker")?
        .negotiate_version()
        .await
        .context("cannot reach the Docker engine (is dockerd running?)")?;
    info!(api_version = %docker.client_version(), "connected to Docker");
    let desired = runtime::DesiredState::open(config.state_dir())
        .context("cannot open the agent's state dir")?;

    let listen = match listen.or(config.listen) {
        Some(addr) => addr,
        None => DEFAULT_LISTEN.parse().expect("the default address parses"),
    };
    // Before the address is announced: a SIGTERM right after start must stop it cleanly too.
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let page_listener = pages::bind_pages(&config).await.with_context(|| {
        format!(
            "cannot listen on {} (runtime.maintenance_listen)",
            config.runtime.maintenance_listen
        )
    })?;
    let page = page_listener.local_addr()?;
    let page_routes = pages::PageRoutes::open(pages::routes_dir(&config), page)
        .context("cannot open the page routes")?;
    tokio::spawn(pages::serve_pages(page_listener));

    let config = Arc::new(config);
    let engine = runtime::DockerEngine::new(docker.clone(), config.clone());
    let state = AgentState {
        docker,
        config,
        runtime: Arc::new(runtime::RuntimeState::new(engine, desired)),
        events: Arc::default(),
        instances: Arc::default(),
        pages: Arc::new(page_routes),
        router: Arc::default(),
        metrics: Arc::default(),
    };
    pages::refresh_all(&state).await;
    // Announced once the page routes are right again, too.
    if let Some(addr_file) = addr_file {
        write_addr_file(&addr_file, bound)?;
    }
    info!(%bound, "paas-agent listening");
    tokio::spawn(events::watch_docker(
        state.docker.clone(),
        state.config.instance_key().clone(),
        state.events.clone(),
        state.instances.clone(),
    ));
    // Swarm restarts and reschedules its tasks itself.
    if state.config.engine == config::EngineKind::Docker {
        tokio::spawn(runtime::supervise(state.clone()));
    }
    tokio::spawn(logs::router::follow_access_log(state.clone()));
    tokio::spawn(metrics::sample_rounds(state.clone()));
    axum::serve(listener, http::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("the HTTP server failed")?;
    info!("paas-agent stopped");
    Ok(())
}

/// Written atomically so a reader polling for the file never sees half an address.
fn write_addr_file(path: &Path, addr: SocketAddr) -> Result<()> {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, format!("{addr}\n"))
        .with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Resolves on SIGTERM or SIGINT; the handlers are installed when this is called.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => info!("SIGTERM: finishing open requests"),
            _ = int.recv() => info!("SIGINT: finishing open requests"),
        }
    })
}

//! paas-gitd, the control plane. It owns the database (nothing else opens it), the app
//! repositories, the HTTP API the CLI talks to, the SSH endpoint `git push` reaches, and the
//! deploy pipeline. It never talks to Docker itself: builds and containers are the agent's,
//! reached over the agent's HTTP API.
//!
//! The daemon is a library: [`serve`] runs it on listeners its caller bound, against an agent
//! its caller chose, so the binary (`main.rs`) and gitd's in-process tests (`gitd/tests/`,
//! with a fake agent) run the very same server. Every change to an app goes through
//! [`ops`]; the HTTP handlers, the SSH endpoint and the deploy socket only extract, call it
//! and answer.

pub mod auth;
pub mod config;
pub mod cron;
pub mod deploy;
pub mod events;
pub mod hook;
pub mod http;
pub mod images;
pub mod init;
pub mod metrics;
pub mod ops;
pub mod quotas;
pub mod repos;
pub mod ssh;
pub mod state;
pub mod store;
pub mod web;
pub mod webhooks;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use paas_agent_client::AgentClient;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::{ConfigError, GitdConfig};
use crate::state::{ServerState, SharedState};

/// Why gitd could not start, or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] store::OpenError),
    #[error("cannot refresh the hooks and settings of the app repositories: {0}")]
    Repositories(#[from] repos::RepoError),
    #[error(transparent)]
    HostKey(#[from] ssh::HostKeyError),
    #[error("cannot read the address of a listener: {0}")]
    Listener(std::io::Error),
    #[error("cannot listen on {}: {source}", path.display())]
    DeploySocket {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot recover what the previous run left unfinished: {0}")]
    Recovery(#[from] ops::OpsError),
    #[error("the HTTP server panicked")]
    Panicked,
}

/// What [`serve`] runs with: the data dir (database, repositories, host key) and its settings.
pub struct ServeConfig {
    pub data_dir: PathBuf,
    pub gitd: GitdConfig,
}

/// Where [`serve`] listens: the HTTP and SSH listeners, already bound, and the path of the
/// deploy socket the git hooks reach (bound by [`serve`], replacing a stale one).
pub struct Listeners {
    pub http: TcpListener,
    pub ssh: TcpListener,
    pub deploy_socket: PathBuf,
}

/// A running gitd. [`Server::run_until`] serves until a shutdown signal; dropping it stops the
/// listeners (operations already running finish on the runtime that runs them).
pub struct Server {
    state: SharedState,
    pub http_addr: SocketAddr,
    pub ssh_addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    http: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

/// Opens the store, recovers what a previous run left unfinished ([`ops::recovery`]), and
/// starts the HTTP API, the SSH endpoint, the deploy socket, the agent's event follower and the metrics pull.
/// `agent: None` runs without one: pushes and rollouts are refused with a clear error.
pub async fn serve(
    config: ServeConfig,
    listeners: Listeners,
    agent: Option<AgentClient>,
) -> Result<Server, ServeError> {
    let ServeConfig {
        data_dir,
        gitd: config,
    } = config;
    config.http.validate()?;
    let store = store::Store::open(&data_dir)?;
    let repositories =
        repos::refresh_everywhere(&data_dir.join("repos"), config.quotas.max_push_bytes)?;
    tracing::info!(repositories, "hooks and settings refreshed");

    let http_addr = listeners.http.local_addr().map_err(ServeError::Listener)?;
    let ssh_addr = listeners.ssh.local_addr().map_err(ServeError::Listener)?;
    let host_key = ssh::load_host_key(&data_dir)?;
    let socket_error = |source| ServeError::DeploySocket {
        path: listeners.deploy_socket.clone(),
        source,
    };
    let deploy_socket = deploy::bind_socket(&listeners.deploy_socket).map_err(socket_error)?;

    let login_throttle = auth::LoginThrottle::new(&config.http.login);
    let state = Arc::new(ServerState {
        store,
        ssh_public_port: config.ssh_public_port.unwrap_or(ssh_addr.port()),
        agent,
        config,
        data_dir,
        deploy_socket: std::path::absolute(&listeners.deploy_socket).map_err(socket_error)?,
        login_throttle,
        app_locks: Default::default(),
        push_sessions: Default::default(),
        events: Default::default(),
        ssh_access: Default::default(),
        key_challenges: Default::default(),
        webhooks: Default::default(),
    });
    if state.agent.is_none() {
        tracing::warn!("no agent configured: pushes will be refused until one is set");
    }
    // Taken before any listener accepts: what a previous run left half-done is settled under
    // the apps' locks before any new change can reach them.
    ops::recovery::recover(&state).await?;
    let mut background = vec![
        tokio::spawn(deploy::serve_socket(state.clone(), deploy_socket)),
        tokio::spawn(events::follow_agent(state.clone())),
        tokio::spawn(webhooks::delivery::deliver(state.clone())),
        tokio::spawn({
            let state = state.clone();
            async move {
                if let Err(err) = ssh::serve(state, listeners.ssh, host_key).await {
                    tracing::error!(error = %err, "the SSH endpoint stopped");
                }
            }
        }),
    ];
    if state.agent.is_some() {
        background.push(tokio::spawn(cron::schedule(state.clone())));
        background.push(tokio::spawn(metrics::pull_periodically(state.clone())));
    }
    let (stop, stopped) = oneshot::channel::<()>();
    let http = tokio::spawn(http::server::serve(
        listeners.http,
        http::router(state.clone()),
        state.config.http.clone(),
        async move {
            let _ = stopped.await;
        },
    ));
    tracing::info!(%http_addr, %ssh_addr, "paas-gitd listening");
    Ok(Server {
        state,
        http_addr,
        ssh_addr,
        stop: Some(stop),
        http: Some(http),
        background,
    })
}

impl Server {
    pub fn state(&self) -> &SharedState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then stops accepting and lets open requests end.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) -> Result<(), ServeError> {
        let http = self
            .http
            .take()
            .expect("the HTTP server runs until stopped");
        tokio::pin!(http);
        tokio::select! {
            ended = &mut http => return ended.map_err(|_| ServeError::Panicked),
            () = shutdown => {}
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        http.await.map_err(|_| ServeError::Panicked)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        for task in &self.background {
            task.abort();
        }
    }
}

/// Writes `<data>/run/<name>` atomically, so readers never see half an address.
pub fn write_run_file(data_dir: &Path, name: &str, contents: &str) -> std::io::Result<()> {
    let run = data_dir.join("run");
    std::fs::create_dir_all(&run)?;
    let staging = run.join(format!(".{name}.new"));
    std::fs::write(&staging, contents)?;
    std::fs::rename(&staging, run.join(name))
}

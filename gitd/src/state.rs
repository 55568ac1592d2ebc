//! What every request handler and SSH session shares.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use paas_api::types::App;

use crate::auth::LoginThrottle;
use crate::config::GitdConfig;
use crate::deploy::PushSessions;
use crate::events::EventBus;
use crate::store::{AppRow, Store};
use paas_agent_client::AgentClient;

pub struct ServerState {
    pub store: Store,
    pub config: GitdConfig,
    pub data_dir: PathBuf,
    /// The deploy socket's absolute path (the hook runs inside the repository, so a relative
    /// one won't do).
    pub deploy_socket: PathBuf,
    /// The port git remotes name: the configured public port, else the bound SSH port.
    pub ssh_public_port: u16,
    pub login_throttle: LoginThrottle,
    pub app_locks: AppLocks,
    /// The build agent from `[agent]` in gitd.toml; without one, pushes are refused.
    pub agent: Option<AgentClient>,
    /// Pushes in progress, by the token their pre-receive hook presents.
    pub push_sessions: PushSessions,
    /// Platform events as they are recorded, for `logs --tail`.
    pub events: EventBus,
    /// Bumped when keys, users or access rights change: live SSH connections re-check.
    pub ssh_access: crate::ssh::AccessChanges,
    /// Challenges issued for proving possession of a key before it is added.
    pub key_challenges: crate::ssh::key_proof::KeyChallenges,
    /// The webhook worker's wake-up and what the crash rules remember.
    pub webhooks: crate::webhooks::Webhooks,
}

pub type SharedState = Arc<ServerState>;

impl ServerState {
    pub fn repos_dir(&self) -> PathBuf {
        self.data_dir.join("repos")
    }

    pub fn git_url(&self, app: &str) -> String {
        format!(
            "ssh://git@{}:{}/{app}.git",
            self.config.ssh_public_host, self.ssh_public_port
        )
    }

    pub fn web_url(&self, app: &str) -> String {
        let port = self
            .config
            .web_port
            .map(|port| format!(":{port}"))
            .unwrap_or_default();
        format!(
            "{}://{app}.{}{port}",
            self.config.web_scheme, self.config.domain
        )
    }

    pub fn app_to_api(&self, app: &AppRow, current_release: Option<u32>) -> App {
        App {
            name: app.name.clone(),
            owner: app.owner.clone(),
            created_at: app.created_at,
            git_url: self.git_url(&app.name),
            web_url: self.web_url(&app.name),
            deploy_branch: app.deploy_branch.clone(),
            current_release,
            formation: Default::default(),
            domains: Vec::new(),
            last_deploy: None,
        }
    }
}

/// One lock per app, held by whatever changes what the app runs (a push, a config change, a
/// scale): such changes to one app happen one at a time, in the order they took the lock,
/// while different apps proceed in parallel.
#[derive(Default)]
pub struct AppLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// An app's lock, held until the last clone is dropped: a push shares it between the SSH side
/// (until receive-pack has written the refs) and its deploy (until the old release has
/// drained), so the next change waits for both.
#[derive(Clone)]
pub struct HeldLock {
    _guard: Arc<tokio::sync::OwnedMutexGuard<()>>,
}

impl AppLocks {
    fn for_app(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap()
            .entry(app.to_owned())
            .or_default()
            .clone()
    }

    /// Waits for the app's lock.
    pub async fn acquire(&self, app: &str) -> HeldLock {
        HeldLock {
            _guard: Arc::new(self.for_app(app).lock_owned().await),
        }
    }

    /// The app's lock if nobody holds it now.
    pub fn try_acquire(&self, app: &str) -> Option<HeldLock> {
        self.for_app(app)
            .try_lock_owned()
            .ok()
            .map(|guard| HeldLock {
                _guard: Arc::new(guard),
            })
    }
}

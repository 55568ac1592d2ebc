//! `gitd.toml`, the daemon's settings, kept in the data dir beside the database.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::quotas::QuotaSettings;

pub const CONFIG_FILE: &str = "gitd.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitdConfig {
    #[serde(default = "default_http_listen")]
    pub http_listen: SocketAddr,
    #[serde(default = "default_ssh_listen")]
    pub ssh_listen: SocketAddr,
    /// Host written into git remotes (`ssh://git@HOST:PORT/<app>.git`).
    #[serde(default = "default_public_host")]
    pub ssh_public_host: String,
    /// Port written into git remotes; unset means the port the SSH server is bound to.
    #[serde(default)]
    pub ssh_public_port: Option<u16>,
    /// Apps are served at `<app>.<domain>`.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// `http` or `https`, for the app URLs shown to users.
    #[serde(default = "default_web_scheme")]
    pub web_scheme: String,
    /// Port written into app URLs when the router does not listen on the scheme's default
    /// port (a local Traefik on 8080 gives `http://<app>.<domain>:8080`).
    #[serde(default)]
    pub web_port: Option<u16>,
    /// How long a login token lasts.
    #[serde(default = "default_token_ttl_seconds")]
    pub token_ttl_seconds: i64,
    /// The CNB builder used when an app has neither `buildpacks.yaml` nor a `Dockerfile`.
    #[serde(default = "default_builder")]
    pub default_builder: String,
    #[serde(default)]
    pub agent: Option<AgentSettings>,
    /// What one tenant may ask of the platform ([`crate::quotas`]).
    #[serde(default)]
    pub quotas: QuotaSettings,
    /// `[http]`: the API's timeouts, connection caps, trusted proxies, host names and login
    /// throttle.
    #[serde(default)]
    pub http: crate::http::server::HttpSettings,
    /// `[ssh]`: connection caps and timeouts of the SSH endpoint.
    #[serde(default)]
    pub ssh: crate::ssh::SshSettings,
    /// `[webhooks]`: delivery attempts, back-off, timeout and which addresses may be reached.
    #[serde(default)]
    pub webhooks: crate::webhooks::WebhookSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSettings {
    pub url: String,
    pub token: String,
}

fn default_http_listen() -> SocketAddr {
    "127.0.0.1:8750".parse().unwrap()
}
fn default_ssh_listen() -> SocketAddr {
    "127.0.0.1:2222".parse().unwrap()
}
fn default_public_host() -> String {
    "127.0.0.1".into()
}
fn default_domain() -> String {
    "paas.localhost".into()
}
fn default_web_scheme() -> String {
    "http".into()
}
fn default_token_ttl_seconds() -> i64 {
    30 * 24 * 3600
}
fn default_builder() -> String {
    "heroku/builder:24".into()
}

impl Default for GitdConfig {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

/// Why gitd's settings were refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    /// A setting out of its range, named as in gitd.toml.
    #[error("{0}")]
    Invalid(String),
}

impl GitdConfig {
    pub fn load(data_dir: &Path) -> Result<Self, ConfigError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        toml::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
    }

    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(CONFIG_FILE)
    }
}

//! The SSH endpoint `git push` and `git clone` reach (russh): public-key authentication
//! against the registered keys (the SSH user name is ignored), and one allow-listed exec per
//! channel, `git-receive-pack` or `git-upload-pack` of an app the user may use, served by the
//! real git. No shell, pty, subsystem or forwarding is ever granted.

mod git;
mod handler;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use russh::keys::PrivateKey;
use russh::keys::ssh_key::HashAlg;
use russh::server::Server;
use russh::{MethodKind, MethodSet};
use tokio::net::TcpListener;

use crate::init::HOST_KEY_FILE;
use crate::state::SharedState;

pub fn load_host_key(data_dir: &Path) -> anyhow::Result<PrivateKey> {
    let path = data_dir.join(HOST_KEY_FILE);
    let key = russh::keys::load_secret_key(&path, None)
        .with_context(|| format!("cannot load the SSH host key {}", path.display()))?;
    tracing::info!(
        fingerprint = %key.public_key().fingerprint(HashAlg::Sha256),
        "SSH host key"
    );
    Ok(key)
}

pub async fn serve(
    state: SharedState,
    listener: TcpListener,
    host_key: PrivateKey,
) -> std::io::Result<()> {
    let config = russh::server::Config {
        keys: vec![host_key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // Refusals take this long, whatever the reason, so they reveal nothing by timing;
        // the first "none" probe every client sends is answered at once.
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 6,
        // Any traffic, keepalive replies included, counts as activity; a client that stops
        // answering keepalives is dropped after about two minutes.
        inactivity_timeout: Some(Duration::from_secs(600)),
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        ..Default::default()
    };
    let mut server = GitServer { state };
    server.run_on_socket(Arc::new(config), &listener).await
}

struct GitServer {
    state: SharedState,
}

impl Server for GitServer {
    type Handler = handler::Connection;

    fn new_client(&mut self, peer: Option<std::net::SocketAddr>) -> handler::Connection {
        handler::Connection::new(self.state.clone(), peer)
    }

    fn handle_session_error(&mut self, error: russh::Error) {
        tracing::debug!(%error, "SSH session ended with an error");
    }
}

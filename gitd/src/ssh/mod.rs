//! The SSH endpoint `git push` and `git clone` reach (russh): public-key authentication
//! against the registered keys (the SSH user name is ignored), and one allow-listed exec per
//! channel, `git-receive-pack` or `git-upload-pack` of an app the user may use, served by the
//! real git. No shell, pty, subsystem or forwarding is ever granted.
//!
//! The edge is bounded by `[ssh]` in gitd.toml: connection caps ([`limits`]), an auth
//! timeout and an idle timeout. Only modern algorithms are offered ([`algorithms`]): no DH
//! group exchange, no SHA-1, no compression. A live connection re-checks its rights whenever
//! access changes ([`access`]) and ends when they no longer hold.

pub mod access;
mod git;
mod handler;
pub mod key_proof;
mod limits;
mod settings;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use russh::keys::PrivateKey;
use russh::keys::ssh_key::HashAlg;
use russh::{Disconnect, MethodKind, MethodSet};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::init::HOST_KEY_FILE;
use crate::state::SharedState;
use access::Login;
use limits::{ConnectionLimits, Severable, Slot};

pub use access::AccessChanges;
pub use settings::SshSettings;

/// How long a revoked connection is given to read its disconnect message before its socket
/// is severed.
const DISCONNECT_GRACE: Duration = Duration::from_secs(1);

/// Why the SSH host key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("cannot load the SSH host key {}: {source}", path.display())]
pub struct HostKeyError {
    pub path: std::path::PathBuf,
    pub source: russh::keys::Error,
}

pub fn load_host_key(data_dir: &Path) -> Result<PrivateKey, HostKeyError> {
    let path = data_dir.join(HOST_KEY_FILE);
    let key = match russh::keys::load_secret_key(&path, None) {
        Ok(key) => key,
        Err(source) => return Err(HostKeyError { path, source }),
    };
    tracing::info!(
        fingerprint = %key.public_key().fingerprint(HashAlg::Sha256),
        "SSH host key"
    );
    Ok(key)
}

/// The algorithms offered. Key exchange is curve25519 only: no DH group exchange (whose large
/// groups cost the server dearly, DHEat) and no fixed DH groups. No SHA-1 anywhere: MACs are
/// SHA-2 encrypt-then-MAC, RSA user keys must sign with SHA-2. No compression: zlib inflates
/// without bound after login.
mod algorithms {
    use russh::keys::Algorithm;
    use russh::keys::EcdsaCurve;
    use russh::keys::ssh_key::HashAlg;
    use russh::{cipher, compression, kex, mac};

    pub const KEX: &[kex::Name] = &[
        kex::CURVE25519,
        kex::CURVE25519_PRE_RFC_8731,
        kex::EXTENSION_SUPPORT_AS_SERVER,
        kex::EXTENSION_OPENSSH_STRICT_KEX_AS_SERVER,
    ];
    pub const CIPHERS: &[cipher::Name] = &[
        cipher::CHACHA20_POLY1305,
        cipher::AES_256_GCM,
        cipher::AES_128_GCM,
        cipher::AES_256_CTR,
        cipher::AES_192_CTR,
        cipher::AES_128_CTR,
    ];
    pub const MACS: &[mac::Name] = &[mac::HMAC_SHA512_ETM, mac::HMAC_SHA256_ETM];
    pub const COMPRESSION: &[compression::Name] = &[compression::NONE];
    pub const KEYS: &[Algorithm] = &[
        Algorithm::Ed25519,
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP384,
        },
        Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP521,
        },
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha512),
        },
        Algorithm::Rsa {
            hash: Some(HashAlg::Sha256),
        },
    ];
}

fn russh_config(settings: &SshSettings, host_key: PrivateKey) -> russh::server::Config {
    russh::server::Config {
        keys: vec![host_key],
        methods: MethodSet::from(&[MethodKind::PublicKey][..]),
        // Refusals take this long, whatever the reason, so they reveal nothing by timing;
        // the first "none" probe every client sends is answered at once.
        auth_rejection_time: Duration::from_secs(1),
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 6,
        // Any traffic, keepalive replies included, counts as activity; a client that stops
        // answering keepalives is dropped after about two minutes.
        inactivity_timeout: Some(settings.idle_timeout()),
        keepalive_interval: Some(Duration::from_secs(30)),
        keepalive_max: 4,
        nodelay: true,
        preferred: russh::Preferred {
            kex: Cow::Borrowed(algorithms::KEX),
            key: Cow::Borrowed(algorithms::KEYS),
            cipher: Cow::Borrowed(algorithms::CIPHERS),
            mac: Cow::Borrowed(algorithms::MACS),
            compression: Cow::Borrowed(algorithms::COMPRESSION),
        },
        ..Default::default()
    }
}

pub async fn serve(
    state: SharedState,
    listener: TcpListener,
    host_key: PrivateKey,
) -> std::io::Result<()> {
    let settings = state.config.ssh.clone();
    let config = Arc::new(russh_config(&settings, host_key));
    let limits = ConnectionLimits::new(settings);
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %err, "SSH accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        match limits.admit(peer.ip()) {
            Ok(slot) => {
                tokio::spawn(serve_connection(
                    state.clone(),
                    config.clone(),
                    stream,
                    peer,
                    slot,
                ));
            }
            Err(refusal) => tracing::info!(%peer, %refusal, "SSH connection refused"),
        }
    }
}

async fn serve_connection(
    state: SharedState,
    config: Arc<russh::server::Config>,
    stream: TcpStream,
    peer: SocketAddr,
    slot: Slot,
) {
    let auth_deadline = tokio::time::Instant::now() + state.config.ssh.auth_timeout();
    let (logged_in, login) = oneshot::channel();
    let handler = handler::Connection::new(state.clone(), peer, logged_in);
    let stream = Severable::new(stream, slot.cutoff());
    // Until the version exchange is done the connection is only this future.
    let running = tokio::select! {
        running = russh::server::run_stream(config, stream, handler) => match running {
            Ok(running) => running,
            Err(error) => {
                tracing::debug!(%peer, %error, "SSH connection setup failed");
                return;
            }
        },
        _ = tokio::time::sleep_until(auth_deadline) => {
            tracing::info!(%peer, "SSH connection closed: no authentication in time");
            return;
        }
    };
    let handle = running.handle();
    let guard = async {
        let login = match tokio::time::timeout_at(auth_deadline, login).await {
            Ok(Ok(login)) => login,
            Ok(Err(_)) => return,
            Err(_) => {
                tracing::info!(%peer, "SSH connection closed: no authentication in time");
                slot.cutoff().sever();
                return;
            }
        };
        slot.authenticated();
        end_when_revoked(&state, &login, &handle, &slot).await;
    };
    tokio::select! {
        result = running => {
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "SSH session ended with an error");
            }
        }
        // The guard returns once the connection is severed; the session then ends at once.
        () = async { guard.await; std::future::pending::<()>().await } => {}
    }
}

/// Waits until `login` no longer holds, then says so to the client and severs the connection.
async fn end_when_revoked(
    state: &SharedState,
    login: &Login,
    handle: &russh::server::Handle,
    slot: &Slot,
) {
    access::revoked(state, login, None).await;
    tracing::info!(
        user_id = login.user_id,
        "SSH login revoked; closing the connection"
    );
    let notice = handle.disconnect(
        Disconnect::ByApplication,
        "paas: your access was revoked".into(),
        String::new(),
    );
    let _ = tokio::time::timeout(DISCONNECT_GRACE, notice).await;
    tokio::time::sleep(DISCONNECT_GRACE).await;
    slot.cutoff().sever();
}

//! Deploys: the Unix socket that `paas-gitd hook pre-receive` reaches, the push sessions that
//! tie a hook back to the SSH push it runs under, and the push-specific steps (which ref
//! deploys, which builder, the tree streamed to the build) that [`crate::ops::push`] runs.
//!
//! The SSH side takes the app's lock and registers a push session under a random token before
//! it spawns `git receive-pack`; only that child learns the token (`PAAS_PUSH_TOKEN`). The hook
//! sends it back with its request, so the deploy runs as the pusher, for the app the push was
//! authorised for, under the lock already held, and a process that merely reaches the socket
//! can deploy nothing. The hook is answered `finished` as soon as the new release serves, so
//! the push returns then; the deploy goes on draining the old release detached. When the SSH
//! side of the push ends first (the pusher went away, or their access was revoked and git
//! killed), the hook's output stops, so a deploy still building stops too.

pub mod pipeline;
pub mod protocol;
pub mod source;

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::ops::{self, Followed};
use crate::state::{HeldLock, SharedState};
use crate::store::{AppRow, UserRow};
use protocol::{HookMessage, HookRequest, MAX_REQUEST_BYTES};

/// What a push was authorised for, found again by its token when the hook calls.
#[derive(Clone)]
pub struct PushSession {
    pub app: AppRow,
    pub user: UserRow,
    /// The app's lock, taken by the SSH side before receive-pack started.
    pub lock: HeldLock,
}

#[derive(Default)]
pub struct PushSessions {
    /// Each with a sender that is dropped when the push's registration is.
    sessions: Mutex<HashMap<String, (PushSession, watch::Sender<()>)>>,
}

impl PushSessions {
    /// Registers `session` under a fresh random token until the registration is dropped.
    pub fn register(state: &SharedState, session: PushSession) -> Registration {
        let token = hex::encode(rand::random::<[u8; 32]>());
        state
            .push_sessions
            .sessions
            .lock()
            .unwrap()
            .insert(token.clone(), (session, watch::Sender::new(())));
        Registration {
            state: state.clone(),
            token,
        }
    }

    /// The session, and a receiver whose `changed()` fails once the push has ended.
    fn get(&self, token: &str) -> Option<(PushSession, watch::Receiver<()>)> {
        let sessions = self.sessions.lock().unwrap();
        let (session, ended) = sessions.get(token)?;
        Some((session.clone(), ended.subscribe()))
    }
}

/// A registered push session; dropping it ends the session.
pub struct Registration {
    state: SharedState,
    token: String,
}

impl Registration {
    pub fn token(&self) -> &str {
        &self.token
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.state
            .push_sessions
            .sessions
            .lock()
            .unwrap()
            .remove(&self.token);
    }
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("run").join("deploy.sock")
}

/// Binds the deploy socket at `path`, readable and writable by gitd's user only (the hooks
/// run as it).
pub fn bind_socket(path: &Path) -> std::io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    match std::fs::remove_file(path) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err),
        _ => {}
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

pub async fn serve_socket(state: SharedState, listener: UnixListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(handle_hook(state.clone(), stream));
            }
            Err(err) => tracing::warn!(error = %err, "deploy socket accept failed"),
        }
    }
}

async fn handle_hook(state: SharedState, stream: UnixStream) {
    let (read, mut write) = stream.into_split();
    let (sender, mut messages) = mpsc::unbounded_channel::<HookMessage>();
    let (stop_sender, mut stop) = oneshot::channel::<()>();
    // Writes stop at the first failure (the hook, and so the push, is gone) or when the SSH
    // side of the push has ended.
    let writer = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = messages.recv() => message,
                _ = &mut stop => None,
            };
            let Some(message) = message else { break };
            let mut line = serde_json::to_vec(&message).expect("hook messages serialize");
            line.push(b'\n');
            if write.write_all(&line).await.is_err() {
                break;
            }
        }
    });
    let output = |line: String| {
        let _ = sender.send(HookMessage::Output { line });
    };

    let mut line = String::new();
    let read_result = BufReader::new(read.take(MAX_REQUEST_BYTES))
        .read_line(&mut line)
        .await;
    let request = match read_result {
        Ok(_) => serde_json::from_str::<HookRequest>(&line).map_err(|e| e.to_string()),
        Err(err) => Err(err.to_string()),
    };
    let success = match request {
        Err(reason) => {
            tracing::warn!(%reason, "malformed deploy request refused");
            output(format!(
                " !     malformed deploy request from the git hook: {reason}"
            ));
            false
        }
        Ok(request) => match state.push_sessions.get(&request.token) {
            Some((session, mut push_ended)) if session.app.name == request.app => {
                let followed = ops::push::deploy(&state, session, request).follow(output);
                tokio::select! {
                    followed = followed => match followed {
                        Followed::Serving | Followed::Finished(Ok(())) => true,
                        Followed::Finished(Err(_)) => false,
                    },
                    // Dropping the follower tells a deploy still building that the pusher is
                    // gone; a rollout already started runs to its end.
                    _ = push_ended.changed() => {
                        let _ = stop_sender.send(());
                        false
                    }
                }
            }
            _ => {
                output(" !     this push is not known to paas-gitd; push again".to_owned());
                false
            }
        },
    };
    let _ = sender.send(HookMessage::Finished { success });
    drop(sender);
    let _ = writer.await;
}

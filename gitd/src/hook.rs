//! `paas-gitd hook pre-receive`, run by `hooks/pre-receive` inside `git receive-pack`: hands
//! the pushed ref updates to the daemon that spawned the push (over its deploy socket, with
//! the push's token) and prints the deploy's progress as it arrives; git shows it to the
//! pusher as `remote: …`. Exits non-zero, rejecting the push, unless the daemon reports a
//! successful deploy.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use crate::deploy::protocol::{HookMessage, HookRequest, ProtocolError, RefUpdate};

/// Why the hook could not hand the push to the daemon or follow its deploy; the push is
/// rejected.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{name} is not set: pushes must go through paas-gitd: {source}")]
    NotSet {
        name: &'static str,
        source: std::env::VarError,
    },
    #[error("cannot read the ref updates: {0}")]
    ReadUpdates(std::io::Error),
    #[error("unexpected ref update from git: {0}")]
    BadUpdate(ProtocolError),
    #[error("cannot reach paas-gitd at {socket}: {source}")]
    Connect {
        socket: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Send(std::io::Error),
    #[error("lost contact with paas-gitd during the deploy: {0}")]
    Lost(std::io::Error),
    #[error("unreadable message from paas-gitd: {0}")]
    Unreadable(serde_json::Error),
    #[error("{0}")]
    Output(std::io::Error),
    #[error("paas-gitd ended the deploy without a result")]
    NoResult,
}

/// Returns whether the push may update its refs.
pub fn pre_receive() -> Result<bool, HookError> {
    let env = |name: &'static str| {
        std::env::var(name).map_err(|source| HookError::NotSet { name, source })
    };
    let socket = env("PAAS_DEPLOY_SOCKET")?;
    let token = env("PAAS_PUSH_TOKEN")?;
    let app = env("PAAS_APP")?;

    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.map_err(HookError::ReadUpdates)?;
        updates.push(RefUpdate::parse(&line).map_err(HookError::BadUpdate)?);
    }
    let request = HookRequest {
        token,
        app,
        updates,
        object_directory: std::env::var("GIT_OBJECT_DIRECTORY").ok(),
        alternate_object_directories: std::env::var("GIT_ALTERNATE_OBJECT_DIRECTORIES").ok(),
        quarantine_path: std::env::var("GIT_QUARANTINE_PATH").ok(),
    };

    let mut stream = match UnixStream::connect(&socket) {
        Ok(stream) => stream,
        Err(source) => return Err(HookError::Connect { socket, source }),
    };
    let mut line = serde_json::to_vec(&request).expect("a hook request always serializes");
    line.push(b'\n');
    stream.write_all(&line).map_err(HookError::Send)?;

    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let line = line.map_err(HookError::Lost)?;
        match serde_json::from_str::<HookMessage>(&line).map_err(HookError::Unreadable)? {
            HookMessage::Output { line } => {
                writeln!(stdout, "{line}").map_err(HookError::Output)?;
                stdout.flush().map_err(HookError::Output)?;
            }
            HookMessage::Finished { success } => return Ok(success),
        }
    }
    Err(HookError::NoResult)
}

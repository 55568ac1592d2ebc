//! `paas-gitd hook pre-receive`, run by `hooks/pre-receive` inside `git receive-pack`: hands
//! the pushed ref updates to the daemon that spawned the push (over its deploy socket, with
//! the push's token) and prints the deploy's progress as it arrives; git shows it to the
//! pusher as `remote: …`. Exits non-zero, rejecting the push, unless the daemon reports a
//! successful deploy.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;

use anyhow::Context;

use crate::deploy::protocol::{HookMessage, HookRequest, RefUpdate};

/// Returns whether the push may update its refs.
pub fn pre_receive() -> anyhow::Result<bool> {
    let env = |name: &str| {
        std::env::var(name)
            .with_context(|| format!("{name} is not set: pushes must go through paas-gitd"))
    };
    let socket = env("PAAS_DEPLOY_SOCKET")?;
    let token = env("PAAS_PUSH_TOKEN")?;
    let app = env("PAAS_APP")?;

    let mut updates = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line.context("cannot read the ref updates")?;
        updates.push(RefUpdate::parse(&line).context("unexpected ref update from git")?);
    }
    let request = HookRequest {
        token,
        app,
        updates,
        object_directory: std::env::var("GIT_OBJECT_DIRECTORY").ok(),
        alternate_object_directories: std::env::var("GIT_ALTERNATE_OBJECT_DIRECTORIES").ok(),
        quarantine_path: std::env::var("GIT_QUARANTINE_PATH").ok(),
    };

    let mut stream = UnixStream::connect(&socket)
        .with_context(|| format!("cannot reach paas-gitd at {socket}"))?;
    let mut line = serde_json::to_vec(&request)?;
    line.push(b'\n');
    stream.write_all(&line)?;

    let mut stdout = std::io::stdout().lock();
    for line in BufReader::new(stream).lines() {
        let line = line.context("lost contact with paas-gitd during the deploy")?;
        match serde_json::from_str::<HookMessage>(&line)
            .context("unreadable message from paas-gitd")?
        {
            HookMessage::Output { line } => {
                writeln!(stdout, "{line}")?;
                stdout.flush()?;
            }
            HookMessage::Finished { success } => return Ok(success),
        }
    }
    anyhow::bail!("paas-gitd ended the deploy without a result")
}

//! Runs the real `git receive-pack` / `git upload-pack` for an authorised exec request and
//! pipes it to the SSH channel: stdout and stderr go out through writers that wait for the
//! client's window (so a slow client slows git down instead of filling memory), then the exit
//! status, EOF and close, in that order.
//!
//! A push takes the app's lock before receive-pack starts and holds it until receive-pack
//! ends: a second push then advertises the refs the first one wrote, so both can land, one
//! after the other. The push's deploy shares the lock (its push session carries it) and keeps
//! it while the old release drains, after the push has returned. Clones take no lock.
//!
//! While git runs, the request's rights are re-checked whenever access changes; once they no
//! longer hold, git is killed (a push then fails, its deploy with it).

use std::process::Stdio;

use paas_api::git_command::GitService;
use russh::ChannelWriteHalf;
use russh::server::Msg;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::process::ChildStdin;
use tokio::sync::oneshot;

use super::access::{self, Login};
use crate::deploy::{PushSession, PushSessions};
use crate::repos;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

/// The variables a git child inherits from gitd; everything else it gets is set here.
const INHERITED_ENV: &[&str] = &["PATH", "HOME", "LANG", "TMPDIR"];

pub struct GitRequest {
    pub service: GitService,
    pub app: AppRow,
    pub user: UserRow,
    pub login: Login,
    pub git_protocol: Option<String>,
}

pub async fn serve(
    state: SharedState,
    request: GitRequest,
    writer: ChannelWriteHalf<Msg>,
    stdin: oneshot::Sender<ChildStdin>,
    hangup: oneshot::Receiver<()>,
) {
    let status = match run(&state, request, &writer, stdin, hangup).await {
        Ok(status) => status,
        Err(err) => {
            tracing::error!(error = %err, "cannot run git");
            let _ = writer
                .make_writer_ext(Some(1))
                .write_all(b"paas: internal error; see the paas-gitd log\n")
                .await;
            1
        }
    };
    let _ = writer.exit_status(status).await;
    let _ = writer.eof().await;
    let _ = writer.close().await;
}

async fn run(
    state: &SharedState,
    request: GitRequest,
    writer: &ChannelWriteHalf<Msg>,
    stdin: oneshot::Sender<ChildStdin>,
    mut hangup: oneshot::Receiver<()>,
) -> std::io::Result<u32> {
    let GitRequest {
        service,
        app,
        user,
        login,
        git_protocol,
    } = request;
    let revoked = access::revoked(state, &login, Some(&app.name));
    tokio::pin!(revoked);
    let lock = match service {
        GitService::ReceivePack => match state.app_locks.try_acquire(&app.name) {
            Some(held) => Some(held),
            None => {
                let notice = format!(
                    "-----> Waiting for another deploy of {} to finish\n",
                    app.name
                );
                let _ = writer
                    .make_writer_ext(Some(1))
                    .write_all(notice.as_bytes())
                    .await;
                tokio::select! {
                    held = state.app_locks.acquire(&app.name) => Some(held),
                    _ = &mut hangup => return Ok(1),
                    () = &mut revoked => {
                        say_revoked(writer, &app.name).await;
                        return Ok(1);
                    }
                }
            }
        },
        GitService::UploadPack => None,
    };

    let repo = repos::repo_path(&state.repos_dir(), &app.name);
    if !repo.is_dir() {
        tracing::error!(app = %app.name, path = %repo.display(), "app repository missing");
        let notice = format!(
            "paas: the repository of {} is missing; ask an admin\n",
            app.name
        );
        let _ = writer
            .make_writer_ext(Some(1))
            .write_all(notice.as_bytes())
            .await;
        return Ok(1);
    }
    let mut command = tokio::process::Command::new("git");
    command
        .arg(service.subcommand())
        .arg(&repo)
        .env_clear()
        .env("PAAS_APP", app.name.as_str())
        .env("PAAS_USER", user.username.as_str())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for name in INHERITED_ENV {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    if let Some(protocol) = &git_protocol {
        command.env("GIT_PROTOCOL", protocol);
    }
    let _registration = match (service, &lock) {
        (GitService::ReceivePack, Some(lock)) => {
            let registration = PushSessions::register(
                state,
                PushSession {
                    app: app.clone(),
                    user: user.clone(),
                    lock: lock.clone(),
                },
            );
            command
                .env("PAAS_PUSH_TOKEN", registration.token())
                .env("PAAS_DEPLOY_SOCKET", &state.deploy_socket)
                .env("PAAS_GITD_BIN", std::env::current_exe()?);
            Some(registration)
        }
        _ => None,
    };

    let mut child = command.spawn()?;
    // Handed over before git can write anything, so it is in place when the client answers.
    let _ = stdin.send(child.stdin.take().expect("stdin is piped"));
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let pumps = async {
        tokio::join!(
            pump(stdout, writer.make_writer()),
            pump(stderr, writer.make_writer_ext(Some(1))),
        )
    };
    tokio::select! {
        _ = pumps => {}
        _ = &mut hangup => {
            tracing::info!(app = %app.name, "client went away; stopping git");
            let _ = child.start_kill();
        }
        () = &mut revoked => {
            tracing::info!(app = %app.name, user = %user.username, "access revoked; stopping git");
            let _ = child.start_kill();
            say_revoked(writer, &app.name).await;
            let _ = child.wait().await;
            return Ok(1);
        }
    }
    let status = child.wait().await?;
    Ok(status
        .code()
        .and_then(|c| u32::try_from(c).ok())
        .unwrap_or(1))
}

async fn say_revoked(writer: &ChannelWriteHalf<Msg>, app: &str) {
    let notice = format!("paas: your access to {app} was revoked; stopping\n");
    let _ = writer
        .make_writer_ext(Some(1))
        .write_all(notice.as_bytes())
        .await;
}

/// Copies until `from` ends or `to` fails; dropping `from` then lets git see a broken pipe.
async fn pump(mut from: impl AsyncRead + Unpin, mut to: impl AsyncWrite + Unpin) {
    let _ = tokio::io::copy(&mut from, &mut to).await;
}

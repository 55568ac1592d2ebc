//! `paas run` and `paas ps:exec`: a command attached to the local terminal, in a one-off
//! container of the current release or in a running instance. Stdin, stdout and stderr
//! stream both ways; when the local stdin is a terminal (and not `--no-tty`) the remote side
//! gets one too, the local one goes raw and its size follows. `paas` exits with the command's
//! status.

use std::io::{IsTerminal, Read, Write};

use anyhow::{Context as _, bail};
use clap::Args;
use paas_api::attach::{AttachExec, AttachRun, Frame, MAX_PAYLOAD, parse_dyno};
use paas_api::resources::{ProcessResources, parse_size};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use super::Context;
use super::config_vars::parse_assignments;
use crate::AppArg;
use crate::terminal::{RawMode, window_size};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// A config var for this run only (repeatable)
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Memory and CPUs of the one-off: 512M, 0.5 or 1G,2 [default: the host's]
    #[arg(short = 's', long, value_name = "SIZE", value_parser = parse_size)]
    pub size: Option<ProcessResources>,
    /// No remote terminal, even when stdin is one
    #[arg(long)]
    pub no_tty: bool,
    /// The command and its arguments, run with /bin/sh -c (put them after `--`)
    #[arg(required = true, trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The running instance, e.g. web.1
    #[arg(short = 'd', long = "dyno", value_name = "TYPE.N")]
    pub dyno: String,
    /// No remote terminal, even when stdin is one
    #[arg(long)]
    pub no_tty: bool,
    /// The program and its arguments (put them after `--`) [default: /bin/sh]
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

pub fn run(ctx: &Context, args: &RunArgs) -> anyhow::Result<()> {
    let name = ctx.app(&args.app)?;
    let request = AttachRun {
        command: args.command.clone(),
        env: parse_assignments(&args.env)?.into_iter().collect(),
        size: args.size.unwrap_or_default(),
        tty: !args.no_tty && std::io::stdin().is_terminal(),
    };
    let line = request.command.join(" ");
    if line.trim().is_empty() || line.contains('\0') {
        bail!("No command given: paas run -- COMMAND");
    }
    attached(ctx, &name, &["run", "attached"], &request, request.tty)
}

pub fn exec(ctx: &Context, args: &ExecArgs) -> anyhow::Result<()> {
    let name = ctx.app(&args.app)?;
    parse_dyno(&args.dyno).map_err(anyhow::Error::msg)?;
    let command = if args.command.is_empty() {
        vec!["/bin/sh".to_owned()]
    } else {
        args.command.clone()
    };
    let request = AttachExec {
        dyno: args.dyno.clone(),
        command,
        tty: !args.no_tty && std::io::stdin().is_terminal(),
    };
    attached(ctx, &name, &["ps", "exec"], &request, request.tty)
}

/// Runs the session and exits with the remote command's status.
pub(super) fn attached(
    ctx: &Context,
    app: &paas_api::AppName,
    segments: &[&str],
    request: &impl serde::Serialize,
    tty: bool,
) -> anyhow::Result<()> {
    let client = ctx.client()?;
    let raw = if tty {
        Some(RawMode::enable().context("Cannot put the terminal into raw mode")?)
    } else {
        None
    };
    let ended = client.attach(app, segments, request, |stream| session(stream, tty));
    drop(raw);
    match ended? {
        Ok(status) => std::process::exit(status),
        Err(message) => bail!("{message}"),
    }
}

/// Relays the session until the remote side reports how it ended: the exit status, or the
/// one-line reason it could not run.
async fn session(stream: reqwest::Upgraded, tty: bool) -> Result<i32, String> {
    let (mut read, mut write) = tokio::io::split(stream);
    let mut stdin = stdin_chunks();
    let mut resized = if tty {
        signal(SignalKind::window_change()).ok()
    } else {
        None
    };
    let lost = |err: std::io::Error| format!("The connection to the server broke: {err}");
    if let Some((cols, rows)) = tty.then(window_size).flatten() {
        write
            .write_all(&Frame::Resize { cols, rows }.encode())
            .await
            .map_err(lost)?;
    }
    let mut buffer = Vec::new();
    let mut stdin_open = true;
    loop {
        tokio::select! {
            chunk = stdin.recv(), if stdin_open => {
                let frame = match chunk {
                    Some(data) => Frame::Stdin(data),
                    None => {
                        stdin_open = false;
                        Frame::StdinEof
                    }
                };
                write.write_all(&frame.encode()).await.map_err(lost)?;
            }
            () = window_changed(&mut resized) => {
                if let Some((cols, rows)) = window_size() {
                    write.write_all(&Frame::Resize { cols, rows }.encode()).await.map_err(lost)?;
                }
            }
            read = read.read_buf(&mut buffer) => {
                if read.map_err(lost)? == 0 {
                    return Err("The server closed the session before the command ended.".to_owned());
                }
                while let Some(frame) = Frame::decode(&mut buffer).map_err(|e| e.to_string())? {
                    match frame {
                        Frame::Stdout(data) => {
                            let mut out = std::io::stdout().lock();
                            let _ = out.write_all(&data).and_then(|()| out.flush());
                        }
                        Frame::Stderr(data) => {
                            let _ = std::io::stderr().lock().write_all(&data);
                        }
                        Frame::Exit { status } => return Ok(status),
                        Frame::Error(message) => return Err(message),
                        other => return Err(format!("The server sent an unexpected {other:?}.")),
                    }
                }
            }
        }
    }
}

async fn window_changed(resized: &mut Option<Signal>) {
    match resized {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Stdin, read on a thread of its own (a blocking read the runtime never waits for at exit),
/// in chunks; the channel closes at its end.
fn stdin_chunks() -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buffer = vec![0; MAX_PAYLOAD];
        loop {
            match stdin.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sender.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    receiver
}

//! Attached sessions (contract in `paas_api::attach`): `GET /v1/apps/{app}/oneoff/attach`
//! runs a one-off (`run.N`) with its stdin, stdout and stderr on the upgraded connection, and
//! `GET /v1/apps/{app}/exec` runs a command inside a running instance of the app (`web.1`).
//!
//! The one-off is the one of [`crate::oneoff`] (same numbering, container, hardening and
//! limits), created with its stdin open and a terminal if asked; it is removed when it ends,
//! when it runs past its timeout and when the connection goes away. An exec runs as the
//! instance's own user with its environment; Docker cannot kill an exec, so one whose client
//! went away ends with its stdin (a shell does) or with the instance.

use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bollard::query_parameters::{
    AttachContainerOptions, ListContainersOptions, ResizeContainerTTYOptions, ResizeExecOptions,
    WaitContainerOptions,
};
use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use paas_api::attach::{AgentAttach, AgentExec, Frame, MAX_PAYLOAD, PROTOCOL, asks_for_protocol};
use paas_api::oneoff::{OneOffEvent, OneOffKind};
use paas_api::{AppName, ErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::{info, warn};

use crate::error::{ApiError, Path};
use crate::naming::{LABEL_INDEX, docker_filters};
use crate::oneoff;
use crate::runtime::{DockerEngine, Engine};
use crate::state::AgentState;

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/apps/{app}/oneoff/attach", get(attach_oneoff))
        .route("/v1/apps/{app}/exec", get(exec))
}

type Upgraded = TokioIo<hyper::upgrade::Upgraded>;
type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

/// Answers 101 and runs `session` on the upgraded connection, or refuses a plain request.
fn upgrade<F, Fut>(mut request: Request, session: F) -> Result<Response, ApiError>
where
    F: FnOnce(Upgraded) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    let asked = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| asks_for_protocol(value.as_bytes()));
    if !asked {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("this route needs `Connection: Upgrade` and `Upgrade: {PROTOCOL}`"),
        ));
    }
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match upgrading.await {
            Ok(upgraded) => session(TokioIo::new(upgraded)).await,
            Err(err) => warn!(error = %err, "an attach upgrade failed"),
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, HeaderValue::from_static(PROTOCOL))
        .body(axum::body::Body::empty())
        .expect("static headers are valid"))
}

async fn attach_oneoff(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    request: Request,
) -> Result<Response, ApiError> {
    upgrade(request, move |io| async move {
        let (read, mut write) = tokio::io::split(io);
        let mut frames = FrameReader::new(read);
        let last = match frames.open::<AgentAttach>().await {
            Ok(open) => {
                run_attached(&state, &String::from(app), open, &mut frames, &mut write).await
            }
            Err(message) => Some(Frame::Error(message)),
        };
        finish(&mut write, last).await;
    })
}

async fn exec(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    request: Request,
) -> Result<Response, ApiError> {
    upgrade(request, move |io| async move {
        let (read, mut write) = tokio::io::split(io);
        let mut frames = FrameReader::new(read);
        let last = match frames.open::<AgentExec>().await {
            Ok(open) => run_exec(&state, &String::from(app), open, &mut frames, &mut write).await,
            Err(message) => Some(Frame::Error(message)),
        };
        finish(&mut write, last).await;
    })
}

async fn finish(write: &mut (impl AsyncWrite + Unpin), last: Option<Frame>) {
    if let Some(frame) = last {
        let _ = write.write_all(&frame.encode()).await;
    }
    let _ = write.shutdown().await;
}

/// Creates, attaches and starts the one-off, relays it and removes it; gives the last frame
/// for a client still there.
async fn run_attached(
    state: &AgentState,
    app: &str,
    open: AgentAttach,
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    write: &mut (impl AsyncWrite + Unpin),
) -> Option<Frame> {
    let spec = open.oneoff;
    if spec.kind != OneOffKind::Run {
        return Some(Frame::Error(
            "only `run` one-offs can be attached".to_owned(),
        ));
    }
    if let Err(err) = oneoff::validate(&spec) {
        return Some(Frame::Error(err.message));
    }
    let tty = open.tty;
    let mut created = None;
    let last = async {
        let index = oneoff::create(state, app, &spec, &mut created, |body| {
            body.tty = Some(tty);
            body.open_stdin = Some(true);
            body.stdin_once = Some(true);
            body.attach_stdin = Some(true);
            body.attach_stdout = Some(true);
            body.attach_stderr = Some(true);
        })
        .await
        .map_err(failed_frame)?;
        let name = created.clone().expect("create names its container");
        info!(%app, %name, index, tty, "attached one-off created");
        let docker = &state.docker;
        let attached = docker
            .attach_container(
                &name,
                Some(AttachContainerOptions {
                    stream: true,
                    stdin: true,
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(docker_frame)?;
        docker
            .start_container(
                &name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(docker_frame)?;
        let resize = |cols: u16, rows: u16| {
            let name = name.clone();
            async move {
                let size = ResizeContainerTTYOptions {
                    w: i32::from(cols),
                    h: i32::from(rows),
                };
                let _ = docker.resize_container_tty(&name, size).await;
            }
        };
        let relayed = pump(frames, write, attached.output, attached.input, tty, resize);
        match tokio::time::timeout(Duration::from_secs(spec.timeout_secs), relayed).await {
            Err(_) => Err(Frame::Error(format!(
                "The process ran longer than {} s and was stopped.",
                spec.timeout_secs
            ))),
            Ok(Relayed::ClientGone) => Ok(None),
            Ok(Relayed::Ended) => Ok(Some(container_status(docker, &name).await)),
        }
    }
    .await
    .unwrap_or_else(Some);
    if let Some(name) = &created {
        let engine = DockerEngine::new(state.docker.clone(), state.config.clone());
        if let Err(err) = engine.remove(name).await {
            warn!(%app, %name, error = %err, "cannot remove a one-off container");
        }
        info!(%app, %name, ?last, "attached one-off ended");
    }
    last
}

fn failed_frame(event: OneOffEvent) -> Frame {
    match event {
        OneOffEvent::Failed { reason } => Frame::Error(reason),
        other => Frame::Error(format!("{other:?}")),
    }
}

fn docker_frame(err: DockerError) -> Frame {
    Frame::Error(format!("Docker: {err}"))
}

async fn container_status(docker: &bollard::Docker, name: &str) -> Frame {
    let mut waited = docker.wait_container(name, None::<WaitContainerOptions>);
    match waited.next().await {
        Some(Ok(exit)) => exit_frame(exit.status_code),
        // bollard reports a non-zero exit as an error.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => exit_frame(code),
        Some(Err(err)) => docker_frame(err),
        None => Frame::Error("Docker did not report the exit status".to_owned()),
    }
}

fn exit_frame(status: i64) -> Frame {
    Frame::Exit {
        status: i32::try_from(status).unwrap_or(1),
    }
}

/// Runs the command in the named running instance, relays it, and gives its exit status.
async fn run_exec(
    state: &AgentState,
    app: &str,
    open: AgentExec,
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    write: &mut (impl AsyncWrite + Unpin),
) -> Option<Frame> {
    let docker = &state.docker;
    let dyno = format!("{}.{}", open.process, open.index);
    if open.command.is_empty() || open.command.iter().any(|word| word.contains('\0')) {
        return Some(Frame::Error(
            "the command is empty or has a NUL byte".to_owned(),
        ));
    }
    let mut filters = docker_filters(
        state.config.instance_key(),
        Some(app),
        Some(open.process.as_str()),
    );
    filters
        .entry("label".to_owned())
        .or_default()
        .push(format!("{LABEL_INDEX}={}", open.index));
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: false,
            filters: Some(filters),
            ..Default::default()
        }))
        .await;
    let container = match listed {
        Ok(listed) => listed.into_iter().find_map(|summary| summary.id),
        Err(err) => return Some(docker_frame(err)),
    };
    let Some(container) = container else {
        return Some(Frame::Error(format!(
            "{app} has no running process {dyno}."
        )));
    };
    let tty = open.tty;
    let relayed = async {
        let created = docker
            .create_exec(
                &container,
                ExecConfig {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(tty),
                    cmd: Some(open.command.clone()),
                    ..Default::default()
                },
            )
            .await?;
        let started = docker
            .start_exec(
                &created.id,
                Some(StartExecOptions {
                    detach: false,
                    tty,
                    output_capacity: None,
                }),
            )
            .await?;
        Ok::<_, DockerError>((created.id, started))
    };
    let (id, started) = match relayed.await {
        Ok(started) => started,
        Err(err) => return Some(docker_frame(err)),
    };
    let StartExecResults::Attached { output, input } = started else {
        return Some(Frame::Error("Docker started the exec detached".to_owned()));
    };
    info!(%app, %dyno, tty, "exec started");
    let resize = |cols: u16, rows: u16| {
        let id = id.clone();
        async move {
            let size = ResizeExecOptions {
                w: i32::from(cols),
                h: i32::from(rows),
            };
            let _ = docker.resize_exec(&id, size).await;
        }
    };
    match pump(frames, write, output, input, tty, resize).await {
        Relayed::ClientGone => None,
        Relayed::Ended => Some(match docker.inspect_exec(&id).await {
            Ok(inspected) => exit_frame(inspected.exit_code.unwrap_or(1)),
            Err(err) => docker_frame(err),
        }),
    }
}

enum Relayed {
    /// The process's output ended: it exited.
    Ended,
    /// The client hung up or broke the protocol.
    ClientGone,
}

/// Copies the client's stdin and window sizes to the process and its output to the client
/// until either side ends.
async fn pump<R, F, Fut>(
    frames: &mut FrameReader<R>,
    write: &mut (impl AsyncWrite + Unpin),
    mut output: Output,
    mut input: Input,
    tty: bool,
    resize: F,
) -> Relayed
where
    R: AsyncRead + Unpin,
    F: Fn(u16, u16) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut stdin_open = true;
    loop {
        tokio::select! {
            frame = frames.next() => match frame {
                Ok(Some(Frame::Stdin(data))) => {
                    if stdin_open && (input.write_all(&data).await.is_err() || input.flush().await.is_err()) {
                        stdin_open = false;
                    }
                }
                Ok(Some(Frame::StdinEof)) => {
                    if stdin_open {
                        stdin_open = false;
                        let _ = input.shutdown().await;
                    }
                }
                Ok(Some(Frame::Resize { cols, rows })) => {
                    if tty {
                        resize(cols, rows).await;
                    }
                }
                Ok(Some(_)) | Ok(None) | Err(_) => return Relayed::ClientGone,
            },
            chunk = output.next() => {
                let (data, to_stderr) = match chunk {
                    Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => (message, false),
                    Some(Ok(LogOutput::StdErr { message })) => (message, true),
                    Some(Ok(LogOutput::StdIn { .. })) => continue,
                    Some(Err(_)) | None => return Relayed::Ended,
                };
                for piece in data.chunks(MAX_PAYLOAD) {
                    let frame = if to_stderr {
                        Frame::Stderr(piece.to_vec())
                    } else {
                        Frame::Stdout(piece.to_vec())
                    };
                    if write.write_all(&frame.encode()).await.is_err() {
                        return Relayed::ClientGone;
                    }
                }
                if write.flush().await.is_err() {
                    return Relayed::ClientGone;
                }
            }
        }
    }
}

/// Frames read off the connection; [`FrameReader::next`] may be cancelled without losing
/// bytes (what was read stays in the buffer).
struct FrameReader<R> {
    read: R,
    buffer: Vec<u8>,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    fn new(read: R) -> Self {
        FrameReader {
            read,
            buffer: Vec::new(),
        }
    }

    /// The next frame, `None` at the end of the connection.
    async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = Frame::decode(&mut self.buffer).map_err(std::io::Error::other)? {
                return Ok(Some(frame));
            }
            if self.read.read_buf(&mut self.buffer).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// The session's request from its first frame, or why there is none.
    async fn open<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, String> {
        match self.next().await {
            Ok(Some(Frame::Open(json))) => serde_json::from_slice(&json)
                .map_err(|err| format!("invalid attach request: {err}")),
            Ok(_) => Err("the session did not start with its request".to_owned()),
            Err(err) => Err(format!("cannot read the attach request: {err}")),
        }
    }
}

//! Attached sessions (contract in `paas_api::attach`): `GET /v1/apps/{app}/oneoff/attach`
//! runs a one-off (`run.N`) with its stdin, stdout and stderr on the upgraded connection, and
//! `GET /v1/apps/{app}/exec` runs a command inside a running instance of the app (`web.1`).
//!
//! The one-off is the one of [`crate::oneoff`] (same numbering, container, hardening and
//! limits), created with its stdin open and a terminal if asked; it is removed when it ends,
//! when it runs past its timeout and when the connection goes away. An exec runs as the
//! instance's own user with its environment; Docker cannot kill an exec, so one whose client
//! went away ends with its stdin (a shell does) or with the instance.
//!
//! [`upgrade`] and [`attach_exec`] are the one way any attached session runs: add-on consoles
//! (`crate::addons::console`) use them too.

use std::pin::Pin;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use bollard::Docker;
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

type Output = Pin<Box<dyn Stream<Item = Result<LogOutput, DockerError>> + Send>>;
type Input = Pin<Box<dyn AsyncWrite + Send>>;

async fn attach_oneoff(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    request: Request,
) -> Result<Response, ApiError> {
    upgrade(request, state, move |state, open: AgentAttach| async move {
        start_oneoff(&state, &app, open).await
    })
}

async fn exec(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    request: Request,
) -> Result<Response, ApiError> {
    upgrade(request, state, move |state, open: AgentExec| async move {
        start_exec(&state, &app, open).await
    })
}

/// Answers 101 and runs the session on the upgraded connection, or refuses a plain request:
/// reads the request `T` from the first frame, has `start` start its process, relays it and,
/// for a one-off, removes the container.
pub(crate) fn upgrade<T, F, Fut>(
    mut request: Request,
    state: AgentState,
    start: F,
) -> Result<Response, ApiError>
where
    T: serde::de::DeserializeOwned + Send + 'static,
    F: FnOnce(AgentState, T) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Started, Frame>> + Send,
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
        let io = match upgrading.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(err) => {
                warn!(error = %err, "an attach upgrade failed");
                return;
            }
        };
        let (read, mut write) = tokio::io::split(io);
        let mut frames = FrameReader::new(read);
        let started = match frames.open::<T>().await {
            Ok(open) => start(state.clone(), open).await,
            Err(message) => Err(Frame::Error(message)),
        };
        let last = match started {
            Ok(started) => session(&state, started, &mut frames, &mut write).await,
            Err(frame) => Some(frame),
        };
        if let Some(frame) = last {
            let _ = write.write_all(&frame.encode()).await;
        }
        let _ = write.shutdown().await;
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, HeaderValue::from_static(PROTOCOL))
        .body(axum::body::Body::empty())
        .expect("static headers are valid"))
}

/// What a session's process runs in.
enum Target {
    /// A one-off container, which goes when the session ends.
    Container(String),
    /// An exec (its id) in a running container.
    Exec(String),
}

impl Target {
    async fn resize(&self, docker: &Docker, cols: u16, rows: u16) {
        let (w, h) = (i32::from(cols), i32::from(rows));
        // A resize that fails (the process just ended) changes nothing worth telling.
        let _ = match self {
            Target::Container(name) => {
                docker
                    .resize_container_tty(name, ResizeContainerTTYOptions { w, h })
                    .await
            }
            Target::Exec(id) => docker.resize_exec(id, ResizeExecOptions { w, h }).await,
        };
    }

    /// The exit status of the process that ended.
    async fn status(&self, docker: &Docker) -> Frame {
        match self {
            Target::Container(name) => {
                let mut waited = docker.wait_container(name, None::<WaitContainerOptions>);
                match waited.next().await {
                    Some(Ok(exit)) => exit_frame(exit.status_code),
                    // bollard reports a non-zero exit as an error.
                    Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
                        exit_frame(code)
                    }
                    Some(Err(err)) => docker_frame(err),
                    None => Frame::Error("Docker did not report the exit status".to_owned()),
                }
            }
            Target::Exec(id) => match docker.inspect_exec(id).await {
                Ok(inspected) => exit_frame(inspected.exit_code.unwrap_or(1)),
                Err(err) => docker_frame(err),
            },
        }
    }
}

/// A process started with its streams attached.
pub(crate) struct Started {
    output: Output,
    input: Input,
    target: Target,
    tty: bool,
    /// How long it may run (a one-off's timeout; an exec lives as long as its container).
    timeout: Option<Duration>,
}

/// Relays the started process and, for a one-off, removes the container; gives the last
/// frame for a client still there.
async fn session(
    state: &AgentState,
    started: Started,
    frames: &mut FrameReader<impl AsyncRead + Unpin>,
    write: &mut (impl AsyncWrite + Unpin),
) -> Option<Frame> {
    let docker = &state.docker;
    let Started {
        output,
        input,
        target,
        tty,
        timeout,
    } = started;
    let resize = |cols, rows| target.resize(docker, cols, rows);
    let relayed = pump(frames, write, output, input, tty, resize);
    let relayed = match timeout {
        Some(timeout) => tokio::time::timeout(timeout, relayed).await.map_err(|_| {
            Frame::Error(format!(
                "The process ran longer than {} s and was stopped.",
                timeout.as_secs()
            ))
        }),
        None => Ok(relayed.await),
    };
    let last = match relayed {
        Ok(Relayed::ClientGone) => None,
        Ok(Relayed::Ended) => Some(target.status(docker).await),
        Err(frame) => Some(frame),
    };
    if let Target::Container(name) = &target {
        remove_oneoff(state, name).await;
        info!(%name, ?last, "attached one-off ended");
    }
    last
}

async fn remove_oneoff(state: &AgentState, name: &str) {
    let engine = DockerEngine::new(state.docker.clone(), state.config.clone());
    if let Err(err) = engine.remove(name).await {
        warn!(%name, error = %err, "cannot remove a one-off container");
    }
}

/// Creates, attaches and starts the one-off; one that was made but could not start is
/// removed again.
async fn start_oneoff(state: &AgentState, app: &str, open: AgentAttach) -> Result<Started, Frame> {
    let mut created = None;
    let started = create_oneoff(state, app, open, &mut created).await;
    if started.is_err()
        && let Some(name) = &created
    {
        remove_oneoff(state, name).await;
    }
    started
}

/// [`start_oneoff`]'s work; the container's name goes to `created` as soon as it may exist.
async fn create_oneoff(
    state: &AgentState,
    app: &str,
    open: AgentAttach,
    created: &mut Option<String>,
) -> Result<Started, Frame> {
    let spec = open.oneoff;
    if spec.kind != OneOffKind::Run {
        return Err(Frame::Error(
            "only `run` one-offs can be attached".to_owned(),
        ));
    }
    oneoff::validate(&spec, &state.config.runtime).map_err(|err| Frame::Error(err.message))?;
    let tty = open.tty;
    let index = oneoff::create(state, app, &spec, created, |body| {
        body.tty = Some(tty);
        body.open_stdin = Some(true);
        body.stdin_once = Some(true);
        body.attach_stdin = Some(true);
        body.attach_stdout = Some(true);
        body.attach_stderr = Some(true);
    })
    .await
    .map_err(|event| match event {
        OneOffEvent::Failed { reason } => Frame::Error(reason),
        other => Frame::Error(format!("{other:?}")),
    })?;
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
    Ok(Started {
        output: attached.output,
        input: attached.input,
        target: Target::Container(name),
        tty,
        timeout: Some(Duration::from_secs(spec.timeout_secs)),
    })
}

/// Starts the command in the named running instance, as its user with its environment.
async fn start_exec(state: &AgentState, app: &str, open: AgentExec) -> Result<Started, Frame> {
    let docker = &state.docker;
    let dyno = format!("{}.{}", open.process, open.index);
    if open.command.is_empty() || open.command.iter().any(|word| word.contains('\0')) {
        return Err(Frame::Error(
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
        .await
        .map_err(docker_frame)?;
    let Some(container) = listed.into_iter().find_map(|summary| summary.id) else {
        return Err(Frame::Error(format!(
            "{app} has no running process {dyno}."
        )));
    };
    let command = ExecConfig {
        cmd: Some(open.command),
        ..Default::default()
    };
    let started = attach_exec(docker, &container, command, open.tty).await?;
    info!(%app, %dyno, tty = open.tty, "exec started");
    Ok(started)
}

/// Starts `command` (its program, environment and user) in the running `container` with
/// stdin, stdout and stderr attached, on a terminal if `tty`.
pub(crate) async fn attach_exec(
    docker: &Docker,
    container: &str,
    command: ExecConfig,
    tty: bool,
) -> Result<Started, Frame> {
    let created = docker
        .create_exec(
            container,
            ExecConfig {
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                tty: Some(tty),
                ..command
            },
        )
        .await
        .map_err(docker_frame)?;
    let started = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty,
                output_capacity: None,
            }),
        )
        .await
        .map_err(docker_frame)?;
    let StartExecResults::Attached { output, input } = started else {
        return Err(Frame::Error("Docker started the exec detached".to_owned()));
    };
    Ok(Started {
        output,
        input,
        target: Target::Exec(created.id),
        tty,
        timeout: None,
    })
}

pub(crate) fn docker_frame(err: DockerError) -> Frame {
    Frame::Error(format!("Docker: {err}"))
}

fn exit_frame(status: i64) -> Frame {
    Frame::Exit {
        status: i32::try_from(status).unwrap_or(1),
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

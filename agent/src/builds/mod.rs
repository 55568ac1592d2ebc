//! Image builds: `POST /v1/builds` (contract in `paas_api::agent`). The request body is a spec
//! line then a tar of the tree; the tar is unpacked as it arrives into a scratch directory,
//! built with the engine (Dockerfile) or `pack` (buildpacks), pushed to the registry when one is
//! configured, and every output line is streamed
//! back as NDJSON while the build runs, ending with exactly one `done` or `failed` event.

mod context;
mod dockerfile;
mod dockerfile_check;
mod dockerfile_parse;
mod dockerignore;
mod engine;
mod image_check;
pub mod limits;
mod network;
pub mod pack;
mod push;
mod reserved_labels;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::path::{Component, Path};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use paas_api::ErrorCode;
use paas_api::agent::{BuildEvent, BuildSpec, Builder};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;
use tracing::{info, warn};

pub(crate) use engine::docker_socket;

use crate::error::ApiError;
use crate::naming;
use crate::state::AgentState;

/// The spec line is small JSON; anything longer is not a spec.
const MAX_SPEC_LINE: u64 = 1024 * 1024;
/// Events buffered for a slow reader before the build itself is held back.
const EVENT_BUFFER: usize = 256;

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/builds", post(create_build))
        // The tar streams to disk; its size is bounded by the disk, not by memory.
        .layer(DefaultBodyLimit::disable())
}

/// One build as the agent carries it out: the spec's app, release and builder, with the
/// image name and labels the agent gives them ([`naming`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildJob {
    pub app: String,
    pub release: u32,
    pub image: String,
    pub labels: BTreeMap<String, String>,
    pub builder: Builder,
}

impl BuildJob {
    /// The job of a spec [`validate_spec`] accepted.
    fn new(spec: BuildSpec) -> BuildJob {
        BuildJob {
            image: naming::image_tag(&spec.app, spec.release),
            labels: naming::labels::build_labels(&spec.app, spec.release, &spec.commit),
            app: spec.app,
            release: spec.release,
            builder: spec.builder,
        }
    }
}

/// What a successful build produced.
#[derive(Debug)]
pub struct BuiltImage {
    pub image: String,
    pub image_id: String,
}

/// Why a build failed; the message becomes the one-line `failed` reason.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Context(#[from] context::ContextError),
    #[error("no Dockerfile at `{0}` in the pushed tree")]
    NoDockerfile(String),
    #[error("{0}")]
    Engine(String),
    #[error(
        "pack is not installed on the build host; add a Dockerfile to the app or install pack (https://buildpacks.io/docs/tools/pack/)"
    )]
    PackMissing,
    #[error("pack build failed ({0})")]
    PackFailed(String),
    #[error("pack finished but image `{0}` does not exist")]
    PackNoImage(String),
    #[error("build scratch space: {0}")]
    Scratch(std::io::Error),
    #[error("{0}")]
    ReservedLabel(#[from] reserved_labels::ReservedLabelError),
    /// The pushed build does something no build may do (one line saying what and why).
    #[error("{0}")]
    Refused(String),
    /// A `[build]` limit was hit or cannot be applied.
    #[error("{0}")]
    Limit(String),
    /// The caller hung up; nobody is left to tell.
    #[error("the client went away")]
    ClientGone,
}

/// Sends events to the client; a failed send means the client hung up.
#[derive(Clone)]
pub struct EventSink(mpsc::Sender<BuildEvent>);

impl EventSink {
    pub async fn line(&self, text: impl Into<String>) -> Result<(), BuildError> {
        self.0
            .send(BuildEvent::Line(text.into()))
            .await
            .map_err(|_| BuildError::ClientGone)
    }

    /// For build steps running on a blocking thread.
    pub fn blocking_line(&self, text: impl Into<String>) -> Result<(), BuildError> {
        self.0
            .blocking_send(BuildEvent::Line(text.into()))
            .map_err(|_| BuildError::ClientGone)
    }
}

async fn create_build(State(state): State<AgentState>, body: Body) -> Result<Response, ApiError> {
    let mut body = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let spec = read_spec(&mut body).await?;
    validate_spec(&spec)?;
    let spec = BuildJob::new(spec);
    info!(app = %spec.app, image = %spec.image, "build started");

    let (sender, mut receiver) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(run_build(state, spec, body, EventSink(sender)));

    let events = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
        .map(|event| Ok::<_, Infallible>(encode_event(&event)));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(events))
        .expect("static headers are valid"))
}

fn encode_event(event: &BuildEvent) -> Bytes {
    let mut line = serde_json::to_vec(event).expect("build events always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

async fn read_spec(body: &mut (impl AsyncBufRead + Unpin)) -> Result<BuildSpec, ApiError> {
    let mut line = Vec::new();
    body.take(MAX_SPEC_LINE)
        .read_until(b'\n', &mut line)
        .await
        .map_err(|err| {
            ApiError::new(
                ErrorCode::InvalidInput,
                format!("reading the build request: {err}"),
            )
        })?;
    if line.last() != Some(&b'\n') {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "the build request must start with one line of JSON (the build spec)",
        ));
    }
    serde_json::from_slice(&line).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid build spec: {err}"),
        )
    })
}

fn validate_spec(spec: &BuildSpec) -> Result<(), ApiError> {
    let invalid = |message: String| Err(ApiError::new(ErrorCode::InvalidInput, message));
    if let Err(err) = spec.app.parse::<paas_api::AppName>() {
        return invalid(err.to_string());
    }
    if spec.release == 0 {
        return invalid("release must be 1 or more".to_owned());
    }
    // It becomes a label value, which goes into the Dockerfile as it is.
    let is_object_id =
        (4..=64).contains(&spec.commit.len()) && spec.commit.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_object_id {
        return invalid(format!("commit {:?} must be a hex object id", spec.commit));
    }
    match &spec.builder {
        Builder::Dockerfile { dockerfile, .. } => {
            check_relative("dockerfile", dockerfile, false).or_else(invalid)
        }
        Builder::Pack {
            builder, path, env, ..
        } => {
            if builder.trim().is_empty() {
                return invalid("pack builder must not be empty".to_owned());
            }
            check_relative("path", path, true).or_else(invalid)?;
            for key in env.keys() {
                if let Err(err) = key.parse::<paas_api::ConfigKey>() {
                    return invalid(err.to_string());
                }
            }
            Ok(())
        }
    }
}

/// A path inside the build context: relative, no `..`; `.` allowed only where a directory is.
fn check_relative(field: &str, path: &str, may_be_root: bool) -> Result<(), String> {
    let parsed = Path::new(path);
    let only_normal = parsed
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    let has_name = parsed
        .components()
        .any(|c| matches!(c, Component::Normal(_)));
    if path.is_empty() || !only_normal || (!has_name && !may_be_root) {
        return Err(format!(
            "{field} `{path}` must be a relative path inside the pushed tree"
        ));
    }
    Ok(())
}

async fn run_build(
    state: AgentState,
    spec: BuildJob,
    body: impl AsyncRead + Send + Unpin + 'static,
    events: EventSink,
) {
    let outcome = build_with_timeout(&state, &spec, body, &events).await;
    let terminal = match outcome {
        Ok(built) => {
            info!(image = %built.image, id = %built.image_id, "build succeeded");
            BuildEvent::Done {
                image: built.image,
                image_id: built.image_id,
            }
        }
        Err(BuildError::ClientGone) => {
            warn!(image = %spec.image, "build abandoned: the client went away");
            return;
        }
        Err(err) => {
            let reason = one_line(&err.to_string());
            warn!(image = %spec.image, %reason, "build failed");
            BuildEvent::Failed { reason }
        }
    };
    // A client that left after the last line simply misses the verdict.
    let _ = events.0.send(terminal).await;
}

/// [`build`] within `[build] timeout_secs`; dropping it at the timeout stops the engine's
/// build (its connection closes) or kills pack.
async fn build_with_timeout(
    state: &AgentState,
    spec: &BuildJob,
    body: impl AsyncRead + Send + Unpin + 'static,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let limits = &state.config.build;
    match tokio::time::timeout(limits.timeout(), build(state, spec, body, events)).await {
        Ok(built) => built,
        Err(_) => Err(BuildError::Limit(format!(
            "build timed out after {}",
            limits::show_secs(limits.timeout_secs)
        ))),
    }
}

async fn build(
    state: &AgentState,
    spec: &BuildJob,
    body: impl AsyncRead + Send + Unpin + 'static,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let limits = &state.config.build;
    let scratch = tempfile::Builder::new()
        .prefix("paas-build-")
        .tempdir()
        .map_err(BuildError::Scratch)?;
    let build_id = scratch
        .path()
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("paas-build")
        .to_owned();
    let context_dir = scratch.path().join("context");
    context::unpack(body, context_dir.clone(), limits.context_bytes()).await?;
    let built = match &spec.builder {
        Builder::Dockerfile {
            dockerfile,
            build_args,
        } => {
            dockerfile::build(
                &state.docker,
                spec,
                dockerfile::DockerfileBuild {
                    dockerfile,
                    build_args,
                    context_dir: &context_dir,
                    scratch_dir: scratch.path(),
                    build_id: &build_id,
                    limits,
                },
                events,
            )
            .await
        }
        Builder::Pack {
            builder,
            buildpacks,
            path,
            env,
            trust_builder,
        } => {
            let (env, skipped_env) = pack::env_file_vars(env);
            let command = pack::PackBuildCommand {
                image: spec.image.clone(),
                builder: builder.clone(),
                buildpacks: buildpacks.clone(),
                path: path.clone(),
                env,
                env_file: scratch.path().join("pack.env"),
                process_env: pack::process_env(&state.config.pack.pass_env),
                pull_policy: state.config.pack.pull_policy,
                network: Some(limits.network.clone()),
                trust_builder: *trust_builder,
                cache_volume: Some(naming::pack_cache_volume(&spec.app)),
            };
            pack::build(
                &state.docker,
                spec,
                command,
                &skipped_env,
                &context_dir,
                events,
            )
            .await
        }
    }?;
    reserved_labels::refuse_reserved(&state.docker, spec).await?;
    match &state.config.registry {
        Some(registry) => push::push(&state.docker, &registry.url, spec, built, events).await,
        None => Ok(built),
    }
}

/// Daemon and tool errors sometimes span lines; a reason is one.
fn one_line(text: &str) -> String {
    text.split(['\n', '\r'])
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn spec(builder: Builder) -> BuildSpec {
        BuildSpec {
            app: "hello".into(),
            release: 3,
            commit: "abc123".into(),
            builder,
        }
    }

    fn dockerfile(path: &str) -> Builder {
        Builder::Dockerfile {
            dockerfile: path.into(),
            build_args: BTreeMap::new(),
        }
    }

    fn pack_at(path: &str, env_key: &str) -> Builder {
        Builder::Pack {
            builder: "heroku/builder:24".into(),
            buildpacks: vec![],
            path: path.into(),
            env: BTreeMap::from([(env_key.to_owned(), "v".to_owned())]),
            trust_builder: false,
        }
    }

    #[test]
    fn accepts_a_well_formed_spec() {
        assert!(validate_spec(&spec(dockerfile("Dockerfile"))).is_ok());
        assert!(validate_spec(&spec(dockerfile("web/Dockerfile"))).is_ok());
        assert!(validate_spec(&spec(pack_at(".", "GREETING"))).is_ok());
        assert!(validate_spec(&spec(pack_at("web", "GREETING"))).is_ok());
    }

    #[test]
    fn refuses_paths_outside_the_tree() {
        for bad in ["/etc/passwd", "../Dockerfile", "a/../../b", "", "."] {
            let err = validate_spec(&spec(dockerfile(bad))).unwrap_err();
            assert!(
                err.message.contains("relative path"),
                "{bad}: {}",
                err.message
            );
        }
        for bad in ["/", "..", "x/../.."] {
            assert!(validate_spec(&spec(pack_at(bad, "K"))).is_err(), "{bad}");
        }
    }

    #[test]
    fn refuses_release_zero_and_commits_that_are_not_object_ids() {
        let mut s = spec(dockerfile("Dockerfile"));
        s.release = 0;
        assert_eq!(
            validate_spec(&s).unwrap_err().message,
            "release must be 1 or more"
        );
        for bad in [
            "",
            "abc",
            "abc123\" \"paas.app\"=\"victim",
            "xyz1234",
            &"a".repeat(65),
        ] {
            let mut s = spec(dockerfile("Dockerfile"));
            s.commit = bad.to_owned();
            assert!(
                validate_spec(&s)
                    .unwrap_err()
                    .message
                    .contains("hex object id"),
                "{bad}"
            );
        }
        let mut s = spec(dockerfile("Dockerfile"));
        s.app = "Other".into();
        assert!(validate_spec(&s).is_err());
    }

    #[test]
    fn the_agent_names_and_labels_the_image() {
        let job = BuildJob::new(spec(dockerfile("Dockerfile")));
        assert_eq!(job.image, "paas/hello:v3");
        assert_eq!(job.labels["paas.app"], "hello");
        assert_eq!(job.labels["paas.release"], "v3");
        assert_eq!(job.labels["paas.commit"], "abc123");
        // They go into the Dockerfile as they are: letters, digits and `. _ : / @ + -` only.
        let plain = |text: &str| {
            text.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._:/@+-".contains(&b))
        };
        assert!(
            job.labels
                .iter()
                .all(|(key, value)| plain(key) && plain(value))
        );
    }

    #[test]
    fn refuses_env_keys_that_could_pass_for_flags() {
        assert!(validate_spec(&spec(pack_at(".", "--publish"))).is_err());
        assert!(validate_spec(&spec(pack_at(".", "A=B"))).is_err());
    }

    #[test]
    fn reasons_are_one_line() {
        assert_eq!(one_line("a\n  b\r\n\nc "), "a; b; c");
    }

    #[tokio::test]
    async fn the_spec_line_must_end_with_a_newline() {
        let mut body: &[u8] = b"{\"app\":";
        let err = read_spec(&mut body).await.unwrap_err();
        assert!(err.message.contains("one line of JSON"), "{}", err.message);

        let mut body: &[u8] = b"{}\nTAR";
        let err = read_spec(&mut body).await.unwrap_err();
        assert!(
            err.message.starts_with("invalid build spec"),
            "{}",
            err.message
        );
    }
}

//! Builds through the Docker engine's build API (the classic builder, which Debian's 20.10
//! engine runs without BuildKit), streaming its output line by line. Builds of pushed
//! Dockerfiles go through [`build_in_cgroup`], which adds the `cgroupparent` parameter
//! bollard's options lack, over the same socket.

use std::collections::HashMap;
use std::path::PathBuf;

use bollard::Docker;
use bollard::body_try_stream;
use bollard::errors::Error as DockerError;
use bollard::models::BuildInfo;
use bollard::query_parameters::{BuildImageOptions, BuildImageOptionsBuilder};
use futures::StreamExt;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use super::{BuildError, BuildJob, EventSink};

/// Options for building `spec.image`, never pulling (no registry is reachable; bases are
/// local images). The labels are not among them: the classic builder turns each label of the
/// `labels` parameter into a step of its own (a container commit each), so the Dockerfile
/// gets them as one step instead ([`label_instruction`]).
pub fn options(
    spec: &BuildJob,
    dockerfile: &str,
    build_args: &HashMap<String, String>,
) -> BuildImageOptions {
    BuildImageOptionsBuilder::new()
        .dockerfile(dockerfile)
        .t(&spec.image)
        .buildargs(build_args)
        .rm(true)
        .forcerm(true)
        .build()
}

/// `spec.labels` as one `LABEL` line to end a Dockerfile with (so it applies to the last
/// stage). Keys and values are double-quoted and plain: the agent makes them of an app name, a
/// release number and a hex commit ([`crate::naming::labels::build_labels`]), so nothing in
/// them is an escape, a quote or a variable under any `# escape=` directive.
pub fn label_instruction(spec: &BuildJob) -> String {
    let pairs: Vec<String> = spec
        .labels
        .iter()
        .map(|(key, value)| format!("\"{key}\"=\"{value}\""))
        .collect();
    format!("LABEL {}\n", pairs.join(" "))
}

/// Runs one build with `context` (a tar stream) and sends each output line to `events` as it
/// arrives, if given. The daemon's error message fails the build.
pub async fn build(
    docker: &Docker,
    options: BuildImageOptions,
    context: impl AsyncRead + Send + 'static,
    events: Option<&EventSink>,
) -> Result<(), BuildError> {
    let body = body_try_stream(ReaderStream::new(context));
    let mut output = docker.build_image(options, None, Some(body));
    let mut partial = String::new();
    while let Some(item) = output.next().await {
        let info = match item {
            Ok(info) => info,
            Err(DockerError::DockerStreamError { error }) => return Err(BuildError::Engine(error)),
            Err(DockerError::DockerResponseServerError { message, .. }) => {
                return Err(BuildError::Engine(message));
            }
            Err(err) => return Err(BuildError::Engine(format!("Docker: {err}"))),
        };
        if let Some(events) = events {
            relay(info, &mut partial, events).await?;
        }
    }
    if let Some(events) = events {
        send_line(events, &partial).await?;
    }
    Ok(())
}

/// Sends the complete lines of one piece of engine output.
async fn relay(
    info: BuildInfo,
    partial: &mut String,
    events: &EventSink,
) -> Result<(), BuildError> {
    if let Some(text) = info.stream {
        partial.push_str(&text);
        while let Some(end) = partial.find('\n') {
            let line: String = partial.drain(..=end).collect();
            send_line(events, &line).await?;
        }
    }
    if let Some(status) = info.status {
        send_line(events, &status).await?;
    }
    Ok(())
}

/// Like [`build`], with every step container of the build under `cgroup_parent`. Dropping the
/// future closes the connection, which makes the engine cancel the build.
pub async fn build_in_cgroup(
    docker: &Docker,
    options: BuildImageOptions,
    cgroup_parent: &str,
    context: impl AsyncRead + Send + 'static,
    events: &EventSink,
) -> Result<(), BuildError> {
    let engine_error = |err: reqwest::Error| BuildError::Engine(format!("Docker: {err}"));
    let client = reqwest::Client::builder()
        .unix_socket(docker_socket())
        .build()
        .map_err(engine_error)?;
    let version = docker.client_version();
    let url = format!(
        "http://docker/v{}.{}/build",
        version.major_version, version.minor_version
    );
    let response = client
        .post(url)
        .query(&options)
        .query(&[("cgroupparent", cgroup_parent)])
        .header(reqwest::header::CONTENT_TYPE, "application/x-tar")
        .body(reqwest::Body::wrap_stream(ReaderStream::new(context)))
        .send()
        .await
        .map_err(engine_error)?;
    if !response.status().is_success() {
        let text = response.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|body| body.get("message")?.as_str().map(str::to_owned))
            .unwrap_or(text);
        return Err(BuildError::Engine(message));
    }
    let mut body = response.bytes_stream();
    let (mut pending, mut partial) = (Vec::new(), String::new());
    while let Some(chunk) = body.next().await {
        pending.extend_from_slice(&chunk.map_err(engine_error)?);
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let info: BuildInfo = serde_json::from_slice(&line)
                .map_err(|err| BuildError::Engine(format!("unreadable engine output: {err}")))?;
            if let Some(error) = info.error.clone() {
                send_line(events, &partial).await?;
                return Err(BuildError::Engine(error));
            }
            relay(info, &mut partial, events).await?;
        }
    }
    send_line(events, &partial).await
}

/// The engine's socket, found the way bollard's `connect_with_local_defaults` finds it.
pub(crate) fn docker_socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

async fn send_line(events: &EventSink, line: &str) -> Result<(), BuildError> {
    let line = line.trim_end();
    if line.is_empty() {
        return Ok(());
    }
    events.line(line).await
}

/// The id of a local image, `sha256:…`.
pub async fn image_id(docker: &Docker, image: &str) -> Result<Option<String>, BuildError> {
    match docker.inspect_image(image).await {
        Ok(inspect) => Ok(inspect.id),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(None),
        Err(err) => Err(BuildError::Engine(format!("inspecting {image}: {err}"))),
    }
}

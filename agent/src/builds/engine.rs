//! Builds through the Docker engine's build API (the classic builder, which Debian's 20.10
//! engine runs without BuildKit), streaming its output line by line.

use std::collections::HashMap;

use bollard::Docker;
use bollard::body_try_stream;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{BuildImageOptions, BuildImageOptionsBuilder};
use futures::StreamExt;
use paas_api::agent::BuildSpec;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use super::{BuildError, EventSink};

/// Options for building `spec.image` with `spec.labels`, never pulling (no registry is
/// reachable; bases are local images).
pub fn options(
    spec: &BuildSpec,
    dockerfile: &str,
    build_args: &HashMap<String, String>,
) -> BuildImageOptions {
    let labels: HashMap<String, String> = spec.labels.clone().into_iter().collect();
    BuildImageOptionsBuilder::new()
        .dockerfile(dockerfile)
        .t(&spec.image)
        .labels(&labels)
        .buildargs(build_args)
        .rm(true)
        .forcerm(true)
        .build()
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
        let Some(events) = events else { continue };
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
    }
    if let Some(events) = events {
        send_line(events, &partial).await?;
    }
    Ok(())
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

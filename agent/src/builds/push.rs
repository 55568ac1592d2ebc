//! With `[registry]` set, a built image is tagged `<registry>/paas/<app>:v<N>` and pushed, and
//! the build's result becomes the pushed digest (`<registry>/paas/<app>@sha256:…`): what the
//! release runs, on whichever node, is then exactly what was built.

use bollard::Docker;
use bollard::query_parameters::{PushImageOptions, TagImageOptions};
use futures::StreamExt;

use super::{BuildError, BuildJob, BuiltImage, EventSink};
use crate::naming::registry::Registry;

pub async fn push(
    docker: &Docker,
    registry: &Registry,
    spec: &BuildJob,
    built: BuiltImage,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let repository = registry.repository(&spec.app);
    let version = format!("v{}", spec.release);
    let engine_error = |err: bollard::errors::Error| {
        BuildError::Engine(format!("pushing to {}: {err}", registry.address()))
    };
    docker
        .tag_image(
            &built.image,
            Some(TagImageOptions {
                repo: Some(repository.clone()),
                tag: Some(version.clone()),
            }),
        )
        .await
        .map_err(engine_error)?;
    events
        .line(format!(
            "Pushing {}",
            registry.push_tag(&spec.app, spec.release)
        ))
        .await?;
    let mut progress = docker.push_image(
        &repository,
        Some(PushImageOptions {
            tag: Some(version),
            ..Default::default()
        }),
        None,
    );
    while let Some(step) = progress.next().await {
        step.map_err(engine_error)?;
    }
    let inspected = docker
        .inspect_image(&built.image)
        .await
        .map_err(engine_error)?;
    let pinned = registry
        .pinned(&spec.app, &inspected.repo_digests.unwrap_or_default())
        .ok_or_else(|| {
            BuildError::Engine(format!(
                "pushed {repository} but the engine knows no digest of it in {}",
                registry.address()
            ))
        })?;
    events.line(format!("Pushed {pinned}")).await?;
    Ok(BuiltImage {
        image: pinned,
        image_id: built.image_id,
    })
}

//! Dockerfile builds: the pushed tree, filtered by `.dockerignore`, built by the engine.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::Docker;
use paas_api::agent::BuildSpec;

use super::context::resolve_inside;
use super::{BuildError, BuiltImage, EventSink, dockerignore, engine};

pub struct DockerfileBuild<'a> {
    /// Relative to the context root.
    pub dockerfile: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub context_dir: &'a Path,
    /// Where the context tar is written (outside the context itself).
    pub scratch_dir: &'a Path,
}

pub async fn build(
    docker: &Docker,
    spec: &BuildSpec,
    request: DockerfileBuild<'_>,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let dockerfile_exists =
        resolve_inside(request.context_dir, request.dockerfile).is_ok_and(|path| path.is_file());
    if !dockerfile_exists {
        return Err(BuildError::NoDockerfile(request.dockerfile.to_owned()));
    }

    // The filtered context goes to a file, not memory: a push may be large.
    let tar_path = request.scratch_dir.join("context.tar");
    let (root, dockerfile, tar_out) = (
        request.context_dir.to_owned(),
        request.dockerfile.to_owned(),
        tar_path.clone(),
    );
    tokio::task::spawn_blocking(move || {
        let file = std::io::BufWriter::new(std::fs::File::create(&tar_out)?);
        dockerignore::write_context_tar(&root, &dockerfile, file)
    })
    .await
    .map_err(|err| BuildError::Scratch(std::io::Error::other(err)))?
    .map_err(|err| BuildError::Engine(format!("preparing the build context: {err}")))?;

    let build_args: HashMap<String, String> = request.build_args.clone().into_iter().collect();
    let options = engine::options(spec, request.dockerfile, &build_args);
    let context = tokio::fs::File::open(&tar_path)
        .await
        .map_err(BuildError::Scratch)?;
    engine::build(docker, options, context, Some(events)).await?;

    let image_id = engine::image_id(docker, &spec.image)
        .await?
        .ok_or_else(|| {
            BuildError::Engine(format!(
                "the engine reported success but {} is missing",
                spec.image
            ))
        })?;
    Ok(BuiltImage {
        image: spec.image.clone(),
        image_id,
    })
}

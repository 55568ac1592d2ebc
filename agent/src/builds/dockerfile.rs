//! Dockerfile builds: the pushed tree, filtered by `.dockerignore`, checked
//! ([`super::image_check`]), built by the engine inside the build's own cgroup
//! ([`super::limits`]).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use bollard::Docker;

use super::context::resolve_inside;
use super::limits::{BuildCgroup, BuildConfig};
use super::{
    BuildError, BuildJob, BuiltImage, EventSink, dockerignore, engine, image_check, network,
};

/// A Dockerfile longer than this is not one anybody wrote.
const MAX_DOCKERFILE_BYTES: u64 = 1024 * 1024;

pub struct DockerfileBuild<'a> {
    /// Relative to the context root.
    pub dockerfile: &'a str,
    pub build_args: &'a BTreeMap<String, String>,
    pub context_dir: &'a Path,
    /// Where the context tar is written (outside the context itself).
    pub scratch_dir: &'a Path,
    /// Names the build's cgroup.
    pub build_id: &'a str,
    pub limits: &'a BuildConfig,
}

pub async fn build(
    docker: &Docker,
    spec: &BuildJob,
    request: DockerfileBuild<'_>,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let dockerfile_path = resolve_inside(request.context_dir, request.dockerfile)
        .ok()
        .filter(|path| path.is_file())
        .ok_or_else(|| BuildError::NoDockerfile(request.dockerfile.to_owned()))?;
    let text = read_dockerfile(&dockerfile_path).await?;
    image_check::check_dockerfile(docker, &text, request.build_args, &spec.app).await?;
    tokio::fs::write(&dockerfile_path, labelled(&text, spec)?)
        .await
        .map_err(BuildError::Scratch)?;

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
    let mut options = engine::options(spec, request.dockerfile, &build_args);
    network::ensure(docker, &request.limits.network).await?;
    options.networkmode = Some(request.limits.network.clone());
    let context = tokio::fs::File::open(&tar_path)
        .await
        .map_err(BuildError::Scratch)?;
    if request.limits.cgroup_limits {
        refuse_systemd_cgroups(docker).await?;
        let cgroup = BuildCgroup::prepare(request.limits, request.build_id)
            .map_err(|err| BuildError::Limit(err.to_string()))?;
        let built =
            engine::build_in_cgroup(docker, options, &cgroup.parent(), context, events).await;
        if let Err(BuildError::Engine(message)) = &built {
            let killed = message.contains("returned a non-zero code: 137");
            if let Some(hit) = cgroup.limit_hit(killed) {
                return Err(BuildError::Limit(hit.to_string()));
            }
        }
        built?;
    } else {
        engine::build(docker, options, context, Some(events)).await?;
    }

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

/// The pushed Dockerfile with the platform's labels as its last step, one step for all of
/// them. A last line that continues would swallow that step, so it is refused.
fn labelled(text: &str, spec: &BuildJob) -> Result<String, BuildError> {
    if text.trim_end().ends_with(['\\', '`']) {
        return Err(BuildError::Refused(
            "the Dockerfile ends with a line continuation".to_owned(),
        ));
    }
    let mut labelled = text.to_owned();
    if !labelled.is_empty() && !labelled.ends_with('\n') {
        labelled.push('\n');
    }
    labelled.push_str(&engine::label_instruction(spec));
    Ok(labelled)
}

/// The whole Dockerfile, or a refusal: the checks must see everything the engine will.
async fn read_dockerfile(path: &Path) -> Result<String, BuildError> {
    use tokio::io::AsyncReadExt;
    let mut text = String::new();
    tokio::fs::File::open(path)
        .await
        .map_err(BuildError::Scratch)?
        .take(MAX_DOCKERFILE_BYTES + 1)
        .read_to_string(&mut text)
        .await
        .map_err(|_| BuildError::Refused("the Dockerfile is not UTF-8 text".to_owned()))?;
    if text.len() as u64 > MAX_DOCKERFILE_BYTES {
        return Err(BuildError::Refused(format!(
            "the Dockerfile is over {} KiB",
            MAX_DOCKERFILE_BYTES / 1024
        )));
    }
    Ok(text)
}

/// Under the engine's systemd cgroup driver a cgroup parent must be a slice; the per-build
/// cgroups here are cgroupfs paths.
async fn refuse_systemd_cgroups(docker: &Docker) -> Result<(), BuildError> {
    use bollard::models::SystemInfoCgroupDriverEnum;
    let info = docker
        .info()
        .await
        .map_err(|err| BuildError::Engine(format!("Docker: {err}")))?;
    if info.cgroup_driver == Some(SystemInfoCgroupDriverEnum::SYSTEMD) {
        return Err(BuildError::Limit(
            "build limits need the engine's cgroupfs cgroup driver (this engine uses systemd); set [build] cgroup_limits = false to build without memory, CPU and pids limits".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> BuildJob {
        BuildJob {
            app: "hello".into(),
            release: 3,
            image: "paas/hello:v3".into(),
            labels: BTreeMap::from([
                ("paas.app".into(), "hello".into()),
                ("paas.commit".into(), "0123abc".into()),
                ("paas.release".into(), "v3".into()),
            ]),
            builder: paas_api::agent::Builder::Dockerfile {
                dockerfile: "Dockerfile".into(),
                build_args: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn the_labels_are_one_last_step() {
        let text = labelled("FROM a AS build\nFROM b\nCMD [\"x\"]", &spec()).unwrap();
        assert_eq!(
            text,
            "FROM a AS build\nFROM b\nCMD [\"x\"]\nLABEL \"paas.app\"=\"hello\" \"paas.commit\"=\"0123abc\" \"paas.release\"=\"v3\"\n"
        );
        assert_eq!(text.matches("LABEL").count(), 1);
        for dangling in ["FROM b\nRUN true \\\n", "# escape=`\nFROM b\nRUN true `"] {
            let err = labelled(dangling, &spec()).unwrap_err();
            assert!(err.to_string().contains("line continuation"), "{err}");
        }
    }

    #[tokio::test]
    async fn a_dockerfile_too_long_to_check_whole_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("Dockerfile");
        let padding = "# padding\n".repeat((MAX_DOCKERFILE_BYTES / 10) as usize + 1);
        std::fs::write(&path, format!("{padding}ADD http://127.0.0.1/x /x\n")).unwrap();
        let err = read_dockerfile(&path).await.unwrap_err();
        assert_eq!(err.to_string(), "the Dockerfile is over 1024 KiB");
        std::fs::write(&path, "FROM paas/busybox:latest\n").unwrap();
        assert_eq!(
            read_dockerfile(&path).await.unwrap(),
            "FROM paas/busybox:latest\n"
        );
        std::fs::write(&path, b"FROM \xff\n").unwrap();
        assert!(read_dockerfile(&path).await.is_err());
    }
}

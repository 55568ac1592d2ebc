//! The engine's side of the image rules of [`super::dockerfile_check`]: every image a build
//! names (Dockerfile `FROM` / `COPY --from`, pack's builder, its run images and image
//! buildpacks) is looked up before the build, and refused when it was found only by id or
//! belongs to another app.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::ImageInspect;

use super::BuildError;
use super::dockerfile_check::{self, Checked, ImageFacts, ImageLookup, check_image};

/// A Dockerfile names images whose env and triggers can name more; this bounds the rounds.
const MAX_LOOKUP_ROUNDS: usize = 16;

/// pack's label on a builder image naming its run images.
const BUILDER_METADATA_LABEL: &str = "io.buildpacks.builder.metadata";

/// Checks the Dockerfile `text` of `app`, looking up the images it names.
pub async fn check_dockerfile(
    docker: &Docker,
    text: &str,
    build_args: &BTreeMap<String, String>,
    app: &str,
) -> Result<(), BuildError> {
    let mut images: HashMap<String, ImageLookup> = HashMap::new();
    for _ in 0..MAX_LOOKUP_ROUNDS {
        match dockerfile_check::check(text, build_args, app, &images)
            .map_err(|err| BuildError::Refused(err.to_string()))?
        {
            Checked::Allowed => return Ok(()),
            Checked::NeedImages(references) => {
                for reference in references {
                    let lookup = lookup(docker, &reference).await?.0;
                    images.insert(reference, lookup);
                }
            }
        }
    }
    Err(BuildError::Refused(
        "the Dockerfile names too many images through one another".to_owned(),
    ))
}

/// pack's project descriptor in the app's directory, which can name buildpacks too.
const PROJECT_DESCRIPTOR: &str = "project.toml";
const MAX_DESCRIPTOR_BYTES: u64 = 256 * 1024;

/// Checks pack's builder (and the run images its metadata names) and the buildpacks of `app`,
/// those given to pack and those its `project.toml` in `app_dir` names.
pub async fn check_pack(
    docker: &Docker,
    builder: &str,
    buildpacks: &[String],
    app: &str,
    app_dir: &std::path::Path,
) -> Result<(), BuildError> {
    let mut buildpacks = buildpacks.to_vec();
    buildpacks.extend(descriptor_buildpacks(app_dir)?);
    let refuse = |what: &str, problem: dockerfile_check::ImageProblem| {
        BuildError::Refused(format!("pack {what}: {problem}"))
    };
    let (found, inspect) = lookup(docker, builder).await?;
    check_image(builder, &found, app).map_err(|p| refuse("builder", p))?;
    for run_image in inspect.as_ref().map(run_images).unwrap_or_default() {
        let (found, _) = lookup(docker, &run_image).await?;
        check_image(&run_image, &found, app).map_err(|p| refuse("run image", p))?;
    }
    for buildpack in &buildpacks {
        let Some(image) = buildpack_image(buildpack)? else {
            continue;
        };
        let (found, _) = lookup(docker, image).await?;
        check_image(image, &found, app).map_err(|p| refuse("buildpack", p))?;
    }
    Ok(())
}

/// The buildpack `uri`s of the app's `project.toml` (any table, any schema version).
fn descriptor_buildpacks(app_dir: &std::path::Path) -> Result<Vec<String>, BuildError> {
    use std::io::Read;
    let Ok(path) = super::context::resolve_inside(app_dir, PROJECT_DESCRIPTOR) else {
        if std::fs::symlink_metadata(app_dir.join(PROJECT_DESCRIPTOR)).is_ok() {
            return Err(BuildError::Refused(format!(
                "{PROJECT_DESCRIPTOR} is a link to something outside the pushed tree"
            )));
        }
        return Ok(Vec::new());
    };
    let mut text = String::new();
    std::fs::File::open(&path)
        .and_then(|file| file.take(MAX_DESCRIPTOR_BYTES).read_to_string(&mut text))
        .map_err(|err| BuildError::Refused(format!("{PROJECT_DESCRIPTOR}: {err}")))?;
    let descriptor: toml::Table = toml::from_str(&text)
        .map_err(|err| BuildError::Refused(format!("{PROJECT_DESCRIPTOR}: {}", err.message())))?;
    let mut uris = Vec::new();
    collect_uris(&toml::Value::Table(descriptor), &mut uris);
    Ok(uris)
}

fn collect_uris(value: &toml::Value, uris: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => {
            for (key, inner) in table {
                match (key.as_str(), inner) {
                    ("uri", toml::Value::String(uri)) => uris.push(uri.clone()),
                    _ => collect_uris(inner, uris),
                }
            }
        }
        toml::Value::Array(items) => items.iter().for_each(|item| collect_uris(item, uris)),
        _ => {}
    }
}

/// The image a `--buildpack` value names, if any; URLs and paths out of the tree are refused
/// (pack would fetch or read them on the host).
fn buildpack_image(buildpack: &str) -> Result<Option<&str>, BuildError> {
    if let Some(image) = buildpack.strip_prefix("docker://") {
        return Ok(Some(image));
    }
    if buildpack.contains("://") {
        return Err(BuildError::Refused(format!(
            "buildpack `{buildpack}` is a URL: pack would fetch it from the build host's network; name a buildpack id or a docker:// image"
        )));
    }
    if buildpack.starts_with('/') || buildpack.split('/').any(|part| part == "..") {
        return Err(BuildError::Refused(format!(
            "buildpack `{buildpack}` is a path outside the pushed tree"
        )));
    }
    if buildpack.starts_with("urn:") || buildpack.starts_with("from=") {
        return Ok(None);
    }
    // `id@version` and registry ids are not image references; a local image may answer to
    // anything else.
    Ok((!buildpack.contains('@')).then_some(buildpack))
}

/// The run images (and their mirrors) a builder's metadata names, old and new layout.
fn run_images(inspect: &ImageInspect) -> Vec<String> {
    let Some(metadata) = inspect
        .config
        .as_ref()
        .and_then(|config| config.labels.as_ref())
        .and_then(|labels| labels.get(BUILDER_METADATA_LABEL))
    else {
        return Vec::new();
    };
    let Ok(metadata) = serde_json::from_str::<serde_json::Value>(metadata) else {
        return Vec::new();
    };
    let mut entries: Vec<&serde_json::Value> = Vec::new();
    if let Some(run_image) = metadata.pointer("/stack/runImage") {
        entries.push(run_image);
    }
    if let Some(list) = metadata.get("runImages").and_then(|v| v.as_array()) {
        entries.extend(list);
    }
    let mut images = Vec::new();
    for entry in entries {
        if let Some(image) = entry.get("image").and_then(|v| v.as_str()) {
            images.push(image.to_owned());
        }
        if let Some(mirrors) = entry.get("mirrors").and_then(|v| v.as_array()) {
            images.extend(mirrors.iter().filter_map(|m| m.as_str()).map(str::to_owned));
        }
    }
    images
}

/// What the engine answers for `reference`; a name it cannot parse is as good as missing (the
/// build fails on it the same way).
async fn lookup(
    docker: &Docker,
    reference: &str,
) -> Result<(ImageLookup, Option<ImageInspect>), BuildError> {
    // The reference becomes part of an API path: only ask about what could be a reference.
    if !plausible_reference(reference) {
        return Ok((ImageLookup::Missing, None));
    }
    match docker.inspect_image(reference).await {
        Ok(inspect) => Ok((ImageLookup::Found(facts(&inspect)), Some(inspect))),
        Err(DockerError::DockerResponseServerError { status_code, .. })
            if (400..500).contains(&status_code) =>
        {
            Ok((ImageLookup::Missing, None))
        }
        Err(err) => Err(BuildError::Engine(format!("inspecting {reference}: {err}"))),
    }
}

/// Characters of `repository[:tag][@digest]`, no empty or climbing path segments.
fn plausible_reference(reference: &str) -> bool {
    !reference.is_empty()
        && reference.len() <= 512
        && reference.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'.' | b'_' | b'-' | b'/' | b':' | b'@' | b'[' | b']')
        })
        && reference
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
}

fn facts(inspect: &ImageInspect) -> ImageFacts {
    let config = inspect.config.as_ref();
    ImageFacts {
        repo_tags: inspect.repo_tags.clone().unwrap_or_default(),
        repo_digests: inspect.repo_digests.clone().unwrap_or_default(),
        app_label: config
            .and_then(|c| c.labels.as_ref())
            .and_then(|labels| labels.get(crate::naming::LABEL_APP))
            .cloned(),
        env: config.and_then(|c| c.env.clone()).unwrap_or_default(),
        onbuild: config.and_then(|c| c.on_build.clone()).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildpack_values_that_pack_would_fetch_or_read_on_the_host_are_refused() {
        assert_eq!(
            buildpack_image("heroku/procfile").unwrap(),
            Some("heroku/procfile")
        );
        assert_eq!(
            buildpack_image("docker://paas/x:v1").unwrap(),
            Some("paas/x:v1")
        );
        assert_eq!(buildpack_image("heroku/procfile@1.0").unwrap(), None);
        assert_eq!(
            buildpack_image("urn:cnb:registry:heroku/nodejs").unwrap(),
            None
        );
        assert_eq!(buildpack_image("./local-bp").unwrap(), Some("./local-bp"));
        for bad in [
            "http://127.0.0.1/bp.tgz",
            "https://x/bp",
            "file:///etc",
            "/etc",
            "../x",
        ] {
            assert!(buildpack_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_toml_buildpack_uris_are_found_in_any_table() {
        let dir = tempfile::tempdir().unwrap();
        assert!(descriptor_buildpacks(dir.path()).unwrap().is_empty());
        std::fs::write(
            dir.path().join("project.toml"),
            "[project]\nsource-url = \"https://example.com/repo\"\n\
             [[build.buildpacks]]\nuri = \"http://127.0.0.1:8081/bp.tgz\"\n\
             [[io.buildpacks.pre.group]]\nuri = \"docker://paas/victim:v1\"\n",
        )
        .unwrap();
        let uris = descriptor_buildpacks(dir.path()).unwrap();
        assert_eq!(
            uris,
            ["http://127.0.0.1:8081/bp.tgz", "docker://paas/victim:v1"]
        );
        assert!(buildpack_image(&uris[0]).is_err());
        assert_eq!(buildpack_image(&uris[1]).unwrap(), Some("paas/victim:v1"));

        std::fs::remove_file(dir.path().join("project.toml")).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("project.toml")).unwrap();
        assert!(descriptor_buildpacks(dir.path()).is_err());
    }

    #[test]
    fn only_plausible_references_reach_the_engine_api() {
        for good in [
            "paas/busybox:latest",
            "2e904ba6",
            "localhost:5000/a@sha256:00",
            "[::1]:5000/x",
        ] {
            assert!(plausible_reference(good), "{good}");
        }
        for bad in [
            "",
            "$X",
            "a/../../containers/x",
            "a?b",
            "a b",
            "/a",
            "a//b",
            "a%2f",
        ] {
            assert!(!plausible_reference(bad), "{bad}");
        }
    }

    #[test]
    fn run_images_come_from_both_metadata_layouts() {
        let metadata = serde_json::json!({
            "stack": {"runImage": {"image": "a/run:1", "mirrors": ["m/run:1"]}},
            "runImages": [{"image": "b/run:2"}],
        });
        let inspect = ImageInspect {
            config: Some(bollard::models::ImageConfig {
                labels: Some(HashMap::from([(
                    BUILDER_METADATA_LABEL.to_owned(),
                    metadata.to_string(),
                )])),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(run_images(&inspect), ["a/run:1", "m/run:1", "b/run:2"]);
    }
}

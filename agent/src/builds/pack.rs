//! Buildpack builds with the `pack` CLI (run through duct), then labelled through the engine.
//! pack's own environment is only what pack needs, taken from the agent's environment
//! ([`PACK_PROCESS_ENV`] plus `[pack] pass_env`); the app's values (config vars and
//! `buildpacks.yaml` `env`) go into a 0600 file in the build's scratch dir passed with
//! `--env-file`, so they neither steer pack or Docker nor show in a process listing.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::Docker;
use serde::{Deserialize, Serialize};

use super::context::resolve_inside;
use super::{BuildError, BuildJob, BuiltImage, EventSink, engine, image_check};

/// What pack may take from the agent's environment: where it runs and finds its tools, how it
/// reaches the engine and registries. Nothing from an app ever lands here.
pub const PACK_PROCESS_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "TMPDIR",
    "LANG",
    "DOCKER_HOST",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "DOCKER_CONFIG",
    "PACK_HOME",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// pack's `--pull-policy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

impl PullPolicy {
    fn as_arg(self) -> &'static str {
        match self {
            PullPolicy::Always => "always",
            PullPolicy::IfNotPresent => "if-not-present",
            PullPolicy::Never => "never",
        }
    }
}

/// One `pack build` invocation, run from the root of the pushed tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackBuildCommand {
    pub image: String,
    pub builder: String,
    pub buildpacks: Vec<String>,
    /// Relative to the tree root (pack's working directory).
    pub path: String,
    /// Build-time variables, written to `env_file` (values without line breaks only).
    pub env: BTreeMap<String, String>,
    /// Where the variables are written for `--env-file` (outside the pushed tree).
    pub env_file: PathBuf,
    /// pack's whole environment.
    pub process_env: Vec<(OsString, OsString)>,
    pub pull_policy: PullPolicy,
    /// The Docker network of pack's build containers.
    pub network: Option<String>,
    pub trust_builder: bool,
    /// A named volume that keeps the build cache between releases.
    pub cache_volume: Option<String>,
}

impl PackBuildCommand {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = vec![
            "build".to_owned(),
            self.image.clone(),
            "--builder".to_owned(),
            self.builder.clone(),
            "--path".to_owned(),
            self.path.clone(),
            "--pull-policy".to_owned(),
            self.pull_policy.as_arg().to_owned(),
        ];
        if let Some(network) = &self.network {
            argv.push("--network".to_owned());
            argv.push(network.clone());
        }
        for buildpack in &self.buildpacks {
            argv.push("--buildpack".to_owned());
            argv.push(buildpack.clone());
        }
        if !self.env.is_empty() {
            argv.push("--env-file".to_owned());
            argv.push(self.env_file.display().to_string());
        }
        if let Some(volume) = &self.cache_volume {
            argv.push("--cache".to_owned());
            argv.push(format!("type=build;format=volume;name={volume}"));
        }
        if self.trust_builder {
            argv.push("--trust-builder".to_owned());
        }
        argv
    }

    /// `pack` with [`Self::to_argv`], in `workdir`, with exactly `process_env` as its
    /// environment, stderr merged into stdout (one stream of lines, in order) and stdin closed.
    pub fn to_command(&self, workdir: &Path) -> duct::Expression {
        duct::cmd("pack", self.to_argv())
            .dir(workdir)
            .full_env(self.process_env.iter().cloned())
            .stderr_to_stdout()
            .stdin_null()
            .unchecked()
    }

    /// `KEY=VALUE` lines for pack's `--env-file`.
    pub fn env_file_contents(&self) -> String {
        self.env
            .iter()
            .map(|(key, value)| format!("{key}={value}\n"))
            .collect()
    }

    /// Writes [`Self::env_file_contents`] to `env_file`, readable by the agent's user only.
    fn write_env_file(&self) -> Result<(), BuildError> {
        use std::os::unix::fs::OpenOptionsExt;
        if self.env.is_empty() {
            return Ok(());
        }
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.env_file)
            .and_then(|mut file| file.write_all(self.env_file_contents().as_bytes()))
            .map_err(BuildError::Scratch)
    }
}

/// Splits an app's build variables into those an env file can carry and the keys of those it
/// cannot (a value with a line break would end its line early).
pub fn env_file_vars(env: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<String>) {
    let mut kept = BTreeMap::new();
    let mut skipped = Vec::new();
    for (key, value) in env {
        if value.contains(['\n', '\r']) {
            skipped.push(key.clone());
        } else {
            kept.insert(key.clone(), value.clone());
        }
    }
    (kept, skipped)
}

/// The part of the agent's environment pack gets: [`PACK_PROCESS_ENV`] and `extra` names.
pub fn process_env(extra: &[String]) -> Vec<(OsString, OsString)> {
    std::env::vars_os()
        .filter(|(name, _)| {
            name.to_str().is_some_and(|name| {
                PACK_PROCESS_ENV.contains(&name) || extra.iter().any(|e| e == name)
            })
        })
        .collect()
}

pub async fn build(
    docker: &Docker,
    spec: &BuildJob,
    command: PackBuildCommand,
    skipped_env: &[String],
    context_dir: &Path,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let app_dir = resolve_inside(context_dir, &command.path)?;
    if !app_dir.is_dir() {
        return Err(BuildError::Context(super::context::ContextError::Outside(
            command.path,
        )));
    }
    let (root, dir) = (context_dir.to_owned(), app_dir.clone());
    tokio::task::spawn_blocking(move || refuse_links_out(&root, &dir))
        .await
        .map_err(|err| BuildError::Scratch(std::io::Error::other(err)))??;
    image_check::check_pack(
        docker,
        &command.builder,
        &command.buildpacks,
        &spec.app,
        &app_dir,
    )
    .await?;
    for key in skipped_env {
        events
            .line(format!(
                "Not passing {key} to the build: its value has a line break (the app still gets it)"
            ))
            .await?;
    }
    if let Some(network) = &command.network {
        super::network::ensure(docker, network).await?;
    }
    command.write_env_file()?;
    let expression = command.to_command(context_dir);
    let reader = Arc::new(expression.reader().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            BuildError::PackMissing
        } else {
            BuildError::PackFailed(format!("cannot start pack: {err}"))
        }
    })?);
    // A build dropped at its timeout must not leave pack running.
    let _kill_on_drop = KillOnDrop(reader.clone());
    let line_events = events.clone();
    tokio::task::spawn_blocking(move || run_streaming(&reader, &line_events))
        .await
        .map_err(|err| BuildError::PackFailed(err.to_string()))??;

    if engine::image_id(docker, &spec.image).await?.is_none() {
        return Err(BuildError::PackNoImage(spec.image.clone()));
    }
    label(docker, spec).await?;
    let image_id = engine::image_id(docker, &spec.image)
        .await?
        .ok_or_else(|| BuildError::PackNoImage(spec.image.clone()))?;
    Ok(BuiltImage {
        image: spec.image.clone(),
        image_id,
    })
}

/// pack reads the app's directory on the host as the agent's user: a symlink in it must not
/// lead to the host's files (the engine keeps Dockerfile builds' links inside the context).
fn refuse_links_out(root: &Path, dir: &Path) -> Result<(), BuildError> {
    let root = &root.canonicalize().map_err(BuildError::Scratch)?;
    let mut pending = vec![dir.canonicalize().map_err(BuildError::Scratch)?];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(BuildError::Scratch)? {
            let entry = entry.map_err(BuildError::Scratch)?;
            let kind = entry.file_type().map_err(BuildError::Scratch)?;
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .display()
                .to_string();
            if kind.is_symlink() {
                // A dangling link reads nothing; one that resolves must stay inside.
                if path.exists() && resolve_inside(root, &relative).is_err() {
                    return Err(BuildError::Refused(format!(
                        "`{relative}` links outside the pushed tree; pack would read the build host's files through it"
                    )));
                }
            } else if kind.is_dir() {
                pending.push(path);
            }
        }
    }
    Ok(())
}

struct KillOnDrop(Arc<duct::ReaderHandle>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        // After pack exited on its own this does nothing.
        let _ = self.0.kill();
    }
}

/// Sends each line of pack's output as it comes; a client that hangs up kills pack.
fn run_streaming(reader: &duct::ReaderHandle, events: &EventSink) -> Result<(), BuildError> {
    for line in BufReader::new(reader).split(b'\n') {
        let line =
            line.map_err(|err| BuildError::PackFailed(format!("reading its output: {err}")))?;
        let text = String::from_utf8_lossy(&line);
        if let Err(gone) = events.blocking_line(text.trim_end()) {
            let _ = reader.kill();
            return Err(gone);
        }
    }
    let output = reader
        .try_wait()
        .map_err(|err| BuildError::PackFailed(err.to_string()))?
        .ok_or_else(|| BuildError::PackFailed("pack closed its output but did not exit".into()))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(BuildError::PackFailed(match output.status.code() {
            Some(code) => format!("exit status {code}"),
            None => "killed by a signal".to_owned(),
        }))
    }
}

/// pack has no label flag: a one-line `FROM <image>` build re-tags the image with the labels
/// added (only a config change; the layers are shared).
async fn label(docker: &Docker, spec: &BuildJob) -> Result<(), BuildError> {
    let dockerfile = format!("FROM {}\n{}", spec.image, engine::label_instruction(spec));
    // The image's ONBUILD triggers (from pack's run image) would run in this step.
    image_check::check_dockerfile(docker, &dockerfile, &BTreeMap::new(), &spec.app).await?;
    let mut archive = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(dockerfile.len() as u64);
    header.set_mode(0o644);
    archive
        .append_data(&mut header, "Dockerfile", dockerfile.as_bytes())
        .map_err(BuildError::Scratch)?;
    let archive = archive.into_inner().map_err(BuildError::Scratch)?;
    let options = engine::options(spec, "Dockerfile", &Default::default());
    engine::build(docker, options, std::io::Cursor::new(archive), None)
        .await
        .map_err(|err| BuildError::Engine(format!("labelling {}: {err}", spec.image)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command() -> PackBuildCommand {
        PackBuildCommand {
            image: "paas/hello:v2".into(),
            builder: "paketobuildpacks/builder-jammy-base".into(),
            buildpacks: vec![
                "paketo-buildpacks/web-servers".into(),
                "paketo-buildpacks/procfile".into(),
            ],
            path: "web".into(),
            env: BTreeMap::from([
                ("BP_WEB_SERVER".into(), "nginx".into()),
                ("API_KEY".into(), "s3cret value".into()),
            ]),
            env_file: PathBuf::from("/tmp/paas-build-x/pack.env"),
            process_env: vec![("PATH".into(), "/usr/bin".into())],
            pull_policy: PullPolicy::IfNotPresent,
            network: Some("paas-builds".into()),
            trust_builder: true,
            cache_volume: Some("paas-pack-cache-hello".into()),
        }
    }

    #[test]
    fn argv_is_exact_and_names_only_the_env_file() {
        assert_eq!(
            command().to_argv(),
            [
                "build",
                "paas/hello:v2",
                "--builder",
                "paketobuildpacks/builder-jammy-base",
                "--path",
                "web",
                "--pull-policy",
                "if-not-present",
                "--network",
                "paas-builds",
                "--buildpack",
                "paketo-buildpacks/web-servers",
                "--buildpack",
                "paketo-buildpacks/procfile",
                "--env-file",
                "/tmp/paas-build-x/pack.env",
                "--cache",
                "type=build;format=volume;name=paas-pack-cache-hello",
                "--trust-builder",
            ]
        );
    }

    #[test]
    fn minimal_argv_has_no_optional_flags() {
        let minimal = PackBuildCommand {
            buildpacks: vec![],
            env: BTreeMap::new(),
            pull_policy: PullPolicy::Never,
            network: None,
            trust_builder: false,
            cache_volume: None,
            path: ".".into(),
            ..command()
        };
        assert_eq!(
            minimal.to_argv(),
            [
                "build",
                "paas/hello:v2",
                "--builder",
                "paketobuildpacks/builder-jammy-base",
                "--path",
                ".",
                "--pull-policy",
                "never",
            ]
        );
    }

    #[test]
    fn the_command_runs_pack_with_only_its_own_environment() {
        let dir = tempfile::tempdir().unwrap();
        let shown = format!("{:?}", command().to_command(dir.path()));
        assert!(shown.contains(r#""pack""#), "{shown}");
        assert!(shown.contains(r#"FullEnv"#), "{shown}");
        assert!(shown.contains(r#""PATH""#), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("BP_WEB_SERVER"), "{shown}");
        assert!(shown.contains(&format!("{:?}", dir.path())), "{shown}");
    }

    #[test]
    fn the_env_file_holds_the_values_and_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let command = PackBuildCommand {
            env_file: dir.path().join("pack.env"),
            ..command()
        };
        command.write_env_file().unwrap();
        assert_eq!(
            std::fs::read_to_string(&command.env_file).unwrap(),
            "API_KEY=s3cret value\nBP_WEB_SERVER=nginx\n"
        );
        let mode = std::fs::metadata(&command.env_file)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn values_with_line_breaks_stay_out_of_the_env_file() {
        let env = BTreeMap::from([
            ("A".to_owned(), "one line".to_owned()),
            ("B".to_owned(), "two\nlines".to_owned()),
            ("C".to_owned(), "cr\r".to_owned()),
        ]);
        let (kept, skipped) = env_file_vars(&env);
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["A"]);
        assert_eq!(skipped, ["B", "C"]);
    }

    #[test]
    fn pack_gets_only_the_listed_part_of_the_agents_environment() {
        let names = |env: Vec<(OsString, OsString)>| -> Vec<String> {
            env.into_iter()
                .map(|(k, _)| k.into_string().unwrap())
                .collect()
        };
        let plain = names(process_env(&[]));
        assert!(plain.contains(&"PATH".to_owned()), "{plain:?}");
        assert!(
            !plain.contains(&"CARGO_MANIFEST_DIR".to_owned()),
            "{plain:?}"
        );
        let extra = names(process_env(&["CARGO_MANIFEST_DIR".to_owned()]));
        assert!(
            extra.contains(&"CARGO_MANIFEST_DIR".to_owned()),
            "{extra:?}"
        );
    }

    #[test]
    fn links_out_of_the_tree_are_refused_before_pack_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("web/sub")).unwrap();
        std::os::unix::fs::symlink("../README", root.join("web/readme")).unwrap();
        std::fs::write(root.join("README"), "r").unwrap();
        std::os::unix::fs::symlink("/nowhere", root.join("web/dangling")).unwrap();
        assert!(refuse_links_out(&root, &root.join("web")).is_ok());
        std::os::unix::fs::symlink("/etc/hostname", root.join("web/sub/host")).unwrap();
        let err = refuse_links_out(&root, &root.join("web")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`web/sub/host` links outside the pushed tree; pack would read the build host's files through it"
        );
    }

    #[test]
    fn pull_policy_names_match_pack() {
        for (policy, name) in [
            (PullPolicy::Always, "always"),
            (PullPolicy::IfNotPresent, "if-not-present"),
            (PullPolicy::Never, "never"),
        ] {
            assert_eq!(policy.as_arg(), name);
            assert_eq!(
                serde_json::to_string(&policy).unwrap(),
                format!("\"{name}\"")
            );
        }
    }
}

//! Buildpack builds with the `pack` CLI (run through duct), then labelled through the engine.
//! Config values reach pack through its environment; argv only names them (`--env KEY`), so
//! they never show in a process listing.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;

use bollard::Docker;
use paas_api::agent::BuildSpec;
use serde::{Deserialize, Serialize};

use super::context::resolve_inside;
use super::{BuildError, BuiltImage, EventSink, engine};

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
    /// Set in pack's environment; only the keys go on the command line.
    pub env: BTreeMap<String, String>,
    pub pull_policy: PullPolicy,
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
        for buildpack in &self.buildpacks {
            argv.push("--buildpack".to_owned());
            argv.push(buildpack.clone());
        }
        for key in self.env.keys() {
            argv.push("--env".to_owned());
            argv.push(key.clone());
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

    /// `pack` with [`Self::to_argv`], in `workdir`, with the env values in its environment,
    /// stderr merged into stdout (one stream of lines, in order) and stdin closed.
    pub fn to_command(&self, workdir: &Path) -> duct::Expression {
        let mut command = duct::cmd("pack", self.to_argv()).dir(workdir);
        for (key, value) in &self.env {
            command = command.env(key, value);
        }
        command.stderr_to_stdout().stdin_null().unchecked()
    }
}

pub async fn build(
    docker: &Docker,
    spec: &BuildSpec,
    command: PackBuildCommand,
    context_dir: &Path,
    events: &EventSink,
) -> Result<BuiltImage, BuildError> {
    let app_dir = resolve_inside(context_dir, &command.path)?;
    if !app_dir.is_dir() {
        return Err(BuildError::Context(super::context::ContextError::Outside(
            command.path,
        )));
    }
    let expression = command.to_command(context_dir);
    let line_events = events.clone();
    tokio::task::spawn_blocking(move || run_streaming(&expression, &line_events))
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

/// Runs pack and sends each output line as it comes; a client that hangs up kills pack.
fn run_streaming(expression: &duct::Expression, events: &EventSink) -> Result<(), BuildError> {
    let reader = expression.reader().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            BuildError::PackMissing
        } else {
            BuildError::PackFailed(format!("cannot start pack: {err}"))
        }
    })?;
    for line in BufReader::new(&reader).split(b'\n') {
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
async fn label(docker: &Docker, spec: &BuildSpec) -> Result<(), BuildError> {
    let dockerfile = format!("FROM {}\n", spec.image);
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
            pull_policy: PullPolicy::IfNotPresent,
            trust_builder: true,
            cache_volume: Some("paas-pack-cache-hello".into()),
        }
    }

    #[test]
    fn argv_is_exact_and_holds_env_keys_only() {
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
                "--buildpack",
                "paketo-buildpacks/web-servers",
                "--buildpack",
                "paketo-buildpacks/procfile",
                "--env",
                "API_KEY",
                "--env",
                "BP_WEB_SERVER",
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
    fn the_command_runs_pack_with_env_values_in_its_environment() {
        let dir = tempfile::tempdir().unwrap();
        let shown = format!("{:?}", command().to_command(dir.path()));
        assert!(shown.contains(r#""pack""#), "{shown}");
        assert!(
            shown.contains(r#"Env("API_KEY", "s3cret value")"#),
            "{shown}"
        );
        assert!(
            shown.contains(r#"Env("BP_WEB_SERVER", "nginx")"#),
            "{shown}"
        );
        assert!(shown.contains(&format!("{:?}", dir.path())), "{shown}");
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

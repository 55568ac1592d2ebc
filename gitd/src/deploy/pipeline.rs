//! One deploy: check the pushed refs, read the commit, choose the builder, record the release,
//! stream the tree to the agent's build and report every step to the pusher, Heroku-style
//! (`-----> ` for steps, seven spaces for details, ` !     ` for what went wrong).

use std::collections::BTreeMap;
use std::sync::Mutex;

use paas_api::agent::{BuildEvent, BuildSpec, Builder};
use paas_api::types::{Release, ReleaseStatus};
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc::UnboundedSender;

use super::PushSession;
use super::protocol::{HookMessage, HookRequest, RefUpdate};
use super::rollout::{self, RolloutFailure};
use super::source::{self, PushedSource, SourceFiles};
use crate::state::SharedState;
use crate::store::{AppRow, NewRelease, ReleaseOutcome, StoreError};
use crate::{events, images, repos};

/// The pusher's terminal, through the hook. Sends never block: build output is text, and
/// the hook prints it as it comes.
pub struct Progress {
    sender: UnboundedSender<HookMessage>,
    /// Every line sent, kept as the release's build output (`paas releases:output`).
    transcript: Mutex<Vec<String>>,
    /// The release this push created, once it has one.
    release: Mutex<Option<u32>>,
}

impl Progress {
    pub fn new(sender: UnboundedSender<HookMessage>) -> Self {
        Progress {
            sender,
            transcript: Mutex::default(),
            release: Mutex::default(),
        }
    }

    fn line(&self, line: String) {
        self.transcript
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(line.clone());
        let _ = self.sender.send(HookMessage::Output { line });
    }

    fn created_release(&self, version: u32) {
        *self.release.lock().unwrap_or_else(|p| p.into_inner()) = Some(version);
    }

    pub fn step(&self, text: &str) {
        self.line(format!("-----> {text}"));
    }

    pub fn detail(&self, text: &str) {
        self.line(format!("       {text}"));
    }

    /// A headline, `=====> text`, for the outcome of the whole push.
    pub fn banner(&self, text: &str) {
        self.line(format!("=====> {text}"));
    }

    pub fn fail(&self, reason: &str) {
        self.line(format!(" !     {reason}"));
    }

    pub fn finish(&self, success: bool) {
        let _ = self.sender.send(HookMessage::Finished { success });
    }

    /// Resolves once the hook has gone away (the push was interrupted).
    async fn gone(&self) {
        self.sender.closed().await
    }
}

/// Runs the deploy and reports how it ended; returns whether the push may proceed.
pub async fn run(
    state: &SharedState,
    session: &PushSession,
    request: HookRequest,
    progress: &Progress,
) -> bool {
    let outcome = deploy(state, session, request, progress).await;
    record_release(state, session, progress, outcome.as_ref().err()).await;
    match outcome {
        Ok(()) => {
            images::prune(state, session.app.id, &session.app.name).await;
            true
        }
        Err(reason) => {
            progress.fail(&reason);
            progress.fail(&format!(
                "Push rejected: {} was not deployed and its branch was not updated",
                session.app.name
            ));
            tracing::info!(app = %session.app.name, %reason, "deploy failed");
            false
        }
    }
}

async fn deploy(
    state: &SharedState,
    session: &PushSession,
    request: HookRequest,
    progress: &Progress,
) -> Result<(), String> {
    let app = &session.app;
    let repo = std::path::absolute(repos::repo_path(&state.repos_dir(), &app.name))
        .map_err(|e| format!("cannot locate the repository: {e}"))?;
    let quarantine = source::quarantine_dir(&repo, request.object_directory.as_deref())?;
    let source = PushedSource { repo, quarantine };
    let update = deploy_update(&source, &app.deploy_branch, &request.updates).await?;
    let Some(agent) = state.agent.as_ref() else {
        return Err(
            "no build agent is configured: set [agent] url and token in gitd.toml".to_owned(),
        );
    };
    let commit = update.new.to_string();
    let short = update.new.short();
    progress.step(&format!("Building {} from {short}…", app.name));

    let files = {
        let source = source.clone();
        let commit = commit.clone();
        tokio::task::spawn_blocking(move || source.read(&commit))
            .await
            .map_err(|e| format!("reading the commit failed: {e}"))?
            .map_err(|e| e.to_string())?
    };
    for submodule in &files.submodules {
        progress.fail(&format!(
            "Warning: submodule {submodule} is not included in the build"
        ));
    }

    let app_id = app.id;
    let config = state.store.config_vars(app_id).await.map_err(internal)?;
    let (builder, description) = choose_builder(&files, &config, &state.config.default_builder);
    progress.step(&description);
    let processes: BTreeMap<String, Option<String>> = match files.procfile {
        Some(procfile) => procfile.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        None => [("web".to_owned(), None)].into(),
    };
    state
        .config
        .quotas
        .check_process_types(processes.len())
        .map_err(|exceeded| exceeded.to_string())?;

    let release = state
        .store
        .create_release(NewRelease {
            app_id,
            description: format!("Deploy {short}"),
            username: session.user.username.clone(),
            image: None,
            commit: Some(commit.clone()),
            processes: processes.clone(),
            config,
        })
        .await
        .map_err(internal)?;
    let version = release.version;
    progress.created_release(version);
    let image = format!("paas/{}:v{version}", app.name);
    let spec = BuildSpec {
        app: app.name.clone(),
        release: version,
        image: image.clone(),
        labels: [
            ("paas.app".to_owned(), app.name.clone()),
            ("paas.release".to_owned(), version.to_string()),
            ("paas.commit".to_owned(), commit.clone()),
        ]
        .into(),
        builder,
    };

    let outcome = build(agent, &source, &commit, &spec, progress).await;
    let built_image = outcome.as_ref().ok().map(|_| image.clone());
    let status = if outcome.is_ok() {
        ReleaseStatus::Building
    } else {
        ReleaseStatus::Failed
    };
    record_outcome(state, app_id, version, status, built_image, &processes).await?;
    outcome.map_err(|reason| format!("Release v{version} failed: {reason}"))?;

    let release = Release {
        image: Some(image.clone()),
        processes: processes.clone(),
        ..release
    };
    let launched = launch(state, app, &release, progress).await;
    let status = if launched.is_ok() {
        ReleaseStatus::Succeeded
    } else {
        ReleaseStatus::Failed
    };
    record_outcome(state, app_id, version, status, None, &processes).await?;
    if let Err(failure) = launched {
        if !failure.logs.is_empty() {
            progress.fail("Last log lines of the failed container:");
            for line in &failure.logs {
                progress.detail(line.trim_end());
            }
        }
        return Err(format!("Release v{version} failed to start: {failure}"));
    }

    if let Some(branch) = update.name.strip_prefix("refs/heads/")
        && branch != app.deploy_branch
    {
        let source = source.clone();
        let branch = branch.to_owned();
        let _ = tokio::task::spawn_blocking(move || source.set_head(&branch)).await;
    }
    tracing::info!(app = %app.name, version, %image, "deployed");
    progress.step(&format!("Release v{version} created"));
    progress.banner(&format!(
        "Application deployed: {}",
        state.web_url(&app.name)
    ));
    Ok(())
}

/// Rolls the built release out with the app's formation, relaying the agent's progress.
async fn launch(
    state: &SharedState,
    app: &AppRow,
    release: &Release,
    progress: &Progress,
) -> Result<(), RolloutFailure> {
    let app_id = app.id;
    let stored = state
        .store
        .formation(app_id)
        .await
        .map_err(|err| RolloutFailure {
            reason: internal(err),
            logs: Vec::new(),
        })?;
    let formation = rollout::formation_for(&release.processes, &stored);
    let summary = formation
        .iter()
        .map(|(process, quantity)| format!("{process}={quantity}"))
        .collect::<Vec<_>>()
        .join(" ");
    progress.step(&format!("Launching v{}: {summary}", release.version));
    rollout::roll_out(state, app, release, formation, |line| progress.step(&line)).await
}

async fn record_outcome(
    state: &SharedState,
    app_id: i64,
    version: u32,
    status: ReleaseStatus,
    image: Option<String>,
    processes: &BTreeMap<String, Option<String>>,
) -> Result<(), String> {
    let outcome = ReleaseOutcome {
        status,
        image,
        processes: processes.clone(),
        config: None,
        output: None,
    };
    state
        .store
        .finish_release(app_id, version, outcome)
        .await
        .map_err(internal)
}

/// The one ref update that deploys. Only the deploy branch may be pushed; `master` stands in
/// for a `main` deploy branch while the repository has no `main` (as on Heroku).
async fn deploy_update<'a>(
    source: &PushedSource,
    deploy_branch: &str,
    updates: &'a [RefUpdate],
) -> Result<&'a RefUpdate, String> {
    let master_allowed = deploy_branch == "main" && {
        let source = source.clone();
        !tokio::task::spawn_blocking(move || source.has_branch("main"))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read the repository: {e}"))?
    };
    let deploy_ref = format!("refs/heads/{deploy_branch}");
    for update in updates {
        let allowed =
            update.name == deploy_ref || (master_allowed && update.name == "refs/heads/master");
        if !allowed {
            let pushed = update
                .name
                .strip_prefix("refs/heads/")
                .unwrap_or(&update.name);
            return Err(format!(
                "Refusing to update {}: only the `{deploy_branch}` branch deploys; push with `git push paas {pushed}:{deploy_branch}`",
                update.name
            ));
        }
    }
    let [update] = updates else {
        return Err("Push one deploy branch at a time".to_owned());
    };
    if update.is_deletion() {
        return Err(format!(
            "Refusing to delete the deploy branch `{deploy_branch}`"
        ));
    }
    Ok(update)
}

/// buildpacks.yaml → pack with its settings; else a root Dockerfile → docker build; else pack
/// with the default builder. Config vars reach pack as its build environment (overriding
/// buildpacks.yaml's `env`), and a Dockerfile as build args when it declares them with `ARG`.
fn choose_builder(
    files: &SourceFiles,
    config: &BTreeMap<String, String>,
    default_builder: &str,
) -> (Builder, String) {
    let pack = |builder: &str, buildpacks: Vec<String>, path: String, env: BTreeMap<_, _>| {
        let mut env: BTreeMap<String, String> = env;
        env.extend(config.clone());
        let mut description = format!("Using buildpacks: builder {builder}");
        if !buildpacks.is_empty() {
            description.push_str(&format!(", buildpacks {}", buildpacks.join(", ")));
        }
        if path != "." {
            description.push_str(&format!(", path {path}"));
        }
        (
            Builder::Pack {
                builder: builder.to_owned(),
                buildpacks,
                path,
                env,
                trust_builder: builder == default_builder,
            },
            description,
        )
    };
    if let Some(file) = &files.buildpacks {
        let builder = file.builder.as_deref().unwrap_or(default_builder);
        return pack(
            builder,
            file.buildpacks.clone(),
            file.path.clone(),
            file.env.clone(),
        );
    }
    if let Some(dockerfile) = &files.dockerfile {
        let wanted = source::dockerfile_args(dockerfile);
        let build_args = config
            .iter()
            .filter(|(key, _)| wanted.contains(*key))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        return (
            Builder::Dockerfile {
                dockerfile: "Dockerfile".to_owned(),
                build_args,
            },
            "Building with Dockerfile".to_owned(),
        );
    }
    pack(default_builder, Vec::new(), ".".to_owned(), BTreeMap::new())
}

/// Streams the tree to the agent and relays its output; gives up if the pusher goes away.
async fn build(
    agent: &paas_agent_client::AgentClient,
    source: &PushedSource,
    commit: &str,
    spec: &BuildSpec,
    progress: &Progress,
) -> Result<(), String> {
    let mut archive = source
        .archive(commit)
        .map_err(|e| format!("cannot run git archive: {e}"))?;
    let tar = archive.stdout.take().expect("stdout is piped");
    let mut archive_stderr = archive.stderr.take().expect("stderr is piped");
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        let _ = (&mut archive_stderr)
            .take(4096)
            .read_to_string(&mut text)
            .await;
        text
    });
    let built = agent.build(spec, tar, |event| {
        if let BuildEvent::Line(line) = event {
            progress.detail(&line);
        }
    });
    let outcome = tokio::select! {
        result = built => result.map(drop).map_err(|e| e.to_string()),
        () = progress.gone() => Err("the push was interrupted".to_owned()),
    };
    if outcome.is_err() {
        let _ = archive.start_kill();
    }
    let status = archive.wait().await;
    // After a successful build the agent may stop reading at the tar's end marker, so only a
    // failed build looks at how git archive ended.
    if outcome.is_err()
        && let Ok(status) = status
        && status.code().is_some_and(|code| code != 0)
    {
        let stderr = stderr_text.await.unwrap_or_default();
        return Err(format!(
            "cannot export the pushed tree: {}",
            stderr.lines().last().unwrap_or("git archive failed")
        ));
    }
    outcome
}

/// Keeps the push's output as its release's build output and records the deploy as a
/// platform event. A push refused before it made a release leaves no trace.
async fn record_release(
    state: &SharedState,
    session: &PushSession,
    progress: &Progress,
    failure: Option<&String>,
) {
    let Some(version) = *progress.release.lock().unwrap_or_else(|p| p.into_inner()) else {
        return;
    };
    let app_id = session.app.id;
    let mut output = progress
        .transcript
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .join("\n");
    if let Some(reason) = failure {
        output.push_str(&format!("\n !     {reason}"));
    }
    let saved = match state
        .store
        .save_release_output(app_id, version, &output)
        .await
    {
        Ok(()) => state.store.release(app_id, version).await,
        Err(err) => Err(err),
    };
    let description = match saved {
        Ok(release) => release.map(|r| r.description).unwrap_or_default(),
        Err(err) => {
            tracing::error!(error = %err, "cannot store the build output");
            String::new()
        }
    };
    let user = &session.user.username;
    match failure {
        None => {
            events::record(
                state,
                app_id,
                "deploy",
                format!("{description} by user {user}"),
            )
            .await;
            events::record(
                state,
                app_id,
                "deploy",
                format!("Release v{version} created by user {user}"),
            )
            .await;
        }
        Some(reason) => {
            events::record(
                state,
                app_id,
                "deploy",
                format!("{description} by user {user} failed: {reason}"),
            )
            .await;
        }
    }
}

fn internal(err: StoreError) -> String {
    tracing::error!(error = %err, "database error during a deploy");
    "internal error; see the paas-gitd log".to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_api::buildpacks::BuildpacksFile;

    fn config() -> BTreeMap<String, String> {
        [
            ("GREETING".to_owned(), "hi".to_owned()),
            ("SECRET".to_owned(), "s3cret".to_owned()),
        ]
        .into()
    }

    #[test]
    fn buildpacks_yaml_wins_and_config_overrides_its_env() {
        let files = SourceFiles {
            buildpacks: Some(BuildpacksFile {
                path: "web".into(),
                builder: Some("my/builder".into()),
                buildpacks: vec!["a/b".into()],
                env: [
                    ("BP_X".to_owned(), "1".to_owned()),
                    ("GREETING".to_owned(), "from-yaml".to_owned()),
                ]
                .into(),
            }),
            dockerfile: Some("FROM x\n".into()),
            ..SourceFiles::default()
        };
        let (builder, description) = choose_builder(&files, &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Pack {
                builder: "my/builder".into(),
                buildpacks: vec!["a/b".into()],
                path: "web".into(),
                env: [
                    ("BP_X".to_owned(), "1".to_owned()),
                    ("GREETING".to_owned(), "hi".to_owned()),
                    ("SECRET".to_owned(), "s3cret".to_owned()),
                ]
                .into(),
                trust_builder: false,
            }
        );
        assert_eq!(
            description,
            "Using buildpacks: builder my/builder, buildpacks a/b, path web"
        );
    }

    #[test]
    fn dockerfile_gets_only_the_args_it_declares() {
        let files = SourceFiles {
            dockerfile: Some("FROM x\nARG GREETING\n".into()),
            ..SourceFiles::default()
        };
        let (builder, description) = choose_builder(&files, &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Dockerfile {
                dockerfile: "Dockerfile".into(),
                build_args: [("GREETING".to_owned(), "hi".to_owned())].into(),
            }
        );
        assert_eq!(description, "Building with Dockerfile");
    }

    #[test]
    fn default_builder_otherwise() {
        let (builder, _) = choose_builder(&SourceFiles::default(), &config(), "heroku/builder:24");
        assert_eq!(
            builder,
            Builder::Pack {
                builder: "heroku/builder:24".into(),
                buildpacks: vec![],
                path: ".".into(),
                env: config(),
                trust_builder: true,
            }
        );
    }
}

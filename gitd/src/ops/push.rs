//! A push's deploy: check the pushed refs, read the commit, choose the builder, record the
//! build, stream the tree to the agent's build; once it built, the build makes its release
//! and the release lifecycle runs. A build that fails makes no release (as on Heroku, release
//! numbers count what was built and rolled out; `paas builds` lists every build). The pusher
//! is answered once the new release serves ([`super::Followed::Serving`]): the push's output
//! ends with the usual success lines and the push returns, while the old release drains in
//! the detached operation, still under the app's lock.
//!
//! The pusher going away during the build stops the build (nothing was switched yet); once
//! the rollout has started it runs to its end either way.

use std::collections::BTreeMap;

use paas_api::agent::{BuildSpec, Builder};
use paas_api::builds::Build;
use paas_api::{ProcessType, Username};

use super::release::{self, ReleaseKind};
use super::{Op, OpsError, Reporter};
use crate::deploy::PushSession;
use crate::deploy::pipeline::{build, choose_builder, deploy_update};
use crate::deploy::protocol::HookRequest;
use crate::deploy::source::{self, PushedSource};
use crate::events;
use crate::repos;
use crate::state::SharedState;
use crate::store::{AppRow, NewRelease};

/// Deploys what `request` (the pre-receive hook's) pushed, under the lock the push holds.
pub fn deploy(state: &SharedState, session: PushSession, request: HookRequest) -> Op<()> {
    let op_state = state.clone();
    let PushSession { app, user, lock } = session;
    let name = app.name.clone();
    super::spawn(state, &name, Some(lock), move |reporter| async move {
        let state = op_state;
        let outcome = run(&state, &app, &user.username, request, &reporter).await;
        if let Err(err) = &outcome {
            reporter.fail(&err.to_string());
            reporter.fail(&format!(
                "Push rejected: {} was not deployed and its branch was not updated",
                app.name
            ));
            tracing::info!(app = %app.name, reason = %err, "deploy failed");
        }
        outcome
    })
}

async fn run(
    state: &SharedState,
    app: &AppRow,
    username: &Username,
    request: HookRequest,
    reporter: &Reporter,
) -> Result<(), OpsError> {
    let repo = std::path::absolute(repos::repo_path(&state.repos_dir(), &app.name))
        .map_err(|e| OpsError::invalid(format!("cannot locate the repository: {e}")))?;
    let quarantine = source::quarantine_dir(&repo, request.object_directory.as_deref())
        .map_err(OpsError::Invalid)?;
    let source = PushedSource { repo, quarantine };
    let update = deploy_update(&source, &app.deploy_branch, &request.updates)
        .await
        .map_err(OpsError::Invalid)?
        .clone();
    let Some(agent) = state.agent.as_ref() else {
        return Err(OpsError::invalid(
            "no build agent is configured: set [agent] url and token in gitd.toml",
        ));
    };
    let commit = update.new.to_string();
    let short = update.new.short().to_owned();
    reporter.step(&format!("Building {} from {short}…", app.name));
    let (builder, release) = prepare(state, app, username, &source, &commit, reporter).await?;

    // A tree refused above changed nothing; from here on the push is a build, of an image
    // named for the app's next release. The push holds the app's lock, so no other release
    // takes that number meanwhile.
    let version = state.store.next_release_version(app.id).await?;
    let this_build = state
        .store
        .create_build(app.id, username.clone(), commit.clone())
        .await?;
    let spec = BuildSpec {
        app: app.name.to_string(),
        release: version,
        commit: commit.clone(),
        builder,
    };
    let built = build(
        agent,
        &source,
        &commit,
        &spec,
        |line| reporter.detail(line),
        reporter.requester_gone(),
    )
    .await;
    let image = match built {
        Ok(image) => image,
        Err(reason) => {
            return Err(build_failed(state, app, &this_build, &short, reporter, reason).await);
        }
    };
    let release = NewRelease {
        image: Some(image.clone()),
        ..release
    };
    let made = state
        .store
        .build_succeeded(this_build.id, version, release, reporter.transcript())
        .await;
    let release = match made {
        Ok(release) => release,
        Err(err) => {
            let reason = OpsError::from(err).to_string();
            return Err(build_failed(state, app, &this_build, &short, reporter, reason).await);
        }
    };

    let web_url = state.web_url(&app.name);
    release::go_live(
        state,
        app,
        &release,
        ReleaseKind::Deploy,
        reporter,
        |reporter| {
            // A push of `master` standing in for `main` makes it the repository's HEAD.
            if let Some(branch) = update.name.strip_prefix("refs/heads/")
                && branch != app.deploy_branch
            {
                // One small ref write, before the pusher is answered.
                if let Err(err) = source.set_head(branch) {
                    tracing::warn!(error = %err, "cannot point HEAD at the pushed branch");
                }
            }
            tracing::info!(app = %app.name, version, %image, "deployed");
            reporter.step(&format!("Release v{version} created"));
            reporter.banner(&format!("Application deployed: {web_url}"));
        },
    )
    .await
}

/// Reads the pushed tree and chooses its builder: the builder and the release a successful
/// build becomes (its image still to be set). A tree refused here changes nothing.
async fn prepare(
    state: &SharedState,
    app: &AppRow,
    username: &Username,
    source: &PushedSource,
    commit: &str,
    reporter: &Reporter,
) -> Result<(Builder, NewRelease), OpsError> {
    let files = {
        let source = source.clone();
        let commit = commit.to_owned();
        tokio::task::spawn_blocking(move || source.read(&commit))
            .await
            .map_err(|e| OpsError::invalid(format!("reading the commit failed: {e}")))?
            .map_err(|e| OpsError::Invalid(e.to_string()))?
    };
    for submodule in &files.submodules {
        reporter.fail(&format!(
            "Warning: submodule {submodule} is not included in the build"
        ));
    }

    let config = state.store.config_vars(app.id).await?;
    let (builder, description) = choose_builder(&files, &config, &state.config.default_builder);
    reporter.step(&description);
    let processes: BTreeMap<ProcessType, Option<String>> = match files.procfile {
        Some(procfile) => procfile.into_iter().map(|(k, v)| (k, Some(v))).collect(),
        None => [(ProcessType::web(), None)].into(),
    };
    let process_types = processes
        .keys()
        .filter(|process| paas_api::procfile::is_formation_process(process))
        .count();
    state.config.quotas.check_process_types(process_types)?;

    let release = NewRelease {
        app_id: app.id,
        kind: ReleaseKind::Deploy,
        description: format!("Deploy {}", &commit[..commit.len().min(7)]),
        username: username.clone(),
        image: None,
        commit: Some(commit.to_owned()),
        processes,
        config,
        // A new build keeps the sizes the app's process types were given.
        resources: state
            .store
            .current_release(app.id)
            .await?
            .map(|current| current.resources)
            .unwrap_or_default(),
        app_json: files.app_json,
    };
    Ok((builder, release))
}

/// Records the build failed for `reason` with its output and the event, and gives back the
/// error the pusher sees: no release was made, so none is marked failed.
async fn build_failed(
    state: &SharedState,
    app: &AppRow,
    build: &Build,
    short: &str,
    reporter: &Reporter,
    reason: String,
) -> OpsError {
    let message = format!(
        "Build {} of {short} by user {} failed: {reason}",
        build.id, build.user
    );
    let err = OpsError::Agent {
        what: format!("Build {} failed", build.id),
        reason,
        logs: Vec::new(),
    };
    let mut output = reporter.transcript();
    output.push_str(&format!("\n !     {err}"));
    if let Err(store) = state.store.fail_build(app.id, build.id, output).await {
        tracing::error!(app = %app.name, error = %store, "cannot record a failed build");
    }
    let details = paas_api::webhooks::EventDetails {
        message: message.clone(),
        commit: Some(build.commit.clone()),
        user: Some(build.user.to_string()),
        ..Default::default()
    };
    let failed = paas_api::webhooks::WebhookEvent::DeployFailed;
    crate::webhooks::notify(state, app.id, &app.name, failed, details).await;
    events::record(state, app.id, "deploy", message).await;
    tracing::info!(app = %app.name, build = build.id, reason = %err, "build failed");
    err
}

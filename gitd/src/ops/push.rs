//! A push's deploy: check the pushed refs, read the commit, choose the builder, record the
//! release, stream the tree to the agent's build, then the release lifecycle. The pusher is
//! answered once the new release serves ([`super::Followed::Serving`]): the push's output
//! ends with the usual success lines and the push returns, while the old release drains in
//! the detached operation, still under the app's lock.
//!
//! The pusher going away during the build stops the build (nothing was switched yet); once
//! the rollout has started it runs to its end either way.

use std::collections::BTreeMap;

use paas_api::agent::BuildSpec;
use paas_api::types::{Release, ReleaseStatus};
use paas_api::{ProcessType, Username};

use super::release::{self, ReleaseKind};
use super::rollout::RolloutFailure;
use super::{Op, OpsError, Reporter};
use crate::deploy::PushSession;
use crate::deploy::pipeline::{build, choose_builder, deploy_update};
use crate::deploy::protocol::HookRequest;
use crate::deploy::source::{self, PushedSource};
use crate::repos;
use crate::state::SharedState;
use crate::store::{AppRow, NewRelease, ReleaseOutcome};

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

    let files = {
        let source = source.clone();
        let commit = commit.clone();
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

    let release = release::begin(
        state,
        NewRelease {
            app_id: app.id,
            kind: ReleaseKind::Deploy,
            description: format!("Deploy {short}"),
            username: username.clone(),
            image: None,
            commit: Some(commit.clone()),
            processes: processes.clone(),
            config,
            // A new build keeps the sizes the app's process types were given.
            resources: state
                .store
                .current_release(app.id)
                .await?
                .map(|current| current.resources)
                .unwrap_or_default(),
            app_json: files.app_json,
        },
    )
    .await?;
    let version = release.version;
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
            let err = OpsError::agent(
                format!("Release v{version} failed"),
                RolloutFailure {
                    reason,
                    logs: Vec::new(),
                },
            );
            return Err(
                release::failed(state, app, &release, ReleaseKind::Deploy, reporter, err).await,
            );
        }
    };
    let built = ReleaseOutcome {
        status: ReleaseStatus::Building,
        image: Some(image.clone()),
        processes: processes.clone(),
        config: None,
        output: None,
    };
    state.store.finish_release(app.id, version, built).await?;
    let release = Release {
        image: Some(image.clone()),
        ..release
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

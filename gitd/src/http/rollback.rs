//! `POST /v1/apps/{app}/rollback`: a new release with an earlier release's image, process
//! types and config, rolled out with zero downtime like a deploy. Only a successful release
//! whose image is still on the host can be rolled back to; anything else is refused before
//! anything changes.

use axum::extract::{Path, State};
use paas_api::ErrorCode;
use paas_api::types::{Release, ReleaseStatus, RollbackRequest};

use super::formation::{deploy_failed, no_agent};
use super::{ApiError, ApiResult, AuthUser, Json};
use crate::deploy::rollout;
use crate::state::SharedState;
use crate::store::{NewRelease, ReleaseOutcome};
use crate::{events, images};

pub async fn rollback(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> ApiResult<Json<Release>> {
    let app = auth.app(&state, &name).await?;
    let agent = state.agent.as_ref().ok_or_else(no_agent)?;
    let lock = state.app_locks.for_app(&app.name);
    let _held = lock.lock().await;
    let app_id = app.id;
    let app_name = &app.name;
    let deployed = state.store.deployed_state(app_id).await?;
    let current = deployed
        .current
        .filter(|release| release.image.is_some())
        .ok_or_else(|| {
            ApiError::invalid(format!(
                "{app_name} has no running release to roll back from: deploy it first."
            ))
        })?;
    let target =
        match request.version {
            Some(version) => state.store.release(app_id, version).await?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("No release v{version}."))
            })?,
            None => state
                .store
                .releases(app_id, u32::MAX)
                .await?
                .into_iter()
                .find(|release| {
                    release.version < current.version
                        && release.status == ReleaseStatus::Succeeded
                        && release.image.is_some()
                })
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{app_name} has no successful release before v{} to roll back to.",
                        current.version
                    ))
                })?,
        };
    let stored_formation = deployed.formation;
    let version = target.version;
    match target.status {
        ReleaseStatus::Succeeded => {}
        ReleaseStatus::Failed => {
            return Err(ApiError::invalid(format!(
                "v{version} failed; only a release that succeeded can be rolled back to."
            )));
        }
        ReleaseStatus::Building => {
            return Err(ApiError::invalid(format!(
                "v{version} is still building; only a release that succeeded can be rolled back to."
            )));
        }
    }
    let Some(image) = target.image.clone() else {
        return Err(ApiError::invalid(format!(
            "v{version} has no image (it was made before the first deploy); roll back to a deploy."
        )));
    };
    let present = agent
        .images(&app.name)
        .await
        .map_err(|err| deploy_failed("Could not list the app's images", &err.into()))?;
    if !present.contains(&image) {
        return Err(ApiError::invalid(format!(
            "The image of v{version} ({image}) is gone: only the last {} successful releases keep theirs. Deploy that commit again instead.",
            images::KEPT_RELEASES
        )));
    }

    let username = auth.user.username.clone();
    let release = state
        .store
        .create_release(NewRelease {
            app_id,
            description: format!("Rollback to v{version}"),
            username: username.clone(),
            image: target.image.clone(),
            commit: target.commit.clone(),
            processes: target.processes.clone(),
            config: target.config.clone(),
        })
        .await?;
    let new_version = release.version;
    let formation = rollout::formation_for(&target.processes, &stored_formation);
    let mut output = Vec::new();
    let launched = rollout::roll_out(&state, &app, &release, formation, |line| {
        tracing::info!(app = %app.name, "{line}");
        output.push(format!("-----> {line}"));
    })
    .await;
    let succeeded = launched.is_ok();
    if let Err(failure) = &launched {
        output.push(format!(" !     {}", failure.with_logs()));
    }
    let outcome = ReleaseOutcome {
        status: if succeeded {
            ReleaseStatus::Succeeded
        } else {
            ReleaseStatus::Failed
        },
        image: None,
        processes: release.processes.clone(),
        // A rollback restores the config vars the release ran with, as Heroku does.
        config: succeeded.then(|| target.config.clone()),
        output: Some(output.join("\n")),
    };
    state
        .store
        .finish_release(app_id, new_version, outcome)
        .await?;
    if let Err(failure) = launched {
        events::record(
            &state,
            app_id,
            "rollback",
            format!("Rollback to v{version} failed: {failure}"),
        )
        .await;
        return Err(deploy_failed(
            &format!(
                "Rollback to v{version} failed (release v{new_version}); the app keeps running as before"
            ),
            &failure,
        ));
    }
    events::record(
        &state,
        app_id,
        "rollback",
        format!("Rollback to v{version} by user {username}: release v{new_version}"),
    )
    .await;
    images::prune(&state, app_id, &app.name).await;
    tracing::info!(app = %app.name, to = version, release = new_version, "rolled back");
    Ok(Json(Release {
        status: ReleaseStatus::Succeeded,
        ..release
    }))
}

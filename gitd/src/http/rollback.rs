//! `POST /v1/apps/{app}/rollback`: a new release with an earlier release's image, process
//! types and config, rolled out with zero downtime like a deploy. Only a successful release
//! whose image is still on the host can be rolled back to; anything else is refused before
//! anything changes.

use axum::extract::State;
use paas_api::ErrorCode;
use paas_api::types::{Release, ReleaseStatus, RollbackRequest};

use super::formation::{deploy_failed, no_agent};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::queries;
use crate::deploy::rollout;
use crate::state::SharedState;
use crate::{events, images};
use paas_api::AppName;

pub async fn rollback(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<RollbackRequest>,
) -> ApiResult<Json<Release>> {
    let app = auth.app(&state, &name).await?;
    let agent = state.agent.as_ref().ok_or_else(no_agent)?;
    let lock = state.app_locks.for_app(&app.name);
    let _held = lock.lock().await;
    let app_id = app.id;
    let app_name = app.name.clone();
    let (target, stored_formation) = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let current = queries::current_release(conn, app_id)?
                .filter(|release| release.image.is_some())
                .ok_or_else(|| {
                    ApiError::invalid(format!(
                        "{app_name} has no running release to roll back from: deploy it first."
                    ))
                })?;
            let target = match request.version {
                Some(version) => queries::release(conn, app_id, version)?.ok_or_else(|| {
                    ApiError::new(ErrorCode::NotFound, format!("No release v{version}."))
                })?,
                None => queries::releases(conn, app_id, u32::MAX)?
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
            Ok((target, queries::formation(conn, app_id)?))
        })
        .await?;
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
    let release = {
        let target = target.clone();
        let description = format!("Rollback to v{version}");
        let username = username.clone();
        state
            .db
            .call(move |conn| {
                queries::insert_release(
                    conn,
                    &queries::NewRelease {
                        app_id,
                        description: &description,
                        username: &username,
                        status: ReleaseStatus::Building,
                        image: target.image.as_deref(),
                        commit: target.commit.as_deref(),
                        processes: &target.processes,
                        config: &target.config,
                    },
                )
            })
            .await?
    };
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
    let processes = release.processes.clone();
    let config = target.config.clone();
    let output = output.join("\n");
    state
        .db
        .call(move |conn| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            let status = if succeeded {
                // A rollback restores the config vars the release ran with, as Heroku does.
                queries::replace_config_vars(&tx, app_id, &config)?;
                ReleaseStatus::Succeeded
            } else {
                ReleaseStatus::Failed
            };
            queries::finish_release(&tx, app_id, new_version, status, None, &processes)?;
            queries::save_release_output(&tx, app_id, new_version, &output)?;
            tx.commit()
        })
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

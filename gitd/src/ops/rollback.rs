//! Rollback: a new release with an earlier release's image, process types and config, through
//! the release lifecycle like a deploy. Only a successful release whose image is still on the
//! host can be rolled back to; anything else is refused before anything changes. The vars of
//! the app's attached add-ons stay as they are (as on Heroku: a rollback does not roll back
//! add-ons).

use paas_api::types::{Release, ReleaseStatus};

use super::release::{self, ReleaseKind};
use super::{Op, OpsError};
use crate::images;
use crate::state::SharedState;
use crate::store::NewRelease;
use crate::store::{AppRow, UserRow};

/// Rolls the app back to `version` (or the successful release before the current one).
pub fn rollback(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    version: Option<u32>,
) -> Op<Release> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        let target = target(&state, &app, version).await?;
        let to = target.version;
        let image = target.image.clone().ok_or_else(|| {
            OpsError::invalid(format!(
                "v{to} has no image (it was made before the first deploy); roll back to a deploy."
            ))
        })?;
        let present = agent
            .images(&app.name)
            .await
            .map_err(|err| OpsError::agent("Could not list the app's images", err.into()))?;
        if !present.contains(&image) {
            return Err(OpsError::invalid(format!(
                "The image of v{to} ({image}) is gone: only the last {} successful releases keep theirs. Deploy that commit again instead.",
                images::KEPT_RELEASES
            )));
        }
        let mut config = target.config;
        config.extend(super::addons::attached_vars(&state, &app).await?);
        let release = release::begin(
            &state,
            NewRelease {
                app_id: app.id,
                kind: ReleaseKind::Rollback { to },
                description: format!("Rollback to v{to}"),
                username: by,
                image: target.image,
                commit: target.commit,
                processes: target.processes,
                config,
                resources: target.resources,
                // The old release's cron jobs and checks come back with its code.
                app_json: target.app_json,
            },
        )
        .await?;
        release::go_live(
            &state,
            &app,
            &release,
            ReleaseKind::Rollback { to },
            &reporter,
            |_| {},
        )
        .await?;
        tracing::info!(app = %app.name, to, release = release.version, "rolled back");
        Ok(Release {
            status: ReleaseStatus::Succeeded,
            ..release
        })
    })
}

/// The release to roll back to; refused unless it succeeded.
async fn target(
    state: &SharedState,
    app: &AppRow,
    version: Option<u32>,
) -> Result<Release, OpsError> {
    let releases = state.store.releases(app.id, u32::MAX).await?;
    let current = releases
        .iter()
        .find(|release| release.status == ReleaseStatus::Succeeded)
        .filter(|release| release.image.is_some())
        .ok_or_else(|| {
            OpsError::invalid(format!(
                "{} has no running release to roll back from: deploy it first.",
                app.name
            ))
        })?;
    let target = match version {
        Some(version) => releases
            .iter()
            .find(|release| release.version == version)
            .ok_or_else(|| OpsError::NotFound(format!("No release v{version}.")))?,
        None => releases
            .iter()
            .find(|release| {
                release.version < current.version
                    && release.status == ReleaseStatus::Succeeded
                    && release.image.is_some()
            })
            .ok_or_else(|| {
                OpsError::invalid(format!(
                    "{} has no successful release before v{} to roll back to.",
                    app.name, current.version
                ))
            })?,
    };
    let version = target.version;
    match target.status {
        ReleaseStatus::Succeeded => Ok(target.clone()),
        ReleaseStatus::Failed => Err(OpsError::invalid(format!(
            "v{version} failed; only a release that succeeded can be rolled back to."
        ))),
        ReleaseStatus::Building => Err(OpsError::invalid(format!(
            "v{version} is still building; only a release that succeeded can be rolled back to."
        ))),
    }
}

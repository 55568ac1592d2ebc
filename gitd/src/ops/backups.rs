//! `paas pg:backups:restore`: replaces a Postgres add-on's data with a capture of it or of
//! another Postgres add-on of the same owner, under the lock of the app it was asked on. The
//! agent loads the capture in one transaction, so a restore that fails changes nothing. The
//! rules every backup route shares live here too: only Postgres add-ons have backups, and a
//! capture is named by its id or, without one, is the newest completed.

use paas_api::addons::AddonKind;
use paas_api::backups::{Backup, BackupId, RestoreSpec, Restored};

use super::addons::agent_failure;
use super::{Op, OpsError};
use crate::state::SharedState;
use crate::store::{AddonRow, AppRow, UserRow};

/// Refuses an add-on that is not a Postgres.
pub fn require_postgres(addon: &AddonRow) -> Result<(), OpsError> {
    if addon.kind == AddonKind::Postgres {
        Ok(())
    } else {
        Err(OpsError::invalid(format!(
            "{} is a {} add-on; only postgres add-ons have backups.",
            addon.name, addon.kind
        )))
    }
}

/// The completed capture `id` of `addon`, or its newest completed one.
pub async fn completed(
    state: &SharedState,
    addon: &AddonRow,
    id: Option<&BackupId>,
) -> Result<Backup, OpsError> {
    require_postgres(addon)?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let backups = agent
        .backups(&addon.owner, &addon.name)
        .await
        .map_err(|err| {
            agent_failure(format!("Could not list the backups of {}", addon.name), err)
        })?;
    let found = match id {
        Some(id) => backups.iter().find(|backup| &backup.id == id),
        None => Backup::latest(&backups),
    };
    match (found, id) {
        (Some(backup), _) if backup.status == paas_api::backups::BackupStatus::Completed => {
            Ok(backup.clone())
        }
        (Some(backup), _) => Err(OpsError::Conflict(format!(
            "Backup {} of {} is still being captured.",
            backup.id, addon.name
        ))),
        (None, Some(id)) => Err(OpsError::NotFound(format!(
            "Couldn't find backup {id} of {}.",
            addon.name
        ))),
        (None, None) => Err(OpsError::NotFound(format!(
            "{} has no completed backups; capture one with paas pg:backups:capture.",
            addon.name
        ))),
    }
}

/// Loads capture `id` (the newest if none) of `source` into `target`, detached, under
/// `app`'s lock. Both are add-ons of `app`'s owner the caller may see.
pub fn restore(
    state: &SharedState,
    app: AppRow,
    target: AddonRow,
    source: AddonRow,
    id: Option<BackupId>,
    by: &UserRow,
) -> Op<Restored> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        let state = op_state;
        if source.owner_id != target.owner_id {
            return Err(OpsError::NotFound("Couldn't find that add-on.".to_owned()));
        }
        require_postgres(&target)?;
        let backup = completed(&state, &source, id.as_ref()).await?;
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        reporter.step(&format!(
            "Restoring {}::{} into {}",
            source.name, backup.id, target.name
        ));
        let spec = RestoreSpec {
            from: source.name.clone(),
            backup: backup.id.clone(),
        };
        agent
            .restore_backup(&target.owner, &target.name, &spec)
            .await
            .map_err(|err| {
                agent_failure(
                    format!(
                        "Could not restore {}::{} into {}; its data is unchanged",
                        source.name, backup.id, target.name
                    ),
                    err,
                )
            })?;
        crate::events::record(
            &state,
            app.id,
            "addons",
            format!(
                "Restore {}::{} into {} by user {by}",
                source.name, backup.id, target.name
            ),
        )
        .await;
        tracing::info!(app = %app.name, from = %source.name, backup = %backup.id, into = %target.name, %by, "backup restored");
        Ok(Restored {
            from: source.name,
            backup: backup.id,
            into: target.name,
        })
    })
}

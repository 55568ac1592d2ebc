//! `paas storage:*`: the app's volumes. The mounts belong to the app, not to a release: they
//! are stored, then a release of the current image, config and sizes rolls them out through
//! the release lifecycle (release phase included, so a release command sees the new mounts).
//! If that release fails, the stored mounts are put back as they were, so the app keeps
//! running, and stays recorded, with its old mounts. An app with no running release only has
//! the mount stored; its first deploy mounts it.
//!
//! A named volume can be mounted by old and new containers at once, so rollouts of an app with
//! volumes start the new instances first and keep zero downtime like any other.

use paas_api::Username;
use paas_api::storage::{MAX_MOUNTS_PER_APP, Mount, StorageChange, VolumeName};
use paas_api::types::Release;

use super::release::{self, ReleaseKind};
use super::{Op, OpsError, Reporter};
use crate::state::SharedState;
use crate::store::{AppRow, MountAdded, NewRelease, UserRow, VolumeDeletion};

/// `storage:mount NAME:/path`, detached.
pub fn mount(state: &SharedState, app: AppRow, by: &UserRow, mount: Mount) -> Op<StorageChange> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let added = state.store.add_mount(app.id, mount.clone()).await?;
        let new_volume = match added {
            MountAdded::Added { new_volume } => new_volume,
            MountAdded::AlreadyMounted => {
                return Err(OpsError::Conflict(format!(
                    "{} is mounted at {} already.",
                    mount.name, mount.path
                )));
            }
            MountAdded::PathTaken(other) => {
                return Err(OpsError::Conflict(format!(
                    "Volume {other} is mounted at {} already; unmount it first.",
                    mount.path
                )));
            }
            MountAdded::TooMany => {
                return Err(OpsError::invalid(format!(
                    "{} has {MAX_MOUNTS_PER_APP} mounts, the most an app may have.",
                    app.name
                )));
            }
        };
        let description = format!("Mount {} at {}", mount.name, mount.path);
        let rolled = roll_out(&state, &app, by, description, &reporter).await;
        if rolled.is_err() {
            let undone = undo_mount(&state, &app, &mount, new_volume).await;
            if let Err(err) = undone {
                tracing::error!(app = %app.name, %mount, error = %err, "cannot undo a failed mount");
            }
        }
        let release = rolled?;
        tracing::info!(app = %app.name, %mount, ?release, "mounted");
        Ok(StorageChange { release })
    })
}

async fn undo_mount(
    state: &SharedState,
    app: &AppRow,
    mount: &Mount,
    new_volume: bool,
) -> Result<(), OpsError> {
    state.store.remove_mount(app.id, mount.clone()).await?;
    if new_volume {
        state
            .store
            .delete_volume(app.id, mount.name.clone())
            .await?;
        if let Some(agent) = state.agent.as_ref() {
            // The rollout may have made the Docker volume before it failed; it holds nothing.
            if let Err(err) = agent.delete_volume(&app.name, &mount.name).await {
                tracing::warn!(app = %app.name, volume = %mount.name, error = %err, "leftover volume");
            }
        }
    }
    Ok(())
}

/// `storage:unmount NAME:/path`, detached. The volume and its files stay.
pub fn unmount(state: &SharedState, app: AppRow, by: &UserRow, mount: Mount) -> Op<StorageChange> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        if !state.store.remove_mount(app.id, mount.clone()).await? {
            return Err(OpsError::NotFound(format!(
                "{} is not mounted at {}.",
                mount.name, mount.path
            )));
        }
        let description = format!("Unmount {} from {}", mount.name, mount.path);
        let rolled = roll_out(&state, &app, by, description, &reporter).await;
        if rolled.is_err()
            && let Err(err) = state.store.add_mount(app.id, mount.clone()).await
        {
            tracing::error!(app = %app.name, %mount, error = %err, "cannot undo a failed unmount");
        }
        let release = rolled?;
        tracing::info!(app = %app.name, %mount, ?release, "unmounted");
        Ok(StorageChange { release })
    })
}

/// A release of the current image, config and sizes with the stored mounts; `None` when the
/// app runs nothing yet.
async fn roll_out(
    state: &SharedState,
    app: &AppRow,
    by: Username,
    description: String,
    reporter: &Reporter,
) -> Result<Option<u32>, OpsError> {
    let current = state.store.current_release(app.id).await?;
    let Some(current) = current.filter(|release| release.image.is_some()) else {
        return Ok(None);
    };
    let release: Release = release::begin(
        state,
        NewRelease {
            app_id: app.id,
            kind: ReleaseKind::Storage,
            description,
            username: by,
            image: current.image,
            commit: current.commit,
            processes: current.processes,
            config: current.config,
            resources: current.resources,
            app_json: current.app_json,
        },
    )
    .await?;
    release::go_live(state, app, &release, ReleaseKind::Storage, reporter, |_| {}).await?;
    Ok(Some(release.version))
}

/// `storage:destroy NAME`, detached: the volume and its files, once it is mounted nowhere.
pub fn destroy(state: &SharedState, app: AppRow, by: &UserRow, volume: VolumeName) -> Op<()> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |_reporter| async move {
        let state = op_state;
        let known = state.store.volumes(app.id).await?;
        let Some(found) = known.iter().find(|known| known.name == volume) else {
            return Err(OpsError::NotFound(format!(
                "{} has no volume {volume}.",
                app.name
            )));
        };
        if let Some(path) = found.paths.first() {
            return Err(OpsError::Conflict(format!(
                "Volume {volume} is mounted at {path}; unmount it first: paas storage:unmount {volume}:{path}"
            )));
        }
        // The Docker volume goes first: if the agent cannot remove it, the record stays.
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        agent
            .delete_volume(&app.name, &volume)
            .await
            .map_err(|err| OpsError::Agent {
                what: format!("Could not remove volume {volume}, so nothing was destroyed"),
                reason: err.to_string(),
                logs: Vec::new(),
            })?;
        match state.store.delete_volume(app.id, volume.clone()).await? {
            VolumeDeletion::Deleted | VolumeDeletion::NotFound => {}
            VolumeDeletion::Mounted(_) => {
                return Err(OpsError::Conflict(format!(
                    "Volume {volume} was mounted meanwhile; nothing more was destroyed."
                )));
            }
        }
        crate::events::record(
            &state,
            app.id,
            "storage",
            format!("Destroy volume {volume} by user {by}"),
        )
        .await;
        tracing::info!(app = %app.name, %volume, %by, "volume destroyed");
        Ok(())
    })
}

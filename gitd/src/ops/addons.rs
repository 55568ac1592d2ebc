//! `paas addons:*`: add-on services and the apps attached to them. The agent runs the service
//! (its container, volume and networks); the store keeps the add-on, its URL and who is
//! attached; each attachment is one config var (`DATABASE_URL`, `<AS>_URL`) set or unset
//! through the release lifecycle of `config:set` ([`super::config::apply`]), release phase
//! and zero downtime included.
//!
//! Every step that can fail comes before the one that cannot be taken back, and what a failed
//! step leaves is undone: a create whose release fails destroys the new service; an attach
//! whose release fails leaves the network again; a detach unsets the var first, so the app
//! stops using the add-on before it loses the network; a destroy unsets the owning app's var
//! before the container and volume go. An add-on is destroyed only once no other app is
//! attached (or, forced, after each was detached, each under its own app's lock).

use std::collections::BTreeMap;

use paas_api::addons::{
    AddonChange, AddonKind, AddonName, AttachmentName, CreateAddon, ServiceSpec,
};
use paas_api::types::ConfigUpdate;
use paas_api::{ConfigKey, Username};
use rand::RngCore;

use super::{Op, OpsError, Reporter, config};
use crate::state::SharedState;
use crate::store::{AddonRow, AppRow, NewAddon, StoreError, UserRow};

/// Tries at a generated name before giving up (each taken one is a 1 in 16M chance).
const NAME_TRIES: usize = 5;

fn generated_name(kind: AddonKind) -> AddonName {
    let mut bytes = [0u8; 3];
    rand::rng().fill_bytes(&mut bytes);
    format!("{kind}-{}", hex::encode(bytes))
        .parse()
        .expect("a kind, a dash and hex make an add-on name")
}

pub(super) fn agent_failure(what: String, err: impl std::fmt::Display) -> OpsError {
    OpsError::Agent {
        what,
        reason: err.to_string(),
        logs: Vec::new(),
    }
}

/// Sets (`Some`) or unsets (`None`) the attachment's var; the release it made, if any.
async fn set_var(
    state: &SharedState,
    app: &AppRow,
    by: &Username,
    attachment: &AttachmentName,
    url: Option<String>,
    reporter: &Reporter,
) -> Result<Option<u32>, OpsError> {
    let update = ConfigUpdate {
        vars: BTreeMap::from([(attachment.config_key(), url)]),
    };
    let updated = config::apply(state, app, by.clone(), update, reporter).await?;
    Ok(updated.release.map(|release| release.version))
}

/// The config vars the app's attached add-ons set, as they are now. A rollback keeps them
/// over the old release's: an add-on's var follows its attachment, not the code (an app
/// rolled back past `addons:create` keeps reaching the database it is attached to).
pub(super) async fn attached_vars(
    state: &SharedState,
    app: &AppRow,
) -> Result<BTreeMap<ConfigKey, String>, OpsError> {
    let addons = state.store.app_addons(app.id).await?;
    Ok(addons
        .iter()
        .filter_map(|addon| {
            let attachment = addon.attachment(app.name.as_str())?;
            Some((attachment.name.config_key(), addon.url.clone()))
        })
        .collect())
}

/// Refuses an attachment name the app uses already, for an add-on or a var of its own.
async fn check_attachment_free(
    state: &SharedState,
    app: &AppRow,
    attachment: &AttachmentName,
) -> Result<(), OpsError> {
    if let Some(other) = state
        .store
        .addon_attached_as(app.id, attachment.clone())
        .await?
    {
        return Err(OpsError::Conflict(format!(
            "{} already has an attachment named {attachment} (add-on {other}); choose another with --as.",
            app.name
        )));
    }
    let key = attachment.config_key();
    if state.store.config_vars(app.id).await?.contains_key(&key) {
        return Err(OpsError::Conflict(format!(
            "{} already has {key} set; unset it or choose another attachment name with --as.",
            app.name
        )));
    }
    Ok(())
}

/// `addons:create KIND [--name NAME] [--as ATTACHMENT]` on `app`, detached.
pub fn create(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    request: CreateAddon,
) -> Op<AddonChange> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        let state = op_state;
        let kind = request.kind;
        let attachment = request
            .attachment
            .unwrap_or_else(|| kind.default_attachment());
        check_attachment_free(&state, &app, &attachment).await?;
        let name = match request.name {
            Some(name) => {
                if state
                    .store
                    .addon(app.owner_id, name.clone())
                    .await?
                    .is_some()
                {
                    return Err(OpsError::Conflict(format!(
                        "Name {name} is already taken by another add-on of {}.",
                        app.owner
                    )));
                }
                name
            }
            None => free_name(&state, &app, kind).await?,
        };
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        reporter.step(&format!("Creating {kind} {name}"));
        let spec = ServiceSpec {
            kind,
            app: app.name.clone(),
        };
        let created = agent
            .create_addon(&app.owner, &name, &spec, |waiting| {
                reporter.progress(waiting)
            })
            .await
            .map_err(|err| agent_failure(format!("Could not create {kind} {name}"), err))?;
        let recorded = state
            .store
            .insert_addon(NewAddon {
                owner_id: app.owner_id,
                app_id: app.id,
                name: name.clone(),
                kind,
                url: created.url.clone(),
                attachment: attachment.clone(),
            })
            .await;
        let addon = match recorded {
            Ok(addon) => addon,
            // Made meanwhile by another app's create: that service is the other's.
            Err(StoreError::Conflict) => {
                return Err(OpsError::Conflict(format!(
                    "Name {name} was taken meanwhile by another add-on of {}.",
                    app.owner
                )));
            }
            Err(err) => {
                undo_service(&state, &app.owner, &name).await;
                return Err(err.into());
            }
        };
        match set_var(&state, &app, &by, &attachment, Some(created.url), &reporter).await {
            Ok(release) => {
                crate::events::record(
                    &state,
                    app.id,
                    "addons",
                    format!("Create {kind} {name} as {attachment} by user {by}"),
                )
                .await;
                tracing::info!(app = %app.name, addon = %name, %kind, ?release, "add-on created");
                Ok(AddonChange {
                    addon: name,
                    kind,
                    config_var: attachment.config_key(),
                    release,
                })
            }
            Err(err) => {
                if let Err(undo) = state.store.delete_addon(addon.id).await {
                    tracing::error!(addon = %name, error = %undo, "cannot forget a failed add-on");
                }
                undo_service(&state, &app.owner, &name).await;
                Err(err)
            }
        }
    })
}

async fn free_name(
    state: &SharedState,
    app: &AppRow,
    kind: AddonKind,
) -> Result<AddonName, OpsError> {
    for _ in 0..NAME_TRIES {
        let name = generated_name(kind);
        if state
            .store
            .addon(app.owner_id, name.clone())
            .await?
            .is_none()
        {
            return Ok(name);
        }
    }
    Err(OpsError::Conflict(
        "Could not find a free add-on name; give one with --name.".to_owned(),
    ))
}

async fn undo_service(state: &SharedState, owner: &Username, name: &AddonName) {
    if let Some(agent) = state.agent.as_ref()
        && let Err(err) = agent.destroy_addon(owner, name).await
    {
        tracing::error!(%owner, addon = %name, error = %err, "leftover add-on service");
    }
}

/// `addons:attach NAME -a APP [--as ATTACHMENT]`, detached: `addon` is of `app`'s owner.
pub fn attach(
    state: &SharedState,
    app: AppRow,
    addon: AddonRow,
    by: &UserRow,
    attachment: Option<AttachmentName>,
) -> Op<AddonChange> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        let state = op_state;
        if addon.owner_id != app.owner_id {
            return Err(OpsError::NotFound("Couldn't find that add-on.".to_owned()));
        }
        if let Some(existing) = addon.attachment(&app.name) {
            return Err(OpsError::Conflict(format!(
                "{} is already attached to {} as {}.",
                addon.name, app.name, existing.name
            )));
        }
        let attachment = attachment.unwrap_or_else(|| addon.kind.default_attachment());
        check_attachment_free(&state, &app, &attachment).await?;
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        agent
            .attach_addon(&addon.owner, &addon.name, &app.name)
            .await
            .map_err(|err| agent_failure(format!("Could not attach {}", addon.name), err))?;
        let attached = state
            .store
            .attach_addon(addon.id, app.id, attachment.clone())
            .await;
        let set = match attached {
            Ok(()) => {
                set_var(
                    &state,
                    &app,
                    &by,
                    &attachment,
                    Some(addon.url.clone()),
                    &reporter,
                )
                .await
            }
            Err(err) => Err(err.into()),
        };
        match set {
            Ok(release) => {
                crate::events::record(
                    &state,
                    app.id,
                    "addons",
                    format!("Attach {} as {attachment} by user {by}", addon.name),
                )
                .await;
                Ok(AddonChange {
                    addon: addon.name,
                    kind: addon.kind,
                    config_var: attachment.config_key(),
                    release,
                })
            }
            Err(err) => {
                if let Err(undo) = state.store.detach_addon(addon.id, app.id).await {
                    tracing::error!(addon = %addon.name, error = %undo, "cannot undo an attachment");
                }
                if let Err(undo) = agent
                    .detach_addon(&addon.owner, &addon.name, &app.name)
                    .await
                {
                    tracing::error!(addon = %addon.name, error = %undo, "cannot leave the network");
                }
                Err(err)
            }
        }
    })
}

/// `addons:detach NAME -a APP`, detached: unsets the var through a release, then the add-on
/// leaves the app's network. The app an add-on was created on keeps it until it is destroyed.
pub fn detach(state: &SharedState, app: AppRow, addon: AddonRow, by: &UserRow) -> Op<AddonChange> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        let state = op_state;
        if addon.app_id == app.id {
            return Err(OpsError::invalid(format!(
                "{} was created on {}; destroy it instead: paas addons:destroy {} -a {} --confirm {}",
                addon.name, app.name, addon.name, app.name, addon.name
            )));
        }
        let release = detach_attached(&state, &app, &addon, &by, &reporter).await?;
        let attachment = addon
            .attachment(&app.name)
            .expect("detach_attached checked the attachment");
        Ok(AddonChange {
            addon: addon.name.clone(),
            kind: addon.kind,
            config_var: attachment.name.config_key(),
            release,
        })
    })
}

/// The var, the network, the record: each step done again is a no-op, so a detach that
/// failed part-way is finished by the next.
async fn detach_attached(
    state: &SharedState,
    app: &AppRow,
    addon: &AddonRow,
    by: &Username,
    reporter: &Reporter,
) -> Result<Option<u32>, OpsError> {
    let Some(attachment) = addon.attachment(&app.name) else {
        return Err(OpsError::NotFound(format!(
            "{} is not attached to {}.",
            addon.name, app.name
        )));
    };
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let release = set_var(state, app, by, &attachment.name, None, reporter).await?;
    agent
        .detach_addon(&addon.owner, &addon.name, &app.name)
        .await
        .map_err(|err| agent_failure(format!("Could not detach {}", addon.name), err))?;
    state.store.detach_addon(addon.id, app.id).await?;
    crate::events::record(
        state,
        app.id,
        "addons",
        format!("Detach {} by user {by}", addon.name),
    )
    .await;
    Ok(release)
}

/// `addons:destroy NAME --confirm NAME [--force]`: refused while other apps are attached
/// unless forced, when each is detached first under its own lock; then, under the owning
/// app's lock, its var is unset and the service goes, container then volume.
pub async fn destroy(
    state: &SharedState,
    addon: AddonRow,
    by: &UserRow,
    force: bool,
) -> Result<(), OpsError> {
    let others: Vec<_> = addon
        .attachments
        .iter()
        .filter(|attachment| attachment.app != addon.app)
        .map(|attachment| attachment.app.clone())
        .collect();
    if !others.is_empty() && !force {
        let names = others.iter().map(|app| app.as_str()).collect::<Vec<_>>();
        return Err(OpsError::Conflict(format!(
            "{} is attached to {} too; detach it there first or pass --force.",
            addon.name,
            names.join(", ")
        )));
    }
    let (state, by) = (state.clone(), by.clone());
    // Detached from the requester: a hang-up half-way never leaves it half done.
    let task = tokio::spawn(async move {
        for other in others {
            let Some(app) = state.store.app_for_user(&by, &other).await? else {
                continue;
            };
            detach_any(&state, app, addon.clone(), &by)
                .finished()
                .await?;
        }
        let owning = state
            .store
            .app_for_user(&by, &addon.app)
            .await?
            .ok_or_else(|| OpsError::NotFound("Couldn't find that app.".to_owned()))?;
        remove(&state, owning, addon, &by).finished().await
    });
    task.await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "an add-on destroy panicked");
        Err(OpsError::Panicked)
    })
}

/// Detaches from any app but the owning one, under that app's lock.
fn detach_any(state: &SharedState, app: AppRow, addon: AddonRow, by: &UserRow) -> Op<Option<u32>> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        detach_attached(&op_state, &app, &addon, &by, &reporter).await
    })
}

/// Under the owning app's lock: refused if an app was attached meanwhile.
fn remove(state: &SharedState, app: AppRow, addon: AddonRow, by: &UserRow) -> Op<()> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let lock_name = app.name.clone();
    super::spawn(state, &lock_name, None, move |reporter| async move {
        let state = op_state;
        let Some(current) = state
            .store
            .addon(addon.owner_id, addon.name.clone())
            .await?
        else {
            return Ok(());
        };
        if current.attachments.iter().any(|a| a.app != app.name) {
            return Err(OpsError::Conflict(format!(
                "{} was attached to another app meanwhile; nothing was destroyed.",
                addon.name
            )));
        }
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        if let Some(attachment) = current.attachment(&app.name) {
            set_var(&state, &app, &by, &attachment.name, None, &reporter).await?;
        }
        agent
            .destroy_addon(&current.owner, &current.name)
            .await
            .map_err(|err| agent_failure(format!("Could not destroy {}", current.name), err))?;
        state.store.delete_addon(current.id).await?;
        crate::events::record(
            &state,
            app.id,
            "addons",
            format!("Destroy {} {} by user {by}", current.kind, current.name),
        )
        .await;
        tracing::info!(app = %app.name, addon = %current.name, %by, "add-on destroyed");
        Ok(())
    })
}

/// For `apps:destroy`, under the app's lock: the app's own add-ons (refused unless `confirmed`
/// names each, and while another app is attached to one), then the networks of the others'
/// it is attached to. Its attachment records go with the app.
pub async fn release_for_app_removal(
    state: &SharedState,
    app: &AppRow,
    confirmed: &[AddonName],
) -> Result<(), OpsError> {
    let addons = state.store.app_addons(app.id).await?;
    let owned: Vec<&AddonRow> = addons.iter().filter(|a| a.app_id == app.id).collect();
    let unconfirmed: Vec<&str> = owned
        .iter()
        .filter(|addon| !confirmed.contains(&addon.name))
        .map(|addon| addon.name.as_str())
        .collect();
    if !unconfirmed.is_empty() {
        return Err(OpsError::invalid(format!(
            "Destroying {} also destroys its add-ons {} and their data; confirm them too.",
            app.name,
            unconfirmed.join(", ")
        )));
    }
    for addon in &owned {
        if let Some(other) = addon.attachments.iter().find(|a| a.app != app.name) {
            return Err(OpsError::Conflict(format!(
                "Add-on {} of {} is attached to {} too; detach it there first. Nothing was destroyed.",
                addon.name, app.name, other.app
            )));
        }
    }
    if addons.is_empty() {
        return Ok(());
    }
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    for addon in &addons {
        let done = if addon.app_id == app.id {
            agent.destroy_addon(&addon.owner, &addon.name).await
        } else {
            agent
                .detach_addon(&addon.owner, &addon.name, &app.name)
                .await
        };
        done.map_err(|err| agent_failure(format!("Could not remove add-on {}", addon.name), err))?;
        if addon.app_id == app.id {
            state.store.delete_addon(addon.id).await?;
        }
    }
    Ok(())
}

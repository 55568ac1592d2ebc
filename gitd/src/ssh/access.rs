//! Who may do what over SSH, checked at login, at each exec and again whenever access changes
//! anywhere: the HTTP handlers that remove a key, a user or a collaborator, or destroy an app,
//! call [`AccessChanges::bump`], and every live connection re-runs the same checks, ending
//! what no longer holds.

use russh::keys::ssh_key::{HashAlg, PublicKey};
use tokio::sync::watch;

use crate::state::SharedState;
use crate::store::{AppRow, StoreError, UserRow};

/// Tells live SSH connections that keys, users or access rights changed.
pub struct AccessChanges {
    sender: watch::Sender<u64>,
}

impl Default for AccessChanges {
    fn default() -> Self {
        AccessChanges {
            sender: watch::Sender::new(0),
        }
    }
}

impl AccessChanges {
    /// Call after a change that can take a right away (key, user, collaborator, app removed).
    pub fn bump(&self) {
        self.sender.send_modify(|generation| *generation += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.sender.subscribe()
    }
}

/// What a connection logged in with.
#[derive(Debug, Clone)]
pub struct Login {
    pub fingerprint: String,
    pub user_id: i64,
}

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// The user `fingerprint` logs in as: the key's owner, while the key is registered.
pub async fn user_for_key(state: &SharedState, fingerprint: &str) -> Option<UserRow> {
    match state.store.user_by_key_fingerprint(fingerprint).await {
        Ok(user) => user,
        Err(err) => {
            tracing::error!(error = %err, "database error checking an SSH key");
            None
        }
    }
}

/// The login's user as it is now, if the key still belongs to the same user.
pub async fn current_user(state: &SharedState, login: &Login) -> Option<UserRow> {
    user_for_key(state, &login.fingerprint)
        .await
        .filter(|user| user.id == login.user_id)
}

/// The app `name`, if `user` may push to and clone it.
pub async fn app_for(
    state: &SharedState,
    user: &UserRow,
    name: &str,
) -> Result<Option<AppRow>, StoreError> {
    state.store.app_for_user(user, name).await
}

/// Whether the login, and its use of `app` when given, still holds. A database error counts
/// as no: the check fails closed.
pub async fn still_holds(state: &SharedState, login: &Login, app: Option<&str>) -> bool {
    let Some(user) = current_user(state, login).await else {
        return false;
    };
    match app {
        None => true,
        Some(app) => match app_for(state, &user, app).await {
            Ok(found) => found.is_some(),
            Err(err) => {
                tracing::error!(error = %err, "database error re-checking SSH access");
                false
            }
        },
    }
}

/// Resolves once the login (or its use of `app`) no longer holds: checked at once, so no
/// change between the caller's own check and this call is missed, then after every bump.
pub async fn revoked(state: &SharedState, login: &Login, app: Option<&str>) {
    let mut changes = state.ssh_access.subscribe();
    loop {
        if !still_holds(state, login, app).await {
            return;
        }
        if changes.changed().await.is_err() {
            return std::future::pending().await;
        }
    }
}

//! Destroying an app: its containers and images, its repository and its records, in that
//! order, so that a failure part-way leaves the app whole rather than half gone. Its add-ons
//! go before all that (confirmed by name, see [`super::addons::release_for_app_removal`]).

use paas_api::addons::AddonName;

use super::{Op, OpsError};
use crate::repos;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

/// `paas apps:destroy`: run under the app's lock, so no push or change is half-way through.
/// The app's own add-ons go with it only if `addons` names each of them.
pub fn destroy(state: &SharedState, app: AppRow, by: &UserRow, addons: Vec<AddonName>) -> Op<()> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |_reporter| async move {
        let state = op_state;
        // Their containers hold the app's network, which goes with the app's containers.
        super::addons::release_for_app_removal(&state, &app, &addons).await?;
        // Containers and images go first: if the agent cannot remove them, the app stays whole.
        if let Some(agent) = state.agent.as_ref() {
            agent
                .delete_app(&app.name)
                .await
                .map_err(|err| OpsError::Agent {
                    what: format!(
                        "Could not remove {}'s containers and images, so nothing was destroyed",
                        app.name
                    ),
                    reason: err.to_string(),
                    logs: Vec::new(),
                })?;
        }
        let repos_dir = state.repos_dir();
        // The repository is moved aside first and put back if the rows cannot go.
        let aside = repos::set_aside(&repos_dir, &app.name).map_err(|err| {
            tracing::error!(app = %app.name, error = %err, "cannot move repository aside");
            OpsError::Repository
        })?;
        match (state.store.delete_app(app.id).await, aside) {
            (Ok(()), Some(aside)) => {
                if let Err(err) = std::fs::remove_dir_all(&aside) {
                    tracing::warn!(path = %aside.display(), error = %err, "leftover repository");
                }
            }
            (Ok(()), None) => {}
            (Err(err), aside) => {
                if let Some(aside) = aside {
                    let _ = repos::restore(&repos_dir, &app.name, &aside);
                }
                return Err(err.into());
            }
        }
        state.ssh_access.bump();
        tracing::info!(app = %app.name, %by, "app destroyed");
        Ok(())
    })
}

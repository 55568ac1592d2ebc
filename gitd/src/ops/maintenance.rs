//! `paas maintenance:on|off`: the agent routes the app's hosts to the maintenance page (or back
//! to the app), under the app's lock, and the state is stored once the agent has applied it.
//! Nothing the app runs changes: no release, no rollout, no restart.

use paas_api::routing::Maintenance;

use super::{Op, OpsError};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

pub fn set(state: &SharedState, app: AppRow, by: &UserRow, enabled: bool) -> Op<Maintenance> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |_reporter| async move {
        let state = op_state;
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        let before = state.store.routing(app.id).await?.maintenance;
        // Sent even when unchanged, so the agent's routes follow the stored state again.
        agent
            .put_maintenance(&app.name, Maintenance { enabled })
            .await
            .map_err(|err| OpsError::Agent {
                what: format!(
                    "Turning maintenance mode {} failed",
                    if enabled { "on" } else { "off" }
                ),
                reason: err.to_string(),
                logs: Vec::new(),
            })?;
        state.store.set_maintenance(app.id, enabled).await?;
        if before != enabled {
            let verb = if enabled { "Enabled" } else { "Disabled" };
            tracing::info!(app = %app.name, enabled, %by, "maintenance");
            let message = format!("{verb} maintenance mode by user {by}");
            events::record(&state, app.id, "maintenance", message).await;
        }
        Ok(Maintenance { enabled })
    })
}

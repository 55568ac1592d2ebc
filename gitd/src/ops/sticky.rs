//! `paas ps:sticky on|off`: whether Traefik keeps a client on the `web` instance that first
//! answered it. The setting changes the app's containers (their routing labels), so it is
//! stored, the running release is rolled out again with it (zero downtime, like any rollout)
//! and, should that rollout fail, the old setting is put back; before the first deploy it is
//! just stored.

use paas_api::routing::StickySessions;

use super::changes::{reroll, version_of};
use super::{Op, OpsError};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

pub fn set(state: &SharedState, app: AppRow, by: &UserRow, enabled: bool) -> Op<StickySessions> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let before = state.store.routing(app.id).await?.sticky_sessions;
        if before == enabled {
            return Ok(StickySessions { enabled });
        }
        let verb = if enabled { "on" } else { "off" };
        state.store.set_sticky_sessions(app.id, enabled).await?;
        let rerolled = match reroll(&state, &app, None, &reporter).await {
            Ok(rerolled) => rerolled,
            Err(failure) => {
                state.store.set_sticky_sessions(app.id, before).await?;
                return Err(OpsError::agent(
                    format!("Turning sticky sessions {verb} failed; nothing was changed"),
                    failure,
                ));
            }
        };
        tracing::info!(app = %app.name, enabled, %by, "sticky sessions");
        let message = format!("Turned sticky sessions {verb} by user {by}");
        events::record_in(&state, app.id, version_of(rerolled), "sticky", message).await;
        Ok(StickySessions { enabled })
    })
}

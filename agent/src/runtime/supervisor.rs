//! Keeps app containers running between rollouts. The `unless-stopped` restart policy brings
//! back a container that crashes or runs out of memory, and every container after an engine
//! restart, even while the agent is down; but Docker counts `docker kill` as a manual stop and
//! leaves the container down, and a removed container is gone.
//!
//! The supervisor watches `die` and `destroy` events of app containers and converges the app
//! to its desired state (see [`super::converge_soon`]): a killed container starts again in
//! place, a removed one is created again, one Docker is restarting is left to Docker. Each
//! time it (re)subscribes to the event stream, at start-up and after dockerd came back, it
//! converges every app, which catches up with whatever happened while nobody was watching.
//! An app without a desired state (deployed by an agent that kept none) only gets its
//! stopped containers started again, as they are.
//!
//! Only containers carrying the agent's instance key are considered: a build step's container
//! labelled `paas.app=<app>` is never started again.
//!
//! It takes the app's lock first, so a container a rollout is retiring (stopped, then
//! removed under that lock) is gone by the time it is looked at.

use std::time::Duration;

use futures::StreamExt;
use tracing::{info, warn};

use super::engine::Engine;
use crate::state::AgentState;

/// Pause before subscribing again after the event stream broke (e.g. dockerd restarting).
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// Runs for the life of the agent.
pub async fn supervise(state: AgentState) {
    loop {
        let mut changes = state.runtime.engine.changes();
        super::converge_all(&state);
        while let Some(change) = changes.next().await {
            match change {
                Ok(change) => {
                    if super::has_desired_state(&state, &change.app) {
                        super::converge_soon(&state, &change.app);
                    } else if change.stopped {
                        tokio::spawn(revive(state.clone(), change.app, change.id));
                    }
                }
                Err(err) => {
                    warn!(error = %err, "Docker event stream failed; subscribing again");
                    break;
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// Starts `id` again if it is an app instance that stopped outside a rollout and that the
/// engine's restart policy will not bring back.
async fn revive(state: AgentState, app: String, id: String) {
    let _guard = state.runtime.lock(&app).await;
    match state.runtime.engine.revive(&app, &id).await {
        Ok(Some(name)) => {
            info!(%app, %name, "started again after it was stopped outside a rollout")
        }
        Ok(None) => {}
        Err(err) => warn!(%app, %id, error = %err, "cannot start a stopped container again"),
    }
}

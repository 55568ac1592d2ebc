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

use bollard::models::ContainerStateStatusEnum;
use bollard::query_parameters::EventsOptions;
use futures::StreamExt;
use tracing::{info, warn};

use super::docker;
use crate::naming::labels::InstanceLabels;
use crate::naming::{LABEL_APP, docker_filters, is_ours};
use crate::state::AgentState;

/// Pause before subscribing again after the event stream broke (e.g. dockerd restarting).
const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(1);

/// Runs for the life of the agent.
pub async fn supervise(state: AgentState) {
    loop {
        let mut filters = docker_filters(state.config.instance_key(), None, None);
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        filters.insert(
            "event".to_owned(),
            vec!["die".to_owned(), "destroy".to_owned()],
        );
        let mut events = state.docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        }));
        super::converge_all(&state);
        while let Some(event) = events.next().await {
            match event {
                Ok(event) => {
                    let Some(actor) = event.actor else { continue };
                    let (Some(id), Some(attributes)) = (actor.id, actor.attributes) else {
                        continue;
                    };
                    // The filter says so already; the key is checked again where it decides.
                    let Some(app) = attributes
                        .get(LABEL_APP)
                        .filter(|_| is_ours(state.config.instance_key(), &attributes))
                        .cloned()
                    else {
                        continue;
                    };
                    if super::has_desired_state(&state, &app) {
                        super::converge_soon(&state, &app);
                    } else if event.action.as_deref() == Some("die") {
                        tokio::spawn(revive(state.clone(), app, id));
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

/// Starts `id` again if it is an app container that stopped outside a rollout and that
/// Docker's restart policy will not bring back.
async fn revive(state: AgentState, app: String, id: String) {
    let _guard = state.runtime.lock(&app).await;
    let details = match docker::inspect(&state.docker, &id).await {
        Ok(details) => details,
        // Retired: removed by the rollout that stopped it.
        Err(err) if docker::is_not_found(&err) => return,
        Err(err) => {
            warn!(%app, %id, error = %err, "cannot inspect a stopped container");
            return;
        }
    };
    let status = details
        .state
        .as_ref()
        .and_then(|s| s.status)
        .unwrap_or(ContainerStateStatusEnum::EMPTY);
    if status != ContainerStateStatusEnum::EXITED {
        return;
    }
    let labels = details
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    if !is_ours(state.config.instance_key(), &labels) {
        return;
    }
    let canonical = InstanceLabels::parse(&labels)
        .filter(|instance| instance.app == app)
        .map(|instance| instance.canonical_name());
    let name = details.name.unwrap_or_default();
    // A renamed container is being replaced; only a serving one is brought back.
    if canonical.as_deref() != Some(name.trim_start_matches('/')) {
        return;
    }
    match state
        .docker
        .start_container(
            &id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
    {
        Ok(()) => info!(%app, %name, "started again after it was stopped outside a rollout"),
        Err(err) => warn!(%app, %name, error = %err, "cannot start a stopped container again"),
    }
}

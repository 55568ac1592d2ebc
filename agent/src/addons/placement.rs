//! Where an add-on runs, by the agent's engine ([`EngineKind`]): a container of the agent's
//! engine ([`docker`]), or on Swarm a service pinned to the agent's node ([`swarm`]). The
//! rest of an add-on — image, credentials, volume, readiness probe, URL, consoles, backups —
//! is one rule for both and works on the container found here, which is always on the
//! agent's own engine.

use std::time::Duration;

use bollard::errors::Error as DockerError;
use bollard::models::ContainerInspectResponse;
use paas_api::addons::AddonKind;

use super::docker::{self, Addon, AddonFailure};
use super::service::Credentials;
use super::swarm;
use crate::config::EngineKind;
use crate::naming;
use crate::state::AgentState;

fn ready_timeout(state: &AgentState) -> Duration {
    Duration::from_secs(state.config.addons.ready_timeout_secs)
}

/// The kind and container of `owner`'s add-on `name`, if it exists; something of its name
/// that is not this add-on is refused.
pub async fn find(
    state: &AgentState,
    owner: &str,
    name: &str,
) -> Result<Option<(AddonKind, ContainerInspectResponse)>, AddonFailure> {
    let key = state.config.instance_key();
    match state.config.engine {
        EngineKind::Docker => docker::inspect(&state.docker, key, owner, name).await,
        EngineKind::Swarm => swarm::inspect(&state.docker, key, owner, name).await,
    }
}

/// Creates and starts the add-on (its volume too) on `app`'s network.
pub async fn create(
    state: &AgentState,
    addon: &Addon<'_>,
    app: &str,
    credentials: &Credentials,
) -> Result<(), AddonFailure> {
    let image = state.config.addons.image(addon.kind);
    match state.config.engine {
        EngineKind::Docker => docker::create(&state.docker, addon, image, app, credentials).await,
        EngineKind::Swarm => swarm::create(&state.docker, addon, image, app, credentials).await,
    }
}

/// Waits until the add-on answers with `credentials`, at most `[addons] ready_timeout_secs`;
/// its version.
pub async fn wait_ready(
    state: &AgentState,
    addon: &Addon<'_>,
    credentials: &Credentials,
) -> Result<String, AddonFailure> {
    let locate = || async {
        match state.config.engine {
            EngineKind::Docker => Ok(Some(naming::addon_container(addon.owner, addon.name))),
            EngineKind::Swarm => swarm::container(&state.docker, addon.owner, addon.name).await,
        }
    };
    docker::wait_ready(
        &state.docker,
        addon,
        credentials,
        ready_timeout(state),
        locate,
    )
    .await
}

/// Puts the add-on (`found` as [`find`] gave it) on `app`'s network as its name; on Swarm,
/// where that replaces its task, answers once the new one accepts connections.
pub async fn connect(
    state: &AgentState,
    found: &(AddonKind, ContainerInspectResponse),
    (owner, name): (&str, &str),
    app: &str,
) -> Result<(), AddonFailure> {
    let (kind, details) = found;
    match state.config.engine {
        EngineKind::Docker => Ok(docker::connect(&state.docker, details, name, app).await?),
        EngineKind::Swarm => {
            let key = state.config.instance_key();
            let timeout = ready_timeout(state);
            if swarm::connect(&state.docker, key, (owner, name), app, timeout).await? {
                let credentials = docker::credentials(*kind, details)?;
                let addon = Addon {
                    key,
                    owner,
                    name,
                    kind: *kind,
                };
                wait_ready(state, &addon, &credentials).await?;
            }
            Ok(())
        }
    }
}

/// Takes the add-on off `app`'s network (done if it is not on it).
pub async fn disconnect(
    state: &AgentState,
    details: &ContainerInspectResponse,
    (owner, name): (&str, &str),
    app: &str,
) -> Result<(), AddonFailure> {
    match state.config.engine {
        EngineKind::Docker => Ok(docker::disconnect(&state.docker, details, app).await?),
        EngineKind::Swarm => {
            let key = state.config.instance_key();
            let timeout = ready_timeout(state);
            swarm::disconnect(&state.docker, key, (owner, name), app, timeout).await?;
            Ok(())
        }
    }
}

/// Removes the add-on, then its volume with the data; done for whatever is already gone.
pub async fn remove(state: &AgentState, owner: &str, name: &str) -> Result<(), DockerError> {
    match state.config.engine {
        EngineKind::Docker => docker::remove(&state.docker, owner, name).await,
        EngineKind::Swarm => swarm::remove(&state.docker, owner, name).await,
    }
}

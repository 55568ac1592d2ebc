//! The network build steps run on (`[build] network`): a bridge of its own, not Docker's
//! default one, so that steps of different builds cannot reach one another (inter-container
//! traffic off) and the host firewall can single builds out by a fixed interface name.

use std::collections::HashMap;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::InspectNetworkOptions;
use tokio::sync::Mutex;

use super::BuildError;

/// Linux caps interface names at 15 bytes.
const MAX_INTERFACE_NAME: usize = 15;

/// Docker 20.10 creates a second network of an existing name; builds of this agent take turns
/// here, and the fixed bridge name makes a second agent's attempt fail instead.
static CREATING: Mutex<()> = Mutex::const_new(());

/// The host interface of `network`: `<network>0`, cut to what Linux allows.
pub fn bridge_name(network: &str) -> String {
    let mut name: String = network.chars().take(MAX_INTERFACE_NAME - 1).collect();
    name.push('0');
    name
}

/// Creates `network` unless it exists.
pub async fn ensure(docker: &Docker, network: &str) -> Result<(), BuildError> {
    let _turn = CREATING.lock().await;
    if exists(docker, network).await? {
        return Ok(());
    }
    let created = docker
        .create_network(NetworkCreateRequest {
            name: network.to_owned(),
            driver: Some("bridge".to_owned()),
            options: Some(HashMap::from([
                (
                    "com.docker.network.bridge.name".to_owned(),
                    bridge_name(network),
                ),
                (
                    "com.docker.network.bridge.enable_icc".to_owned(),
                    "false".to_owned(),
                ),
            ])),
            ..Default::default()
        })
        .await;
    match created {
        Ok(_) => Ok(()),
        // Another agent made it meanwhile.
        Err(_) if exists(docker, network).await? => Ok(()),
        Err(err) => Err(BuildError::Engine(format!(
            "creating the build network {network}: {err}"
        ))),
    }
}

async fn exists(docker: &Docker, network: &str) -> Result<bool, BuildError> {
    match docker
        .inspect_network(network, None::<InspectNetworkOptions>)
        .await
    {
        Ok(_) => Ok(true),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(err) => Err(BuildError::Engine(format!(
            "inspecting the build network {network}: {err}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_fit_linux() {
        assert_eq!(bridge_name("paas-builds"), "paas-builds0");
        assert_eq!(bridge_name("a-very-long-network-name"), "a-very-long-ne0");
        assert_eq!(bridge_name("a-very-long-network-name").len(), 15);
    }
}

//! The Docker side of add-ons: the image (pulled if missing), the volume, the container on
//! the app networks only, the readiness wait, network membership, the probes run in the
//! container and removal. Containers and volumes carry the add-on labels
//! ([`crate::naming::labels::addon_labels`]), never an instance's or an app's, so no rollout,
//! convergence, app removal or Traefik ever touches them; their restart policy (`always`)
//! brings them back after a crash, a `docker kill` or an engine restart with no agent
//! involved.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, EndpointSettings,
    ExecConfig, HostConfig, Mount, MountTypeEnum, NetworkConnectRequest, NetworkDisconnectRequest,
    NetworkingConfig, RestartPolicy, RestartPolicyNameEnum, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, LogsOptions, RemoveContainerOptions,
    RemoveVolumeOptions,
};
use futures::StreamExt;
use paas_api::addons::{AddonKind, ServiceState, ServiceStatus};

use super::service::{self, Credentials, Exec};
use crate::naming::labels::{
    LABEL_ADDON, LABEL_ADDON_KIND, LABEL_ADDON_NAME, LABEL_ADDON_OWNER, addon_labels,
};
use crate::naming::{self, InstanceKey, network_name};
use crate::runtime::ensure_network;

/// Between readiness probes of a new add-on.
const PROBE_PAUSE: Duration = Duration::from_millis(250);
/// Processes one add-on container may have (Postgres forks one per connection).
pub(super) const PIDS_LIMIT: i64 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum AddonFailure {
    #[error("Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("{0}")]
    Refused(String),
    #[error("{reason}")]
    NotReady { reason: String, logs: Vec<String> },
}

/// One add-on as the agent knows it: whose, which, of what kind.
pub struct Addon<'a> {
    pub key: &'a InstanceKey,
    pub owner: &'a str,
    pub name: &'a str,
    pub kind: AddonKind,
}

impl Addon<'_> {
    pub(super) fn container(&self) -> String {
        naming::addon_container(self.owner, self.name)
    }

    pub(super) fn labels(&self) -> HashMap<String, String> {
        addon_labels(self.key, self.owner, self.name, self.kind.as_str())
    }
}

pub(super) fn is_not_found(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The kind `labels` (a container's or a service's) give, if they say this agent's add-on
/// `name` of `owner`.
pub(super) fn kind_if_ours(
    labels: &HashMap<String, String>,
    key: &InstanceKey,
    owner: &str,
    name: &str,
) -> Option<AddonKind> {
    let label = |name: &str| labels.get(name).map(String::as_str);
    let ours = label(LABEL_ADDON) == Some(key.as_str())
        && label(LABEL_ADDON_OWNER) == Some(owner)
        && label(LABEL_ADDON_NAME) == Some(name);
    label(LABEL_ADDON_KIND)
        .and_then(|kind| kind.parse().ok())
        .filter(|_| ours)
}

/// The add-on's container, if it exists and is this agent's add-on of that owner and name;
/// a container of that name that is anything else is refused.
pub async fn inspect(
    docker: &Docker,
    key: &InstanceKey,
    owner: &str,
    name: &str,
) -> Result<Option<(AddonKind, ContainerInspectResponse)>, AddonFailure> {
    inspect_as(
        docker,
        key,
        owner,
        name,
        &naming::addon_container(owner, name),
    )
    .await
}

/// `container` (a name or id), if it exists and is this agent's add-on `name` of `owner`; a
/// container that is anything else is refused.
pub(super) async fn inspect_as(
    docker: &Docker,
    key: &InstanceKey,
    owner: &str,
    name: &str,
    container: &str,
) -> Result<Option<(AddonKind, ContainerInspectResponse)>, AddonFailure> {
    let details = match docker
        .inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Ok(details) => details,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let labels = details
        .config
        .as_ref()
        .and_then(|config| config.labels.clone())
        .unwrap_or_default();
    match kind_if_ours(&labels, key, owner, name) {
        Some(kind) => Ok(Some((kind, details))),
        _ => Err(AddonFailure::Refused(format!(
            "container {container} exists but is not this add-on; refusing to touch it"
        ))),
    }
}

/// The credentials the container was created with.
pub fn credentials(
    kind: AddonKind,
    details: &ContainerInspectResponse,
) -> Result<Credentials, AddonFailure> {
    let config = details.config.as_ref();
    let env = config.and_then(|c| c.env.clone()).unwrap_or_default();
    let cmd = config.and_then(|c| c.cmd.clone()).unwrap_or_default();
    Credentials::read(kind, &env, &cmd).ok_or_else(|| {
        AddonFailure::Refused("the add-on's container has lost its credentials".to_owned())
    })
}

/// Makes the image available: there already, or pulled.
pub(super) async fn ensure_image(docker: &Docker, image: &str) -> Result<(), AddonFailure> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(err.into()),
    }
    let mut pull = docker.create_image(
        Some(CreateImageOptions {
            from_image: Some(image.to_owned()),
            ..Default::default()
        }),
        None,
        None,
    );
    while let Some(progress) = pull.next().await {
        if let Err(err) = progress {
            return Err(AddonFailure::Refused(format!(
                "image {image} is not on this host and cannot be pulled: {err} (set [addons] in the agent config, see docs/operations.md)"
            )));
        }
    }
    Ok(())
}

/// Creates the add-on's volume, a local one on the agent's engine, and gives its name;
/// refused if it exists.
pub(super) async fn create_volume(
    docker: &Docker,
    addon: &Addon<'_>,
) -> Result<String, AddonFailure> {
    let volume = naming::addon_volume(addon.owner, addon.name);
    // Data left by an earlier add-on of that name would not take the new credentials.
    match docker.inspect_volume(&volume).await {
        Ok(_) => {
            return Err(AddonFailure::Refused(format!(
                "volume {volume} exists without its add-on; remove it (docker volume rm) or choose another name"
            )));
        }
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(err.into()),
    }
    docker
        .create_volume(VolumeCreateOptions {
            name: Some(volume.clone()),
            driver: Some("local".to_owned()),
            labels: Some(addon.labels()),
            ..Default::default()
        })
        .await?;
    Ok(volume)
}

/// Creates the add-on's volume and container on `app`'s network, reachable there as its
/// name, and starts it. Never publishes a port.
pub async fn create(
    docker: &Docker,
    addon: &Addon<'_>,
    image: &str,
    app: &str,
    credentials: &Credentials,
) -> Result<(), AddonFailure> {
    ensure_image(docker, image).await?;
    let volume = create_volume(docker, addon).await?;
    let network = network_name(app);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        hostname: Some(addon.name.to_owned()),
        env: Some(service::env(addon.kind, credentials)),
        cmd: service::cmd(addon.kind, credentials),
        labels: Some(addon.labels()),
        host_config: Some(HostConfig {
            mounts: Some(vec![Mount {
                target: Some(service::data_dir(addon.kind).to_owned()),
                source: Some(volume),
                typ: Some(MountTypeEnum::VOLUME),
                ..Default::default()
            }]),
            network_mode: Some(network.clone()),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::ALWAYS),
                maximum_retry_count: None,
            }),
            pids_limit: Some(PIDS_LIMIT),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network,
                EndpointSettings {
                    aliases: Some(vec![addon.name.to_owned()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(addon.container()),
                ..Default::default()
            }),
            body,
        )
        .await?;
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await?;
    Ok(())
}

/// What `docker exec` runs `exec` with: as root, its output attached, and its input when
/// `stdin`.
pub(super) fn as_root(exec: Exec, stdin: bool) -> ExecConfig {
    ExecConfig {
        cmd: Some(exec.cmd),
        env: Some(exec.env),
        user: Some("0".to_owned()),
        attach_stdin: Some(stdin),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    }
}

/// Runs `exec` in the container as root; its output if it exits 0.
pub(super) async fn run(
    docker: &Docker,
    container: &str,
    exec: Exec,
) -> Result<Option<String>, DockerError> {
    let created = docker.create_exec(container, as_root(exec, false)).await?;
    let mut text = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await?
    {
        while let Some(chunk) = output.next().await {
            if let Ok(bollard::container::LogOutput::StdOut { message }) = chunk {
                text.push_str(&String::from_utf8_lossy(&message));
            }
        }
    }
    let inspected = docker.inspect_exec(&created.id).await?;
    Ok((inspected.exit_code == Some(0)).then_some(text))
}

/// The server's version, if it answers with the add-on's credentials now.
async fn probe(
    docker: &Docker,
    container: &str,
    kind: AddonKind,
    credentials: &Credentials,
) -> Option<String> {
    let output = run(docker, container, service::version_probe(kind, credentials))
        .await
        .ok()??;
    service::parse_version(kind, &output)
}

pub(super) fn running(details: &ContainerInspectResponse) -> bool {
    details.state.as_ref().and_then(|state| state.status) == Some(ContainerStateStatusEnum::RUNNING)
}

/// Waits until the add-on answers, at most `timeout`; fails at once if its container stops.
/// `locate` finds the container each round (`None` while there is none yet).
pub async fn wait_ready<F, Fut>(
    docker: &Docker,
    addon: &Addon<'_>,
    credentials: &Credentials,
    timeout: Duration,
    locate: F,
) -> Result<String, AddonFailure>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<Option<String>, AddonFailure>>,
{
    let started = Instant::now();
    loop {
        if let Some(container) = locate().await? {
            let details = docker
                .inspect_container(
                    &container,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await?;
            let restarts = details.restart_count.unwrap_or_default();
            if !running(&details) || restarts > 0 {
                return Err(AddonFailure::NotReady {
                    reason: format!("the {} container stopped while starting", addon.kind),
                    logs: log_tail(docker, &container).await,
                });
            }
            if let Some(version) = probe(docker, &container, addon.kind, credentials).await {
                return Ok(version);
            }
        }
        if started.elapsed() >= timeout {
            let logs = match locate().await? {
                Some(container) => log_tail(docker, &container).await,
                None => Vec::new(),
            };
            return Err(AddonFailure::NotReady {
                reason: format!(
                    "the {} did not answer within {}s",
                    addon.kind,
                    timeout.as_secs()
                ),
                logs,
            });
        }
        tokio::time::sleep(PROBE_PAUSE).await;
    }
}

/// The container's last log lines, for a failure's report.
async fn log_tail(docker: &Docker, container: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut logs = docker.logs(
        container,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: "20".to_owned(),
            ..Default::default()
        }),
    );
    while let Some(Ok(chunk)) = logs.next().await {
        lines.extend(chunk.to_string().lines().map(str::to_owned));
    }
    lines
}

/// How the add-on is: Docker's state, and if it runs, whether it answers, its version and
/// the size of its data.
pub async fn status(
    docker: &Docker,
    kind: AddonKind,
    details: &ContainerInspectResponse,
) -> ServiceStatus {
    let container = details.id.clone().unwrap_or_default();
    let answering = match credentials(kind, details) {
        Ok(credentials) if running(details) => probe(docker, &container, kind, &credentials).await,
        _ => None,
    };
    let Some(version) = answering else {
        return ServiceStatus {
            state: if running(details) {
                ServiceState::Starting
            } else {
                ServiceState::Stopped
            },
            version: None,
            size_bytes: None,
        };
    };
    let size_bytes = run(docker, &container, service::size_probe(kind))
        .await
        .ok()
        .flatten()
        .and_then(|output| service::parse_size(&output));
    ServiceStatus {
        state: ServiceState::Available,
        version: Some(version),
        size_bytes,
    }
}

/// Whether the container is on the app's network.
fn on_network(details: &ContainerInspectResponse, app: &str) -> bool {
    details
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref())
        .is_some_and(|networks| networks.contains_key(&network_name(app)))
}

/// Puts the add-on on `app`'s network as its name (done if it is there already).
pub async fn connect(
    docker: &Docker,
    details: &ContainerInspectResponse,
    name: &str,
    app: &str,
) -> Result<(), DockerError> {
    if on_network(details, app) {
        return Ok(());
    }
    ensure_network(docker, app, None).await?;
    docker
        .connect_network(
            &network_name(app),
            NetworkConnectRequest {
                container: details.id.clone(),
                endpoint_config: Some(EndpointSettings {
                    aliases: Some(vec![name.to_owned()]),
                    ..Default::default()
                }),
            },
        )
        .await
}

/// Takes the add-on off `app`'s network (done if it is not on it).
pub async fn disconnect(
    docker: &Docker,
    details: &ContainerInspectResponse,
    app: &str,
) -> Result<(), DockerError> {
    if !on_network(details, app) {
        return Ok(());
    }
    docker
        .disconnect_network(
            &network_name(app),
            NetworkDisconnectRequest {
                container: details.id.clone(),
                force: Some(true),
            },
        )
        .await
}

/// Removes the container, then the volume with the data; done for whatever is already gone.
pub async fn remove(docker: &Docker, owner: &str, name: &str) -> Result<(), DockerError> {
    let container = naming::addon_container(owner, name);
    match docker
        .remove_container(
            &container,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await
    {
        Err(err) if !is_not_found(&err) => return Err(err),
        _ => {}
    }
    match docker
        .remove_volume(
            &naming::addon_volume(owner, name),
            None::<RemoveVolumeOptions>,
        )
        .await
    {
        Err(err) if !is_not_found(&err) => Err(err),
        _ => Ok(()),
    }
}

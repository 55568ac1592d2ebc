//! The Swarm side of add-ons (engine `swarm`): an add-on is a service of one task pinned to
//! the agent's own node (`node.id==…`), which holds its local volume. Pinned there because
//! Swarm has no exec of its own: probes, consoles and backups run in the add-on's container
//! through the engine of its node, and the agent has its own node's engine only. The task is
//! on the overlay network of each app it is attached to, as its name (DNS round robin over its
//! one task: no virtual IP, this kind of host has no IPVS), and publishes no port. Image,
//! environment, command, credentials, volume, readiness and URL are the docker engine's
//! ([`super::docker`], [`super::service`]); what differs is only where the container runs and
//! that joining or leaving a network is an update of the service, which replaces its task
//! (stop-first: never two servers on one data directory).

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, EndpointSpec, EndpointSpecModeEnum, Limit, Mount, MountTypeEnum,
    NetworkAttachmentConfig, Service, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecUpdateConfig, ServiceSpecUpdateConfigFailureActionEnum,
    ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{InspectServiceOptions, ListTasksOptions, RemoveVolumeOptions};
use paas_api::addons::AddonKind;
use tokio::time::Instant;

use super::docker::{self, Addon, AddonFailure, PIDS_LIMIT, is_not_found};
use super::service::{self, Credentials};
use crate::naming::{self, InstanceKey, network_name};
use crate::runtime::update_options;

/// How often Swarm is asked how a change of the service goes.
const POLL: Duration = Duration::from_millis(250);
/// A crashed task comes back after this long.
const RESTART_DELAY_NS: i64 = 1_000_000_000;
/// How long a replaced task must run before Swarm counts an update done.
const MONITOR_NS: i64 = 1_000_000_000;
/// How long the task's container gets to go after the service is removed, before its volume.
const REMOVAL_SECS: u64 = 60;

/// The id of the Swarm node the agent's engine is.
async fn this_node(docker: &Docker) -> Result<String, AddonFailure> {
    let info = docker.info().await?;
    info.swarm
        .and_then(|swarm| swarm.node_id)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            AddonFailure::Refused(
                "engine = \"swarm\" but the agent's engine is not a Swarm node".to_owned(),
            )
        })
}

/// The add-on as a member of `app`'s overlay network, reachable there as its name.
fn attachment(app: &str, name: &str) -> NetworkAttachmentConfig {
    NetworkAttachmentConfig {
        target: Some(network_name(app)),
        aliases: Some(vec![name.to_owned()]),
        ..Default::default()
    }
}

/// The add-on's service: one task on `node`, with the container the docker engine would make.
fn service_spec(
    addon: &Addon<'_>,
    image: &str,
    volume: &str,
    app: &str,
    credentials: &Credentials,
    node: &str,
) -> ServiceSpec {
    ServiceSpec {
        name: Some(naming::addon_service(addon.owner, addon.name)),
        labels: Some(addon.labels()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(image.to_owned()),
                labels: Some(addon.labels()),
                hostname: Some(addon.name.to_owned()),
                env: Some(service::env(addon.kind, credentials)),
                args: service::cmd(addon.kind, credentials),
                mounts: Some(vec![Mount {
                    target: Some(service::data_dir(addon.kind).to_owned()),
                    source: Some(volume.to_owned()),
                    typ: Some(MountTypeEnum::VOLUME),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    pids: Some(PIDS_LIMIT),
                    ..Default::default()
                }),
                reservations: None,
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(RESTART_DELAY_NS),
                ..Default::default()
            }),
            placement: Some(TaskSpecPlacement {
                constraints: Some(vec![format!("node.id=={node}")]),
                ..Default::default()
            }),
            networks: Some(vec![attachment(app, addon.name)]),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
            ..Default::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::PAUSE),
            monitor: Some(MONITOR_NS),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        ..Default::default()
    }
}

/// Creates the add-on's volume on the agent's node and its service pinned there, on `app`'s
/// overlay network. The image must be on that node's engine (pulled there if missing).
pub async fn create(
    docker: &Docker,
    addon: &Addon<'_>,
    image: &str,
    app: &str,
    credentials: &Credentials,
) -> Result<(), AddonFailure> {
    docker::ensure_image(docker, image).await?;
    let node = this_node(docker).await?;
    let volume = docker::create_volume(docker, addon).await?;
    let spec = service_spec(addon, image, &volume, app, credentials, &node);
    docker.create_service(spec, None).await?;
    Ok(())
}

/// The add-on's service, if it exists and is this agent's add-on of that owner and name; a
/// service of that name that is anything else is refused.
async fn service(
    docker: &Docker,
    key: &InstanceKey,
    owner: &str,
    name: &str,
) -> Result<Option<Service>, AddonFailure> {
    let service_name = naming::addon_service(owner, name);
    let service = match docker
        .inspect_service(&service_name, None::<InspectServiceOptions>)
        .await
    {
        Ok(service) => service,
        Err(err) if is_not_found(&err) => return Ok(None),
        Err(err) => return Err(err.into()),
    };
    let labels = service
        .spec
        .as_ref()
        .and_then(|spec| spec.labels.clone())
        .unwrap_or_default();
    if docker::kind_if_ours(&labels, key, owner, name).is_some() {
        Ok(Some(service))
    } else {
        Err(AddonFailure::Refused(format!(
            "service {service_name} exists but is not this add-on; refusing to touch it"
        )))
    }
}

/// The container of the add-on's task: of the task Swarm means to run, else of the newest
/// that had one; `None` before Swarm made any.
pub async fn container(
    docker: &Docker,
    owner: &str,
    name: &str,
) -> Result<Option<String>, AddonFailure> {
    let tasks = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(HashMap::from([(
                "service".to_owned(),
                vec![naming::addon_service(owner, name)],
            )])),
        }))
        .await?;
    let mut candidates: Vec<(bool, String, String)> = tasks
        .into_iter()
        .filter_map(|task| {
            let status = task.status?;
            let container = status.container_status?.container_id?;
            let meant_to_run = task.desired_state == Some(TaskState::RUNNING);
            Some((
                meant_to_run,
                status.timestamp.unwrap_or_default(),
                container,
            ))
        })
        .collect();
    candidates.sort();
    Ok(candidates.pop().map(|(_, _, container)| container))
}

/// The add-on's kind and container, as [`docker::inspect`] gives them on one host; refused
/// while its service has no container yet.
pub async fn inspect(
    docker: &Docker,
    key: &InstanceKey,
    owner: &str,
    name: &str,
) -> Result<Option<(AddonKind, ContainerInspectResponse)>, AddonFailure> {
    if service(docker, key, owner, name).await?.is_none() {
        return Ok(None);
    }
    let found = match container(docker, owner, name).await? {
        Some(container) => docker::inspect_as(docker, key, owner, name, &container).await?,
        None => None,
    };
    found.map(Some).ok_or_else(|| AddonFailure::NotReady {
        reason: format!("{name} has no container yet: Swarm is starting its task"),
        logs: Vec::new(),
    })
}

/// Whether `attached` is `app`'s network, which Swarm keeps by id.
fn is_network(attached: &NetworkAttachmentConfig, network: &str, id: &str) -> bool {
    attached
        .target
        .as_deref()
        .is_some_and(|target| target == network || target == id)
}

/// Puts the add-on on `app`'s overlay network as its name (done if it is there already):
/// an update of its service, waited for until its new task runs. Whether it changed.
pub async fn connect(
    docker: &Docker,
    key: &InstanceKey,
    (owner, name): (&str, &str),
    app: &str,
    timeout: Duration,
) -> Result<bool, AddonFailure> {
    crate::runtime::ensure_overlay(docker, app).await?;
    change_networks(docker, key, (owner, name), app, timeout, |networks, id| {
        if networks
            .iter()
            .any(|attached| is_network(attached, &network_name(app), id))
        {
            return false;
        }
        networks.push(attachment(app, name));
        true
    })
    .await
}

/// Takes the add-on off `app`'s network (done if it is not on it or has no service).
pub async fn disconnect(
    docker: &Docker,
    key: &InstanceKey,
    (owner, name): (&str, &str),
    app: &str,
    timeout: Duration,
) -> Result<bool, AddonFailure> {
    change_networks(docker, key, (owner, name), app, timeout, |networks, id| {
        let before = networks.len();
        networks.retain(|attached| !is_network(attached, &network_name(app), id));
        networks.len() != before
    })
    .await
}

/// Updates the service's networks with `change` (given them and the id of `app`'s network;
/// it says whether it changed anything), then waits until Swarm has replaced the task.
async fn change_networks(
    docker: &Docker,
    key: &InstanceKey,
    (owner, name): (&str, &str),
    app: &str,
    timeout: Duration,
    change: impl FnOnce(&mut Vec<NetworkAttachmentConfig>, &str) -> bool,
) -> Result<bool, AddonFailure> {
    let Some(service) = service(docker, key, owner, name).await? else {
        return Ok(false);
    };
    let id = match docker
        .inspect_network(
            &network_name(app),
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(network) => network.id.unwrap_or_default(),
        Err(err) if is_not_found(&err) => String::new(),
        Err(err) => return Err(err.into()),
    };
    let mut spec = service.spec.clone().unwrap_or_default();
    let networks = spec
        .task_template
        .get_or_insert_with(TaskSpec::default)
        .networks
        .get_or_insert_with(Vec::new);
    if !change(networks, &id) {
        return Ok(false);
    }
    let service_id = service.id.clone().unwrap_or_default();
    let before = service
        .update_status
        .as_ref()
        .and_then(|status| status.started_at.clone());
    docker
        .update_service(&service_id, spec, update_options(&service, None), None)
        .await?;
    wait_updated(docker, &service_id, before, timeout).await?;
    Ok(true)
}

/// Waits until Swarm reports the update begun after `before` completed.
async fn wait_updated(
    docker: &Docker,
    service: &str,
    before: Option<String>,
    timeout: Duration,
) -> Result<(), AddonFailure> {
    let begun = Instant::now();
    loop {
        let inspected = docker
            .inspect_service(service, None::<InspectServiceOptions>)
            .await?;
        let status = inspected
            .update_status
            .filter(|status| status.started_at != before);
        match status.as_ref().and_then(|status| status.state) {
            Some(ServiceUpdateStatusStateEnum::COMPLETED) => return Ok(()),
            Some(
                ServiceUpdateStatusStateEnum::PAUSED
                | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED,
            ) => {
                let message = status.and_then(|status| status.message).unwrap_or_default();
                return Err(AddonFailure::NotReady {
                    reason: format!("Swarm could not replace the add-on's task: {message}"),
                    logs: Vec::new(),
                });
            }
            _ => {}
        }
        if begun.elapsed() >= timeout {
            return Err(AddonFailure::NotReady {
                reason: format!(
                    "Swarm did not replace the add-on's task within {}s",
                    timeout.as_secs()
                ),
                logs: Vec::new(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Removes the service, then (once Swarm has removed its task's container) the volume with
/// the data; done for whatever is already gone.
pub async fn remove(docker: &Docker, owner: &str, name: &str) -> Result<(), DockerError> {
    match docker
        .delete_service(&naming::addon_service(owner, name))
        .await
    {
        Err(err) if !is_not_found(&err) => return Err(err),
        _ => {}
    }
    let volume = naming::addon_volume(owner, name);
    let begun = Instant::now();
    loop {
        match docker
            .remove_volume(&volume, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => return Ok(()),
            Err(err) if is_not_found(&err) => return Ok(()),
            // In use by the container Swarm has not removed yet.
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) if begun.elapsed().as_secs() < REMOVAL_SECS => {
                tokio::time::sleep(POLL).await;
            }
            Err(err) => return Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::naming::test_key;

    fn spec(kind: AddonKind, credentials: &Credentials) -> ServiceSpec {
        let key = test_key();
        let addon = Addon {
            key: &key,
            owner: "ann",
            name: "db",
            kind,
        };
        service_spec(
            &addon,
            "postgres:17",
            "paas-addon-db.ann",
            "shop",
            credentials,
            "n1",
        )
    }

    #[test]
    fn an_add_on_is_one_task_pinned_to_the_agents_node_on_the_app_network_only() {
        let credentials = Credentials::generate();
        let spec = spec(AddonKind::Postgres, &credentials);
        assert_eq!(spec.mode.unwrap().replicated.unwrap().replicas, Some(1));
        let endpoint = spec.endpoint_spec.unwrap();
        assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
        assert_eq!(endpoint.ports, None, "never published");
        assert_eq!(
            spec.update_config.unwrap().order,
            Some(ServiceSpecUpdateConfigOrderEnum::STOP_FIRST)
        );
        let task = spec.task_template.unwrap();
        assert_eq!(
            task.placement.unwrap().constraints,
            Some(vec!["node.id==n1".to_owned()])
        );
        let networks = task.networks.unwrap();
        assert_eq!(networks.len(), 1);
        assert_eq!(networks[0].target.as_deref(), Some("paas-app-shop"));
        assert_eq!(networks[0].aliases, Some(vec!["db".to_owned()]));
        let container = task.container_spec.unwrap();
        let mounts = container.mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("paas-addon-db.ann"));
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::VOLUME));
        let env = container.env.unwrap();
        let cmd = container.args.unwrap_or_default();
        assert_eq!(
            Credentials::read(AddonKind::Postgres, &env, &cmd),
            Some(credentials),
            "the container gives its credentials back as on one host"
        );
    }

    #[test]
    fn a_redis_takes_its_password_on_the_command_line_as_on_one_host() {
        let credentials = Credentials::generate();
        let container = spec(AddonKind::Redis, &credentials)
            .task_template
            .unwrap()
            .container_spec
            .unwrap();
        let args = container.args.unwrap();
        assert_eq!(
            Some(args.clone()),
            service::cmd(AddonKind::Redis, &credentials)
        );
        let read = Credentials::read(AddonKind::Redis, &[], &args).unwrap();
        assert_eq!(read.password, credentials.password);
    }

    #[test]
    fn networks_match_by_name_or_by_the_id_swarm_keeps() {
        let by_name = attachment("shop", "db");
        assert!(is_network(&by_name, "paas-app-shop", "abc"));
        let by_id = NetworkAttachmentConfig {
            target: Some("abc".to_owned()),
            ..Default::default()
        };
        assert!(is_network(&by_id, "paas-app-shop", "abc"));
        assert!(!is_network(&by_id, "paas-app-other", "def"));
    }
}

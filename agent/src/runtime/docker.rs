//! The Docker engine: an app's instances as containers on this host, read back from their
//! labels, its network, container lifecycle, log tails and the drain exec
//! ([`DockerEngine`], the runtime's [`Engine`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::StartExecResults;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum,
    ContainerSummaryStateEnum, EventMessage, ExecConfig, HealthStatusEnum, NetworkConnectRequest,
    NetworkCreateRequest, RestartPolicy, RestartPolicyNameEnum, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, EventsOptions, InspectContainerOptions, ListContainersOptions,
    LogsOptions, RemoveContainerOptions, RemoveVolumeOptions, RenameContainerOptions,
    StopContainerOptions, WaitContainerOptions,
};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use paas_api::agent::{AppSpec, Instance};

use paas_api::storage::{Mount, VolumeName};
use paas_api::types::InstanceState;

use super::container::{APP_PORT, BUSYBOX_IN_CONTAINER, DRAIN_MARKER, wanted_containers};
use super::engine::{
    Engine, EngineError, Existing, InstanceChange, Liveness, Removed, StartFailure, Wanted,
};
use super::resources::{cpus_of, memory_of};
use crate::config::AgentConfig;
use crate::logs;
use crate::naming::labels::{
    InstanceLabels, app_filters, network_labels, oneoff_filters, volume_labels,
};
use crate::naming::{
    self, InstanceKey, LABEL_APP, LABEL_INDEX, LABEL_PROCESS, LABEL_RELEASE, docker_filters,
    is_ours, network_name,
};

/// The agent's containers of `app` (carrying its instance key), including stopped ones;
/// unparseable labels are skipped (not ours to manage).
async fn list(docker: &Docker, key: &InstanceKey, app: &str) -> Result<Vec<Existing>, DockerError> {
    let filters = docker_filters(key, Some(app), None);
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let mut existing: Vec<Existing> = summaries
        .into_iter()
        .filter_map(|summary| {
            let labels = InstanceLabels::parse(&summary.labels?)?;
            Some(Existing {
                id: summary.id?,
                name: summary.names?.first()?.trim_start_matches('/').to_owned(),
                process: labels.process,
                index: labels.index,
                release: labels.release,
                fingerprint: labels.fingerprint,
                running: summary.state == Some(ContainerSummaryStateEnum::RUNNING),
                restarting: summary.state == Some(ContainerSummaryStateEnum::RESTARTING),
            })
        })
        .collect();
    existing
        .sort_by(|a, b| (&a.process, a.index, a.release).cmp(&(&b.process, b.index, b.release)));
    Ok(existing)
}

/// As [`list`], with each container's state as inspecting it tells. The listing is served
/// from a snapshot that can lag behind the events: when a `die` or `destroy` event arrives it
/// may still show the container running, or at all.
async fn list_settled(
    docker: &Docker,
    key: &InstanceKey,
    app: &str,
) -> Result<Vec<Existing>, DockerError> {
    let listed = list(docker, key, app).await?;
    let inspected =
        futures::future::join_all(listed.iter().map(|existing| inspect(docker, &existing.id)))
            .await;
    let mut settled = Vec::new();
    for (mut existing, details) in listed.into_iter().zip(inspected) {
        let status = match details {
            Ok(details) => details.state.and_then(|state| state.status),
            Err(err) if is_not_found(&err) => continue,
            Err(err) => return Err(err),
        };
        existing.running = status == Some(ContainerStateStatusEnum::RUNNING);
        existing.restarting = status == Some(ContainerStateStatusEnum::RESTARTING);
        settled.push(existing);
    }
    Ok(settled)
}

/// The labels of a local image; `None` when there is no such image.
async fn image_labels(
    docker: &Docker,
    image: &str,
) -> Result<Option<HashMap<String, String>>, DockerError> {
    match docker.inspect_image(image).await {
        Ok(inspected) => Ok(Some(
            inspected
                .config
                .and_then(|config| config.labels)
                .unwrap_or_default(),
        )),
        Err(err) if is_not_found(&err) => Ok(None),
        Err(err) => Err(err),
    }
}

async fn inspect(docker: &Docker, id: &str) -> Result<ContainerInspectResponse, DockerError> {
    docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
}

/// The app's instances for `GET …/instances`.
async fn instances(
    docker: &Docker,
    key: &InstanceKey,
    app: &str,
) -> Result<Vec<Instance>, DockerError> {
    let listed = list(docker, key, app).await?;
    // Inspected side by side: `paas ps` waits for the slowest answer, not for the sum of them.
    let inspected =
        futures::future::join_all(listed.iter().map(|existing| inspect(docker, &existing.id)))
            .await;
    let mut instances = Vec::new();
    for (existing, details) in listed.into_iter().zip(inspected) {
        let details = match details {
            Ok(details) => details,
            // Removed between the listing and now.
            Err(err) if is_not_found(&err) => continue,
            Err(err) => return Err(err),
        };
        // The label was written from a valid process type; a container whose label was not
        // is not one of the app's instances.
        let Ok(process) = existing.process.parse() else {
            continue;
        };
        instances.push(instance_from(
            process,
            existing.index,
            existing.release,
            existing.name,
            existing.id,
            details,
        ));
    }
    Ok(instances)
}

/// The instance (or one-off) `details` tell of, as `paas ps` shows it.
fn instance_from(
    process: paas_api::ProcessType,
    index: u32,
    release: u32,
    name: String,
    container_id: String,
    details: ContainerInspectResponse,
) -> Instance {
    let host = details.host_config.unwrap_or_default();
    let restarts = details
        .restart_count
        .and_then(|count| u32::try_from(count).ok())
        .unwrap_or(0);
    let state = details.state.unwrap_or_default();
    Instance {
        process,
        index,
        release,
        name,
        container_id,
        state: instance_state(state.status, state.health.and_then(|health| health.status)),
        started_at: state
            .started_at
            .as_deref()
            .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
            .map(|at| at.with_timezone(&Utc))
            .filter(|_| state.running == Some(true)),
        memory: memory_of(host.memory),
        cpus: cpus_of(host.nano_cpus),
        out_of_memory: state.oom_killed == Some(true),
        restarts,
        oneoff: None,
        node: None,
    }
}

/// Docker's state and health status of a container in Heroku's words: the one place Docker's
/// vocabulary becomes the API's.
fn instance_state(
    status: Option<ContainerStateStatusEnum>,
    health: Option<HealthStatusEnum>,
) -> InstanceState {
    use ContainerStateStatusEnum as Status;
    use HealthStatusEnum as Health;
    let health = health.filter(|health| !matches!(health, Health::EMPTY | Health::NONE));
    match (status.unwrap_or(Status::EMPTY), health) {
        (Status::RUNNING, None | Some(Health::HEALTHY)) => InstanceState::Up,
        (Status::RUNNING, Some(Health::UNHEALTHY)) => InstanceState::Crashed,
        (Status::RUNNING | Status::CREATED, _) => InstanceState::Starting,
        (Status::RESTARTING | Status::EXITED | Status::DEAD, _) => InstanceState::Crashed,
        _ => InstanceState::Down,
    }
}

fn is_not_found(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Creates the app's network unless it exists, and connects a containerised Traefik to it
/// (add-ons, which need no Traefik, pass `None`).
pub(crate) async fn ensure_network(
    docker: &Docker,
    app: &str,
    traefik_container: Option<&str>,
) -> Result<(), DockerError> {
    let name = network_name(app);
    // Docker 20.10 happily creates a second network of the same name, so look first (the
    // app lock keeps this from racing with itself).
    match docker
        .inspect_network(
            &name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => {}
        Err(err) if is_not_found(&err) => {
            docker
                .create_network(NetworkCreateRequest {
                    name: name.clone(),
                    driver: Some("bridge".to_owned()),
                    labels: Some(network_labels(app)),
                    ..Default::default()
                })
                .await?;
        }
        Err(err) => return Err(err),
    }
    if let Some(traefik) = traefik_container {
        let connected = docker
            .connect_network(
                &name,
                NetworkConnectRequest {
                    container: Some(traefik.to_owned()),
                    ..Default::default()
                },
            )
            .await;
        match connected {
            Ok(()) => {}
            // 403 from 20.10: already connected.
            Err(DockerError::DockerResponseServerError {
                status_code: 403, ..
            }) => {}
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Creates each of the app's `volumes` that does not exist yet, labelled as the app's. One
/// that exists must carry the app's label: a volume of that name made by anything else is
/// refused rather than mounted.
async fn ensure_volumes(docker: &Docker, app: &str, volumes: &[Mount]) -> Result<(), EngineError> {
    for mount in volumes {
        let name = naming::volume_name(app, &mount.name);
        match docker.inspect_volume(&name).await {
            Ok(volume) => {
                if volume.labels.get(LABEL_APP).map(String::as_str) != Some(app) {
                    return Err(EngineError(format!(
                        "volume {name} exists but is not {app}'s; refusing to mount it"
                    )));
                }
            }
            Err(err) if is_not_found(&err) => {
                docker
                    .create_volume(VolumeCreateOptions {
                        name: Some(name),
                        driver: Some("local".to_owned()),
                        labels: Some(volume_labels(app, &mount.name)),
                        ..Default::default()
                    })
                    .await?;
            }
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// The Docker names of the app's volumes: labelled as the app's and named as its volumes are.
async fn app_volumes(docker: &Docker, app: &str) -> Result<Vec<String>, DockerError> {
    let listed = docker
        .list_volumes(Some(bollard::query_parameters::ListVolumesOptions {
            filters: Some(app_filters(app)),
        }))
        .await?;
    let prefix = naming::volume_prefix(app);
    Ok(listed
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|volume| volume.name)
        .filter(|name| name.starts_with(&prefix))
        .collect())
}

/// What became of a request to remove one of an app's volumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeRemoval {
    Removed,
    /// There was no such volume.
    Absent,
    /// A container (a one-off still running, say) mounts it; nothing was removed.
    InUse,
}

/// Removes every network labelled for the app (older engines may hold duplicates).
async fn remove_network(docker: &Docker, app: &str) -> Result<(), DockerError> {
    let filters = app_filters(app);
    let networks = docker
        .list_networks(Some(bollard::query_parameters::ListNetworksOptions {
            filters: Some(filters),
        }))
        .await?;
    for id in networks.into_iter().filter_map(|network| network.id) {
        match docker.remove_network(&id).await {
            Err(err) if !is_not_found(&err) => return Err(err),
            _ => {}
        }
    }
    Ok(())
}

async fn create_and_start(
    docker: &Docker,
    name: &str,
    body: ContainerCreateBody,
) -> Result<String, StartFailure> {
    let created = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        )
        .await
        .map_err(|err| StartFailure {
            // A create that failed half-way can leave the name taken.
            created: Some(name.to_owned()),
            error: err.into(),
        })?;
    docker
        .start_container(
            &created.id,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .map_err(|err| StartFailure {
            created: Some(created.id.clone()),
            error: err.into(),
        })?;
    Ok(created.id)
}

/// Starts a stopped container again, as it was created.
async fn start(docker: &Docker, id: &str) -> Result<(), DockerError> {
    docker
        .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
        .await
}

/// The restart policy a container keeps once it serves: crashes and engine restarts bring it
/// back. New containers start without one so a failing one stays down with its exit code.
async fn keep_running(docker: &Docker, id: &str) -> Result<(), DockerError> {
    docker
        .update_container(
            id,
            bollard::models::ContainerUpdateBody {
                restart_policy: Some(serving_restart_policy()),
                ..Default::default()
            },
        )
        .await
}

fn serving_restart_policy() -> RestartPolicy {
    RestartPolicy {
        name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
        maximum_retry_count: None,
    }
}

fn no_restart_policy() -> RestartPolicy {
    RestartPolicy {
        name: Some(RestartPolicyNameEnum::NO),
        maximum_retry_count: None,
    }
}

async fn rename(docker: &Docker, id: &str, name: &str) -> Result<(), DockerError> {
    docker
        .rename_container(
            id,
            RenameContainerOptions {
                name: name.to_owned(),
            },
        )
        .await
}

/// SIGTERM, then SIGKILL after `timeout_secs`; false when the container is gone already.
async fn stop(docker: &Docker, id: &str, timeout_secs: i32) -> Result<bool, DockerError> {
    let stopped = docker
        .stop_container(
            id,
            Some(StopContainerOptions {
                t: Some(timeout_secs),
                signal: None,
            }),
        )
        .await;
    match stopped {
        Ok(()) => Ok(true),
        Err(err) if is_not_found(&err) => Ok(false),
        // 304: already stopped.
        Err(DockerError::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(true),
        Err(err) => Err(err),
    }
}

/// Stops, then removes; a container already gone is fine.
async fn stop_and_remove(docker: &Docker, id: &str, timeout_secs: i32) -> Result<(), DockerError> {
    if stop(docker, id, timeout_secs).await? {
        remove(docker, id).await?;
    }
    Ok(())
}

async fn remove(docker: &Docker, id: &str) -> Result<(), DockerError> {
    let removed = docker
        .remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        )
        .await;
    match removed {
        Err(err) if is_not_found(&err) => Ok(()),
        // Someone else (a one-off's own runner) is removing it: wait until it is gone, so the
        // caller can rely on it no longer holding the app's network.
        Err(DockerError::DockerResponseServerError {
            status_code: 409,
            message,
        }) if message.contains("already in progress") => {
            let gone = docker.wait_container(
                id,
                Some(WaitContainerOptions {
                    condition: "removed".to_owned(),
                }),
            );
            let _ = tokio::time::timeout(REMOVAL_WAIT, gone.collect::<Vec<_>>()).await;
            Ok(())
        }
        other => other,
    }
}

/// How long a removal someone else started is waited for.
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// The last `lines` lines of a container's stdout and stderr.
async fn log_tail(docker: &Docker, id: &str, lines: usize) -> Vec<String> {
    let mut output = docker.logs(
        id,
        Some(LogsOptions {
            stdout: true,
            stderr: true,
            tail: lines.to_string(),
            ..Default::default()
        }),
    );
    let mut text = String::new();
    while let Some(Ok(chunk)) = output.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
    }
    text.lines().map(str::to_owned).collect()
}

/// A container's stdout and stderr from its start on, followed, split into lines (a line
/// still unfinished when the stream ends is dropped).
fn output_lines(docker: &Docker, id: &str) -> BoxStream<'static, String> {
    let chunks = docker.logs(
        id,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            tail: "all".to_owned(),
            ..Default::default()
        }),
    );
    let mut pending = String::new();
    chunks
        .take_while(|chunk| std::future::ready(chunk.is_ok()))
        .flat_map(move |chunk| {
            if let Ok(chunk) = chunk {
                pending.push_str(&String::from_utf8_lossy(&chunk.into_bytes()));
            }
            let mut lines = Vec::new();
            while let Some(end) = pending.find('\n') {
                lines.push(
                    pending
                        .drain(..=end)
                        .collect::<String>()
                        .trim_end()
                        .to_owned(),
                );
            }
            futures::stream::iter(lines)
        })
        .boxed()
}

/// Makes the container's health check fail from its next probe on (see `DRAIN_MARKER`).
async fn mark_draining(docker: &Docker, id: &str) -> Result<(), String> {
    let script = format!(
        "{BUSYBOX_IN_CONTAINER} mkdir -p /tmp && {BUSYBOX_IN_CONTAINER} touch {DRAIN_MARKER}"
    );
    let exec = docker
        .create_exec(
            id,
            ExecConfig {
                cmd: Some(vec![
                    BUSYBOX_IN_CONTAINER.to_owned(),
                    "sh".to_owned(),
                    "-c".to_owned(),
                    script,
                ]),
                user: Some("0".to_owned()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .map_err(|err| err.to_string())?;
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&exec.id, None)
        .await
        .map_err(|err| err.to_string())?
    {
        while output.next().await.is_some() {}
    }
    let inspected = docker
        .inspect_exec(&exec.id)
        .await
        .map_err(|err| err.to_string())?;
    match inspected.exit_code {
        Some(0) => Ok(()),
        code => Err(format!(
            "the drain marker could not be written (exit {code:?})"
        )),
    }
}

/// Established TCP connections to local `port` in the network namespace of process `pid`
/// (read from the host's /proc, so it costs no exec in the container).
fn open_connections(pid: i64, port: u16) -> std::io::Result<usize> {
    let mut open = 0;
    for table in ["tcp", "tcp6"] {
        match std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            Ok(text) => open += count_established(&text, port),
            Err(err) if table == "tcp6" && err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
    }
    Ok(open)
}

/// Counts `/proc/net/tcp` rows in state 01 (established) whose local port is `port`.
fn count_established(table: &str, port: u16) -> usize {
    let port = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter(|row| {
            let mut fields = row.split_whitespace();
            let local = fields.nth(1).unwrap_or_default();
            let state = fields.nth(1).unwrap_or_default();
            state == "01" && local.rsplit(':').next() == Some(port.as_str())
        })
        .count()
}

fn liveness(app: &str, details: &ContainerInspectResponse, needs_health: bool) -> Liveness {
    let state = details.state.clone().unwrap_or_default();
    let restarts = details.restart_count.unwrap_or(0);
    let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
    if matches!(
        status,
        ContainerStateStatusEnum::EXITED
            | ContainerStateStatusEnum::DEAD
            | ContainerStateStatusEnum::RESTARTING
    ) || restarts > 0
    {
        let code = state.exit_code.unwrap_or_default();
        let oom = if state.oom_killed == Some(true) {
            " (out of memory)"
        } else {
            ""
        };
        return Liveness::Down {
            reason: format!("exited with code {code}{oom}"),
        };
    }
    if status != ContainerStateStatusEnum::RUNNING {
        return Liveness::Pending { last_check: None };
    }
    let health = state.health.unwrap_or_default();
    if needs_health && health.status != Some(HealthStatusEnum::HEALTHY) {
        let last_check = health
            .log
            .and_then(|log| log.last().cloned())
            .map(|result| {
                let output = super::checks::distinct_lines(&result.output.unwrap_or_default());
                format!(
                    "exit {}{}{}",
                    result.exit_code.unwrap_or_default(),
                    if output.is_empty() { "" } else { ": " },
                    output
                )
            });
        return Liveness::Pending { last_check };
    }
    let ip = details
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.as_ref())
        .and_then(|networks| networks.get(&network_name(app)))
        .and_then(|endpoint| endpoint.ip_address.clone())
        .filter(|ip| !ip.is_empty());
    Liveness::Up {
        ip,
        pid: state.pid.filter(|pid| *pid > 0),
    }
}

/// Removes every `paas/<app>:*` image, from the registry too, leaving their build-cache
/// parents (see [`crate::images::remove_tag`]).
async fn remove_images(
    docker: &Docker,
    registry: Option<&crate::naming::registry::Registry>,
    app: &str,
) -> Result<Vec<String>, DockerError> {
    let mut removed = Vec::new();
    for image in crate::images::app_images(docker, registry, app).await? {
        if crate::images::remove_image(docker, registry, app, &image).await? {
            removed.push(image.tag);
        }
    }
    Ok(removed)
}

/// The [`Engine`] of containers on this host, through bollard.
pub struct DockerEngine {
    docker: Docker,
    config: Arc<AgentConfig>,
    /// How often the agent started each exited container again, by id: Docker counts only the
    /// restarts of its own policy, and a killed container is brought back by the agent.
    started_again: Mutex<HashMap<String, u32>>,
}

impl DockerEngine {
    pub fn new(docker: Docker, config: Arc<AgentConfig>) -> DockerEngine {
        DockerEngine {
            docker,
            config,
            started_again: Mutex::default(),
        }
    }

    fn key(&self) -> &InstanceKey {
        self.config.instance_key()
    }

    fn stop_timeout(&self) -> i32 {
        i32::try_from(self.config.runtime.stop_timeout_secs).unwrap_or(i32::MAX)
    }

    /// Stops the container and leaves it, stopped, where it is (`paas ps:stop`); one that is
    /// gone already is as stopped as it gets.
    pub async fn stop(&self, id: &str) -> Result<(), EngineError> {
        stop(&self.docker, id, self.stop_timeout()).await?;
        Ok(())
    }

    /// Removes the app's volume `volume` and the files in it, unless a container mounts it.
    pub async fn remove_volume(
        &self,
        app: &str,
        volume: &VolumeName,
    ) -> Result<VolumeRemoval, EngineError> {
        let name = naming::volume_name(app, volume);
        match self
            .docker
            .remove_volume(&name, None::<RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(VolumeRemoval::Removed),
            Err(err) if is_not_found(&err) => Ok(VolumeRemoval::Absent),
            Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(VolumeRemoval::InUse),
            Err(err) => Err(err.into()),
        }
    }

    /// The ids and labels of the app's one-off containers (of one kind, `release` or `run`,
    /// if given), stopped ones too if `all`: the one listing of one-offs, marked by
    /// `paas.oneoff` rather than `paas.instance`.
    pub async fn oneoffs(
        &self,
        app: &str,
        kind: Option<&str>,
        all: bool,
    ) -> Result<Vec<(String, HashMap<String, String>)>, EngineError> {
        let listed = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all,
                filters: Some(oneoff_filters(self.key(), app, kind)),
                ..Default::default()
            }))
            .await?;
        Ok(listed
            .into_iter()
            .filter_map(|summary| Some((summary.id?, summary.labels.unwrap_or_default())))
            .collect())
    }

    /// The app's running one-offs as `paas ps` lists them beside its instances, each with
    /// its command line (the `/bin/sh -c` one's).
    pub async fn oneoff_instances(&self, app: &str) -> Result<Vec<Instance>, EngineError> {
        let listed = self.oneoffs(app, None, false).await?;
        let inspected =
            futures::future::join_all(listed.iter().map(|(id, _)| inspect(&self.docker, id))).await;
        let mut instances = Vec::new();
        for ((id, labels), details) in listed.into_iter().zip(inspected) {
            let details = match details {
                Ok(details) => details,
                Err(err) if is_not_found(&err) => continue,
                Err(err) => return Err(err.into()),
            };
            let label = |key: &str| labels.get(key).map(String::as_str).unwrap_or_default();
            let (Ok(process), Ok(index), Some(release)) = (
                label(LABEL_PROCESS).parse(),
                label(LABEL_INDEX).parse(),
                naming::labels::parse_release_label(label(LABEL_RELEASE)),
            ) else {
                continue;
            };
            let command = details
                .config
                .as_ref()
                .and_then(|config| config.cmd.as_ref())
                .and_then(|cmd| cmd.last().cloned())
                .unwrap_or_default();
            let name = details
                .name
                .clone()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned();
            let mut instance = instance_from(process, index, release, name, id, details);
            instance.oneoff = Some(command);
            instances.push(instance);
        }
        Ok(instances)
    }
}

impl Engine for DockerEngine {
    type Template = ContainerCreateBody;

    fn wanted(&self, app: &str, spec: &AppSpec) -> Vec<Wanted<ContainerCreateBody>> {
        wanted_containers(app, spec, &self.config.runtime, self.key())
    }

    async fn twin(&self, existing: &Existing) -> Result<ContainerCreateBody, EngineError> {
        let id = &existing.id;
        let details = inspect(&self.docker, id).await?;
        let config = serde_json::to_value(details.config.unwrap_or_default())
            .map_err(|err| EngineError(format!("reading container {id}: {err}")))?;
        let mut body: ContainerCreateBody = serde_json::from_value(config)
            .map_err(|err| EngineError(format!("reading container {id}: {err}")))?;
        // Its own host name (the new container id), so instances stay distinguishable.
        body.hostname = None;
        body.mac_address = None;
        body.host_config = details.host_config;
        Ok(body)
    }

    async fn image_labels(
        &self,
        _app: &str,
        spec: &AppSpec,
    ) -> Result<Option<HashMap<String, String>>, EngineError> {
        Ok(image_labels(&self.docker, &spec.image).await?)
    }

    async fn prepare_app(&self, app: &str, volumes: &[Mount]) -> Result<(), EngineError> {
        ensure_network(
            &self.docker,
            app,
            self.config.runtime.traefik_container.as_deref(),
        )
        .await?;
        ensure_volumes(&self.docker, app, volumes).await
    }

    async fn list(&self, app: &str, settled: bool) -> Result<Vec<Existing>, EngineError> {
        Ok(if settled {
            list_settled(&self.docker, self.key(), app).await?
        } else {
            list(&self.docker, self.key(), app).await?
        })
    }

    async fn instances(&self, app: &str) -> Result<Vec<Instance>, EngineError> {
        let mut instances = instances(&self.docker, self.key(), app).await?;
        let started_again = self.started_again.lock().expect("the lock is not poisoned");
        for instance in &mut instances {
            instance.restarts += started_again
                .get(&instance.container_id)
                .copied()
                .unwrap_or(0);
        }
        Ok(instances)
    }

    async fn start_new(
        &self,
        mut wanted: Wanted<ContainerCreateBody>,
    ) -> Result<String, StartFailure> {
        if let Some(host_config) = wanted.template.host_config.as_mut() {
            host_config.restart_policy = Some(no_restart_policy());
        }
        create_and_start(&self.docker, &wanted.name, wanted.template).await
    }

    async fn start_again(&self, id: &str) -> Result<(), EngineError> {
        start(&self.docker, id).await?;
        *self
            .started_again
            .lock()
            .expect("the lock is not poisoned")
            .entry(id.to_owned())
            .or_default() += 1;
        Ok(())
    }

    async fn restart(&self, id: &str) -> Result<(), EngineError> {
        Ok(self
            .docker
            .restart_container(
                id,
                Some(bollard::query_parameters::RestartContainerOptions {
                    t: Some(self.stop_timeout()),
                    signal: None,
                }),
            )
            .await?)
    }

    async fn revive(&self, app: &str, id: &str) -> Result<Option<String>, EngineError> {
        let details = match inspect(&self.docker, id).await {
            Ok(details) => details,
            // Retired: removed by the rollout that stopped it.
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let status = details
            .state
            .as_ref()
            .and_then(|s| s.status)
            .unwrap_or(ContainerStateStatusEnum::EMPTY);
        if status != ContainerStateStatusEnum::EXITED {
            return Ok(None);
        }
        let labels = details
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default();
        if !is_ours(self.key(), &labels) {
            return Ok(None);
        }
        let canonical = InstanceLabels::parse(&labels)
            .filter(|instance| instance.app == app)
            .map(|instance| instance.canonical_name());
        let name = details.name.unwrap_or_default();
        let name = name.trim_start_matches('/');
        // A renamed container is being replaced; only a serving one is brought back.
        if canonical.as_deref() != Some(name) {
            return Ok(None);
        }
        start(&self.docker, id).await?;
        Ok(Some(name.to_owned()))
    }

    async fn rename(&self, id: &str, name: &str) -> Result<(), EngineError> {
        Ok(rename(&self.docker, id, name).await?)
    }

    async fn liveness(
        &self,
        app: &str,
        id: &str,
        needs_health: bool,
    ) -> Result<Liveness, EngineError> {
        let details = inspect(&self.docker, id).await?;
        Ok(liveness(app, &details, needs_health))
    }

    async fn log_tail(&self, id: &str, lines: usize) -> Vec<String> {
        log_tail(&self.docker, id, lines).await
    }

    fn output(&self, id: &str) -> BoxStream<'static, String> {
        output_lines(&self.docker, id)
    }

    async fn keep_running(&self, id: &str) -> Result<(), EngineError> {
        Ok(keep_running(&self.docker, id).await?)
    }

    async fn mark_draining(&self, id: &str) -> Result<(), EngineError> {
        mark_draining(&self.docker, id).await.map_err(EngineError)
    }

    fn open_connections(&self, pid: i64) -> Option<usize> {
        open_connections(pid, APP_PORT).ok()
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        logs::archive_container(&self.docker, &self.config, id).await;
        Ok(remove(&self.docker, id).await?)
    }

    async fn stop_and_remove(&self, id: &str) -> Result<(), EngineError> {
        if stop(&self.docker, id, self.stop_timeout()).await? {
            // Stopped first, so what it said while shutting down is kept too.
            logs::archive_container(&self.docker, &self.config, id).await;
            remove(&self.docker, id).await?;
        }
        Ok(())
    }

    async fn remove_app(&self, app: &str) -> Result<Removed, EngineError> {
        let containers = list(&self.docker, self.key(), app).await?;
        // One-offs still running (`run:detached`) hold the app's network too.
        let oneoffs = self.oneoffs(app, None, true).await?;
        let ids = containers
            .iter()
            .map(|c| c.id.clone())
            .chain(oneoffs.into_iter().map(|(id, _)| id));
        let stopped = futures::future::join_all(
            ids.collect::<Vec<_>>()
                .iter()
                .map(|id| stop_and_remove(&self.docker, id, self.stop_timeout())),
        )
        .await;
        for result in stopped {
            result?;
        }
        remove_network(&self.docker, app).await?;
        let registry = self.config.registry.as_ref().map(|registry| &registry.url);
        let images = remove_images(&self.docker, registry, app).await?;
        let volumes = app_volumes(&self.docker, app).await?;
        for volume in &volumes {
            match self
                .docker
                .remove_volume(volume, None::<RemoveVolumeOptions>)
                .await
            {
                Err(err) if !is_not_found(&err) => return Err(err.into()),
                _ => {}
            }
        }
        Ok(Removed {
            instances: containers.len(),
            images,
            volumes,
        })
    }

    fn changes(&self) -> BoxStream<'static, Result<InstanceChange, EngineError>> {
        let mut filters = docker_filters(self.key(), None, None);
        filters.insert("type".to_owned(), vec!["container".to_owned()]);
        filters.insert(
            "event".to_owned(),
            vec!["die".to_owned(), "destroy".to_owned()],
        );
        let key = self.key().clone();
        self.docker
            .events(Some(EventsOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .filter_map(move |event| {
                let change = match event {
                    Err(err) => Some(Err(EngineError::from(err))),
                    Ok(event) => instance_change(&key, event).map(Ok),
                };
                std::future::ready(change)
            })
            .boxed()
    }
}

/// The change a `die` or `destroy` event tells, if it is about one of the agent's containers.
fn instance_change(key: &InstanceKey, event: EventMessage) -> Option<InstanceChange> {
    let actor = event.actor?;
    let (id, attributes) = (actor.id?, actor.attributes?);
    // The filter says so already; the key is checked again where it decides.
    let app = attributes
        .get(LABEL_APP)
        .filter(|_| is_ours(key, &attributes))?
        .clone();
    Some(InstanceChange {
        app,
        id,
        stopped: event.action.as_deref() == Some("die"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_states_read_as_heroku_states() {
        use ContainerStateStatusEnum as Status;
        use HealthStatusEnum as Health;
        for (status, health, expected) in [
            (Status::RUNNING, None, InstanceState::Up),
            (Status::RUNNING, Some(Health::NONE), InstanceState::Up),
            (Status::RUNNING, Some(Health::HEALTHY), InstanceState::Up),
            (
                Status::RUNNING,
                Some(Health::STARTING),
                InstanceState::Starting,
            ),
            (
                Status::RUNNING,
                Some(Health::UNHEALTHY),
                InstanceState::Crashed,
            ),
            (Status::CREATED, None, InstanceState::Starting),
            (Status::RESTARTING, None, InstanceState::Crashed),
            (Status::EXITED, None, InstanceState::Crashed),
            (Status::DEAD, None, InstanceState::Crashed),
            (Status::REMOVING, None, InstanceState::Down),
            (Status::PAUSED, None, InstanceState::Down),
        ] {
            assert_eq!(
                instance_state(Some(status), health),
                expected,
                "{status} {health:?}"
            );
        }
        assert_eq!(instance_state(None, None), InstanceState::Down);
    }

    #[test]
    fn counts_established_connections_to_the_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1388 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 0200120A:1388 0100120A:C350 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0 20 4 30 10 -1
   2: 0200120A:1388 0100120A:C352 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   3: 0200120A:C350 0100120A:1388 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0 20 4 30 10 -1
";
        assert_eq!(count_established(table, 5000), 1);
        assert_eq!(count_established(table, 80), 0);
    }
}

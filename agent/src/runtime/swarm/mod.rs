//! The swarm engine (`engine = "swarm"`): an app's desired state becomes Swarm services on the
//! manager the agent's engine is, one per process type ([`services`]), on the app's own
//! overlay network, to which the Traefik container on this node is attached. Swarm
//! places the tasks over the nodes, rolls them out start-first and rolls a failing update
//! back; the agent applies the change, waits until every task of it runs (web first, as on
//! one host), says so in the same [`RolloutEvent`]s, and puts back what it changed if any
//! process type fails. What runs is read back from Swarm's tasks ([`tasks`]), so the agent
//! keeps nothing but the desired state, saved once the new tasks run.

mod services;
mod tasks;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest, Service, ServiceSpec,
    ServiceUpdateStatusStateEnum, Task, TaskState,
};
use bollard::query_parameters::{
    InspectContainerOptions, InspectServiceOptions, ListNodesOptions, ListServicesOptions,
    ListTasksOptions, UpdateServiceOptions,
};
use paas_api::agent::{AppSpec, Instance, RolloutEvent};
use paas_api::nodes::NodeInstance;
use paas_api::progress::WaitSubject;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::container::WEB;
use super::desired::DesiredState;
use super::engine::{EngineError, Removed};
use super::progress::while_waiting;
use super::rollout::{FAILURE_LOG_LINES, RolloutError};
use super::traefik::server_url;
use super::traefik_api;
use crate::config::AgentConfig;
use crate::config::EngineKind;
use crate::logs::last_task_lines;
use crate::logs::task_addresses;
use crate::naming::labels::network_labels;
use crate::naming::{self, LABEL_APP, LABEL_PROCESS, docker_filters};
use services::{ImageCommand, service_spec};
use tasks::Progress;
pub use tasks::TaskFacts;
#[cfg(test)]
pub use tasks::test_task;

/// How often Swarm is asked how a change goes.
const POLL: Duration = Duration::from_millis(250);
/// Added to the app's ready timeout for Swarm to pull the image onto a node and schedule.
const SCHEDULING_SECS: u64 = 60;
/// How long a rollback Swarm runs is waited for.
const ROLLBACK_SECS: u64 = 120;
/// How long the tasks of removed services get to go before the network goes.
const REMOVAL_SECS: u64 = 60;

/// Everything a change of one app on Swarm works with.
pub struct SwarmRollout<'a> {
    pub docker: &'a Docker,
    pub config: &'a AgentConfig,
    pub desired: &'a DesiredState,
    pub app: &'a str,
    pub events: mpsc::Sender<RolloutEvent>,
}

/// A service as it was before this change updated it.
#[derive(Default)]
struct Before {
    /// It existed (and is updated, not created).
    updated: bool,
    /// When its last update began, if it had one.
    started_at: Option<String>,
}

/// What a change did to a service, so a failure can put it back.
enum Changed {
    Created(String),
    Updated(String),
}

impl SwarmRollout<'_> {
    async fn inspect(&self, id: &str) -> Result<Service, RolloutError> {
        self.docker
            .inspect_service(id, None::<InspectServiceOptions>)
            .await
            .map_err(swarm_error)
    }

    async fn line(&self, line: impl Into<String>) {
        let _ = self.events.send(RolloutEvent::Line(line.into())).await;
    }

    /// Makes the app's services what `spec` asks, web first; on any failure every service
    /// this change touched is put back as it was and `Err` says why.
    pub async fn apply(&self, spec: &AppSpec) -> Result<(), RolloutError> {
        let app = self.app;
        ensure_overlay(self.docker, app)
            .await
            .map_err(swarm_error)?;
        if spec.processes.get(WEB).is_some_and(|web| web.quantity > 0) {
            self.attach_router().await?;
        }
        let existing = app_services(self.docker, app, self.config)
            .await
            .map_err(swarm_error)?;
        let image = image_command(self.docker, &spec.image).await?;
        let mut changed = Vec::new();
        let mut order: Vec<&str> = spec.processes.keys().map(|p| p.as_str()).collect();
        order.sort_by_key(|process| *process != WEB);
        for process in order {
            let want = service_spec(
                app,
                spec,
                process,
                &image,
                &self.config.runtime,
                self.config.instance_key(),
            );
            let outcome = self
                .put_service(process, existing.get(process), want, &mut changed)
                .await;
            if let Err(err) = outcome {
                self.put_back(changed).await;
                return Err(err);
            }
        }
        self.desired
            .save(app, spec)
            .map_err(|err| RolloutError::new(err.to_string()))?;
        let _ = self.events.send(RolloutEvent::Serving).await;
        for (process, service) in &existing {
            if !spec.processes.contains_key(process.as_str())
                && let Some(id) = &service.id
            {
                self.line(format!("Removing the {process} service")).await;
                self.docker.delete_service(id).await.map_err(swarm_error)?;
            }
        }
        Ok(())
    }

    /// Replaces the tasks of `process` (every process type when `None`) with fresh ones of
    /// the same spec, start-first.
    pub async fn restart(&self, process: Option<&str>) -> Result<(), RolloutError> {
        let existing = app_services(self.docker, self.app, self.config)
            .await
            .map_err(swarm_error)?;
        let mut order: Vec<(&String, &Service)> = existing
            .iter()
            .filter(|(name, _)| process.is_none_or(|want| want == name.as_str()))
            .collect();
        if order.is_empty() {
            return Err(RolloutError::new(match process {
                Some(process) => format!("{} has no {process} processes", self.app),
                None => format!("{} runs no processes", self.app),
            }));
        }
        order.sort_by_key(|(process, _)| process.as_str() != WEB);
        for (process, service) in order {
            let mut want = service.spec.clone().unwrap_or_default();
            if let Some(task) = want.task_template.as_mut() {
                task.force_update = Some(task.force_update.unwrap_or(0) + 1);
            }
            self.line(format!("Restarting {process}")).await;
            let mut changed = Vec::new();
            self.put_service(process, Some(service), want, &mut changed)
                .await?;
        }
        Ok(())
    }

    /// Waits until Traefik routes to every running task of the web service `id`, when the
    /// config names Traefik's API: a change is done once it serves, as on one host (Traefik
    /// reads Swarm every second, some time after the tasks run).
    async fn wait_routed(&self, process: &str, id: &str) -> Result<(), RolloutError> {
        let Some(traefik) = traefik_api(&self.config.runtime, EngineKind::Swarm) else {
            return Ok(());
        };
        if process != WEB {
            return Ok(());
        }
        let network = naming::network_name(self.app);
        let limit = self.config.runtime.ready_timeout_secs;
        let begun = Instant::now();
        let subject = WaitSubject::Route {
            instance: format!("the {process} tasks"),
        };
        let wait = async {
            loop {
                let tasks = task_addresses(self.docker, id, &network)
                    .await
                    .map_err(|err| RolloutError::new(format!("Swarm: {err}")))?;
                let wanted: HashSet<String> = tasks
                    .iter()
                    .filter(|(task, _)| {
                        task.desired_state == Some(TaskState::RUNNING)
                            && task.status.as_ref().and_then(|status| status.state)
                                == Some(TaskState::RUNNING)
                    })
                    .filter_map(|(_, address)| address.as_deref().map(server_url))
                    .collect();
                let last_error = match traefik.servers(self.app).await {
                    Ok(servers) if wanted.is_subset(&servers) => return Ok(()),
                    Ok(_) => None,
                    Err(err) => Some(err),
                };
                if begun.elapsed().as_secs() > limit {
                    return Err(RolloutError::new(format!(
                        "{process} runs but Traefik did not route to its tasks within {limit} s{}",
                        last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        };
        while_waiting(&self.events, subject, begun, limit, wait).await
    }

    /// Creates or updates the service of `process` to `want` and waits until its tasks run.
    async fn put_service(
        &self,
        process: &str,
        existing: Option<&Service>,
        want: ServiceSpec,
        changed: &mut Vec<Changed>,
    ) -> Result<(), RolloutError> {
        let target = tasks::Target::of(&want);
        match existing {
            None => {
                self.line(format!(
                    "Creating the {process} service: {} task(s)",
                    target.replicas
                ))
                .await;
                let created = self
                    .docker
                    .create_service(want, None)
                    .await
                    .map_err(swarm_error)?;
                let id = created.id.unwrap_or_default();
                changed.push(Changed::Created(id.clone()));
                self.wait_for(process, &id, &target, Before::default())
                    .await?;
                self.wait_routed(process, &id).await
            }
            Some(service)
                if tasks::Target::of(service.spec.as_ref().unwrap_or(&ServiceSpec::default()))
                    == target =>
            {
                self.line(format!("{process}: unchanged")).await;
                Ok(())
            }
            Some(service) => {
                let id = service.id.clone().unwrap_or_default();
                self.line(format!(
                    "Updating the {process} service: {} task(s), start-first",
                    target.replicas
                ))
                .await;
                self.docker
                    .update_service(&id, want, update_options(service, None), None)
                    .await
                    .map_err(swarm_error)?;
                changed.push(Changed::Updated(id.clone()));
                let before = Before {
                    updated: true,
                    started_at: service
                        .update_status
                        .as_ref()
                        .and_then(|status| status.started_at.clone()),
                };
                self.wait_for(process, &id, &target, before).await?;
                self.wait_routed(process, &id).await
            }
        }
    }

    /// Waits until `target`'s tasks all run and no other task is meant to, reporting how many
    /// run as that changes; a task of the change that fails, or Swarm rolling the update back,
    /// fails it at once.
    async fn wait_for(
        &self,
        process: &str,
        id: &str,
        target: &tasks::Target,
        before: Before,
    ) -> Result<(), RolloutError> {
        let limit = self.config.runtime.ready_timeout_secs + SCHEDULING_SECS;
        let begun = Instant::now();
        let subject = WaitSubject::Start {
            instance: format!("{process} ({} task(s))", target.replicas),
        };
        let mut told = None;
        let wait = async {
            loop {
                let service = self.inspect(id).await?;
                // An update status from before this change (a scale sets none) is not its.
                let status = service
                    .update_status
                    .filter(|status| status.started_at != before.started_at);
                let state = status.as_ref().and_then(|status| status.state);
                let facts = service_tasks(self.docker, id).await.map_err(swarm_error)?;
                let progress = tasks::progress(&facts, target);
                if let Some(
                    state @ (ServiceUpdateStatusStateEnum::PAUSED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                    | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED),
                ) = state
                {
                    let (why, failed) = match progress {
                        Progress::Failed { reason, task } => (reason, Some(task)),
                        Progress::Running { .. } => (
                            status
                                .and_then(|status| status.message)
                                .unwrap_or_else(|| state.to_string()),
                            None,
                        ),
                    };
                    self.line(format!("{process}: {why}; Swarm rolls the update back"))
                        .await;
                    self.await_rollback(id).await?;
                    let logs = match failed {
                        Some(task) => last_task_lines(self.docker, &task, FAILURE_LOG_LINES).await,
                        None => Vec::new(),
                    };
                    return Err(RolloutError {
                        reason: format!("{process}: {why}"),
                        logs,
                    });
                }
                match &progress {
                    // A failed task of an update makes Swarm roll it back (seen above); one of
                    // a new service fails the change at once.
                    Progress::Failed { reason, task } if !before.updated => {
                        return Err(RolloutError {
                            reason: format!("{process}: {reason}"),
                            logs: last_task_lines(self.docker, task, FAILURE_LOG_LINES).await,
                        });
                    }
                    Progress::Failed { .. } => {}
                    Progress::Running { running, .. } => {
                        if told != Some(*running) {
                            told = Some(*running);
                            self.line(format!(
                                "{process}: {running} of {} task(s) running",
                                target.replicas
                            ))
                            .await;
                        }
                    }
                }
                let updating = state == Some(ServiceUpdateStatusStateEnum::UPDATING);
                if progress.is_done(target) && !updating {
                    return Ok(());
                }
                if begun.elapsed().as_secs() > limit {
                    return Err(RolloutError::new(format!(
                        "{process}: {} of {} task(s) running after {limit} s",
                        told.unwrap_or(0),
                        target.replicas
                    )));
                }
                tokio::time::sleep(POLL).await;
            }
        };
        while_waiting(&self.events, subject, begun, limit, wait).await
    }

    /// Undoes a failed change, newest first: created services go, updated ones are rolled
    /// back by Swarm (unless it already does) and waited for, so the previous tasks run again.
    async fn put_back(&self, changed: Vec<Changed>) {
        for change in changed.into_iter().rev() {
            let outcome = match change {
                Changed::Created(id) => self.docker.delete_service(&id).await.map_err(swarm_error),
                Changed::Updated(id) => self.roll_back(&id).await,
            };
            if let Err(err) = outcome {
                tracing::warn!(app = %self.app, reason = %err.reason, "could not put a service back");
            }
        }
    }

    async fn roll_back(&self, id: &str) -> Result<(), RolloutError> {
        let service = self.inspect(id).await?;
        let rolling_back = service
            .update_status
            .as_ref()
            .and_then(|status| status.state)
            .is_some_and(|state| {
                matches!(
                    state,
                    ServiceUpdateStatusStateEnum::ROLLBACK_STARTED
                        | ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                )
            });
        if !rolling_back {
            self.line("Rolling the service back").await;
            let spec = service.spec.clone().unwrap_or_default();
            self.docker
                .update_service(id, spec, update_options(&service, Some("previous")), None)
                .await
                .map_err(swarm_error)?;
        }
        self.await_rollback(id).await
    }

    /// Waits until Swarm has rolled `id` back (or paused trying).
    async fn await_rollback(&self, id: &str) -> Result<(), RolloutError> {
        let begun = Instant::now();
        while begun.elapsed().as_secs() < ROLLBACK_SECS {
            let service = self.inspect(id).await?;
            let state = service.update_status.and_then(|status| status.state);
            if matches!(
                state,
                Some(
                    ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED
                        | ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED
                )
            ) {
                return Ok(());
            }
            tokio::time::sleep(POLL).await;
        }
        Err(RolloutError::new("the rollback did not finish"))
    }

    /// Attaches the Traefik container on this node to the app's network; already attached is
    /// fine.
    async fn attach_router(&self) -> Result<(), RolloutError> {
        let name = &self.config.swarm.traefik_container;
        let Some(router) = router_container(self.docker, name)
            .await
            .map_err(swarm_error)?
        else {
            return Err(RolloutError::new(format!(
                "there is no Traefik container {name} on the agent's node"
            )));
        };
        let connected = self
            .docker
            .connect_network(
                &naming::network_name(self.app),
                NetworkConnectRequest {
                    container: Some(router),
                    ..Default::default()
                },
            )
            .await;
        match connected {
            // Already attached: 403 from some engines, 409 from others.
            Err(err) if !(is_status(&err, 403) || is_status(&err, 409)) => Err(swarm_error(err)),
            _ => Ok(()),
        }
    }
}

/// What `image` runs, read from the agent's engine, where it was built.
async fn image_command(docker: &Docker, image: &str) -> Result<ImageCommand, RolloutError> {
    let inspected = docker.inspect_image(image).await.map_err(|err| {
        RolloutError::new(format!(
            "cannot read the command of the image {image}: {err}"
        ))
    })?;
    let config = inspected.config.unwrap_or_default();
    Ok(ImageCommand {
        entrypoint: config.entrypoint.unwrap_or_default(),
        cmd: config.cmd.unwrap_or_default(),
    })
}

fn swarm_error(err: DockerError) -> RolloutError {
    RolloutError::new(format!("Swarm: {err}"))
}

fn is_status(err: &DockerError, status: u16) -> bool {
    matches!(err, DockerError::DockerResponseServerError { status_code, .. } if *status_code == status)
}

pub(crate) fn update_options(service: &Service, rollback: Option<&str>) -> UpdateServiceOptions {
    UpdateServiceOptions {
        version: service
            .version
            .as_ref()
            .and_then(|version| version.index)
            .and_then(|index| i32::try_from(index).ok())
            .unwrap_or_default(),
        rollback: rollback.map(str::to_owned),
        ..Default::default()
    }
}

/// The app's overlay network, attachable so that Traefik's task joins it without a restart.
pub(crate) async fn ensure_overlay(docker: &Docker, app: &str) -> Result<(), DockerError> {
    let name = naming::network_name(app);
    match docker
        .inspect_network(
            &name,
            None::<bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
    {
        Ok(_) => Ok(()),
        Err(err) if is_status(&err, 404) => docker
            .create_network(NetworkCreateRequest {
                name,
                driver: Some("overlay".to_owned()),
                attachable: Some(true),
                labels: Some(network_labels(app)),
                ..Default::default()
            })
            .await
            .map(drop),
        Err(err) => Err(err),
    }
}

/// The Traefik container on the agent's node, when it exists.
async fn router_container(docker: &Docker, name: &str) -> Result<Option<String>, DockerError> {
    match docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
    {
        Ok(container) => Ok(container.id),
        Err(err) if is_status(&err, 404) => Ok(None),
        Err(err) => Err(err),
    }
}

/// The app's services by process type: those this agent made (its instance key).
async fn app_services(
    docker: &Docker,
    app: &str,
    config: &AgentConfig,
) -> Result<HashMap<String, Service>, DockerError> {
    let filters = docker_filters(config.instance_key(), Some(app), None);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    Ok(services
        .into_iter()
        .filter_map(|service| {
            let process = service
                .spec
                .as_ref()?
                .labels
                .as_ref()?
                .get(LABEL_PROCESS)?
                .clone();
            Some((process, service))
        })
        .collect())
}

async fn service_tasks(docker: &Docker, service: &str) -> Result<Vec<TaskFacts>, DockerError> {
    let listed: Vec<Task> = docker
        .list_tasks(Some(ListTasksOptions {
            filters: Some(HashMap::from([(
                "service".to_owned(),
                vec![service.to_owned()],
            )])),
        }))
        .await?;
    Ok(listed.iter().map(TaskFacts::of).collect())
}

/// Node ids → host names, for saying where each instance runs.
async fn node_names(docker: &Docker) -> Result<HashMap<String, String>, DockerError> {
    let nodes = docker.list_nodes(None::<ListNodesOptions>).await?;
    Ok(nodes
        .into_iter()
        .filter_map(|node| {
            let hostname = node.description?.hostname?;
            Some((node.id?, hostname))
        })
        .collect())
}

/// The app's instances: the tasks Swarm means to run, in process then slot order.
pub async fn instances(
    docker: &Docker,
    app: &str,
    config: &AgentConfig,
) -> Result<Vec<Instance>, EngineError> {
    let services = app_services(docker, app, config).await?;
    let nodes = node_names(docker).await?;
    let mut instances = Vec::new();
    for (process, service) in &services {
        let Some(id) = &service.id else { continue };
        for facts in service_tasks(docker, id).await? {
            if let Some(instance) = facts.instance(app, process, &nodes) {
                instances.push(instance);
            }
        }
    }
    instances.sort_by(|a, b| (&a.process, a.index).cmp(&(&b.process, b.index)));
    Ok(instances)
}

/// The app's tasks with their process type, of `process` only when asked: the ones Swarm
/// means to run and those it keeps as history (retired by an update, crashed), whose
/// containers still hold their output.
pub async fn app_tasks(
    docker: &Docker,
    app: &str,
    process: Option<&str>,
    config: &AgentConfig,
) -> Result<Vec<(String, TaskFacts)>, DockerError> {
    let mut tasks = Vec::new();
    for (name, service) in app_services(docker, app, config).await? {
        let Some(id) = service
            .id
            .as_deref()
            .filter(|_| process.is_none_or(|p| p == name))
        else {
            continue;
        };
        for facts in service_tasks(docker, id).await? {
            tasks.push((name.clone(), facts));
        }
    }
    Ok(tasks)
}

/// Every app's instances on Swarm by the id of the node each runs on (one-offs and add-ons
/// are not app instances), for the infrastructure map.
pub async fn instances_by_node(
    docker: &Docker,
    config: &AgentConfig,
) -> Result<HashMap<String, Vec<NodeInstance>>, DockerError> {
    let filters = docker_filters(config.instance_key(), None, None);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let mut placed: HashMap<String, Vec<NodeInstance>> = HashMap::new();
    for service in services {
        let labels = service
            .spec
            .as_ref()
            .and_then(|spec| spec.labels.clone())
            .unwrap_or_default();
        let (Some(id), Some(app), Some(process)) = (
            &service.id,
            labels.get(LABEL_APP),
            labels.get(LABEL_PROCESS),
        ) else {
            continue;
        };
        for task in service_tasks(docker, id).await? {
            let Some(node) = task.node_id.clone().filter(|_| task.meant_to_run) else {
                continue;
            };
            placed.entry(node).or_default().push(NodeInstance {
                app: app.clone(),
                process: process.clone(),
                index: task.slot,
                release: task.release.unwrap_or(0),
                running: task.state == Some(TaskState::RUNNING),
            });
        }
    }
    for instances in placed.values_mut() {
        instances.sort_by(|a, b| (&a.app, &a.process, a.index).cmp(&(&b.app, &b.process, b.index)));
    }
    Ok(placed)
}

/// Removes the app's services, then (once their tasks are gone) its network.
pub async fn remove_app(
    docker: &Docker,
    app: &str,
    config: &AgentConfig,
) -> Result<Removed, EngineError> {
    let services = app_services(docker, app, config).await?;
    let mut removed = Removed::default();
    for service in services.values() {
        let Some(id) = &service.id else { continue };
        removed.instances += service_tasks(docker, id)
            .await?
            .iter()
            .filter(|task| task.meant_to_run)
            .count();
        match docker.delete_service(id).await {
            Ok(()) => {}
            Err(err) if is_status(&err, 404) => {}
            Err(err) => return Err(err.into()),
        }
    }
    let network = naming::network_name(app);
    if let Some(container) = router_container(docker, &config.swarm.traefik_container).await? {
        let _ = docker
            .disconnect_network(
                &network,
                NetworkDisconnectRequest {
                    container: Some(container),
                    force: Some(true),
                },
            )
            .await;
    }
    // Swarm removes the tasks' endpoints shortly after the services, and the network once
    // they are gone: until then a removal is refused or the network is still there, and an
    // app of the same name created meanwhile would find it.
    let begun = Instant::now();
    loop {
        if let Err(err) = docker.remove_network(&network).await {
            tracing::debug!(%app, error = %err, "the network is not removed yet");
        }
        let gone = docker
            .inspect_network(
                &network,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .is_err_and(|err| is_status(&err, 404));
        if gone {
            return Ok(removed);
        }
        if begun.elapsed().as_secs() >= REMOVAL_SECS {
            return Err(EngineError(format!(
                "the network {network} is still there after {REMOVAL_SECS} s"
            )));
        }
        tokio::time::sleep(POLL).await;
    }
}

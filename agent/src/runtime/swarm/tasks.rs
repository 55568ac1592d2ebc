//! Reading Swarm's tasks, without touching Docker: which of a service's tasks belong to the
//! change being rolled out, whether that change runs or failed ([`progress`]), and each task
//! as one of the app's instances ([`TaskFacts::instance`]).

use std::collections::HashMap;

use bollard::models::{ServiceSpec, Task, TaskState};
use paas_api::agent::Instance;
use paas_api::types::InstanceState;

use super::super::resources::{cpus_of, memory_of};
use super::services::LABEL_FINGERPRINT;
use crate::naming::{self, LABEL_RELEASE, parse_release_label};

/// What the tasks of a change have in common: the fingerprint of their spec and the restart
/// counter (`ForceUpdate`), and how many there are to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub fingerprint: String,
    pub force_update: u64,
    pub replicas: u32,
}

impl Target {
    pub fn of(spec: &ServiceSpec) -> Target {
        let fingerprint = spec
            .labels
            .as_ref()
            .and_then(|labels| labels.get(LABEL_FINGERPRINT))
            .cloned()
            .unwrap_or_default();
        let force_update = spec
            .task_template
            .as_ref()
            .and_then(|task| task.force_update)
            .unwrap_or(0);
        let replicas = spec
            .mode
            .as_ref()
            .and_then(|mode| mode.replicated.as_ref())
            .and_then(|replicated| replicated.replicas)
            .and_then(|replicas| u32::try_from(replicas).ok())
            .unwrap_or(0);
        Target {
            fingerprint,
            force_update,
            replicas,
        }
    }
}

/// What the agent reads of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFacts {
    pub id: String,
    pub slot: u32,
    pub node_id: Option<String>,
    pub state: Option<TaskState>,
    /// Swarm means it to run (not a task being shut down or one that ended).
    pub meant_to_run: bool,
    pub fingerprint: Option<String>,
    pub force_update: u64,
    pub release: Option<u32>,
    pub container_id: Option<String>,
    pub error: Option<String>,
    pub timestamp: Option<String>,
    pub memory_bytes: Option<i64>,
    pub nano_cpus: Option<i64>,
}

impl TaskFacts {
    pub fn of(task: &Task) -> TaskFacts {
        let spec = task.spec.as_ref();
        let labels = spec
            .and_then(|spec| spec.container_spec.as_ref())
            .and_then(|container| container.labels.as_ref());
        let limits = spec
            .and_then(|spec| spec.resources.as_ref())
            .and_then(|resources| resources.limits.as_ref());
        let status = task.status.as_ref();
        TaskFacts {
            id: task.id.clone().unwrap_or_default(),
            slot: task
                .slot
                .and_then(|slot| u32::try_from(slot).ok())
                .unwrap_or(0),
            node_id: task.node_id.clone(),
            state: status.and_then(|status| status.state),
            meant_to_run: task.desired_state == Some(TaskState::RUNNING),
            fingerprint: labels
                .and_then(|labels| labels.get(LABEL_FINGERPRINT))
                .cloned(),
            force_update: spec.and_then(|spec| spec.force_update).unwrap_or(0),
            release: labels
                .and_then(|labels| labels.get(LABEL_RELEASE))
                .and_then(|release| parse_release_label(release)),
            container_id: status
                .and_then(|status| status.container_status.as_ref())
                .and_then(|container| container.container_id.clone()),
            error: status.and_then(|status| status.err.clone()),
            timestamp: status.and_then(|status| status.timestamp.clone()),
            memory_bytes: limits.and_then(|limits| limits.memory_bytes),
            nano_cpus: limits.and_then(|limits| limits.nano_cpus),
        }
    }

    fn is_of(&self, target: &Target) -> bool {
        self.fingerprint.as_deref() == Some(target.fingerprint.as_str())
            && self.force_update == target.force_update
    }

    /// As one of the app's instances; `None` for a task Swarm no longer means to run.
    pub fn instance(
        &self,
        app: &str,
        process: &str,
        nodes: &HashMap<String, String>,
    ) -> Option<Instance> {
        if !self.meant_to_run {
            return None;
        }
        let release = self.release.unwrap_or(0);
        let state = instance_state(self.state);
        Some(Instance {
            process: process.parse().ok()?,
            index: self.slot,
            release,
            name: naming::container_name(app, release, process, self.slot),
            container_id: self.container_id.clone().unwrap_or_default(),
            state,
            started_at: self
                .timestamp
                .as_deref()
                .filter(|_| state == InstanceState::Up)
                .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok())
                .map(|at| at.with_timezone(&chrono::Utc)),
            memory: memory_of(self.memory_bytes),
            cpus: cpus_of(self.nano_cpus),
            out_of_memory: false,
            restarts: 0,
            oneoff: None,
            node: self
                .node_id
                .as_ref()
                .map(|id| nodes.get(id).cloned().unwrap_or_else(|| id.clone())),
        })
    }
}

/// How a change goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// `running` of its tasks run (and, for web, are healthy: Swarm keeps a checked task
    /// `starting` until its first passing probe), and `old` tasks of another spec are still
    /// meant to run.
    Running { running: u32, old: u32 },
    /// One of its tasks (`task`, an id) failed or was refused, and why.
    Failed { reason: String, task: String },
}

impl Progress {
    /// Every task of the change runs and no other is meant to.
    pub fn is_done(&self, target: &Target) -> bool {
        matches!(self, Progress::Running { running, old: 0 } if *running == target.replicas)
    }
}

/// How the change to `target` goes, from the service's tasks.
pub fn progress(tasks: &[TaskFacts], target: &Target) -> Progress {
    if let Some(failed) = tasks.iter().find(|task| {
        task.is_of(target) && matches!(task.state, Some(TaskState::FAILED | TaskState::REJECTED))
    }) {
        let state = failed
            .state
            .map(|state| state.to_string())
            .unwrap_or_default();
        let error = failed.error.as_deref().unwrap_or("no reason given");
        return Progress::Failed {
            reason: format!("task {} {state}: {error}", failed.slot),
            task: failed.id.clone(),
        };
    }
    let count = |keep: &dyn Fn(&TaskFacts) -> bool| {
        u32::try_from(tasks.iter().filter(|task| keep(task)).count()).unwrap_or(u32::MAX)
    };
    Progress::Running {
        running: count(&|task| {
            task.is_of(target) && task.meant_to_run && task.state == Some(TaskState::RUNNING)
        }),
        old: count(&|task| !task.is_of(target) && task.meant_to_run),
    }
}

fn instance_state(state: Option<TaskState>) -> InstanceState {
    match state {
        Some(TaskState::RUNNING) => InstanceState::Up,
        Some(
            TaskState::NEW
            | TaskState::ALLOCATED
            | TaskState::PENDING
            | TaskState::ASSIGNED
            | TaskState::ACCEPTED
            | TaskState::PREPARING
            | TaskState::READY
            | TaskState::STARTING,
        ) => InstanceState::Starting,
        Some(TaskState::FAILED | TaskState::REJECTED | TaskState::ORPHANED) => {
            InstanceState::Crashed
        }
        _ => InstanceState::Down,
    }
}

/// A task of release 5 on node `n2`, for the tests here and of what reads tasks.
#[cfg(test)]
pub fn test_task(slot: u32, fingerprint: &str, state: TaskState, meant_to_run: bool) -> TaskFacts {
    TaskFacts {
        id: format!("t{slot}-{fingerprint}"),
        slot,
        node_id: Some("n2".into()),
        state: Some(state),
        meant_to_run,
        fingerprint: Some(fingerprint.into()),
        force_update: 0,
        release: Some(5),
        container_id: Some("c1".into()),
        error: None,
        timestamp: Some("2026-12-07T10:00:00Z".into()),
        memory_bytes: Some(512 * 1024 * 1024),
        nano_cpus: None,
    }
}

#[cfg(test)]
mod tests {
    use paas_api::resources::Memory;

    use super::*;
    use crate::runtime::test_task as task;

    fn target() -> Target {
        Target {
            fingerprint: "new".into(),
            force_update: 0,
            replicas: 2,
        }
    }

    #[test]
    fn a_change_is_done_when_its_tasks_run_and_the_old_ones_are_let_go() {
        use TaskState::*;
        let starting = [
            task(1, "old", RUNNING, true),
            task(1, "new", STARTING, true),
            task(2, "new", RUNNING, true),
        ];
        assert_eq!(
            progress(&starting, &target()),
            Progress::Running { running: 1, old: 1 }
        );
        let old_still_meant = [
            task(1, "old", RUNNING, true),
            task(1, "new", RUNNING, true),
            task(2, "new", RUNNING, true),
        ];
        let waiting = progress(&old_still_meant, &target());
        assert_eq!(waiting, Progress::Running { running: 2, old: 1 });
        assert!(!waiting.is_done(&target()));
        let done = [
            task(1, "old", SHUTDOWN, false),
            task(1, "new", RUNNING, true),
            task(2, "new", RUNNING, true),
        ];
        assert!(progress(&done, &target()).is_done(&target()));
    }

    #[test]
    fn a_failed_task_of_the_change_fails_it_and_an_old_failure_does_not() {
        let mut failed = task(2, "new", TaskState::FAILED, false);
        failed.error = Some("task: non-zero exit (1)".into());
        let failed_id = failed.id.clone();
        let tasks = [task(1, "new", TaskState::RUNNING, true), failed];
        assert_eq!(
            progress(&tasks, &target()),
            Progress::Failed {
                reason: "task 2 failed: task: non-zero exit (1)".into(),
                task: failed_id,
            }
        );
        let old = [
            task(1, "old", TaskState::FAILED, false),
            task(1, "new", TaskState::RUNNING, true),
            task(2, "new", TaskState::RUNNING, true),
        ];
        assert!(progress(&old, &target()).is_done(&target()));
    }

    #[test]
    fn a_restart_is_a_change_of_its_own() {
        let restarted = Target {
            force_update: 1,
            ..target()
        };
        let tasks = [
            task(1, "new", TaskState::RUNNING, true),
            task(2, "new", TaskState::RUNNING, true),
        ];
        assert_eq!(
            progress(&tasks, &restarted),
            Progress::Running { running: 0, old: 2 }
        );
    }

    #[test]
    fn a_task_is_an_instance_on_its_node() {
        let nodes = HashMap::from([("n2".to_owned(), "paascl-2".to_owned())]);
        let instance = task(3, "new", TaskState::RUNNING, true)
            .instance("hello", "web", &nodes)
            .unwrap();
        assert_eq!(instance.index, 3);
        assert_eq!(instance.release, 5);
        assert_eq!(instance.name, "paas-hello-v5-web-3");
        assert_eq!(instance.state, InstanceState::Up);
        assert_eq!(instance.node.as_deref(), Some("paascl-2"));
        assert_eq!(instance.memory.map(Memory::mb), Some(512));
        assert!(instance.started_at.is_some());
        assert!(
            task(1, "old", TaskState::SHUTDOWN, false)
                .instance("hello", "web", &nodes)
                .is_none()
        );
        assert_eq!(
            task(1, "new", TaskState::STARTING, true)
                .instance("hello", "web", &nodes)
                .unwrap()
                .state,
            InstanceState::Starting
        );
    }
}

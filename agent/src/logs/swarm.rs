//! App logs on the swarm engine: the output of the app's tasks on every node, read through the
//! manager ([`task_logs`]). The tasks are those of the app's services, as
//! [`crate::runtime::app_tasks`] reads them: the ones Swarm means to run and the ones it keeps
//! as history (retired by an update, crashed and replaced), whose containers still hold their
//! output on their nodes, so a retired release's lines still show after a redeploy for as long
//! as Swarm keeps those tasks (its task history limit, five per slot by default).
//!
//! Swarm 20.10 sends no events about tasks, so a followed stream watches the app's tasks
//! instead, once every [`POLL`]: a task Swarm starts meanwhile joins the stream from its first
//! line, and one it no longer means to run leaves it [`LINGER_POLLS`] polls later, once what it
//! said while stopping has arrived.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::{LogEntry, LogMessage};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::warn;

use super::swarm_api::{TaskLogsOptions, engine_error, task_logs};
use super::{Reader, RouterFollow, Selection, Source, encode, send_backlog};
use crate::config::AgentConfig;
use crate::runtime::{TaskFacts, app_tasks};

/// How often a followed stream reads the app's tasks.
const POLL: Duration = Duration::from_secs(1);
/// Polls a task that Swarm no longer means to run stays followed.
const LINGER_POLLS: u32 = 3;
/// How long one task's backlog may take (a node that does not answer gives what it sent).
const BACKLOG_LIMIT: Duration = Duration::from_secs(10);

/// The task's output as a log source; `None` for a task that never got a container (nothing
/// to read) or is not `selection`'s.
fn source(selection: &Selection, process: String, task: &TaskFacts) -> Option<Source> {
    task.container_id.as_ref()?;
    let source = Source {
        id: task.id.clone(),
        process,
        index: task.slot,
        release: task.release,
        running: task.meant_to_run,
    };
    selection.wants(&source).then_some(source)
}

/// The app's tasks that `selection` reads.
async fn sources(
    docker: &Docker,
    config: &AgentConfig,
    selection: &Selection,
) -> Result<Vec<Source>, bollard::errors::Error> {
    let tasks = app_tasks(docker, &selection.app, selection.process.as_deref(), config).await?;
    Ok(tasks
        .into_iter()
        .filter_map(|(process, task)| source(selection, process, &task))
        .collect())
}

/// Sends the backlog (`archived` and the tasks' own lines) and `Live`, then, when following
/// (with `router`), the tasks' and the router's new lines until the client hangs up.
pub(super) async fn stream_logs(
    docker: Docker,
    config: Arc<AgentConfig>,
    selection: Selection,
    archived: Vec<LogEntry>,
    tail: usize,
    router: Option<RouterFollow>,
    sender: mpsc::Sender<Bytes>,
) {
    let tasks = match sources(&docker, &config, &selection).await {
        Ok(tasks) => tasks,
        Err(err) => {
            warn!(app = %selection.app, error = %err, "cannot list the tasks for logs");
            return;
        }
    };
    let backlogs =
        futures::future::join_all(tasks.iter().map(|task| backlog(&docker, task, tail))).await;
    let mut last_sent: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut merged = archived;
    for (task, entries) in tasks.iter().zip(backlogs) {
        if let Some(last) = entries.last() {
            last_sent.insert(task.id.clone(), last.timestamp);
        }
        merged.extend(entries);
    }
    if !send_backlog(merged, tail, &sender).await {
        return;
    }
    let Some(router) = router else {
        return;
    };
    let router = router.start(sender.clone());

    // Task id → its follower and how many polls ago Swarm stopped meaning it to run.
    let mut followed: HashMap<String, (JoinHandle<()>, u32)> = HashMap::new();
    let mut current = tasks;
    loop {
        for task in current.iter().filter(|task| task.running) {
            if !followed.contains_key(&task.id) {
                let after = last_sent.remove(&task.id);
                let handle = tokio::spawn(follow_task(
                    docker.clone(),
                    task.clone(),
                    after,
                    sender.clone(),
                ));
                followed.insert(task.id.clone(), (handle, 0));
            }
        }
        // A task that left stays in the map (finished), so that it is never followed twice.
        for (id, (handle, gone)) in &mut followed {
            if !current.iter().any(|task| task.running && &task.id == id) {
                *gone += 1;
                if *gone > LINGER_POLLS {
                    handle.abort();
                }
            }
        }
        tokio::select! {
            () = tokio::time::sleep(POLL) => {}
            () = sender.closed() => break,
        }
        match sources(&docker, &config, &selection).await {
            Ok(tasks) => current = tasks,
            Err(err) => warn!(app = %selection.app, error = %err, "cannot list the tasks for logs"),
        }
    }
    for (handle, _) in followed.values() {
        handle.abort();
    }
    router.abort();
}

/// The last `lines` lines task `id` printed, for the error of a change whose task failed.
pub(crate) async fn last_task_lines(docker: &Docker, id: &str, lines: usize) -> Vec<String> {
    let task = Source {
        id: id.to_owned(),
        process: String::new(),
        index: 0,
        release: None,
        running: false,
    };
    backlog(docker, &task, lines)
        .await
        .into_iter()
        .map(|entry| entry.line)
        .collect()
}

/// The task's last `tail` lines, oldest first.
async fn backlog(docker: &Docker, task: &Source, tail: usize) -> Vec<LogEntry> {
    if tail == 0 {
        return Vec::new();
    }
    let options = TaskLogsOptions {
        tail: Some(tail),
        ..TaskLogsOptions::default()
    };
    let frames = match task_logs(docker, &task.id, options).await {
        Ok(frames) => frames,
        Err(err) => {
            warn!(task = %task.id, error = %err, "cannot read a task's logs");
            return Vec::new();
        }
    };
    let deadline = Instant::now() + BACKLOG_LIMIT;
    let mut frames = std::pin::pin!(frames);
    let mut reader = Reader::new(task);
    let mut entries = Vec::new();
    // Ended, failed or out of time: what was read stands.
    while let Ok(Some(Ok(frame))) = tokio::time::timeout_at(deadline, frames.next()).await {
        match engine_error(&frame) {
            Some(error) => warn!(task = %task.id, %error, "part of a task's logs is missing"),
            None => entries.extend(reader.push(frame)),
        }
    }
    entries.extend(reader.finish());
    entries
}

/// Streams a task's lines logged after `after` (all of them without) until its output ends
/// or the client hangs up.
async fn follow_task(
    docker: Docker,
    task: Source,
    after: Option<DateTime<Utc>>,
    sender: mpsc::Sender<Bytes>,
) {
    let options = TaskLogsOptions {
        follow: true,
        tail: None,
        since: after.map(|time| (time.timestamp(), time.timestamp_subsec_nanos())),
    };
    let frames = match task_logs(&docker, &task.id, options).await {
        Ok(frames) => frames,
        Err(err) => {
            warn!(task = %task.id, error = %err, "cannot follow a task's logs");
            return;
        }
    };
    let mut frames = std::pin::pin!(frames);
    let mut reader = Reader::new(&task);
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            () = sender.closed() => return,
        };
        let (entries, done) = match frame {
            Some(Ok(frame)) => match engine_error(&frame) {
                Some(error) => {
                    warn!(task = %task.id, %error, "part of a task's logs is missing");
                    (Vec::new(), false)
                }
                None => (reader.push(frame), false),
            },
            Some(Err(_)) | None => (reader.finish(), true),
        };
        for entry in entries {
            // `since` is inclusive: the line sent last is read again.
            if after.is_some_and(|after| entry.timestamp <= after) {
                continue;
            }
            if sender.send(encode(&LogMessage::Line(entry))).await.is_err() {
                return;
            }
        }
        if done {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use bollard::models::TaskState;

    use super::*;
    use crate::naming::test_key;
    use crate::runtime::test_task;

    fn selection(process: Option<&str>, index: Option<u32>, release: Option<u32>) -> Selection {
        Selection {
            key: test_key(),
            app: "hello".into(),
            process: process.map(str::to_owned),
            index,
            release,
            router: true,
        }
    }

    fn task(id: &str, slot: u32, release: u32, meant_to_run: bool) -> TaskFacts {
        let state = if meant_to_run {
            TaskState::RUNNING
        } else {
            TaskState::SHUTDOWN
        };
        TaskFacts {
            id: id.into(),
            release: Some(release),
            ..test_task(slot, "f", state, meant_to_run)
        }
    }

    #[test]
    fn a_task_is_read_as_the_instance_of_its_slot_and_release() {
        let all = selection(None, None, None);
        let running = source(&all, "web".into(), &task("t1", 2, 7, true)).unwrap();
        assert_eq!(
            (running.id.as_str(), running.process.as_str(), running.index),
            ("t1", "web", 2)
        );
        assert_eq!(running.release, Some(7));
        assert!(running.running);
        // A retired task is read for the backlog, never followed.
        let retired = source(&all, "web".into(), &task("t0", 2, 6, false)).unwrap();
        assert!(!retired.running);
        let mut never_started = task("t3", 3, 7, true);
        never_started.container_id = None;
        assert!(source(&all, "web".into(), &never_started).is_none());
    }

    #[test]
    fn one_instance_or_release_is_all_that_is_read_when_asked() {
        let web2 = selection(Some("web"), Some(2), None);
        assert!(source(&web2, "web".into(), &task("t1", 2, 7, true)).is_some());
        assert!(source(&web2, "web".into(), &task("t2", 1, 7, true)).is_none());
        let v6 = selection(None, None, Some(6));
        assert!(source(&v6, "web".into(), &task("t0", 2, 6, false)).is_some());
        assert!(source(&v6, "web".into(), &task("t1", 2, 7, true)).is_none());
    }
}

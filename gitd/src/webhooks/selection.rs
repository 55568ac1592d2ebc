//! Which webhook events an instance event is. The agent words what happens to a container as
//! `paas logs` shows it: a crash is `Process exited with status N` then `State changed from X
//! to crashed` (a stop by the platform ends in `stopped` instead). A crash the agent told
//! [`OUT_OF_MEMORY`] of first (Docker's `oom` event) is out of memory. A crash loop is
//! [`CRASH_LOOP_CRASHES`] crashes of one process type within [`CRASH_LOOP_WINDOW`], told once
//! per such run of crashes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use chrono::{DateTime, TimeDelta, Utc};
use paas_api::agent::{InstanceEvent, OUT_OF_MEMORY};
use paas_api::webhooks::{EventDetails, WebhookEvent};

/// Crashes of one process type that make a crash loop…
pub const CRASH_LOOP_CRASHES: usize = 3;
/// …within this long.
pub const CRASH_LOOP_WINDOW: TimeDelta = TimeDelta::minutes(10);

const EXITED: &str = "Process exited with status ";
const CRASHED: &str = " to crashed";

/// What the instance events said so far that later ones need: each instance's last exit
/// status, the instances the OOM killer ended, and each process type's recent crashes.
#[derive(Default)]
pub struct CrashWatch {
    state: Mutex<Watched>,
}

#[derive(Default)]
struct Watched {
    exits: HashMap<(String, String, u32), i64>,
    out_of_memory: HashSet<(String, String, u32)>,
    crashes: HashMap<(String, String), VecDeque<DateTime<Utc>>>,
}

impl CrashWatch {
    /// The webhook events `event` makes: none, a crash (or out of memory), and maybe a loop.
    pub fn observe(&self, event: &InstanceEvent) -> Vec<(WebhookEvent, EventDetails)> {
        let mut watched = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let instance = (event.app.clone(), event.process.clone(), event.index);
        if event.message == OUT_OF_MEMORY {
            watched.out_of_memory.insert(instance);
            return Vec::new();
        }
        if let Some(status) = event.message.strip_prefix(EXITED) {
            if let Ok(status) = status.trim().parse() {
                watched.exits.insert(instance, status);
            }
            return Vec::new();
        }
        if !(event.message.starts_with("State changed from ") && event.message.ends_with(CRASHED)) {
            return Vec::new();
        }
        let exit_status = watched.exits.remove(&instance);
        let out_of_memory = watched.out_of_memory.remove(&instance);
        let details = EventDetails {
            message: match exit_status {
                Some(status) => format!("{EXITED}{status}"),
                None => event.message.clone(),
            },
            release: Some(event.release),
            process: Some(event.process.clone()),
            instance: Some(format!("{}.{}", event.process, event.index)),
            exit_status,
            ..EventDetails::default()
        };
        let kind = if out_of_memory {
            WebhookEvent::InstanceOutOfMemory
        } else {
            WebhookEvent::InstanceCrashed
        };
        let mut events = vec![(kind, details)];

        let recent = watched
            .crashes
            .entry((event.app.clone(), event.process.clone()))
            .or_default();
        recent.push_back(event.timestamp);
        while recent
            .front()
            .is_some_and(|first| event.timestamp - *first > CRASH_LOOP_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= CRASH_LOOP_CRASHES {
            let crashes = recent.len() as u32;
            recent.clear();
            let minutes = CRASH_LOOP_WINDOW.num_minutes();
            events.push((
                WebhookEvent::CrashLoop,
                EventDetails {
                    message: format!(
                        "{} crashed {crashes} times within {minutes} minutes",
                        event.process
                    ),
                    release: Some(event.release),
                    process: Some(event.process.clone()),
                    crashes: Some(crashes),
                    ..EventDetails::default()
                },
            ));
        }
        events
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(index: u32, message: &str, seconds: i64) -> InstanceEvent {
        InstanceEvent {
            timestamp: DateTime::from_timestamp(1_700_000_000 + seconds, 0).unwrap(),
            app: "web".into(),
            process: "web".into(),
            index,
            release: 4,
            message: message.into(),
        }
    }

    fn kinds(watch: &CrashWatch, event: &InstanceEvent) -> Vec<WebhookEvent> {
        watch
            .observe(event)
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    #[test]
    fn a_crash_carries_its_exit_status() {
        let watch = CrashWatch::default();
        assert!(kinds(&watch, &event(1, "Process exited with status 3", 0)).is_empty());
        let told = watch.observe(&event(1, "State changed from up to crashed", 0));
        assert_eq!(told.len(), 1);
        let (kind, details) = &told[0];
        assert_eq!(*kind, WebhookEvent::InstanceCrashed);
        assert_eq!(details.exit_status, Some(3));
        assert_eq!(details.instance.as_deref(), Some("web.1"));
        assert_eq!(details.release, Some(4));
    }

    #[test]
    fn an_oom_kill_is_out_of_memory_a_bare_sigkill_a_crash_and_other_events_nothing() {
        let watch = CrashWatch::default();
        watch.observe(&event(1, OUT_OF_MEMORY, 0));
        watch.observe(&event(1, "Process exited with status 137", 0));
        assert_eq!(
            kinds(&watch, &event(1, "State changed from up to crashed", 0)),
            [WebhookEvent::InstanceOutOfMemory]
        );
        watch.observe(&event(1, "Process exited with status 137", 1));
        assert_eq!(
            kinds(&watch, &event(1, "State changed from up to crashed", 1)),
            [WebhookEvent::InstanceCrashed],
            "a kill from outside the platform is no OOM"
        );
        for quiet in [
            "State changed from starting to up",
            "State changed from up to stopped",
            "Starting process (v4)",
            "Health check failing",
        ] {
            assert!(kinds(&watch, &event(1, quiet, 1)).is_empty(), "{quiet}");
        }
    }

    #[test]
    fn three_crashes_within_the_window_are_a_loop_told_once() {
        let watch = CrashWatch::default();
        let crash = |index, at| {
            kinds(
                &watch,
                &event(index, "State changed from up to crashed", at),
            )
        };
        assert_eq!(crash(1, 0), [WebhookEvent::InstanceCrashed]);
        // A crash of another app's process does not count.
        let mut other = event(1, "State changed from up to crashed", 1);
        other.app = "other".into();
        watch.observe(&other);
        assert_eq!(crash(2, 60), [WebhookEvent::InstanceCrashed]);
        assert_eq!(
            crash(1, 120),
            [WebhookEvent::InstanceCrashed, WebhookEvent::CrashLoop]
        );
        assert_eq!(crash(1, 180), [WebhookEvent::InstanceCrashed]);
    }

    #[test]
    fn crashes_further_apart_than_the_window_are_no_loop() {
        let watch = CrashWatch::default();
        let spaced = CRASH_LOOP_WINDOW.num_seconds() / 2 + 1;
        for n in 0..5 {
            let told = kinds(
                &watch,
                &event(1, "State changed from up to crashed", n * spaced),
            );
            assert_eq!(told, [WebhookEvent::InstanceCrashed], "crash {n}");
        }
    }
}

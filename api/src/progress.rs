//! What a change shows while it waits: the typed "waiting for …" events a rollout emits (which
//! instance, what for, how long so far and at most), the first lines new instances print while
//! they start, and how often a plain (non-terminal) output repeats a wait ([`WaitThrottle`]).
//!
//! The agent sends them inside its rollout stream ([`crate::agent::RolloutEvent`]); gitd relays
//! them into `git push` output and, to a CLI that asks for a stream of a change
//! (`Accept: application/x-ndjson`), as [`ChangeEvent`]s. A reader that meets an event it does
//! not know skips it ([`is_unknown_event`]), so a newer agent or gitd does not break an older
//! reader.

use std::collections::HashMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;

/// What a rollout waits for, and on which instance (`web.1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitSubject {
    /// A new non-web instance to be up.
    Start { instance: String },
    /// A new web instance to answer its health probe on `$PORT`.
    Answer { instance: String },
    /// Traefik to route to a new, healthy web instance.
    Route { instance: String },
    /// A new web instance to pass the app's own startup checks (`app.json`).
    Checks { instance: String },
    /// Traefik to stop routing to an old web instance.
    Unroute { instance: String },
    /// An old web instance's open requests to finish.
    Drain { instance: String },
    /// A new add-on's service (`postgres-1a2b3c`) to accept connections with its credentials.
    Connections { addon: String },
}

/// One report of a wait that goes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub subject: WaitSubject,
    pub elapsed_secs: u64,
    /// When the wait gives up (and, for a new instance, the change fails).
    pub limit_secs: u64,
}

impl fmt::Display for Waiting {
    /// `Waiting for web.1 to answer on $PORT (12 s of 60 s)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.subject {
            WaitSubject::Start { instance } => write!(f, "Waiting for {instance} to start")?,
            WaitSubject::Answer { instance } => {
                write!(f, "Waiting for {instance} to answer on $PORT")?
            }
            WaitSubject::Route { instance } => {
                write!(f, "Waiting for Traefik to route to {instance}")?
            }
            WaitSubject::Checks { instance } => {
                write!(f, "Waiting for {instance} to pass its health checks")?
            }
            WaitSubject::Unroute { instance } => {
                write!(f, "Waiting for Traefik to stop routing to {instance}")?
            }
            WaitSubject::Drain { instance } => write!(f, "Draining {instance}")?,
            WaitSubject::Connections { addon } => {
                write!(f, "Waiting for {addon} to accept connections")?
            }
        }
        write!(f, " ({} s of {} s)", self.elapsed_secs, self.limit_secs)
    }
}

/// What a change shows while it runs, besides its own steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Progress {
    Waiting(Waiting),
    /// One of the first lines a new instance printed while it started (terminal escapes and
    /// control characters removed by the agent).
    Output {
        instance: String,
        line: String,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Waiting(waiting) => waiting.fmt(f),
            Progress::Output { instance, line } => write!(f, "{instance}: {line}"),
        }
    }
}

/// One NDJSON line of a change streamed to the CLI: progress while it runs, then exactly one
/// `done` (the answer the plain JSON request would have had) or `failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeEvent<T> {
    Progress(Progress),
    Done(T),
    Failed(ErrorBody),
}

/// A wait as a rollout reports it.
impl From<Waiting> for crate::agent::RolloutEvent {
    fn from(waiting: Waiting) -> Self {
        crate::agent::RolloutEvent::Waiting(waiting)
    }
}

/// A wait as a change streamed to its requester reports it.
impl<T> From<Waiting> for ChangeEvent<T> {
    fn from(waiting: Waiting) -> Self {
        ChangeEvent::Progress(Progress::Waiting(waiting))
    }
}

/// The names of [`ChangeEvent`]'s kinds on the wire.
const CHANGE_EVENT_KINDS: [&str; 3] = ["progress", "done", "failed"];
/// The names of [`Progress`]'s kinds on the wire.
const PROGRESS_KINDS: [&str; 2] = ["waiting", "output"];

/// Whether a [`ChangeEvent`] line that did not parse is a newer server's kind of event or of
/// progress (see [`is_unknown_event`]), to be skipped.
pub fn is_unknown_change_event(line: &[u8]) -> bool {
    if is_unknown_event(line, &CHANGE_EVENT_KINDS) {
        return true;
    }
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::Object(event)) => event
            .get("progress")
            .is_some_and(|inner| is_unknown_event(inner.to_string().as_bytes(), &PROGRESS_KINDS)),
        _ => false,
    }
}

/// Seconds between two plain lines about the same wait.
pub const PLAIN_WAIT_INTERVAL_SECS: u64 = 5;

/// Decides which waits a plain output (a pipe, CI, `git push`) shows: the first report of
/// each subject, then one per [`PLAIN_WAIT_INTERVAL_SECS`] of the wait's own time, so a long
/// wait is a handful of lines rather than one every two seconds.
#[derive(Debug, Default)]
pub struct WaitThrottle {
    shown: HashMap<WaitSubject, u64>,
}

impl WaitThrottle {
    /// Whether `waiting` is to be shown (and, if so, remembered as shown).
    pub fn admit(&mut self, waiting: &Waiting) -> bool {
        let due = self
            .shown
            .get(&waiting.subject)
            .is_none_or(|&last| waiting.elapsed_secs >= last + PLAIN_WAIT_INTERVAL_SECS);
        if due {
            self.shown
                .insert(waiting.subject.clone(), waiting.elapsed_secs);
        }
        due
    }
}

/// Whether an NDJSON line that did not parse as a known event is a well-formed event of a kind
/// this reader does not know (a JSON string, or an object with one key, neither of them
/// among `known`): a newer sender's, to be skipped rather than treated as a broken stream.
pub fn is_unknown_event(line: &[u8], known: &[&str]) -> bool {
    match serde_json::from_slice::<serde_json::Value>(line) {
        Ok(serde_json::Value::String(kind)) => !known.contains(&kind.as_str()),
        Ok(serde_json::Value::Object(map)) if map.len() == 1 => map
            .keys()
            .next()
            .is_some_and(|kind| !known.contains(&kind.as_str())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn waiting(subject: WaitSubject, elapsed_secs: u64) -> Waiting {
        Waiting {
            subject,
            elapsed_secs,
            limit_secs: 60,
        }
    }

    fn answer(instance: &str) -> WaitSubject {
        WaitSubject::Answer {
            instance: instance.to_owned(),
        }
    }

    #[test]
    fn a_wait_reads_as_what_for_and_how_long() {
        assert_eq!(
            waiting(answer("web.1"), 12).to_string(),
            "Waiting for web.1 to answer on $PORT (12 s of 60 s)"
        );
        let drain = Waiting {
            subject: WaitSubject::Drain {
                instance: "web.2".into(),
            },
            elapsed_secs: 3,
            limit_secs: 30,
        };
        assert_eq!(drain.to_string(), "Draining web.2 (3 s of 30 s)");
        let connections = Waiting {
            subject: WaitSubject::Connections {
                addon: "postgres-1a2b3c".into(),
            },
            elapsed_secs: 4,
            limit_secs: 120,
        };
        assert_eq!(
            connections.to_string(),
            "Waiting for postgres-1a2b3c to accept connections (4 s of 120 s)"
        );
        let output = Progress::Output {
            instance: "web.1".into(),
            line: "listening".into(),
        };
        assert_eq!(output.to_string(), "web.1: listening");
    }

    #[test]
    fn events_keep_their_wire_shape() {
        let event: ChangeEvent<u32> =
            ChangeEvent::Progress(Progress::Waiting(waiting(answer("web.1"), 2)));
        let json = serde_json::to_string(&event).unwrap();
        assert_eq!(
            json,
            r#"{"progress":{"waiting":{"subject":{"kind":"answer","instance":"web.1"},"elapsed_secs":2,"limit_secs":60}}}"#
        );
        assert_eq!(
            serde_json::from_str::<ChangeEvent<u32>>(&json).unwrap(),
            event
        );
        let failed: ChangeEvent<()> =
            ChangeEvent::Failed(ErrorBody::new(ErrorCode::DeployFailed, "no"));
        let json = serde_json::to_string(&failed).unwrap();
        assert_eq!(
            serde_json::from_str::<ChangeEvent<()>>(&json).unwrap(),
            failed
        );
        assert_eq!(
            serde_json::to_string(&ChangeEvent::<()>::Done(())).unwrap(),
            r#"{"done":null}"#
        );
    }

    #[test]
    fn rollout_events_old_and_new_read_back() {
        use crate::agent::RolloutEvent;
        for old in [
            r#"{"line":"Starting web.1… healthy"}"#,
            r#""serving""#,
            r#""done""#,
        ] {
            serde_json::from_str::<RolloutEvent>(old).unwrap();
        }
        let new = [
            RolloutEvent::Waiting(waiting(answer("web.1"), 4)),
            RolloutEvent::Output {
                instance: "web.1".into(),
                line: "booting".into(),
            },
        ];
        for event in new {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<RolloutEvent>(&json).unwrap(), event);
            // What a reader from before these kinds makes of them.
            assert!(is_unknown_event(
                json.as_bytes(),
                &["line", "serving", "done", "failed"]
            ));
            assert!(!is_unknown_event(json.as_bytes(), &RolloutEvent::KINDS));
        }
    }

    #[test]
    fn unknown_kinds_are_told_from_broken_lines() {
        let known = ["line", "done", "serving"];
        assert!(is_unknown_event(br#"{"sparkles":{"a":1}}"#, &known));
        assert!(is_unknown_event(br#""sparkles""#, &known));
        assert!(!is_unknown_event(br#"{"line":3}"#, &known));
        assert!(!is_unknown_event(br#""done""#, &known));
        assert!(!is_unknown_event(b"{not json", &known));
        assert!(!is_unknown_event(br#"{"a":1,"b":2}"#, &known));
        assert!(is_unknown_change_event(br#"{"progress":{"sparkles":1}}"#));
        assert!(is_unknown_change_event(br#"{"sparkles":1}"#));
        assert!(!is_unknown_change_event(br#"{"progress":{"waiting":1}}"#));
        assert!(!is_unknown_change_event(br#"{"done":{"#));
    }

    #[test]
    fn plain_output_shows_each_wait_once_per_interval() {
        let mut throttle = WaitThrottle::default();
        let shown: Vec<u64> = [1, 3, 5, 7, 9, 11, 13]
            .into_iter()
            .filter(|&secs| throttle.admit(&waiting(answer("web.1"), secs)))
            .collect();
        assert_eq!(shown, [1, 7, 13]);
        assert!(
            throttle.admit(&waiting(answer("web.2"), 13)),
            "another subject has a throttle of its own"
        );
    }
}

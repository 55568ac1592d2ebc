//! One-off containers (the agent's API, bearer-token protected like the rest of it): a command
//! run to completion in a container of a release's image and config, beside the app's
//! processes but not one of them. The release phase runs the Procfile's `release` command
//! this way, once per release, before anything switches.
//!
//! gitd's API: `POST /v1/apps/{app}/run/detached` with a [`RunRequest`] starts the command in
//! a one-off container of the current release and answers 201 [`RunStarted`] (`run.N`) once it
//! runs; its output goes to `paas logs` as `run.N`.
//!
//! The agent's: `POST /v1/apps/{app}/oneoff` with a [`OneOffSpec`] streams NDJSON [`OneOffEvent`]s: one
//! `started`, the command's `output` lines as they come, then exactly one `exited`,
//! `timed_out` or `failed`. The container is on the app's network with the app's config,
//! hardened and limited like the app's processes, labelled as the app's (`paas.app`) but never
//! routed and never part of the formation, and removed when it ends. A client that hangs up
//! before the end has the container killed and removed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent::{ContainerOptions, LogStream};
use crate::resources::ProcessResources;

/// The longest a one-off container may run, in seconds (an hour).
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// Which kind of one-off a container is; its name and `paas.process` label say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneOffKind {
    /// The release phase's command (`release.1` in the logs).
    Release,
    /// A command a user runs (`paas run:detached`), `run.N`: the agent numbers them, the
    /// lowest number no running one has.
    Run,
    /// A run of one of `app.json`'s cron jobs, `cron.N`, numbered as `run` is.
    Cron,
}

impl OneOffKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OneOffKind::Release => "release",
            OneOffKind::Run => "run",
            OneOffKind::Cron => "cron",
        }
    }
}

/// What to run, and for how long at most.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OneOffSpec {
    pub kind: OneOffKind,
    /// The release whose image and config it runs with; the container is labelled `v<release>`.
    pub release: u32,
    pub image: String,
    /// The release's config vars; the agent adds `PORT`, `PAAS_APP`, `PAAS_RELEASE` and
    /// `PAAS_PROCESS` as for every process.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Shell command, run with `/bin/sh -c` as Procfile commands are.
    pub command: String,
    /// Killed (and reported `timed_out`) after this many seconds, 1 to [`MAX_TIMEOUT_SECS`].
    pub timeout_secs: u64,
    #[serde(default)]
    pub container: ContainerOptions,
    /// The app's volumes, mounted as in its process instances.
    #[serde(default)]
    pub volumes: Vec<crate::storage::Mount>,
    /// Its memory and CPU limits (`paas run --size`); what is `None` is the agent's default,
    /// and the agent refuses sizes above its maximums as for process types.
    #[serde(default, skip_serializing_if = "ProcessResources::is_default")]
    pub resources: ProcessResources,
}

/// What a one-off container reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OneOffEvent {
    /// The container runs as instance `index` of its kind (`run.2`); `name` is Docker's name.
    Started { name: String, index: u32 },
    /// One line of its output, without the line break (bytes that are not UTF-8 become U+FFFD).
    Output { stream: LogStream, line: String },
    /// The command ended with this status.
    Exited { status: i64 },
    /// The command ran longer than its `timeout_secs` and was killed.
    TimedOut { after_secs: u64 },
    /// It could not run (the image is missing, Docker failed); `reason` is one line.
    Failed { reason: String },
}

impl OneOffEvent {
    /// Whether this is the one event that ends the stream.
    pub fn is_last(&self) -> bool {
        matches!(
            self,
            OneOffEvent::Exited { .. } | OneOffEvent::TimedOut { .. } | OneOffEvent::Failed { .. }
        )
    }
}

/// The longest a command may be, in bytes, its arguments joined.
pub const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// `POST /v1/apps/{app}/run/detached`: the command (its words joined by spaces and run with
/// `/bin/sh -c`, as Heroku does), config vars set for this run only and its size
/// (`--size`, [`crate::resources::parse_size`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunRequest {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<crate::ConfigKey, String>,
    #[serde(default, skip_serializing_if = "ProcessResources::is_default")]
    pub size: ProcessResources,
}

impl RunRequest {
    /// The shell command line, or why there is none: no words, a NUL byte, or too long.
    pub fn command_line(&self) -> Result<String, String> {
        let line = self.command.join(" ");
        if line.trim().is_empty() {
            return Err("No command given: paas run:detached -- COMMAND".to_owned());
        }
        if line.contains('\0') {
            return Err("The command contains a NUL byte.".to_owned());
        }
        if line.len() > MAX_COMMAND_BYTES {
            return Err(format!("The command is over {MAX_COMMAND_BYTES} bytes."));
        }
        Ok(line)
    }
}

/// The one-off a detached run started: `name` is `run.N`, as `paas logs` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunStarted {
    pub name: String,
    pub release: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_back_as_written_and_only_outcomes_end_the_stream() {
        let events = [
            OneOffEvent::Started {
                name: "paas-hello-v2-release-1".into(),
                index: 1,
            },
            OneOffEvent::Output {
                stream: LogStream::Stderr,
                line: "migrating".into(),
            },
            OneOffEvent::Exited { status: 3 },
            OneOffEvent::TimedOut { after_secs: 5 },
            OneOffEvent::Failed {
                reason: "no such image".into(),
            },
        ];
        for event in &events {
            let text = serde_json::to_string(event).unwrap();
            assert_eq!(&serde_json::from_str::<OneOffEvent>(&text).unwrap(), event);
        }
        let last: Vec<bool> = events.iter().map(OneOffEvent::is_last).collect();
        assert_eq!(last, [false, false, true, true, true]);
        assert_eq!(
            serde_json::to_string(&events[2]).unwrap(),
            r#"{"exited":{"status":3}}"#
        );
    }

    #[test]
    fn a_run_is_its_words_joined_and_never_empty() {
        let run = |words: &[&str]| RunRequest {
            command: words.iter().map(|w| (*w).to_owned()).collect(),
            env: BTreeMap::new(),
            size: ProcessResources::default(),
        };
        assert_eq!(
            run(&["echo", "hi", "$HOME"]).command_line(),
            Ok("echo hi $HOME".to_owned())
        );
        assert!(run(&[]).command_line().is_err());
        assert!(run(&["  "]).command_line().is_err());
        assert!(run(&["a\0b"]).command_line().is_err());
        let long = "x".repeat(MAX_COMMAND_BYTES + 1);
        assert!(run(&[&long]).command_line().is_err());
        let bad: Result<RunRequest, _> =
            serde_json::from_str(r#"{"command":["x"],"env":{"A-B":"1"}}"#);
        assert!(bad.is_err(), "env keys are config keys");
    }
}

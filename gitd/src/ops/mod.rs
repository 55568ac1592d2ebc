//! Operations: **the only code that changes an app** (what it runs, with which config, at
//! which scale, behind which domains). HTTP handlers, the deploy socket and start-up recovery
//! call in here; nothing here parses requests or writes responses, and nothing else changes
//! an app. The store keeps the record; the agent (through its client) runs the containers.
//!
//! Every operation runs detached from its requester ([`Op`]): it holds the app's lock, moved
//! into a task of its own, and reports to the requester through a channel while the
//! requester listens. A requester that goes away (a client hang-up, a dropped connection)
//! never cancels an operation half-way; the next change to the app waits for the lock until
//! the operation has finished, the old release's drain included.
//!
//! Changes that make a release (a push, config set/unset, a rollback, a resize, a storage mount
//! or unmount) all go through one lifecycle ([`release`]); scale, restart, domains, features and
//! sticky sessions re-roll the current release; maintenance mode only re-routes; `ps:stop`
//! only stops instances. Errors are
//! [`OpsError`]; HTTP maps them to API errors in one place.

pub mod addons;
pub mod apps;
pub mod attach;
pub mod backups;
pub mod changes;
pub mod config;
pub mod cron;
mod error;
pub mod maintenance;
pub mod push;
pub mod recovery;
pub mod release;
pub mod release_phase;
pub mod resize;
pub mod rollback;
pub mod rollout;
pub mod run;
pub mod sticky;
pub mod stop;
pub mod storage;

use std::sync::Mutex;

use paas_api::ansi::strip_ansi;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use error::OpsError;

use crate::state::{HeldLock, SharedState};

/// What a running operation reports to whoever asked for it, and keeps as its transcript
/// (the release's output). Lines are Heroku-style: `-----> ` for steps, seven spaces for
/// details, ` !     ` for what went wrong, `=====> ` for the outcome.
pub struct Reporter {
    reports: mpsc::UnboundedSender<Report>,
    transcript: Mutex<Vec<String>>,
}

/// What the requester hears, in the order it happened.
enum Report {
    Line(String),
    /// The change serves; see [`Followed::Serving`].
    Serving,
}

impl Reporter {
    /// The transcript keeps the line without terminal escapes: `releases:output` is read in
    /// pipes and files too. The requester gets it as written (a `git push` on a terminal
    /// shows the build's colours).
    fn line(&self, line: String) {
        self.transcript
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(strip_ansi(&line).into_owned());
        // Nobody listening (the requester went away, or was answered already) is fine.
        let _ = self.reports.send(Report::Line(line));
    }

    pub fn step(&self, text: &str) {
        self.line(format!("-----> {text}"));
    }

    pub fn detail(&self, text: &str) {
        self.line(format!("       {text}"));
    }

    pub fn fail(&self, text: &str) {
        self.line(format!(" !     {text}"));
    }

    pub fn banner(&self, text: &str) {
        self.line(format!("=====> {text}"));
    }

    /// Tells the requester the change serves; what follows (draining, recording) goes on
    /// without it.
    fn serving(&self) {
        let _ = self.reports.send(Report::Serving);
    }

    /// Every line reported so far, one per line.
    fn transcript(&self) -> String {
        self.transcript
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .join("\n")
    }

    /// Resolves once the requester stopped listening.
    async fn requester_gone(&self) {
        self.reports.closed().await
    }
}

/// A running operation. Dropping it leaves the operation running to its end.
pub struct Op<T> {
    reports: mpsc::UnboundedReceiver<Report>,
    task: JoinHandle<Result<T, OpsError>>,
}

/// How far [`Op::follow`] saw an operation get.
pub enum Followed<T> {
    /// The change serves; the operation goes on (draining, recording) detached.
    Serving,
    /// The operation ended before it reported serving (a failure, or a change that had
    /// nothing to drain).
    Finished(Result<T, OpsError>),
}

/// Runs `work` detached under the app's lock: `lock` if the requester already holds it,
/// else the lock of `app`, waited for inside the task.
pub fn spawn<T, F, W>(state: &SharedState, app: &str, lock: Option<HeldLock>, work: W) -> Op<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, OpsError>> + Send + 'static,
    W: FnOnce(Reporter) -> F + Send + 'static,
{
    let (sender, reports) = mpsc::unbounded_channel();
    let reporter = Reporter {
        reports: sender,
        transcript: Mutex::default(),
    };
    let state = state.clone();
    let app = app.to_owned();
    let task = tokio::spawn(async move {
        let _held = match lock {
            Some(held) => held,
            None => state.app_locks.acquire(&app).await,
        };
        work(reporter).await
    });
    Op { reports, task }
}

impl<T> Op<T> {
    /// Waits for the whole operation, the old release's drain included.
    pub async fn finished(self) -> Result<T, OpsError> {
        let Op { reports, task } = self;
        let outcome = joined(task).await;
        drop(reports);
        outcome
    }

    /// Hands each line to `on_line` as it is reported, until the change serves or the
    /// operation ends. Once this returns [`Followed::Serving`], later lines go to the
    /// transcript only.
    pub async fn follow(mut self, mut on_line: impl FnMut(String)) -> Followed<T> {
        while let Some(report) = self.reports.recv().await {
            match report {
                Report::Line(line) => on_line(line),
                Report::Serving => return Followed::Serving,
            }
        }
        Followed::Finished(joined(self.task).await)
    }
}

async fn joined<T>(task: JoinHandle<Result<T, OpsError>>) -> Result<T, OpsError> {
    task.await.unwrap_or_else(|err| {
        tracing::error!(error = %err, "an operation panicked");
        Err(OpsError::Panicked)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transcript_keeps_lines_without_terminal_escapes() {
        let (sender, mut reports) = mpsc::unbounded_channel();
        let reporter = Reporter {
            reports: sender,
            transcript: Mutex::default(),
        };
        reporter.detail("\u{1b}[1;32mSuccessfully built\u{1b}[0m abc");
        reporter.step("\u{1b}]0;title\u{7}Release v2 created");
        assert_eq!(
            reporter.transcript(),
            "       Successfully built abc\n-----> Release v2 created"
        );
        let Ok(Report::Line(relayed)) = reports.try_recv() else {
            panic!("the requester hears every line");
        };
        assert_eq!(
            relayed,
            "       \u{1b}[1;32mSuccessfully built\u{1b}[0m abc"
        );
    }
}

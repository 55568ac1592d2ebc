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
use paas_api::progress::{Progress, WaitThrottle};
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
    /// What the change waits for, or a line a new instance printed; see [`Reporter::progress`].
    Progress(Progress),
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

    /// Relays what the change waits for and what new instances print. A line an instance
    /// printed is kept in the transcript (as a detail); waits are not, they are over.
    pub fn progress(&self, progress: Progress) {
        if let Progress::Output { .. } = &progress {
            self.transcript
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(progress_line(&progress));
        }
        let _ = self.reports.send(Report::Progress(progress));
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
    /// operation ends; waits as plain lines, throttled ([`WaitThrottle`]). Once this returns
    /// [`Followed::Serving`], later lines go to the transcript only.
    pub async fn follow(mut self, mut on_line: impl FnMut(String)) -> Followed<T> {
        let mut throttle = WaitThrottle::default();
        while let Some(report) = self.reports.recv().await {
            match report {
                Report::Line(line) => on_line(line),
                Report::Progress(Progress::Waiting(waiting)) if !throttle.admit(&waiting) => {}
                Report::Progress(progress) => on_line(progress_line(&progress)),
                Report::Serving => return Followed::Serving,
            }
        }
        Followed::Finished(joined(self.task).await)
    }

    /// Hands what the change waits for and what new instances print to `on_progress` until
    /// the operation ends (its drain included), and its result; its other lines go to the
    /// transcript only.
    pub async fn relay(mut self, mut on_progress: impl FnMut(Progress)) -> Result<T, OpsError> {
        while let Some(report) = self.reports.recv().await {
            if let Report::Progress(progress) = report {
                on_progress(progress);
            }
        }
        joined(self.task).await
    }
}

/// A wait as a step (`-----> Waiting for web.1 …`), a new instance's line as a detail
/// (`       web.1: …`), as the other lines of a push are.
fn progress_line(progress: &Progress) -> String {
    match progress {
        Progress::Waiting(_) => format!("-----> {progress}"),
        Progress::Output { .. } => format!("       {progress}"),
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

    #[tokio::test]
    async fn a_push_hears_waits_throttled_and_instance_lines_as_details() {
        use paas_api::progress::{WaitSubject, Waiting};
        let (sender, reports) = mpsc::unbounded_channel();
        let reporter = Reporter {
            reports: sender,
            transcript: Mutex::default(),
        };
        let answer = |elapsed_secs| {
            Progress::Waiting(Waiting {
                subject: WaitSubject::Answer {
                    instance: "web.1".into(),
                },
                elapsed_secs,
                limit_secs: 60,
            })
        };
        reporter.progress(Progress::Output {
            instance: "web.1".into(),
            line: "booting".into(),
        });
        for elapsed in [1, 3, 5, 7] {
            reporter.progress(answer(elapsed));
        }
        reporter.step("Starting web.1 (paas-shop-v2-web-1)… healthy");
        let transcript = reporter.transcript();
        drop(reporter);
        let op = Op {
            reports,
            task: tokio::spawn(async { Ok(()) }),
        };
        let mut heard = Vec::new();
        let Followed::Finished(Ok(())) = op.follow(|line| heard.push(line)).await else {
            panic!("the operation finished");
        };
        assert_eq!(
            heard,
            [
                "       web.1: booting",
                "-----> Waiting for web.1 to answer on $PORT (1 s of 60 s)",
                "-----> Waiting for web.1 to answer on $PORT (7 s of 60 s)",
                "-----> Starting web.1 (paas-shop-v2-web-1)… healthy",
            ]
        );
        assert_eq!(
            transcript,
            "       web.1: booting\n-----> Starting web.1 (paas-shop-v2-web-1)… healthy",
            "waits are not kept"
        );
    }

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

//! A change's action line on stderr while the server carries it out (`Setting FOO on ⬢ shop...
//! done, v3`) and what the change waits for meanwhile ([`Progress`]: a new instance's health
//! check, Traefik, a drain, and the first lines new instances print).
//!
//! On a terminal the action line is a spinner whose text is the latest wait, with the
//! instances' lines printed above it. Elsewhere (pipes, CI) it is plain lines: each wait
//! throttled ([`WaitThrottle`]), so a log is not flooded, then the action line once the change
//! succeeded.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use paas_api::progress::{Progress, WaitThrottle};

use crate::output::tenant_text;

/// Runs `work`, which hands the server's progress to the callback it gets, as a Heroku-style
/// action line; `work` returns its result and a suffix for `done` (e.g. `, v3`).
pub fn action<T>(
    message: &str,
    work: impl FnOnce(&mut dyn FnMut(Progress)) -> anyhow::Result<(T, String)>,
) -> anyhow::Result<T> {
    let mut stderr = std::io::stderr();
    if !stderr.is_terminal() {
        let mut plain = Plain::new(std::io::stderr());
        let (value, suffix) = work(&mut |progress| plain.show(&progress))?;
        let _ = writeln!(stderr, "{message}... done{suffix}");
        return Ok(value);
    }
    let spinner = ProgressBar::new_spinner();
    spinner.set_style(
        ProgressStyle::with_template("{msg}... {spinner}").expect("the template is valid"),
    );
    spinner.set_message(message.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(100));
    let outcome = work(&mut |progress| match &progress {
        Progress::Waiting(waiting) => spinner.set_message(format!("{message}: {waiting}")),
        Progress::Output { .. } => spinner.println(tenant_text(&progress.to_string(), true)),
    });
    spinner.finish_and_clear();
    match outcome {
        Ok((value, suffix)) => {
            let _ = writeln!(stderr, "{message}... done{suffix}");
            Ok(value)
        }
        Err(error) => {
            let _ = writeln!(stderr, "{message}... !");
            Err(error)
        }
    }
}

/// Progress as plain lines, for what is not a terminal.
struct Plain<W: Write> {
    out: W,
    throttle: WaitThrottle,
}

impl<W: Write> Plain<W> {
    fn new(out: W) -> Self {
        Plain {
            out,
            throttle: WaitThrottle::default(),
        }
    }

    fn show(&mut self, progress: &Progress) {
        if let Progress::Waiting(waiting) = progress
            && !self.throttle.admit(waiting)
        {
            return;
        }
        let _ = writeln!(self.out, "{}", tenant_text(&progress.to_string(), false));
    }
}

#[cfg(test)]
mod tests {
    use paas_api::progress::{WaitSubject, Waiting};

    use super::*;

    fn waiting(subject: WaitSubject, elapsed_secs: u64, limit_secs: u64) -> Progress {
        Progress::Waiting(Waiting {
            subject,
            elapsed_secs,
            limit_secs,
        })
    }

    #[test]
    fn plain_output_of_a_rollout() {
        let web1 = || "web.1".to_owned();
        let mut script = vec![Progress::Output {
            instance: web1(),
            line: "booting on 5000".into(),
        }];
        script.extend(
            (0..7).map(|n| waiting(WaitSubject::Answer { instance: web1() }, 1 + 2 * n, 60)),
        );
        script.push(Progress::Output {
            instance: web1(),
            line: "listening".into(),
        });
        script.push(waiting(WaitSubject::Route { instance: web1() }, 15, 60));
        script.extend((0..4).map(|n| {
            waiting(
                WaitSubject::Drain {
                    instance: "web.2".into(),
                },
                1 + 2 * n,
                30,
            )
        }));
        let mut plain = Plain::new(Vec::new());
        for progress in &script {
            plain.show(progress);
        }
        insta::assert_snapshot!(String::from_utf8(plain.out).unwrap());
    }
}

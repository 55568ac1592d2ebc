//! What a rollout tells while it waits: a [`RolloutEvent::Waiting`] about each wait that lasts
//! longer than a second, every two seconds until it ends ([`while_waiting`], which a new
//! add-on's wait for connections reports through too, into its own stream), and the first
//! lines a new instance prints while it starts ([`relay_output`]), cleaned of terminal escapes
//! and bounded in count and length: they are the tenant's text.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::Response;
use futures::stream::{BoxStream, StreamExt};
use paas_api::agent::RolloutEvent;
use paas_api::ansi::strip_ansi;
use paas_api::progress::{WaitSubject, Waiting};
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// A wait shorter than this goes unmentioned.
const FIRST_REPORT: Duration = Duration::from_secs(1);
/// How often a wait that goes on is reported again.
const REPORT_INTERVAL: Duration = Duration::from_secs(2);
/// Lines of a starting instance's output relayed, at most.
pub const RELAYED_LINES: usize = 20;
/// Characters of one relayed line, at most.
const RELAYED_LINE_CHARS: usize = 200;

/// Runs `wait` and, while it runs, reports `subject` (`elapsed` counted from `begun`) once a
/// second has passed and every two seconds after. A report the caller has no room for is
/// dropped: the next one says the same, later.
pub async fn while_waiting<T, E: From<Waiting>>(
    events: &mpsc::Sender<E>,
    subject: WaitSubject,
    begun: Instant,
    limit_secs: u64,
    wait: impl Future<Output = T>,
) -> T {
    let mut wait = std::pin::pin!(wait);
    let mut next = begun + FIRST_REPORT;
    loop {
        tokio::select! {
            done = &mut wait => return done,
            () = tokio::time::sleep_until(next) => {
                let _ = events.try_send(E::from(Waiting {
                    subject: subject.clone(),
                    elapsed_secs: begun.elapsed().as_secs(),
                    limit_secs,
                }));
                next += REPORT_INTERVAL;
            }
        }
    }
}

/// What `events` receives, as the NDJSON body of a streamed answer (a rollout's, a new
/// add-on's), one event per line, until its senders are gone.
pub fn ndjson<T: Serialize + Send + 'static>(mut events: mpsc::Receiver<T>) -> Response {
    let lines = futures::stream::poll_fn(move |cx| events.poll_recv(cx)).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("streamed events always serialize");
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(lines))
        .expect("static headers are valid")
}

/// Relays the first [`RELAYED_LINES`] lines of `output` as `instance`'s, then waits for
/// ever: it is meant to run beside a wait and to end with it.
pub async fn relay_output(
    events: &mpsc::Sender<RolloutEvent>,
    instance: &str,
    output: BoxStream<'static, String>,
) -> Infallible {
    let mut lines = output.filter_map(|line| std::future::ready(relayable(&line)));
    let mut relayed = 0;
    while relayed < RELAYED_LINES
        && let Some(line) = lines.next().await
    {
        let _ = events
            .send(RolloutEvent::Output {
                instance: instance.to_owned(),
                line,
            })
            .await;
        relayed += 1;
    }
    std::future::pending().await
}

/// `line` as it may be shown on someone's terminal: without escape sequences or other
/// control characters, at most [`RELAYED_LINE_CHARS`] long; `None` when nothing is left.
fn relayable(line: &str) -> Option<String> {
    let clean: String = strip_ansi(line)
        .chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(RELAYED_LINE_CHARS)
        .collect();
    let clean = clean.trim_end();
    (!clean.is_empty()).then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relayed_lines_are_plain_text_and_bounded() {
        assert_eq!(
            relayable("\u{1b}[31mlistening\u{1b}[0m on\t5000\r"),
            Some("listening on 5000".to_owned())
        );
        assert_eq!(relayable("\u{1b}]0;title\u{7}  \r"), None);
        assert_eq!(
            relayable(&"x".repeat(500)).unwrap().len(),
            RELAYED_LINE_CHARS
        );
    }

    /// The waits reported while `wait` ran.
    async fn reported(wait: Duration) -> Vec<Waiting> {
        let (events, mut received) = mpsc::channel(16);
        let subject = WaitSubject::Answer {
            instance: "web.1".into(),
        };
        while_waiting(
            &events,
            subject,
            Instant::now(),
            60,
            tokio::time::sleep(wait),
        )
        .await;
        drop(events);
        let mut reported = Vec::new();
        while let Some(event) = received.recv().await {
            let RolloutEvent::Waiting(waiting) = event else {
                panic!("only waits are reported: {event:?}");
            };
            reported.push(waiting);
        }
        reported
    }

    #[tokio::test]
    async fn a_wait_is_reported_once_it_lasts_over_a_second() {
        assert_eq!(reported(Duration::from_millis(100)).await, []);
        let reported = reported(Duration::from_millis(1500)).await;
        assert!(!reported.is_empty());
        for waiting in reported {
            assert_eq!(
                waiting.to_string(),
                format!(
                    "Waiting for web.1 to answer on $PORT ({} s of 60 s)",
                    waiting.elapsed_secs
                )
            );
            assert!(waiting.elapsed_secs >= 1, "{waiting}");
        }
    }

    #[tokio::test]
    async fn only_the_first_lines_are_relayed() {
        let (events, mut received) = mpsc::channel(64);
        let output = futures::stream::iter((1..=50).map(|n| format!("line {n}"))).boxed();
        let relay = relay_output(&events, "web.1", output);
        let _ = tokio::time::timeout(Duration::from_millis(200), relay).await;
        drop(events);
        let mut lines = Vec::new();
        while let Some(RolloutEvent::Output { instance, line }) = received.recv().await {
            assert_eq!(instance, "web.1");
            lines.push(line);
        }
        assert_eq!(lines.len(), RELAYED_LINES);
        assert_eq!(lines[0], "line 1");
    }
}

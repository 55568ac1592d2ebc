//! What of the manager's Engine API the logs need and bollard does not wrap, as plain HTTP
//! requests over the agent's Docker socket: a Swarm task's output (`GET /tasks/{id}/logs`,
//! [`task_logs`]) and the tasks' addresses on their networks (`NetworksAttachments` of
//! `GET /tasks`, which bollard's task model leaves out: [`task_addresses`]).
//!
//! The manager fetches a task's lines from whichever node runs (or ran) it, so this reads
//! every node's output. The answer is Docker's multiplexed stream, as for a container's logs:
//! frames of an 8-byte header (the stream, three zero bytes, the length big-endian) and that
//! many bytes, [`Demux`]ed here into bollard's [`LogOutput`] for the same line assembly as
//! containers'. When a node cannot send its part, the engine says so inside the stream, as a
//! frame without a timestamp beginning `Error grabbing logs:` ([`engine_error`]); a line of
//! the app always begins with its timestamp, so an app cannot forge one.

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::Task;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};

use crate::builds::docker_socket;

/// What the engine writes in place of the lines it could not fetch.
const ENGINE_ERROR: &[u8] = b"Error grabbing logs: ";

#[derive(Debug, thiserror::Error)]
pub enum SwarmApiError {
    #[error("Docker: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("Docker answered {status}: {message}")]
    Refused { status: u16, message: String },
}

/// Which of a task's lines to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct TaskLogsOptions {
    /// Keep the stream open for new lines.
    pub follow: bool,
    /// The last this many lines only (all when `None`).
    pub tail: Option<usize>,
    /// Lines logged at or after this Unix time (seconds, nanoseconds), if any.
    pub since: Option<(i64, u32)>,
}

impl TaskLogsOptions {
    fn query(&self) -> Vec<(&'static str, String)> {
        let mut query = vec![
            ("stdout", "1".to_owned()),
            ("stderr", "1".to_owned()),
            ("timestamps", "1".to_owned()),
            ("follow", if self.follow { "1" } else { "0" }.to_owned()),
            (
                "tail",
                self.tail
                    .map_or_else(|| "all".to_owned(), |tail| tail.to_string()),
            ),
        ];
        if let Some((seconds, nanos)) = self.since {
            query.push(("since", format!("{seconds}.{nanos:09}")));
        }
        query
    }
}

/// `GET path?query` of the agent's engine, refused unless it answers 2xx.
async fn get(
    docker: &Docker,
    path: &str,
    query: &[(&str, String)],
) -> Result<reqwest::Response, SwarmApiError> {
    let client = reqwest::Client::builder()
        .unix_socket(docker_socket())
        .build()?;
    let version = docker.client_version();
    let url = format!(
        "http://docker/v{}.{}{path}",
        version.major_version, version.minor_version
    );
    let response = client.get(url).query(query).send().await?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| value["message"].as_str().map(str::to_owned))
        .unwrap_or(body);
    Err(SwarmApiError::Refused {
        status: status.as_u16(),
        message: message.trim().to_owned(),
    })
}

/// The tasks of service `service` (its name or id), each with its address on `network`
/// (without the prefix length) when it has one there.
pub async fn task_addresses(
    docker: &Docker,
    service: &str,
    network: &str,
) -> Result<Vec<(Task, Option<String>)>, SwarmApiError> {
    let filters = serde_json::json!({ "service": [service] }).to_string();
    let listed: Vec<serde_json::Value> = get(docker, "/tasks", &[("filters", filters)])
        .await?
        .json()
        .await?;
    Ok(listed
        .into_iter()
        .filter_map(|value| {
            let address = address_on(&value, network);
            Some((serde_json::from_value(value).ok()?, address))
        })
        .collect())
}

/// A task's address on `network`, from its `NetworksAttachments`.
fn address_on(task: &serde_json::Value, network: &str) -> Option<String> {
    task["NetworksAttachments"]
        .as_array()?
        .iter()
        .find(|attachment| attachment["Network"]["Spec"]["Name"] == network)?["Addresses"]
        .as_array()?
        .first()?
        .as_str()
        .map(|address| address.split('/').next().unwrap_or(address).to_owned())
}

/// The frames of task `id`'s output, as the engine sends them.
pub async fn task_logs(
    docker: &Docker,
    id: &str,
    options: TaskLogsOptions,
) -> Result<impl Stream<Item = Result<LogOutput, SwarmApiError>> + use<>, SwarmApiError> {
    let response = get(docker, &format!("/tasks/{id}/logs"), &options.query()).await?;
    let mut demux = Demux::default();
    Ok(response
        .bytes_stream()
        .map(move |chunk| match chunk {
            Ok(chunk) => Ok(demux.push(&chunk)),
            Err(err) => Err(SwarmApiError::from(err)),
        })
        .flat_map(|frames| {
            futures::stream::iter(match frames {
                Ok(frames) => frames.into_iter().map(Ok).collect(),
                Err(err) => vec![Err(err)],
            })
        }))
}

/// The engine's own complaint, when a frame is one rather than the app's output.
pub fn engine_error(frame: &LogOutput) -> Option<String> {
    let message = match frame {
        LogOutput::StdOut { message } | LogOutput::StdErr { message } => message,
        LogOutput::StdIn { .. } | LogOutput::Console { .. } => return None,
    };
    message
        .strip_prefix(ENGINE_ERROR)
        .map(|rest| String::from_utf8_lossy(rest).trim_end().to_owned())
}

/// Cuts Docker's multiplexed stream into its frames, whatever the chunks it arrives in.
#[derive(Default)]
pub struct Demux {
    pending: BytesMut,
}

impl Demux {
    /// Feeds one chunk; returns the frames it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<LogOutput> {
        self.pending.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while self.pending.len() >= 8 {
            let header = &self.pending[..8];
            let length = u32::from_be_bytes([header[4], header[5], header[6], header[7]]) as usize;
            if self.pending.len() < 8 + length {
                break;
            }
            let kind = header[0];
            self.pending.advance(8);
            let message: Bytes = self.pending.split_to(length).freeze();
            frames.push(match kind {
                0 => LogOutput::StdIn { message },
                2 => LogOutput::StdErr { message },
                // 1 is stdout; 3 (the engine's own errors) is told as stdout, as Docker's CLI does.
                _ => LogOutput::StdOut { message },
            });
        }
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = vec![kind, 0, 0, 0];
        bytes.extend_from_slice(&u32::try_from(payload.len()).unwrap().to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    fn text(output: &LogOutput) -> (&'static str, String) {
        match output {
            LogOutput::StdOut { message } => ("out", String::from_utf8_lossy(message).into()),
            LogOutput::StdErr { message } => ("err", String::from_utf8_lossy(message).into()),
            LogOutput::StdIn { message } => ("in", String::from_utf8_lossy(message).into()),
            LogOutput::Console { message } => ("console", String::from_utf8_lossy(message).into()),
        }
    }

    #[test]
    fn frames_come_out_whole_however_the_chunks_cut_them() {
        let mut stream = frame(1, b"2026-12-07T10:00:00.1Z hello\n");
        stream.extend(frame(2, b"2026-12-07T10:00:00.2Z oops\n"));
        stream.extend(frame(1, b""));
        stream.extend(frame(1, b"2026-12-07T10:00:00.3Z bye\n"));
        let whole: Vec<_> = Demux::default().push(&stream).iter().map(text).collect();
        assert_eq!(
            whole,
            [
                ("out", "2026-12-07T10:00:00.1Z hello\n".to_owned()),
                ("err", "2026-12-07T10:00:00.2Z oops\n".to_owned()),
                ("out", String::new()),
                ("out", "2026-12-07T10:00:00.3Z bye\n".to_owned()),
            ]
        );
        for size in 1..stream.len() {
            let mut demux = Demux::default();
            let cut: Vec<_> = stream
                .chunks(size)
                .flat_map(|chunk| demux.push(chunk))
                .collect();
            assert_eq!(cut.iter().map(text).collect::<Vec<_>>(), whole, "{size}");
            assert!(demux.pending.is_empty());
        }
    }

    #[test]
    fn a_frame_is_held_until_its_last_byte() {
        let mut demux = Demux::default();
        let stream = frame(2, b"0123456789");
        assert!(demux.push(&stream[..7]).is_empty());
        assert!(demux.push(&stream[7..17]).is_empty());
        let frames = demux.push(&stream[17..]);
        assert_eq!(
            frames.iter().map(text).collect::<Vec<_>>(),
            [("err", "0123456789".to_owned())]
        );
    }

    #[test]
    fn the_engines_complaints_are_told_apart_from_the_apps_lines() {
        let complaint = LogOutput::StdOut {
            message: Bytes::from_static(
                b"Error grabbing logs: node paaswlogs-3 is not available\n",
            ),
        };
        assert_eq!(
            engine_error(&complaint).as_deref(),
            Some("node paaswlogs-3 is not available")
        );
        // The app's own line saying the same begins with its timestamp.
        let forged = LogOutput::StdOut {
            message: Bytes::from_static(b"2026-12-07T10:00:00Z Error grabbing logs: no\n"),
        };
        assert_eq!(engine_error(&forged), None);
    }

    #[test]
    fn a_tasks_address_is_the_one_on_the_network_asked_for() {
        let task = serde_json::json!({
            "ID": "t1",
            "NetworksAttachments": [
                {"Network": {"Spec": {"Name": "ingress"}}, "Addresses": ["10.0.0.5/24"]},
                {"Network": {"Spec": {"Name": "paas-app-hello"}}, "Addresses": ["10.0.3.7/24"]},
            ],
        });
        assert_eq!(
            address_on(&task, "paas-app-hello").as_deref(),
            Some("10.0.3.7")
        );
        assert_eq!(address_on(&task, "paas-app-other"), None);
        assert_eq!(
            address_on(&serde_json::json!({"ID": "t2"}), "paas-app-hello"),
            None
        );
    }

    #[test]
    fn the_query_asks_for_both_streams_with_times() {
        let query = TaskLogsOptions {
            follow: true,
            tail: None,
            since: Some((1_700_000_000, 5)),
        }
        .query();
        assert!(query.contains(&("timestamps", "1".to_owned())));
        assert!(query.contains(&("stderr", "1".to_owned())));
        assert!(query.contains(&("follow", "1".to_owned())));
        assert!(query.contains(&("tail", "all".to_owned())));
        assert!(query.contains(&("since", "1700000000.000000005".to_owned())));
        let backlog = TaskLogsOptions {
            tail: Some(100),
            ..TaskLogsOptions::default()
        }
        .query();
        assert!(backlog.contains(&("tail", "100".to_owned())));
        assert!(!backlog.iter().any(|(key, _)| *key == "since"));
    }
}

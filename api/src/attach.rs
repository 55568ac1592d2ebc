//! Attached sessions (`paas run`, `paas ps:exec`): the frames spoken both ways on an
//! HTTP/1.1 connection upgraded to [`PROTOCOL`], from the CLI to gitd and from gitd to the
//! agent, and the requests that open them.
//!
//! The CLI sends `GET /v1/apps/{app}/run/attached` or `GET /v1/apps/{app}/ps/exec` to gitd
//! with `Connection: Upgrade` and `Upgrade: paas-attach/1`; gitd answers 101 (or the error
//! envelope, 404 to a user who may not see the app) and opens the same upgrade to the agent's
//! `GET /v1/apps/{app}/oneoff/attach` or `/v1/apps/{app}/exec`. The first frame from the client
//! side is [`Frame::Open`] carrying the request's JSON ([`AttachRun`]/[`AttachExec`] to gitd,
//! [`AgentAttach`]/[`AgentExec`] to the agent); after it the client sends stdin, stdin's end
//! and window sizes, and the server sends stdout, stderr and, last, exactly one exit or error.
//!
//! A frame is one kind byte, a big-endian `u32` payload length and the payload. Only pure
//! encoding and decoding live here; the crates at each end do the reading and writing.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::oneoff::OneOffSpec;
use crate::resources::ProcessResources;

/// The `Upgrade` header's value.
pub const PROTOCOL: &str = "paas-attach/1";

/// Whether an `Upgrade` header's value asks for [`PROTOCOL`] (header values compare without
/// regard to case).
pub fn asks_for_protocol(upgrade: &[u8]) -> bool {
    upgrade.eq_ignore_ascii_case(PROTOCOL.as_bytes())
}

/// The largest payload a frame may carry; bigger output is sent as several frames.
pub const MAX_PAYLOAD: usize = 64 * 1024;

const HEADER: usize = 5;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// The session's request, JSON; the first frame from the client side, and only then.
    Open(Vec<u8>),
    Stdin(Vec<u8>),
    /// The local stdin ended; the remote process's stdin is closed.
    StdinEof,
    /// The local terminal's size (sent at start and on every change).
    Resize {
        cols: u16,
        rows: u16,
    },
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process ended with this status; the last frame of a session.
    Exit {
        status: i32,
    },
    /// The session could not start or was cut short (one line); the last frame of a session.
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("unknown attach frame kind {0}")]
    UnknownKind(u8),
    #[error("attach frame of {0} bytes is over the limit")]
    TooLong(usize),
    #[error("malformed attach frame of kind {0}")]
    Malformed(u8),
}

impl Frame {
    fn kind(&self) -> u8 {
        match self {
            Frame::Open(_) => 0,
            Frame::Stdin(_) => 1,
            Frame::StdinEof => 2,
            Frame::Resize { .. } => 3,
            Frame::Stdout(_) => 4,
            Frame::Stderr(_) => 5,
            Frame::Exit { .. } => 6,
            Frame::Error(_) => 7,
        }
    }

    /// The frame's bytes. Payloads over [`MAX_PAYLOAD`] are the caller's to split; an error
    /// message is cut to fit.
    pub fn encode(&self) -> Vec<u8> {
        let payload: &[u8] = match self {
            Frame::Open(data) | Frame::Stdin(data) | Frame::Stdout(data) | Frame::Stderr(data) => {
                data
            }
            Frame::StdinEof => &[],
            Frame::Resize { cols, rows } => &[cols.to_be_bytes(), rows.to_be_bytes()].concat(),
            Frame::Exit { status } => &status.to_be_bytes(),
            Frame::Error(message) => &message.as_bytes()[..message.len().min(MAX_PAYLOAD)],
        };
        let mut bytes = Vec::with_capacity(HEADER + payload.len());
        bytes.push(self.kind());
        let length = u32::try_from(payload.len()).expect("payloads are bounded");
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    }

    /// Takes the first whole frame off the front of `buffer`, or `None` until one has arrived.
    pub fn decode(buffer: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
        if buffer.len() < HEADER {
            return Ok(None);
        }
        let kind = buffer[0];
        let length = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        // Open carries the request, which may hold many config vars.
        let limit = if kind == 0 {
            4 * MAX_PAYLOAD
        } else {
            MAX_PAYLOAD
        };
        if length > limit {
            return Err(FrameError::TooLong(length));
        }
        if buffer.len() < HEADER + length {
            return Ok(None);
        }
        let payload: Vec<u8> = buffer.drain(..HEADER + length).skip(HEADER).collect();
        let malformed = || FrameError::Malformed(kind);
        let frame = match kind {
            0 => Frame::Open(payload),
            1 => Frame::Stdin(payload),
            2 if payload.is_empty() => Frame::StdinEof,
            3 if payload.len() == 4 => Frame::Resize {
                cols: u16::from_be_bytes([payload[0], payload[1]]),
                rows: u16::from_be_bytes([payload[2], payload[3]]),
            },
            4 => Frame::Stdout(payload),
            5 => Frame::Stderr(payload),
            6 => Frame::Exit {
                status: i32::from_be_bytes(payload.try_into().map_err(|_| malformed())?),
            },
            7 => Frame::Error(String::from_utf8_lossy(&payload).into_owned()),
            2 | 3 => return Err(malformed()),
            other => return Err(FrameError::UnknownKind(other)),
        };
        Ok(Some(frame))
    }
}

/// `paas run`'s request to gitd: the command as for `run:detached`, and whether the remote
/// side gets a terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRun {
    pub command: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<crate::ConfigKey, String>,
    #[serde(default, skip_serializing_if = "ProcessResources::is_default")]
    pub size: ProcessResources,
    pub tty: bool,
}

/// `paas ps:exec`'s request to gitd: a command in running instance `dyno` (`web.1`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachExec {
    pub dyno: String,
    /// The program and its arguments, run without a shell.
    pub command: Vec<String>,
    pub tty: bool,
}

/// gitd's request to the agent for an attached one-off: the one-off (kind `run`) and the
/// terminal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentAttach {
    pub oneoff: OneOffSpec,
    pub tty: bool,
}

/// gitd's request to the agent for an exec into a running instance of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentExec {
    pub process: crate::ProcessType,
    pub index: u32,
    pub command: Vec<String>,
    pub tty: bool,
}

/// `web.1` as a process type and an instance number from 1.
pub fn parse_dyno(dyno: &str) -> Result<(crate::ProcessType, u32), String> {
    let bad = || format!("Invalid process instance {dyno:?}: expected TYPE.N, e.g. web.1");
    let (process, index) = dyno.rsplit_once('.').ok_or_else(bad)?;
    let index: u32 = index.parse().map_err(|_| bad())?;
    if index == 0 {
        return Err(bad());
    }
    let process: crate::ProcessType = process.parse().map_err(|_| bad())?;
    Ok((process, index))
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_upgrade_header_names_the_protocol_in_any_case() {
        assert!(asks_for_protocol(b"paas-attach/1"));
        assert!(asks_for_protocol(b"PAAS-Attach/1"));
        assert!(!asks_for_protocol(b"websocket"));
        assert!(!asks_for_protocol(b"paas-attach/2"));
    }

    use super::*;

    #[test]
    fn frames_read_back_as_written_in_pieces_and_together() {
        let frames = [
            Frame::Open(br#"{"tty":true}"#.to_vec()),
            Frame::Stdin(b"ls\r".to_vec()),
            Frame::StdinEof,
            Frame::Resize { cols: 80, rows: 24 },
            Frame::Stdout(vec![0, 255, 3]),
            Frame::Stderr(Vec::new()),
            Frame::Exit { status: -1 },
            Frame::Error("no such app".into()),
        ];
        let bytes: Vec<u8> = frames.iter().flat_map(Frame::encode).collect();
        let mut buffer = Vec::new();
        let mut read = Vec::new();
        for byte in bytes {
            buffer.push(byte);
            while let Some(frame) = Frame::decode(&mut buffer).unwrap() {
                read.push(frame);
            }
        }
        assert_eq!(read, frames);
        assert!(buffer.is_empty());
        assert_eq!(
            Frame::Resize { cols: 258, rows: 1 }.encode(),
            [3, 0, 0, 0, 4, 1, 2, 0, 1]
        );
    }

    #[test]
    fn bad_frames_are_refused() {
        let decode = |bytes: &[u8]| Frame::decode(&mut bytes.to_vec());
        assert_eq!(decode(&[9, 0, 0, 0, 0]), Err(FrameError::UnknownKind(9)));
        assert_eq!(decode(&[3, 0, 0, 0, 1, 7]), Err(FrameError::Malformed(3)));
        assert_eq!(
            decode(&[6, 0, 0, 0, 2, 0, 1]),
            Err(FrameError::Malformed(6))
        );
        assert_eq!(decode(&[2, 0, 0, 0, 1, 0]), Err(FrameError::Malformed(2)));
        assert!(matches!(
            decode(&[1, 0xff, 0xff, 0xff, 0xff]),
            Err(FrameError::TooLong(_))
        ));
        assert_eq!(decode(&[1, 0, 0, 0, 2, 0]), Ok(None), "not all there yet");
        let long = "é".repeat(MAX_PAYLOAD);
        let mut cut = Frame::Error(long).encode();
        assert!(matches!(
            Frame::decode(&mut cut),
            Ok(Some(Frame::Error(message))) if message.len() <= MAX_PAYLOAD
        ));
    }

    #[test]
    fn dynos_are_a_type_and_a_number() {
        let (process, index) = parse_dyno("web.2").unwrap();
        assert_eq!((process.as_str(), index), ("web", 2));
        for bad in ["web", "web.0", "web.x", ".1", "Web.1", "web.1.2x"] {
            assert!(parse_dyno(bad).is_err(), "{bad}");
        }
    }
}

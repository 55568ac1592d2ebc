//! Turning Docker's log frames into whole lines. With `timestamps`, every frame starts with
//! the RFC 3339 time it was logged. The json-file driver cuts lines longer than 16 KiB into
//! partial entries (every part but the last without a line break); they are joined again here,
//! under the first part's time, so a long line stays one line. Bytes that are not UTF-8 are
//! replaced, never dropped, and a line that never ends is cut at [`MAX_LINE_BYTES`].

use chrono::{DateTime, Utc};

/// A line longer than this is emitted in pieces of this size rather than held without bound.
pub const MAX_LINE_BYTES: usize = 1024 * 1024;

/// Joins the frames of one output stream (stdout or stderr) of one container.
#[derive(Default)]
pub struct LineAssembler {
    pending: Vec<u8>,
    started: Option<DateTime<Utc>>,
}

impl LineAssembler {
    /// Feeds one frame; returns the lines it completes, each with the time its first part was
    /// logged.
    pub fn push(&mut self, frame: &[u8]) -> Vec<(DateTime<Utc>, String)> {
        let (time, content) = split_timestamp(frame);
        let time = time.unwrap_or_else(Utc::now);
        let mut lines = Vec::new();
        let mut rest = content;
        while !rest.is_empty() {
            if self.pending.is_empty() {
                self.started = Some(time);
            }
            match rest.iter().position(|&b| b == b'\n') {
                Some(end) => {
                    self.pending.extend_from_slice(&rest[..end]);
                    lines.push(self.take());
                    rest = &rest[end + 1..];
                }
                None => {
                    self.pending.extend_from_slice(rest);
                    rest = &[];
                }
            }
            while self.pending.len() > MAX_LINE_BYTES {
                let tail = self.pending.split_off(MAX_LINE_BYTES);
                lines.push(self.take());
                self.started = Some(time);
                self.pending = tail;
            }
        }
        lines
    }

    /// What is left once the stream ended: a last line without a line break.
    pub fn finish(&mut self) -> Option<(DateTime<Utc>, String)> {
        (!self.pending.is_empty()).then(|| self.take())
    }

    fn take(&mut self) -> (DateTime<Utc>, String) {
        let mut bytes = std::mem::take(&mut self.pending);
        if bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let time = self.started.take().unwrap_or_else(Utc::now);
        (time, String::from_utf8_lossy(&bytes).into_owned())
    }
}

/// `2026-11-22T10:00:00.123456789Z rest` → the time and `rest`; a frame without a readable
/// time is all content.
fn split_timestamp(frame: &[u8]) -> (Option<DateTime<Utc>>, &[u8]) {
    let Some(space) = frame.iter().take(64).position(|&b| b == b' ') else {
        return (None, frame);
    };
    let parsed = std::str::from_utf8(&frame[..space])
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
        .map(|time| time.with_timezone(&Utc));
    match parsed {
        Some(time) => (Some(time), &frame[space + 1..]),
        None => (None, frame),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(lines: Vec<(DateTime<Utc>, String)>) -> Vec<String> {
        lines.into_iter().map(|(_, text)| text).collect()
    }

    #[test]
    fn frames_become_timestamped_lines() {
        let mut lines = LineAssembler::default();
        let out = lines.push(b"2026-11-22T10:00:00.123456789Z hello\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, "hello");
        assert_eq!(
            out[0].0.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            "2026-11-22T10:00:00.123456789Z"
        );
        assert_eq!(
            texts(lines.push(b"2026-11-22T10:00:01Z a\r\nb\n")),
            ["a", "b"]
        );
        assert_eq!(lines.finish(), None);
    }

    #[test]
    fn partial_entries_join_under_the_first_time() {
        let mut lines = LineAssembler::default();
        assert!(lines.push(b"2026-11-22T10:00:00Z aaaa").is_empty());
        assert!(lines.push(b"2026-11-22T10:00:01Z bbbb").is_empty());
        let out = lines.push(b"2026-11-22T10:00:02Z cc\n");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1, "aaaabbbbcc");
        assert_eq!(out[0].0.to_rfc3339(), "2026-11-22T10:00:00+00:00");
    }

    #[test]
    fn invalid_utf8_is_replaced_and_split_characters_survive() {
        let mut lines = LineAssembler::default();
        let out = lines.push(b"2026-11-22T10:00:00Z bad \xff\xfe end\n");
        assert_eq!(texts(out), ["bad \u{fffd}\u{fffd} end"]);
        // A two-byte character cut between two partial entries is whole again.
        assert!(lines.push(b"2026-11-22T10:00:00Z caf\xc3").is_empty());
        assert_eq!(
            texts(lines.push(b"2026-11-22T10:00:00Z \xa9\n")),
            ["caf\u{e9}"]
        );
    }

    #[test]
    fn endless_lines_are_cut_and_the_rest_is_kept() {
        let mut lines = LineAssembler::default();
        let mut frame = b"2026-11-22T10:00:00Z ".to_vec();
        frame.extend(std::iter::repeat_n(b'x', MAX_LINE_BYTES + 10));
        let out = lines.push(&frame);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].1.len(), MAX_LINE_BYTES);
        assert_eq!(lines.finish().unwrap().1, "x".repeat(10));
    }

    #[test]
    fn frames_without_a_time_are_content() {
        let mut lines = LineAssembler::default();
        assert_eq!(texts(lines.push(b"no time here\n")), ["no time here"]);
    }
}

//! The conversation on the deploy socket between `paas-gitd hook pre-receive` and the daemon:
//! one JSON line of [`HookRequest`], answered by JSON lines of [`HookMessage`] ending with one
//! `finished`.

use serde::{Deserialize, Serialize};

/// The longest request line accepted.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HookRequest {
    /// `PAAS_PUSH_TOKEN`: names the push session (app, pusher, lock held) it belongs to.
    pub token: String,
    pub app: String,
    pub updates: Vec<RefUpdate>,
    /// git's quarantine environment: the pushed objects are only here until the hook succeeds.
    pub object_directory: Option<String>,
    pub alternate_object_directories: Option<String>,
    pub quarantine_path: Option<String>,
}

/// One `old new ref` line of pre-receive's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    /// Parses `<old-sha> <new-sha> <refname>`.
    pub fn parse(line: &str) -> Option<RefUpdate> {
        let mut parts = line.split(' ');
        let (old, new, name) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || !is_object_id(old) || !is_object_id(new) || name.is_empty() {
            return None;
        }
        Some(RefUpdate {
            old: old.to_owned(),
            new: new.to_owned(),
            name: name.to_owned(),
        })
    }

    pub fn is_deletion(&self) -> bool {
        self.new.bytes().all(|b| b == b'0')
    }
}

fn is_object_id(text: &str) -> bool {
    matches!(text.len(), 40 | 64) && text.bytes().all(|b| b.is_ascii_hexdigit())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum HookMessage {
    /// One line for the pusher's terminal.
    Output { line: String },
    /// The last message: whether the push may update its refs.
    Finished { success: bool },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pre_receive_lines() {
        let zero = "0".repeat(40);
        let sha = "a".repeat(40);
        let update = RefUpdate::parse(&format!("{zero} {sha} refs/heads/main")).unwrap();
        assert_eq!(update.name, "refs/heads/main");
        assert!(!update.is_deletion());
        let deletion = RefUpdate::parse(&format!("{sha} {zero} refs/heads/main")).unwrap();
        assert!(deletion.is_deletion());
        assert!(RefUpdate::parse("x y refs/heads/main").is_none());
        assert!(RefUpdate::parse(&format!("{zero} {sha}")).is_none());
        assert!(RefUpdate::parse(&format!("{zero} {sha} a b")).is_none());
    }
}

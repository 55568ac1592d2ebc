//! The conversation on the deploy socket between `paas-gitd hook pre-receive` and the daemon:
//! one JSON line of [`HookRequest`], answered by JSON lines of [`HookMessage`] ending with one
//! `finished`.
//!
//! Whatever reaches the socket is checked as it is read: a ref update holds a valid
//! [`ObjectId`] pair and a [`RefName`], or the request is refused whole.

use std::fmt;
use std::ops::Deref;

use serde::{Deserialize, Serialize};

/// The longest request line accepted.
pub const MAX_REQUEST_BYTES: u64 = 64 * 1024;
/// The longest ref name accepted (git itself has no lower limit worth relying on).
const MAX_REF_NAME_BYTES: usize = 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    #[error("invalid object id {0:?}: want 40 or 64 hexadecimal digits")]
    ObjectId(String),
    #[error("invalid ref name {0:?}")]
    RefName(String),
    #[error("old and new object ids differ in length")]
    MixedHashes,
    #[error("want `<old> <new> <ref>`, got {0:?}")]
    Line(String),
}

/// A git object id: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ObjectId(String);

impl ObjectId {
    pub fn parse(text: &str) -> Result<ObjectId, ProtocolError> {
        if matches!(text.len(), 40 | 64)
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(ObjectId(text.to_owned()))
        } else {
            Err(ProtocolError::ObjectId(text.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first seven digits, as git abbreviates.
    pub fn short(&self) -> &str {
        &self.0[..7]
    }

    /// The all-zero id git uses for "no object" (a created or deleted ref).
    pub fn is_zero(&self) -> bool {
        self.0.bytes().all(|b| b == b'0')
    }
}

impl TryFrom<String> for ObjectId {
    type Error = ProtocolError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        ObjectId::parse(&text)
    }
}

impl From<ObjectId> for String {
    fn from(id: ObjectId) -> String {
        id.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A full ref name (`refs/…`) that `git check-ref-format` would accept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RefName(String);

impl RefName {
    pub fn parse(text: &str) -> Result<RefName, ProtocolError> {
        let invalid = || ProtocolError::RefName(text.to_owned());
        if text.len() > MAX_REF_NAME_BYTES || !text.starts_with("refs/") {
            return Err(invalid());
        }
        let forbidden_byte = text
            .bytes()
            .any(|b| b < 0x20 || b == 0x7f || b" ~^:?*[\\".contains(&b));
        let bad_component = text.split('/').any(|component| {
            component.is_empty() || component.starts_with('.') || component.ends_with(".lock")
        });
        if forbidden_byte
            || bad_component
            || text.contains("..")
            || text.contains("@{")
            || text.ends_with('.')
        {
            return Err(invalid());
        }
        Ok(RefName(text.to_owned()))
    }
}

impl Deref for RefName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for RefName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for RefName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for RefName {
    fn eq(&self, other: &String) -> bool {
        &self.0 == other
    }
}

impl TryFrom<String> for RefName {
    type Error = ProtocolError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        RefName::parse(&text)
    }
}

impl From<RefName> for String {
    fn from(name: RefName) -> String {
        name.0
    }
}

impl fmt::Display for RefName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One `old new ref` line of pre-receive's input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawRefUpdate", into = "RawRefUpdate")]
pub struct RefUpdate {
    pub old: ObjectId,
    pub new: ObjectId,
    pub name: RefName,
}

/// The wire form, checked into a [`RefUpdate`] (both ids of one hash).
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRefUpdate {
    old: ObjectId,
    new: ObjectId,
    name: RefName,
}

impl TryFrom<RawRefUpdate> for RefUpdate {
    type Error = ProtocolError;
    fn try_from(raw: RawRefUpdate) -> Result<Self, Self::Error> {
        RefUpdate::new(raw.old, raw.new, raw.name)
    }
}

impl From<RefUpdate> for RawRefUpdate {
    fn from(update: RefUpdate) -> Self {
        RawRefUpdate {
            old: update.old,
            new: update.new,
            name: update.name,
        }
    }
}

impl RefUpdate {
    pub fn new(old: ObjectId, new: ObjectId, name: RefName) -> Result<RefUpdate, ProtocolError> {
        if old.as_str().len() != new.as_str().len() {
            return Err(ProtocolError::MixedHashes);
        }
        Ok(RefUpdate { old, new, name })
    }

    /// Parses `<old-sha> <new-sha> <refname>`.
    pub fn parse(line: &str) -> Result<RefUpdate, ProtocolError> {
        let mut parts = line.split(' ');
        let (Some(old), Some(new), Some(name), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProtocolError::Line(line.to_owned()));
        };
        RefUpdate::new(
            ObjectId::parse(old)?,
            ObjectId::parse(new)?,
            RefName::parse(name)?,
        )
    }

    pub fn is_deletion(&self) -> bool {
        self.new.is_zero()
    }
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
        assert_eq!(update.new.short(), "aaaaaaa");
        assert!(!update.is_deletion());
        let deletion = RefUpdate::parse(&format!("{sha} {zero} refs/heads/main")).unwrap();
        assert!(deletion.is_deletion());
        let sha256 = "b".repeat(64);
        assert!(RefUpdate::parse(&format!("{} {sha256} refs/heads/main", "0".repeat(64))).is_ok());
        assert!(RefUpdate::parse("x y refs/heads/main").is_err());
        assert!(RefUpdate::parse(&format!("{zero} {sha}")).is_err());
        assert!(RefUpdate::parse(&format!("{zero} {sha} a b")).is_err());
        assert_eq!(
            RefUpdate::parse(&format!("{zero} {sha256} refs/heads/main")),
            Err(ProtocolError::MixedHashes)
        );
    }

    #[test]
    fn object_ids_are_40_or_64_lowercase_hex() {
        for good in ["0".repeat(40), "0123456789abcdef".repeat(4)] {
            assert!(ObjectId::parse(&good).is_ok(), "{good}");
        }
        for bad in [
            String::new(),
            "abc".to_owned(),
            "a".repeat(39),
            "a".repeat(41),
            "A".repeat(40),
            "g".repeat(40),
            format!("{}é", "a".repeat(38)),
            format!("{} ", "a".repeat(39)),
        ] {
            assert_eq!(
                ObjectId::parse(&bad),
                Err(ProtocolError::ObjectId(bad.clone()))
            );
        }
    }

    #[test]
    fn ref_names_follow_git_check_ref_format() {
        for good in [
            "refs/heads/main",
            "refs/heads/feature/x-1",
            "refs/tags/v1.0",
        ] {
            assert!(RefName::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "main",
            "refs/heads/",
            "refs//heads",
            "refs/heads/a..b",
            "refs/heads/.hidden",
            "refs/heads/x.lock",
            "refs/heads/x.",
            "refs/heads/a b",
            "refs/heads/a\nb",
            "refs/heads/a:b",
            "refs/heads/a@{1}",
            "refs/heads/a\\b",
            &format!("refs/heads/{}", "x".repeat(2000)),
        ] {
            assert!(RefName::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn requests_with_bad_updates_do_not_deserialize() {
        let request = |old: &str, new: &str, name: &str| {
            serde_json::json!({
                "token": "t", "app": "a",
                "updates": [{"old": old, "new": new, "name": name}],
                "object_directory": null, "alternate_object_directories": null,
                "quarantine_path": null,
            })
            .to_string()
        };
        let (zero, sha) = ("0".repeat(40), "a".repeat(40));
        assert!(
            serde_json::from_str::<HookRequest>(&request(&zero, &sha, "refs/heads/main")).is_ok()
        );
        for (old, new, name) in [
            (zero.as_str(), "abc", "refs/heads/main"),
            (zero.as_str(), "", "refs/heads/main"),
            ("é", sha.as_str(), "refs/heads/main"),
            (zero.as_str(), sha.as_str(), "refs/heads/a..b"),
            (zero.as_str(), sha.as_str(), "HEAD"),
        ] {
            let error = serde_json::from_str::<HookRequest>(&request(old, new, name)).unwrap_err();
            assert!(error.to_string().starts_with("invalid "), "{error}");
        }
    }
}

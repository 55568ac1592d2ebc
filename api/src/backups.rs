//! Postgres backups (`paas pg:backups*`, Heroku's PG Backups): a capture is one
//! `pg_dump -Fc` of a Postgres add-on, kept as a file on the agent's host under an id per
//! add-on ([`BackupId`], `b001`, `b002`, …); a restore loads one into an add-on of the same
//! owner, its own or another's ([`BackupRef`], `db::b003`), in one transaction.
//!
//! gitd's API, where `{addon}` is attached to `{app}`:
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /v1/apps/{app}/addons/{addon}/backups` | → `[`[`Backup`]`]`, oldest first |
//! | `POST /v1/apps/{app}/addons/{addon}/backups` | → [`Backup`], once captured |
//! | `GET /v1/apps/{app}/addons/{addon}/backups/{id}` | → the dump (`application/octet-stream`) |
//! | `DELETE /v1/apps/{app}/addons/{addon}/backups/{id}?confirm={app}` | → 204 |
//! | `POST /v1/apps/{app}/addons/{addon}/restores` | [`RestoreRequest`] → [`Restored`] |
//!
//! The agent's, where an add-on is `{owner}/{name}`:
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /v1/addons/{owner}/{name}/backups` | → `[`[`Backup`]`]` |
//! | `POST /v1/addons/{owner}/{name}/backups` | → [`Backup`] |
//! | `GET /v1/addons/{owner}/{name}/backups/{id}` | → the dump |
//! | `DELETE /v1/addons/{owner}/{name}/backups/{id}` | → 204 |
//! | `POST /v1/addons/{owner}/{name}/restores` | [`RestoreSpec`] → 204, once restored |

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::addons::AddonName;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackupError {
    #[error(
        "invalid backup id {0:?}: use an id as `paas pg:backups` lists it (b001), or ADDON::b001 for another add-on's"
    )]
    Id(String),
}

/// `b001` … `b999`, then `b1000` …: no leading zeros past three digits, so each number has
/// one spelling.
static BACKUP_ID: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^b([0-9]{3}|[1-9][0-9]{3,5})$").unwrap());

crate::names::string_newtype!(
    /// One capture of one add-on: `b` and its number, as Heroku numbers them. It never
    /// carries a path or a separator, so it names its file as it is.
    BackupId,
    BackupError,
    |id| {
        if BACKUP_ID.is_match(id) {
            Ok(())
        } else {
            Err(BackupError::Id(id.to_owned()))
        }
    }
);

/// The highest number an id can spell.
const MAX_NUMBER: u32 = 999_999;

impl BackupId {
    /// The id of capture `number`; `None` past the last one an id can spell.
    pub fn from_number(number: u32) -> Option<BackupId> {
        (number <= MAX_NUMBER).then(|| BackupId(format!("b{number:03}")))
    }

    /// Its number, by which captures are ordered.
    pub fn number(&self) -> u32 {
        self.as_str()[1..]
            .parse()
            .expect("a backup id is b and digits")
    }
}

/// A backup as the CLI names it: `b003` (of the add-on the command is about) or `db::b003`
/// (of the owner's add-on `db`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct BackupRef {
    pub addon: Option<AddonName>,
    pub id: BackupId,
}

impl std::str::FromStr for BackupRef {
    type Err = BackupError;

    fn from_str(value: &str) -> Result<Self, BackupError> {
        let bad = || BackupError::Id(value.to_owned());
        match value.split_once("::") {
            Some((addon, id)) => Ok(BackupRef {
                addon: Some(addon.parse().map_err(|_| bad())?),
                id: id.parse().map_err(|_| bad())?,
            }),
            None => Ok(BackupRef {
                addon: None,
                id: value.parse()?,
            }),
        }
    }
}

impl TryFrom<String> for BackupRef {
    type Error = BackupError;

    fn try_from(value: String) -> Result<Self, BackupError> {
        value.parse()
    }
}

impl std::fmt::Display for BackupRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.addon {
            Some(addon) => write!(f, "{addon}::{}", self.id),
            None => write!(f, "{}", self.id),
        }
    }
}

impl From<BackupRef> for String {
    fn from(value: BackupRef) -> String {
        value.to_string()
    }
}

/// Where a capture is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupStatus {
    /// `pg_dump` exited 0 and the file is whole.
    Completed,
    /// `pg_dump` is writing it; it cannot be downloaded or restored yet.
    Capturing,
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupStatus::Completed => "Completed",
            BackupStatus::Capturing => "Capturing",
        })
    }
}

/// One capture of an add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub id: BackupId,
    pub addon: AddonName,
    /// When its file was last written: when the capture finished, for a completed one.
    pub created_at: DateTime<Utc>,
    pub size_bytes: u64,
    pub status: BackupStatus,
}

impl Backup {
    /// The newest completed capture, which a restore or a download without an id takes.
    pub fn latest(backups: &[Backup]) -> Option<&Backup> {
        backups
            .iter()
            .filter(|backup| backup.status == BackupStatus::Completed)
            .max_by_key(|backup| backup.id.number())
    }
}

/// `paas pg:backups:restore [BACKUP] [NAME] --confirm APP`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreRequest {
    /// The add-on's latest completed capture when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupRef>,
    /// The app's name again: a restore replaces the add-on's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<String>,
}

/// What a restore loaded, and into which add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restored {
    pub from: AddonName,
    pub backup: BackupId,
    pub into: AddonName,
}

/// The agent's `POST /v1/addons/{owner}/{name}/restores`: load capture `backup` of the same
/// owner's add-on `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreSpec {
    pub from: AddonName,
    pub backup: BackupId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_one_spelling_and_refuse_paths() {
        for good in ["b001", "b999", "b1000", "b000"] {
            assert!(good.parse::<BackupId>().is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "b",
            "b1",
            "b01",
            "b0001",
            "B001",
            "001",
            "../x",
            "b001/x",
            "b001.dump",
            "..",
            "b 01",
        ] {
            assert!(
                matches!(bad.parse::<BackupId>(), Err(BackupError::Id(_))),
                "{bad:?}"
            );
        }
        let id = BackupId::from_number(7).unwrap();
        assert_eq!(id.as_str(), "b007");
        assert_eq!(id.number(), 7);
        assert_eq!(BackupId::from_number(1234).unwrap().as_str(), "b1234");
        assert_eq!(BackupId::from_number(1_000_000), None);
        assert!(serde_json::from_str::<BackupId>(r#""../x""#).is_err());
    }

    #[test]
    fn refs_name_another_add_on_with_two_colons() {
        let own: BackupRef = "b003".parse().unwrap();
        assert_eq!((own.addon, own.id.as_str()), (None, "b003"));
        let other: BackupRef = "db::b003".parse().unwrap();
        assert_eq!(other.addon.as_ref().map(AddonName::as_str), Some("db"));
        assert_eq!(other.to_string(), "db::b003");
        for bad in [
            "db::",
            "::b003",
            "../x::b001",
            "db::../x",
            "db:b003",
            "b999x",
        ] {
            let err = bad.parse::<BackupRef>().unwrap_err().to_string();
            assert!(err.starts_with("invalid backup id"), "{bad:?}: {err}");
            assert!(!err.contains('\n'));
        }
    }

    #[test]
    fn the_latest_is_the_newest_completed() {
        let backup = |id: &str, status| Backup {
            id: id.parse().unwrap(),
            addon: "db".parse().unwrap(),
            created_at: DateTime::UNIX_EPOCH,
            size_bytes: 1,
            status,
        };
        let backups = [
            backup("b999", BackupStatus::Completed),
            backup("b1000", BackupStatus::Completed),
            backup("b1001", BackupStatus::Capturing),
        ];
        assert_eq!(Backup::latest(&backups).unwrap().id.as_str(), "b1000");
        assert_eq!(Backup::latest(&backups[2..]), None);
    }
}

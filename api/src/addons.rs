//! Add-on services (`paas addons:*`, Heroku's add-ons, Dokku's postgres and redis plugins): a
//! managed Postgres or Redis ([`AddonKind`]) in a container of its own with its own volume,
//! reachable only on the networks of the apps it is attached to, which see it through one
//! config var each (`DATABASE_URL`, `REDIS_URL`, or `<ATTACHMENT>_URL`).
//!
//! An add-on belongs to the app it was created on and, through it, to that app's owner:
//! [`AddonName`]s are unique per owner, and only apps of the same owner can be attached.
//!
//! gitd's API:
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /v1/apps/{app}/addons` | → `[`[`Addon`]`]`, the ones attached to the app |
//! | `POST /v1/apps/{app}/addons` | [`CreateAddon`] → [`AddonChange`] |
//! | `GET /v1/apps/{app}/addons/{name}` | → [`Addon`] |
//! | `POST /v1/apps/{app}/addons/{name}/attachment` | [`AttachAddon`] → [`AddonChange`] |
//! | `DELETE /v1/apps/{app}/addons/{name}/attachment` | → [`AddonChange`] |
//! | `DELETE /v1/apps/{app}/addons/{name}?confirm={name}&force=true` | → 204 |
//! | `GET /v1/apps/{app}/addons/{name}/console` | upgraded to `paas-attach/1`, [`AddonConsole`] first |
//! | `GET /v1/apps/{app}/addons/{name}/pg-info` | → [`PostgresInfo`] |
//!
//! The agent's, where an add-on is `{owner}/{name}` (a [`Username`](crate::Username) and an [`AddonName`]):
//!
//! | route | body → answer |
//! |---|---|
//! | `PUT /v1/addons/{owner}/{name}` | [`ServiceSpec`] → [`ServiceCreated`], once it answers |
//! | `GET /v1/addons/{owner}/{name}` | → [`ServiceStatus`] |
//! | `PUT /v1/addons/{owner}/{name}/networks/{app}` | → 204, joined the app's network |
//! | `DELETE /v1/addons/{owner}/{name}/networks/{app}` | → 204, left it |
//! | `DELETE /v1/addons/{owner}/{name}` | → 204, container and volume gone |
//! | `GET /v1/addons/{owner}/{name}/console` | upgraded to `paas-attach/1`, [`AddonConsole`] first |
//! | `GET /v1/addons/{owner}/{name}/pg-info` | → [`PostgresStats`] |

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::{AppName, ConfigKey};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddonError {
    #[error("unknown add-on kind {0:?}: use one of {kinds}", kinds = AddonKind::names())]
    Kind(String),
    #[error(
        "invalid add-on name {0:?}: use 1 to 30 lowercase letters, digits and dashes, starting with a letter"
    )]
    Name(String),
    #[error(
        "invalid attachment name {0:?}: use 1 to 30 upper-case letters, digits and underscores, starting with a letter (DATABASE gives DATABASE_URL)"
    )]
    Attachment(String),
}

/// What an add-on runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddonKind {
    Postgres,
    Redis,
}

impl AddonKind {
    pub const ALL: [AddonKind; 2] = [AddonKind::Postgres, AddonKind::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            AddonKind::Postgres => "postgres",
            AddonKind::Redis => "redis",
        }
    }

    /// "postgres, redis", for messages.
    pub fn names() -> String {
        AddonKind::ALL.map(AddonKind::as_str).join(", ")
    }

    /// The attachment an add-on gets unless named otherwise, Heroku's.
    pub fn default_attachment(self) -> AttachmentName {
        AttachmentName(
            match self {
                AddonKind::Postgres => "DATABASE",
                AddonKind::Redis => "REDIS",
            }
            .to_owned(),
        )
    }

    /// The port the service listens on, inside the app networks only.
    pub fn port(self) -> u16 {
        match self {
            AddonKind::Postgres => 5432,
            AddonKind::Redis => 6379,
        }
    }
}

impl std::str::FromStr for AddonKind {
    type Err = AddonError;

    fn from_str(value: &str) -> Result<Self, AddonError> {
        AddonKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == value)
            .ok_or_else(|| AddonError::Kind(value.to_owned()))
    }
}

impl std::fmt::Display for AddonKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

static ADDON_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,29}$").unwrap());
static ATTACHMENT_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Z][A-Z0-9_]{0,29}$").unwrap());

crate::names::string_newtype!(
    /// An add-on's name, unique per owner: the app names' rule, so it never carries a path,
    /// a dot or a separator. It is also the add-on's host name on the networks it joins.
    AddonName,
    AddonError,
    |name| {
        if ADDON_NAME.is_match(name) {
            Ok(())
        } else {
            Err(AddonError::Name(name.to_owned()))
        }
    }
);

crate::names::string_newtype!(
    /// What an app calls an attached add-on: `DATABASE` sets `DATABASE_URL`.
    AttachmentName,
    AddonError,
    |name| {
        if ATTACHMENT_NAME.is_match(name) {
            Ok(())
        } else {
            Err(AddonError::Attachment(name.to_owned()))
        }
    }
);

impl AttachmentName {
    /// The config var the attachment sets: `<NAME>_URL`.
    pub fn config_key(&self) -> ConfigKey {
        format!("{}_URL", self.as_str())
            .parse()
            .expect("an attachment name plus _URL is a config key")
    }
}

/// `paas addons:create KIND [--name NAME] [--as ATTACHMENT]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateAddon {
    pub kind: AddonKind,
    /// Generated (`<kind>-<hex>`) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<AddonName>,
    /// The kind's default ([`AddonKind::default_attachment`]) when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentName>,
}

/// `paas addons:attach NAME -a APP [--as ATTACHMENT]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachAddon {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentName>,
}

/// What a create, an attach or a detach did to the app: the config var it set or unset and
/// the release that rolled it out (none if the app runs nothing yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonChange {
    pub addon: AddonName,
    pub kind: AddonKind,
    pub config_var: ConfigKey,
    pub release: Option<u32>,
}

/// One app's use of an add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub app: AppName,
    pub name: AttachmentName,
}

/// An add-on as `paas addons` and `addons:info` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Addon {
    pub name: AddonName,
    pub kind: AddonKind,
    /// The app it was created on, which owns it.
    pub app: AppName,
    pub attachments: Vec<Attachment>,
    /// From the agent; `None` while the agent cannot be asked.
    pub status: Option<ServiceStatus>,
}

/// How an add-on's container is, as Docker and the service itself say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceState {
    /// Running and answering.
    Available,
    /// Running, not answering yet (starting, recovering).
    Starting,
    /// The container is not running.
    Stopped,
    /// There is no container.
    Missing,
}

impl std::fmt::Display for ServiceState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ServiceState::Available => "available",
            ServiceState::Starting => "starting",
            ServiceState::Stopped => "stopped",
            ServiceState::Missing => "missing",
        })
    }
}

/// The agent's answer about one add-on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    pub state: ServiceState,
    /// The server's own version (`SHOW server_version`, `INFO server`), when it answers.
    pub version: Option<String>,
    /// Bytes its data takes on disk, when it answers.
    pub size_bytes: Option<u64>,
}

/// The agent's `PUT /v1/addons/{owner}/{name}`: run one, on `app`'s network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceSpec {
    pub kind: AddonKind,
    pub app: AppName,
}

/// The agent's answer to a [`ServiceSpec`]: the URL apps connect with (its generated
/// credentials, its name as host), the same on every network it joins.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceCreated {
    pub url: String,
}

/// Never prints the password.
impl std::fmt::Debug for ServiceCreated {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceCreated { url: … }")
    }
}

/// `paas pg:psql` and `paas redis:cli`: the first frame of an add-on console
/// (`paas_api::attach`), from the CLI to gitd and from gitd to the agent. The agent picks the
/// program for `kind` (`psql` or `redis-cli`, signed in as the add-on's own user); `sql` is
/// `pg:psql -c`, one argument, never read by a shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddonConsole {
    /// The kind the user asked a console of; one of another kind is refused.
    pub kind: AddonKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    pub tty: bool,
}

impl AddonConsole {
    /// Why the request cannot be run on an add-on of `actual` kind named `name`, if it cannot.
    pub fn refusal(&self, name: &str, actual: AddonKind) -> Option<String> {
        if self.kind != actual {
            return Some(format!(
                "{name} is a {actual} add-on, not {}: use `paas {}`.",
                self.kind,
                console_command(actual)
            ));
        }
        match &self.sql {
            Some(_) if actual != AddonKind::Postgres => {
                Some("Only a postgres console takes SQL.".to_owned())
            }
            Some(sql) if sql.trim().is_empty() || sql.contains('\0') => {
                Some("The SQL is empty or contains a NUL byte.".to_owned())
            }
            _ => None,
        }
    }
}

/// The CLI command that opens a console of `kind`.
pub fn console_command(kind: AddonKind) -> &'static str {
    match kind {
        AddonKind::Postgres => "pg:psql",
        AddonKind::Redis => "redis:cli",
    }
}

/// What a running Postgres add-on says about its database (the agent's `pg-info`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresStats {
    /// `server_version`: `15.10`.
    pub version: String,
    /// `pg_database_size` of the add-on's database.
    pub data_size_bytes: u64,
    /// Tables in the database's own schemas.
    pub tables: u64,
    /// Open connections to the database (`pg_stat_activity`), the asking one included.
    pub connections: u64,
    pub max_connections: u64,
    /// When its container was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// `paas pg:info`: a Postgres add-on, the apps using it and its numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostgresInfo {
    pub name: AddonName,
    /// The app it was created on, which owns it.
    pub app: AppName,
    pub attachments: Vec<Attachment>,
    #[serde(flatten)]
    pub stats: PostgresStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_unknown_ones_list_the_known() {
        assert_eq!(
            "postgres".parse::<AddonKind>().unwrap(),
            AddonKind::Postgres
        );
        assert_eq!("redis".parse::<AddonKind>().unwrap(), AddonKind::Redis);
        let err = "mysql".parse::<AddonKind>().unwrap_err().to_string();
        assert_eq!(
            err,
            r#"unknown add-on kind "mysql": use one of postgres, redis"#
        );
        assert_eq!(
            serde_json::to_string(&AddonKind::Postgres).unwrap(),
            r#""postgres""#
        );
        assert!(serde_json::from_str::<AddonKind>(r#""mysql""#).is_err());
    }

    #[test]
    fn names_refuse_paths_and_separators() {
        for good in ["db", "postgres-1a2b3c", "a", &"a".repeat(30)] {
            assert!(good.parse::<AddonName>().is_ok(), "{good:?}");
        }
        for bad in [
            "",
            "-db",
            "1db",
            "a/b",
            "..",
            "a..b",
            "../x",
            "a.b",
            "DB",
            "a b",
            "a_b",
            &"a".repeat(31),
        ] {
            assert!(
                matches!(bad.parse::<AddonName>(), Err(AddonError::Name(_))),
                "{bad:?}"
            );
        }
        assert!(serde_json::from_str::<AddonName>(r#""a/b""#).is_err());
    }

    #[test]
    fn attachments_name_their_config_var() {
        let name: AttachmentName = "DATABASE".parse().unwrap();
        assert_eq!(name.config_key().as_str(), "DATABASE_URL");
        assert_eq!(
            AddonKind::Redis.default_attachment().config_key().as_str(),
            "REDIS_URL"
        );
        for bad in [
            "database",
            "1DB",
            "_DB",
            "DB-X",
            "DB URL",
            "",
            &"A".repeat(31),
        ] {
            assert!(bad.parse::<AttachmentName>().is_err(), "{bad:?}");
        }
        assert!("HEROKU_POSTGRESQL_RED".parse::<AttachmentName>().is_ok());
    }

    #[test]
    fn consoles_run_on_their_own_kind_and_only_psql_takes_sql() {
        let console = |kind, sql: Option<&str>| AddonConsole {
            kind,
            sql: sql.map(str::to_owned),
            tty: false,
        };
        assert_eq!(
            console(AddonKind::Postgres, Some("select 1")).refusal("db", AddonKind::Postgres),
            None
        );
        assert_eq!(
            console(AddonKind::Redis, None).refusal("cache", AddonKind::Redis),
            None
        );
        assert_eq!(
            console(AddonKind::Redis, None).refusal("db", AddonKind::Postgres),
            Some("db is a postgres add-on, not redis: use `paas pg:psql`.".to_owned())
        );
        assert!(
            console(AddonKind::Redis, Some("GET k"))
                .refusal("cache", AddonKind::Redis)
                .is_some()
        );
        for bad in ["", " ", "select 1\0"] {
            assert!(
                console(AddonKind::Postgres, Some(bad))
                    .refusal("db", AddonKind::Postgres)
                    .is_some(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn credentials_never_print() {
        let created = ServiceCreated {
            url: "postgres://u:secret@db:5432/d".to_owned(),
        };
        assert!(!format!("{created:?}").contains("secret"));
    }
}

//! Persistent storage (`paas storage:*`, Dokku's `storage:mount`): named volumes owned by an
//! app and mounted into every container of it, its process instances and its one-offs. The
//! mounts belong to the app, not to a release: a deploy, a restart or a rollback keeps them,
//! and only a mount or an unmount (each a release of its own) changes them. A volume outlives
//! its unmount and is removed only by `storage:destroy` or `apps:destroy`.
//!
//! A tenant names a volume ([`VolumeName`]) and a path in the container ([`MountPath`]) and
//! nothing else: the agent derives the Docker volume from the app and the name, so no app can
//! reach another's volume, and a mount is always of a volume, never of a host path.
//!
//! gitd's API:
//!
//! | route | body → answer |
//! |---|---|
//! | `GET /v1/apps/{app}/storage` | → `[`[`Volume`]`]` |
//! | `POST /v1/apps/{app}/storage/mounts` | [`Mount`] → [`StorageChange`] |
//! | `POST /v1/apps/{app}/storage/unmounts` | [`Mount`] → [`StorageChange`] |
//! | `DELETE /v1/apps/{app}/storage/{name}?confirm={app}` | → 204 |
//!
//! The agent's: the mounts travel in `AppSpec.volumes` and `OneOffSpec.volumes`;
//! `DELETE /v1/apps/{app}/volumes/{name}` removes one volume (409 while a container uses it),
//! and removing the app removes all of its volumes.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

/// The most mounts one app may have.
pub const MAX_MOUNTS_PER_APP: usize = 8;

/// The longest container path accepted, in bytes.
pub const MAX_MOUNT_PATH_BYTES: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    #[error(
        "invalid volume name {0:?}: use 1 to 30 lowercase letters, digits and dashes, starting with a letter"
    )]
    VolumeName(String),
    #[error(
        "invalid mount path {0:?}: use an absolute path of letters, digits, dots, dashes and underscores, at most {MAX_MOUNT_PATH_BYTES} bytes, without `..`"
    )]
    MountPath(String),
    #[error("cannot mount a volume at {0}: the container's system directories stay as they are")]
    Reserved(String),
    #[error("invalid mount {0:?}: use NAME:/path, e.g. data:/app/data")]
    Mount(String),
}

static VOLUME_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,29}$").unwrap());
static PATH_COMPONENT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._-]{1,64}$").unwrap());

crate::names::string_newtype!(
    /// The name a tenant gives one of its app's volumes: the app names' rule, so it can never
    /// carry a path, a separator or another app's name.
    VolumeName,
    StorageError,
    |name| {
        if VOLUME_NAME.is_match(name) {
            Ok(())
        } else {
            Err(StorageError::VolumeName(name.to_owned()))
        }
    }
);

/// Directories a mount may neither be nor be under: the system's, and where the platform
/// keeps its own files (`/tmp` holds the health check's markers, `/.paas` its busybox).
const RESERVED_TREES: &[&str] = &[
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc", "/run",
    "/sbin", "/sys", "/tmp", "/usr", "/.paas",
];
/// Directories a mount may be under but not be: covering one hides what the image has there.
const RESERVED_EXACT: &[&str] = &["/", "/var", "/home", "/root", "/opt", "/srv", "/mnt"];

/// Where a volume appears in the container: absolute and normalised (no empty, `.` or
/// trailing components: `/app//data/` is `/app/data`), `..` refused, system directories
/// refused ([`RESERVED_TREES`], [`RESERVED_EXACT`]). Parsing normalises; a path read back
/// (from the store, a request) is checked again.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MountPath(String);

impl MountPath {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MountPath {
    type Error = StorageError;

    fn try_from(value: String) -> Result<Self, StorageError> {
        let bad = || StorageError::MountPath(value.clone());
        if !value.starts_with('/') || value.len() > MAX_MOUNT_PATH_BYTES {
            return Err(bad());
        }
        let mut components = Vec::new();
        for component in value.split('/') {
            match component {
                "" | "." => {}
                ".." => return Err(bad()),
                component if PATH_COMPONENT.is_match(component) => components.push(component),
                _ => return Err(bad()),
            }
        }
        let path = format!("/{}", components.join("/"));
        let reserved = RESERVED_EXACT.contains(&path.as_str())
            || RESERVED_TREES.iter().any(|tree| {
                path == *tree
                    || path
                        .strip_prefix(tree)
                        .is_some_and(|rest| rest.starts_with('/'))
            });
        if reserved {
            return Err(StorageError::Reserved(path));
        }
        Ok(MountPath(path))
    }
}

impl std::str::FromStr for MountPath {
    type Err = StorageError;

    fn from_str(value: &str) -> Result<Self, StorageError> {
        Self::try_from(value.to_owned())
    }
}

impl From<MountPath> for String {
    fn from(value: MountPath) -> String {
        value.0
    }
}

impl std::fmt::Display for MountPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Debug for MountPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

/// One volume of the app at one path of its containers: `NAME:/path` as users type it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Mount {
    pub name: VolumeName,
    pub path: MountPath,
}

impl std::str::FromStr for Mount {
    type Err = StorageError;

    fn from_str(value: &str) -> Result<Self, StorageError> {
        let (name, path) = value
            .split_once(':')
            .ok_or_else(|| StorageError::Mount(value.to_owned()))?;
        Ok(Mount {
            name: name.parse()?,
            path: path.parse()?,
        })
    }
}

impl std::fmt::Display for Mount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.path)
    }
}

/// The answer to a mount or an unmount: the release that rolled it out, or none if the app
/// had no running release (its next deploy mounts the volumes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StorageChange {
    pub release: Option<u32>,
}

/// One of the app's volumes and where it is mounted (nowhere: unmounted, its files kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    pub name: VolumeName,
    pub paths: Vec<MountPath>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_absolute_and_normalised() {
        for (typed, normal) in [
            ("/app/data", "/app/data"),
            ("/app//data/", "/app/data"),
            ("/./data/./x", "/data/x"),
            ("/var/lib/app", "/var/lib/app"),
            ("/data_1.d/x-y", "/data_1.d/x-y"),
        ] {
            assert_eq!(typed.parse::<MountPath>().unwrap().as_str(), normal);
        }
        for bad in [
            "",
            "data",
            "../x",
            "/app/../etc",
            "/a b",
            "/a:b",
            "/a$b",
            "/a'b",
            "/a\\b",
            "/a\nb",
        ] {
            assert!(
                matches!(bad.parse::<MountPath>(), Err(StorageError::MountPath(_))),
                "{bad:?}"
            );
        }
        assert!("/x".repeat(101).parse::<MountPath>().is_err());
    }

    #[test]
    fn system_directories_are_refused() {
        for reserved in [
            "/", "//", "/proc", "/proc/1", "/sys", "/dev", "/dev/shm", "/etc", "/etc/", "/usr/lib",
            "/tmp", "/.paas", "/var", "/root", "/.",
        ] {
            assert!(
                matches!(
                    reserved.parse::<MountPath>(),
                    Err(StorageError::Reserved(_))
                ),
                "{reserved:?}"
            );
        }
        for allowed in [
            "/procfiles",
            "/etcetera",
            "/var/data",
            "/home/app/files",
            "/data",
        ] {
            assert!(allowed.parse::<MountPath>().is_ok(), "{allowed:?}");
        }
    }

    #[test]
    fn mounts_parse_as_name_colon_path() {
        let mount: Mount = "data:/app/data/".parse().unwrap();
        assert_eq!(mount.name, "data");
        assert_eq!(mount.path.as_str(), "/app/data");
        assert_eq!(mount.to_string(), "data:/app/data");
        for bad in [
            "data",
            "/srv/data:/data",
            "../x:/data",
            "Data:/data",
            "data:",
            "data:x",
            "a/b:/data",
        ] {
            assert!(bad.parse::<Mount>().is_err(), "{bad:?}");
        }
        let json = serde_json::to_string(&mount).unwrap();
        assert_eq!(json, r#"{"name":"data","path":"/app/data"}"#);
        assert_eq!(serde_json::from_str::<Mount>(&json).unwrap(), mount);
        assert!(serde_json::from_str::<Mount>(r#"{"name":"data","path":"/proc"}"#).is_err());
        assert!(serde_json::from_str::<Mount>(r#"{"name":"../x","path":"/data"}"#).is_err());
    }
}

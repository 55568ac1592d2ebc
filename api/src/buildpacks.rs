//! `buildpacks.yaml`, the per-app build settings file: its presence at the root of the pushed
//! tree makes the build use `pack` with the builder, buildpacks, path and environment it names.
//!
//! ```yaml
//! buildpacks:
//!   path: "."                                     # build this directory of the repository
//!   builder: "paketobuildpacks/builder-jammy-base" # default: gitd's `default_builder`
//!   buildpack: "paketo-buildpacks/web-servers"    # or a list: buildpacks: [...]
//!   env:
//!     - "BP_WEB_SERVER=nginx"
//! ```
//!
//! Unknown keys, wrong types and malformed YAML are errors whose message names the line.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::names::ConfigKey;

/// The largest `buildpacks.yaml` read, in bytes.
pub const MAX_BUILDPACKS_YAML_BYTES: usize = 64 * 1024;

/// The validated contents of `buildpacks.yaml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BuildpacksFile {
    /// Directory to build, relative to the repository root, without `.` or `..` parts; `.`
    /// for the root.
    pub path: String,
    /// `None`: the server's default builder.
    pub builder: Option<String>,
    /// In order; empty means the builder's own detection.
    pub buildpacks: Vec<String>,
    /// Build-time environment, passed to pack through its environment.
    pub env: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildpacksError {
    #[error("buildpacks.yaml is over {MAX_BUILDPACKS_YAML_BYTES} bytes")]
    TooLarge,
    /// serde_yaml's message, which ends with the line and column.
    #[error("buildpacks.yaml: {0}")]
    Yaml(String),
    #[error("buildpacks.yaml: give either `buildpack` or `buildpacks`, not both")]
    BothBuildpackKeys,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    buildpacks: Section,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    #[serde(default)]
    path: Option<BuildPath>,
    #[serde(default)]
    builder: Option<Reference>,
    #[serde(default)]
    buildpack: Option<Reference>,
    #[serde(default)]
    buildpacks: Option<Vec<Reference>>,
    #[serde(default)]
    env: Vec<EnvEntry>,
}

pub fn parse_buildpacks_yaml(text: &str) -> Result<BuildpacksFile, BuildpacksError> {
    if text.len() > MAX_BUILDPACKS_YAML_BYTES {
        return Err(BuildpacksError::TooLarge);
    }
    let document: Document =
        serde_yaml::from_str(text).map_err(|e| BuildpacksError::Yaml(one_line(&e.to_string())))?;
    let section = document.buildpacks;
    let buildpacks = match (section.buildpack, section.buildpacks) {
        (Some(_), Some(_)) => return Err(BuildpacksError::BothBuildpackKeys),
        (Some(one), None) => vec![one.0],
        (None, Some(list)) => list.into_iter().map(|r| r.0).collect(),
        (None, None) => Vec::new(),
    };
    Ok(BuildpacksFile {
        path: section.path.map_or_else(|| ".".to_owned(), |p| p.0),
        builder: section.builder.map(|r| r.0),
        buildpacks,
        env: section.env.into_iter().map(|e| (e.key, e.value)).collect(),
    })
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An image or buildpack reference: non-empty, no whitespace or control characters, and not
/// starting with `-` (it becomes a command-line argument of pack).
struct Reference(String);

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        if value.is_empty()
            || value.starts_with('-')
            || value.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(de::Error::custom(format!(
                "invalid reference {value:?}: expected an image or buildpack name"
            )));
        }
        Ok(Reference(value))
    }
}

/// A relative directory inside the repository.
struct BuildPath(String);

impl<'de> Deserialize<'de> for BuildPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        normalize_path(&value).map(BuildPath).ok_or_else(|| {
            de::Error::custom(format!(
                "invalid path {value:?}: expected a directory inside the repository, like \".\" or \"web\""
            ))
        })
    }
}

/// `./a//b/` → `a/b`, `.` or `./` → `.`; absolute paths, `..`, backslashes and control
/// characters → `None`.
fn normalize_path(value: &str) -> Option<String> {
    if value.starts_with('/') || value.contains('\\') || value.chars().any(char::is_control) {
        return None;
    }
    let mut parts = Vec::new();
    for part in value.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            other => parts.push(other),
        }
    }
    if parts.is_empty() {
        Some(".".to_owned())
    } else {
        Some(parts.join("/"))
    }
}

/// `KEY=VALUE`.
struct EnvEntry {
    key: String,
    value: String,
}

impl<'de> Deserialize<'de> for EnvEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let entry = String::deserialize(deserializer)?;
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| de::Error::custom(format!("env entry {entry:?} is not KEY=VALUE")))?;
        key.parse::<ConfigKey>().map_err(de::Error::custom)?;
        Ok(EnvEntry {
            key: key.to_owned(),
            value: value.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_example() {
        let parsed = parse_buildpacks_yaml(
            r#"
buildpacks:
  path: "."
  builder: "paketobuildpacks/builder-jammy-base"
  buildpack: "paketo-buildpacks/web-servers"   # or a list: buildpacks: [...]
  env:
    - "BP_WEB_SERVER=nginx"
    - "EMPTY="
    - "WITH_EQUALS=a=b"
"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            BuildpacksFile {
                path: ".".into(),
                builder: Some("paketobuildpacks/builder-jammy-base".into()),
                buildpacks: vec!["paketo-buildpacks/web-servers".into()],
                env: [
                    ("BP_WEB_SERVER".to_owned(), "nginx".to_owned()),
                    ("EMPTY".to_owned(), String::new()),
                    ("WITH_EQUALS".to_owned(), "a=b".to_owned()),
                ]
                .into(),
            }
        );
    }

    #[test]
    fn list_of_buildpacks_and_defaults() {
        let parsed = parse_buildpacks_yaml(
            "buildpacks:\n  buildpacks: [\"a/b\", \"docker.io/c/d:1\"]\n  path: ./web/\n",
        )
        .unwrap();
        assert_eq!(parsed.buildpacks, ["a/b", "docker.io/c/d:1"]);
        assert_eq!(parsed.path, "web");
        assert_eq!(parsed.builder, None);
        let minimal = parse_buildpacks_yaml("buildpacks: {}\n").unwrap();
        assert_eq!(minimal.path, ".");
        assert!(minimal.buildpacks.is_empty() && minimal.env.is_empty());
    }

    fn error(text: &str) -> String {
        parse_buildpacks_yaml(text).unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_name_the_line() {
        let message = error("buildpacks:\n  path: .\n  buildr: x\n");
        assert!(message.contains("unknown field `buildr`"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        let message = error("buildpacks:\n  path: .\nextra: 1\n");
        assert!(message.contains("unknown field `extra`"), "{message}");
        assert!(message.contains("line 3"), "{message}");
    }

    #[test]
    fn malformed_yaml_names_the_line() {
        let message = error("buildpacks:\n  path: .\n  env: [\"A=1\"\n");
        assert!(message.contains("line"), "{message}");
        assert!(!message.contains('\n'), "{message}");
        let message = error("buildpacks:\n  env: \"A=1\"\n");
        assert!(message.contains("line 2"), "{message}");
    }

    #[test]
    fn bad_values_name_the_line() {
        let message = error("buildpacks:\n  env:\n    - \"NOEQUALS\"\n");
        assert!(message.contains("not KEY=VALUE"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        let message = error("buildpacks:\n  env:\n    - \"1BAD=x\"\n");
        assert!(message.contains("invalid config key"), "{message}");
        let message = error("buildpacks:\n\n  path: ../etc\n");
        assert!(message.contains("invalid path"), "{message}");
        assert!(message.contains("line 3"), "{message}");
        for path in ["/etc", "a/../../b", "a\\b"] {
            assert!(
                error(&format!("buildpacks:\n  path: {path:?}\n")).contains("invalid path"),
                "{path}"
            );
        }
        let message = error("buildpacks:\n  builder: \"--publish\"\n");
        assert!(message.contains("invalid reference"), "{message}");
        let message = error("buildpacks:\n  buildpack: \"a b\"\n");
        assert!(message.contains("invalid reference"), "{message}");
        assert_eq!(
            parse_buildpacks_yaml("buildpacks:\n  buildpack: a\n  buildpacks: [b]\n"),
            Err(BuildpacksError::BothBuildpackKeys)
        );
        assert!(error("").contains("buildpacks.yaml"));
        assert!(error("- a\n").contains("buildpacks.yaml"));
    }
}

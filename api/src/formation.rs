//! Process formations: the scale specs users type (`web=3 worker=1`, `web+2`, `web-1`), typed
//! as [`ScaleChanges`] (also the wire form of a scale request), and applied to the current
//! quantities. Process type names follow [`ProcessType`]'s rule.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use regex::Regex;

use crate::names::{ProcessType, ValidationError};

/// The most containers of one process type an app may ask for.
pub const MAX_QUANTITY: u32 = 100;

/// `<type>=<n>`, `<type>+<n>` or `<type>-<n>`; the type is matched lazily so `my-worker-1`
/// reads as "one fewer `my-worker`".
static SCALE_ARG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.+?)(=|\+|-)([0-9]+)$").unwrap());
/// `<type>=-<n>`: a count below zero, refused with its own message.
static NEGATIVE_COUNT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[^=]+=-[0-9]+$").unwrap());

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormationError {
    #[error(transparent)]
    Name(#[from] ValidationError),
    #[error("invalid scale argument {0:?}: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3)")]
    Syntax(String),
    #[error("invalid scale argument {0:?}: the count must be 0 to {MAX_QUANTITY}")]
    NegativeCount(String),
    #[error("no scale changes given: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3)")]
    Empty,
    #[error("{process} is given more than once")]
    Repeated { process: ProcessType },
    #[error("unknown process type {process:?}; this app has: {known}")]
    UnknownType { process: String, known: String },
    #[error(
        "release is the release phase's command, not a process type: it runs once per release, before the release takes traffic, and cannot be scaled"
    )]
    ReleasePhase,
    #[error("{process} would have {quantity} instances; the range is 0 to {MAX_QUANTITY}")]
    OutOfRange { process: String, quantity: i64 },
}

/// How one process type's quantity changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleChange {
    Set(u32),
    Add(u32),
    Remove(u32),
}

/// One `TYPE=N` / `TYPE+N` / `TYPE-N` argument; on the wire, that string.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ScaleArg {
    pub process: ProcessType,
    pub change: ScaleChange,
}

impl fmt::Display for ScaleArg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sign, amount) = match self.change {
            ScaleChange::Set(n) => ('=', n),
            ScaleChange::Add(n) => ('+', n),
            ScaleChange::Remove(n) => ('-', n),
        };
        write!(f, "{}{sign}{amount}", self.process)
    }
}

impl std::str::FromStr for ScaleArg {
    type Err = FormationError;

    fn from_str(word: &str) -> Result<ScaleArg, FormationError> {
        if NEGATIVE_COUNT.is_match(word) {
            return Err(FormationError::NegativeCount(word.to_owned()));
        }
        let captures = SCALE_ARG
            .captures(word)
            .ok_or_else(|| FormationError::Syntax(word.to_owned()))?;
        let process: ProcessType = captures[1].parse()?;
        // Digits only, so the one failure left is overflow: far out of range either way.
        let amount: u32 = captures[3].parse().unwrap_or(u32::MAX);
        let change = match &captures[2] {
            "=" => ScaleChange::Set(amount),
            "+" => ScaleChange::Add(amount),
            _ => ScaleChange::Remove(amount),
        };
        Ok(ScaleArg { process, change })
    }
}

impl TryFrom<String> for ScaleArg {
    type Error = FormationError;

    fn try_from(word: String) -> Result<ScaleArg, FormationError> {
        word.parse()
    }
}

impl From<ScaleArg> for String {
    fn from(arg: ScaleArg) -> String {
        arg.to_string()
    }
}

/// The changes of one `paas scale`: at least one, each process type at most once. On the wire,
/// the list of their strings (`["web=3", "worker+1"]`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Vec<ScaleArg>", into = "Vec<ScaleArg>")]
pub struct ScaleChanges(Vec<ScaleArg>);

impl ScaleChanges {
    pub fn as_slice(&self) -> &[ScaleArg] {
        &self.0
    }
}

impl TryFrom<Vec<ScaleArg>> for ScaleChanges {
    type Error = FormationError;

    fn try_from(changes: Vec<ScaleArg>) -> Result<ScaleChanges, FormationError> {
        if changes.is_empty() {
            return Err(FormationError::Empty);
        }
        for (at, change) in changes.iter().enumerate() {
            if changes[..at]
                .iter()
                .any(|earlier| earlier.process == change.process)
            {
                return Err(FormationError::Repeated {
                    process: change.process.clone(),
                });
            }
        }
        Ok(ScaleChanges(changes))
    }
}

impl From<ScaleChanges> for Vec<ScaleArg> {
    fn from(changes: ScaleChanges) -> Vec<ScaleArg> {
        changes.0
    }
}

impl std::ops::Deref for ScaleChanges {
    type Target = [ScaleArg];

    fn deref(&self) -> &[ScaleArg] {
        &self.0
    }
}

/// Parses the arguments of `paas scale`; each may also hold several space-separated changes.
pub fn parse_scale_args<S: AsRef<str>>(args: &[S]) -> Result<ScaleChanges, FormationError> {
    let parsed = args
        .iter()
        .flat_map(|arg| arg.as_ref().split_whitespace())
        .map(str::parse)
        .collect::<Result<Vec<ScaleArg>, _>>()?;
    ScaleChanges::try_from(parsed)
}

/// Applies `changes` to `current` (every process type the release defines, with its quantity)
/// and returns the whole new formation; nothing is applied when any change is invalid.
pub fn apply_scale(
    current: &BTreeMap<ProcessType, u32>,
    changes: &[ScaleArg],
) -> Result<BTreeMap<ProcessType, u32>, FormationError> {
    let mut next = current.clone();
    for ScaleArg { process, change } in changes {
        if !crate::procfile::is_formation_process(process.as_str()) {
            return Err(FormationError::ReleasePhase);
        }
        let Some(&now) = current.get(process.as_str()) else {
            let known = if current.is_empty() {
                "no process types (deploy the app first)".to_owned()
            } else {
                current
                    .keys()
                    .map(ProcessType::as_str)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(FormationError::UnknownType {
                process: process.to_string(),
                known,
            });
        };
        let quantity = match *change {
            ScaleChange::Set(n) => i64::from(n),
            ScaleChange::Add(n) => i64::from(now) + i64::from(n),
            ScaleChange::Remove(n) => i64::from(now) - i64::from(n),
        };
        if !(0..=i64::from(MAX_QUANTITY)).contains(&quantity) {
            return Err(FormationError::OutOfRange {
                process: process.to_string(),
                quantity,
            });
        }
        next.insert(process.clone(), quantity as u32);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn formation(pairs: &[(&str, u32)]) -> BTreeMap<ProcessType, u32> {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), *v))
            .collect()
    }

    fn arg(process: &str, change: ScaleChange) -> ScaleArg {
        ScaleArg {
            process: process.parse().unwrap(),
            change,
        }
    }

    #[test]
    fn parses_set_add_and_remove() {
        assert_eq!(
            parse_scale_args(&["web=3", "worker=1"]).unwrap().to_vec(),
            vec![
                arg("web", ScaleChange::Set(3)),
                arg("worker", ScaleChange::Set(1))
            ]
        );
        assert_eq!(
            parse_scale_args(&["web+2 worker-1"]).unwrap().to_vec(),
            vec![
                arg("web", ScaleChange::Add(2)),
                arg("worker", ScaleChange::Remove(1))
            ]
        );
        assert_eq!(
            parse_scale_args(&["my-worker-1"]).unwrap().to_vec(),
            vec![arg("my-worker", ScaleChange::Remove(1))]
        );
        assert_eq!(
            parse_scale_args(&["clock_2=0"]).unwrap().to_vec(),
            vec![arg("clock_2", ScaleChange::Set(0))]
        );
    }

    #[test]
    fn refuses_malformed_arguments() {
        for bad in [
            "web", "web=", "=3", "web=x", "web=-1", "web:3", "-web=1", "web=3x", "we b=1",
        ] {
            assert!(parse_scale_args(&[bad]).is_err(), "{bad:?}");
        }
        assert_eq!(
            parse_scale_args::<&str>(&[]).unwrap_err(),
            FormationError::Empty
        );
        assert_eq!(
            parse_scale_args(&["web=1", "web+1"]).unwrap_err(),
            FormationError::Repeated {
                process: ProcessType::web()
            }
        );
        assert!(matches!(
            parse_scale_args(&["../x=1"]).unwrap_err(),
            FormationError::Name(ValidationError::ProcessType(_))
        ));
    }

    #[test]
    fn applies_changes_to_the_current_formation() {
        let current = formation(&[("web", 1), ("worker", 2)]);
        let changes = parse_scale_args(&["web+2", "worker-1"]).unwrap();
        assert_eq!(
            apply_scale(&current, &changes).unwrap(),
            formation(&[("web", 3), ("worker", 1)])
        );
        let changes = parse_scale_args(&["web=0"]).unwrap();
        assert_eq!(
            apply_scale(&current, &changes).unwrap(),
            formation(&[("web", 0), ("worker", 2)])
        );
    }

    #[test]
    fn quantities_stay_within_0_to_100() {
        let current = formation(&[("web", 1)]);
        assert!(apply_scale(&current, &parse_scale_args(&["web=100"]).unwrap()).is_ok());
        for bad in ["web=101", "web-2", "web+100", "web=99999999999"] {
            let err = apply_scale(&current, &parse_scale_args(&[bad]).unwrap()).unwrap_err();
            assert!(
                matches!(err, FormationError::OutOfRange { .. }),
                "{bad}: {err}"
            );
        }
        let err = apply_scale(&current, &parse_scale_args(&["web-2"]).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "web would have -1 instances; the range is 0 to 100"
        );
    }

    #[test]
    fn unknown_types_are_errors_naming_the_known_ones() {
        let current = formation(&[("web", 1), ("worker", 0)]);
        let err = apply_scale(&current, &parse_scale_args(&["wrker=1"]).unwrap()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown process type \"wrker\"; this app has: web, worker"
        );
        let err =
            apply_scale(&BTreeMap::new(), &parse_scale_args(&["web=1"]).unwrap()).unwrap_err();
        assert!(err.to_string().contains("deploy the app first"), "{err}");
    }

    #[test]
    fn the_release_command_cannot_be_scaled() {
        let current = formation(&[("web", 1)]);
        let err = apply_scale(&current, &parse_scale_args(&["release=1"]).unwrap()).unwrap_err();
        assert_eq!(err, FormationError::ReleasePhase);
        assert!(err.to_string().contains("cannot be scaled"), "{err}");
    }

    #[test]
    fn negative_counts_say_the_range() {
        for bad in ["web=-1", "my-worker=-20"] {
            let err = parse_scale_args(&[bad]).unwrap_err();
            assert_eq!(err, FormationError::NegativeCount(bad.to_owned()));
            assert_eq!(
                err.to_string(),
                format!("invalid scale argument {bad:?}: the count must be 0 to 100")
            );
        }
    }

    #[test]
    fn scale_changes_travel_as_their_strings() {
        let changes = parse_scale_args(&["web=3", "worker+1", "my-worker-2"]).unwrap();
        let json = serde_json::to_string(&changes).unwrap();
        assert_eq!(json, r#"["web=3","worker+1","my-worker-2"]"#);
        assert_eq!(
            serde_json::from_str::<ScaleChanges>(&json).unwrap(),
            changes
        );
        for (bad, expected) in [
            (r#"["web=-1"]"#, "the count must be 0 to 100"),
            (r#"["Web=1"]"#, "invalid process type"),
            (r#"["web"]"#, "use TYPE=N, TYPE+N or TYPE-N"),
            (r#"[]"#, "no scale changes given"),
            (r#"["web=1","web+1"]"#, "web is given more than once"),
        ] {
            let err = serde_json::from_str::<ScaleChanges>(bad).unwrap_err();
            assert!(err.to_string().contains(expected), "{bad}: {err}");
        }
    }
}

//! Process formations: the process type names an app may run (the Procfile's rule) and the scale specs users type
//! (`web=3 worker=1`, `web+2`, `web-1`), applied to the current quantities.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;

/// The most containers of one process type an app may ask for.
pub const MAX_QUANTITY: u32 = 100;

static PROCESS_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,29}$").unwrap());
/// `<type>=<n>`, `<type>+<n>` or `<type>-<n>`; the type is matched lazily so `my-worker-1`
/// reads as "one fewer `my-worker`".
static SCALE_ARG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(.+?)(=|\+|-)([0-9]+)$").unwrap());

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormationError {
    #[error(
        "invalid process type {0:?}: use 1 to 30 lowercase letters, digits, dashes and underscores, starting with a letter or digit"
    )]
    ProcessType(String),
    #[error("invalid scale argument {0:?}: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3)")]
    Syntax(String),
    #[error("no scale changes given: use TYPE=N, TYPE+N or TYPE-N (e.g. web=3)")]
    Empty,
    #[error("{process} is given more than once")]
    Repeated { process: String },
    #[error("unknown process type {process:?}; this app has: {known}")]
    UnknownType { process: String, known: String },
    #[error("{process} would have {quantity} instances; the range is 0 to {MAX_QUANTITY}")]
    OutOfRange { process: String, quantity: i64 },
}

pub fn validate_process_type(name: &str) -> Result<(), FormationError> {
    if PROCESS_TYPE.is_match(name) {
        Ok(())
    } else {
        Err(FormationError::ProcessType(name.to_owned()))
    }
}

/// How one process type's quantity changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScaleChange {
    Set(u32),
    Add(u32),
    Remove(u32),
}

/// One `TYPE=N` / `TYPE+N` / `TYPE-N` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaleArg {
    pub process: String,
    pub change: ScaleChange,
}

/// Parses the arguments of `paas scale`; each may also hold several space-separated changes.
pub fn parse_scale_args<S: AsRef<str>>(args: &[S]) -> Result<Vec<ScaleArg>, FormationError> {
    let mut parsed: Vec<ScaleArg> = Vec::new();
    for word in args.iter().flat_map(|arg| arg.as_ref().split_whitespace()) {
        let arg = parse_scale_arg(word)?;
        if parsed.iter().any(|earlier| earlier.process == arg.process) {
            return Err(FormationError::Repeated {
                process: arg.process,
            });
        }
        parsed.push(arg);
    }
    if parsed.is_empty() {
        return Err(FormationError::Empty);
    }
    Ok(parsed)
}

fn parse_scale_arg(word: &str) -> Result<ScaleArg, FormationError> {
    let captures = SCALE_ARG
        .captures(word)
        .ok_or_else(|| FormationError::Syntax(word.to_owned()))?;
    let process = captures[1].to_owned();
    validate_process_type(&process)?;
    // Digits only, so the one failure left is overflow: far out of range either way.
    let amount: u32 = captures[3].parse().unwrap_or(u32::MAX);
    let change = match &captures[2] {
        "=" => ScaleChange::Set(amount),
        "+" => ScaleChange::Add(amount),
        _ => ScaleChange::Remove(amount),
    };
    Ok(ScaleArg { process, change })
}

/// Applies `changes` to `current` (every process type the release defines, with its quantity)
/// and returns the whole new formation; nothing is applied when any change is invalid.
pub fn apply_scale(
    current: &BTreeMap<String, u32>,
    changes: &[ScaleArg],
) -> Result<BTreeMap<String, u32>, FormationError> {
    let mut next = current.clone();
    for ScaleArg { process, change } in changes {
        let Some(&now) = current.get(process) else {
            let known = if current.is_empty() {
                "no process types (deploy the app first)".to_owned()
            } else {
                current.keys().cloned().collect::<Vec<_>>().join(", ")
            };
            return Err(FormationError::UnknownType {
                process: process.clone(),
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
                process: process.clone(),
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

    fn formation(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    fn arg(process: &str, change: ScaleChange) -> ScaleArg {
        ScaleArg {
            process: process.to_owned(),
            change,
        }
    }

    #[test]
    fn parses_set_add_and_remove() {
        assert_eq!(
            parse_scale_args(&["web=3", "worker=1"]).unwrap(),
            vec![
                arg("web", ScaleChange::Set(3)),
                arg("worker", ScaleChange::Set(1))
            ]
        );
        assert_eq!(
            parse_scale_args(&["web+2 worker-1"]).unwrap(),
            vec![
                arg("web", ScaleChange::Add(2)),
                arg("worker", ScaleChange::Remove(1))
            ]
        );
        assert_eq!(
            parse_scale_args(&["my-worker-1"]).unwrap(),
            vec![arg("my-worker", ScaleChange::Remove(1))]
        );
        assert_eq!(
            parse_scale_args(&["clock_2=0"]).unwrap(),
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
                process: "web".into()
            }
        );
        assert!(matches!(
            parse_scale_args(&["../x=1"]).unwrap_err(),
            FormationError::ProcessType(_)
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
    fn process_types() {
        for good in ["web", "worker", "clock_2", "2nd", "a-b"] {
            assert!(validate_process_type(good).is_ok(), "{good}");
        }
        for bad in ["", "-web", "Web", "a b", "a.b", "a/b", &"a".repeat(31)] {
            assert!(validate_process_type(bad).is_err(), "{bad:?}");
        }
    }
}

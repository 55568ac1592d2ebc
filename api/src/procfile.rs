//! `Procfile` parsing: the process types of an app and their commands, as on Heroku.
//!
//! One `type: command` per line; blank lines and `#` comments are skipped. Type names are 1 to
//! 30 lowercase letters, digits, dashes and underscores, starting with a letter or digit (they
//! become container names and labels: [`ProcessType`]'s rule); each may appear once; commands may not be empty nor
//! contain control characters other than tabs.
//!
//! One name is not a process type: [`RELEASE_PROCESS`] (`release: rake db:migrate`) is the
//! release phase's command, run once per release in a one-off container before the release
//! takes traffic. It stays in the parsed map (and in a release's recorded processes, so config
//! changes and rollbacks carry it), but never in a formation: [`is_formation_process`].

use std::collections::BTreeMap;

use crate::names::ProcessType;

/// The Procfile entry holding the release phase's command.
pub const RELEASE_PROCESS: &str = "release";

/// Whether a Procfile entry is a process type that runs instances (everything but
/// [`RELEASE_PROCESS`]).
pub fn is_formation_process(name: &str) -> bool {
    name != RELEASE_PROCESS
}

/// The release phase's command among a release's processes, if it declares one.
pub fn release_command<K, S>(processes: &BTreeMap<K, Option<S>>) -> Option<&str>
where
    K: std::borrow::Borrow<str> + Ord,
    S: AsRef<str>,
{
    processes
        .get(RELEASE_PROCESS)
        .and_then(Option::as_ref)
        .map(AsRef::as_ref)
}

/// The largest Procfile read, in bytes.
pub const MAX_PROCFILE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProcfileError {
    #[error("Procfile is over {MAX_PROCFILE_BYTES} bytes")]
    TooLarge,
    #[error("Procfile line {line}: expected `type: command`")]
    NoColon { line: usize },
    #[error(
        "Procfile line {line}: invalid process type {name:?} (use 1 to 30 lowercase letters, digits, dashes and underscores)"
    )]
    BadType { line: usize, name: String },
    #[error("Procfile line {line}: process type {name:?} has no command")]
    EmptyCommand { line: usize, name: String },
    #[error(
        "Procfile line {line}: the command of {name:?} contains a control character (only tabs are allowed)"
    )]
    ControlCharacter { line: usize, name: String },
    #[error("Procfile line {line}: process type {name:?} is declared twice")]
    Duplicate { line: usize, name: String },
    #[error("Procfile declares no process types")]
    Empty,
}

/// Process type → command.
pub fn parse_procfile(text: &str) -> Result<BTreeMap<ProcessType, String>, ProcfileError> {
    if text.len() > MAX_PROCFILE_BYTES {
        return Err(ProcfileError::TooLarge);
    }
    let mut processes = BTreeMap::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let (name, command) = trimmed
            .split_once(':')
            .ok_or(ProcfileError::NoColon { line })?;
        let name = name.trim();
        let command = command.trim();
        let Ok(process) = name.parse::<ProcessType>() else {
            return Err(ProcfileError::BadType {
                line,
                name: name.to_owned(),
            });
        };
        if command.is_empty() {
            return Err(ProcfileError::EmptyCommand {
                line,
                name: name.to_owned(),
            });
        }
        // A command is shown in `ps` and `releases:info` and handed to Docker: no NUL, no
        // carriage return or escape sequence may ride along.
        if command.chars().any(|c| c.is_control() && c != '\t') {
            return Err(ProcfileError::ControlCharacter {
                line,
                name: name.to_owned(),
            });
        }
        if processes.insert(process, command.to_owned()).is_some() {
            return Err(ProcfileError::Duplicate {
                line,
                name: name.to_owned(),
            });
        }
    }
    if processes.is_empty() {
        return Err(ProcfileError::Empty);
    }
    Ok(processes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types_and_commands() {
        let parsed = parse_procfile(
            "# processes\nweb: httpd -f -p $PORT\n\nworker:   ./work --queue=a:b  \r\nclock_2:x\n",
        )
        .unwrap();
        assert_eq!(parsed.len(), 3);
        assert_eq!(parsed["web"], "httpd -f -p $PORT");
        assert_eq!(parsed["worker"], "./work --queue=a:b");
        assert_eq!(parsed["clock_2"], "x");
    }

    #[test]
    fn the_release_command_is_kept_apart_from_the_process_types() {
        let parsed = parse_procfile("web: httpd\nrelease: ./migrate --all\n").unwrap();
        let processes: BTreeMap<ProcessType, Option<String>> = parsed
            .into_iter()
            .map(|(name, command)| (name, Some(command)))
            .collect();
        assert_eq!(release_command(&processes), Some("./migrate --all"));
        let types: Vec<&str> = processes
            .keys()
            .map(ProcessType::as_str)
            .filter(|name| is_formation_process(name))
            .collect();
        assert_eq!(types, ["web"]);
        let without: BTreeMap<String, Option<String>> = [("web".to_owned(), None)].into();
        assert_eq!(release_command(&without), None);
    }

    #[test]
    fn names_the_bad_line() {
        assert_eq!(
            parse_procfile("web: a\nnonsense\n"),
            Err(ProcfileError::NoColon { line: 2 })
        );
        assert_eq!(
            parse_procfile("Web: a"),
            Err(ProcfileError::BadType {
                line: 1,
                name: "Web".into()
            })
        );
        assert_eq!(
            parse_procfile("web.x: a"),
            Err(ProcfileError::BadType {
                line: 1,
                name: "web.x".into()
            })
        );
        assert_eq!(
            parse_procfile("\n\nweb:   "),
            Err(ProcfileError::EmptyCommand {
                line: 3,
                name: "web".into()
            })
        );
        assert_eq!(
            parse_procfile("web: a\nweb: b"),
            Err(ProcfileError::Duplicate {
                line: 2,
                name: "web".into()
            })
        );
        assert_eq!(parse_procfile("# nothing\n"), Err(ProcfileError::Empty));
        // Found by the `procfile` fuzz target: a bare CR, NULs and SOH inside a command.
        assert_eq!(
            parse_procfile("web: httpd -f -p\u{1}\0\0\0\0\0\0\r-5000} -h /www\n"),
            Err(ProcfileError::ControlCharacter {
                line: 1,
                name: "web".into()
            })
        );
        assert_eq!(
            parse_procfile("web: printf '\x1b]0;pwned\x07'"),
            Err(ProcfileError::ControlCharacter {
                line: 1,
                name: "web".into()
            })
        );
        assert_eq!(parse_procfile("web: a\tb").unwrap()["web"], "a\tb");
        assert_eq!(
            parse_procfile(&"#".repeat(MAX_PROCFILE_BYTES + 1)),
            Err(ProcfileError::TooLarge)
        );
    }
}

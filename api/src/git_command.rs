//! The commands gitd's SSH endpoint runs: the exec request of a `git push` or `git clone`,
//! parsed strictly into an allow-listed service and a valid app name.
//!
//! Accepted: `git-receive-pack '<app>.git'` and `git-upload-pack '<app>.git'`, exactly as git
//! sends them, with an optional leading `/`, optional single quotes around the whole
//! argument and an optional `.git` suffix. The spaced forms (`git receive-pack …`) are refused:
//! git only sends them when a user overrides `remote.<name>.receivepack`, and one spelling
//! keeps the allow-list small. Nothing else is accepted; in particular no second argument, no
//! quote that does not enclose the whole argument, no control character, and no name that
//! [`AppName`] refuses (so no `/`, `.`, `..` or `~` can reach a path).

use crate::names::AppName;

/// The longest exec request considered at all.
pub const MAX_COMMAND_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitService {
    /// `git push`: the client sends a pack.
    ReceivePack,
    /// `git clone` / `git fetch`: the client receives a pack.
    UploadPack,
}

impl GitService {
    /// The `git` subcommand that serves it.
    pub fn subcommand(self) -> &'static str {
        match self {
            GitService::ReceivePack => "receive-pack",
            GitService::UploadPack => "upload-pack",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCommand {
    pub service: GitService,
    pub app: AppName,
}

/// Why an exec request was refused; each message is one line, safe to show the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitCommandError {
    #[error("command too long")]
    TooLong,
    #[error("command is not valid UTF-8")]
    NotUtf8,
    #[error("command contains a control character")]
    ControlCharacter,
    #[error(
        "only `git-receive-pack '<app>.git'` (push) and `git-upload-pack '<app>.git'` (clone) are allowed"
    )]
    NotAllowed,
    #[error("expected exactly one argument: '<app>.git'")]
    BadArguments,
    #[error("unbalanced or misplaced quotes in the repository path")]
    BadQuotes,
    #[error("invalid repository path {0:?}: expected '<app>.git'")]
    BadPath(String),
}

pub fn parse_git_command(command: &[u8]) -> Result<GitCommand, GitCommandError> {
    if command.len() > MAX_COMMAND_BYTES {
        return Err(GitCommandError::TooLong);
    }
    let command = std::str::from_utf8(command).map_err(|_| GitCommandError::NotUtf8)?;
    if command.chars().any(char::is_control) {
        return Err(GitCommandError::ControlCharacter);
    }
    let (verb, argument) = command.split_once(' ').ok_or(GitCommandError::NotAllowed)?;
    let service = match verb {
        "git-receive-pack" => GitService::ReceivePack,
        "git-upload-pack" => GitService::UploadPack,
        _ => return Err(GitCommandError::NotAllowed),
    };
    let path = unquote(argument)?;
    let name = path.strip_prefix('/').unwrap_or(path);
    let name = name.strip_suffix(".git").unwrap_or(name);
    let app = name
        .parse()
        .map_err(|_| GitCommandError::BadPath(path.to_owned()))?;
    Ok(GitCommand { service, app })
}

/// The argument without its enclosing single quotes, if it has them. Quotes anywhere else,
/// double quotes, backslashes and spaces (a second argument) are refused.
fn unquote(argument: &str) -> Result<&str, GitCommandError> {
    let inner = match argument.strip_prefix('\'') {
        Some(rest) => rest.strip_suffix('\'').ok_or(GitCommandError::BadQuotes)?,
        None => argument,
    };
    if inner.contains(['\'', '"', '\\']) {
        return Err(GitCommandError::BadQuotes);
    }
    if inner.is_empty() || inner.contains(' ') {
        return Err(GitCommandError::BadArguments);
    }
    Ok(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(command: &str) -> Result<GitCommand, GitCommandError> {
        parse_git_command(command.as_bytes())
    }

    fn ok(service: GitService, app: &str) -> Result<GitCommand, GitCommandError> {
        Ok(GitCommand {
            service,
            app: app.parse().unwrap(),
        })
    }

    #[test]
    fn accepts_what_git_sends() {
        use GitService::*;
        assert_eq!(
            parse("git-receive-pack 'hello.git'"),
            ok(ReceivePack, "hello")
        );
        assert_eq!(
            parse("git-upload-pack 'hello.git'"),
            ok(UploadPack, "hello")
        );
        assert_eq!(
            parse("git-receive-pack '/hello.git'"),
            ok(ReceivePack, "hello")
        );
        assert_eq!(parse("git-receive-pack 'hello'"), ok(ReceivePack, "hello"));
        assert_eq!(
            parse("git-receive-pack hello.git"),
            ok(ReceivePack, "hello")
        );
        assert_eq!(
            parse("git-upload-pack /my-app-2"),
            ok(UploadPack, "my-app-2")
        );
    }

    #[test]
    fn refuses_other_commands() {
        for command in [
            "",
            "sh",
            "ls -la",
            "git-upload-archive 'hello.git'",
            "git receive-pack 'hello.git'",
            "git-receive-pack",
            "git-receive-pack ",
            "Git-receive-pack 'hello.git'",
            " git-receive-pack 'hello.git'",
            "scp -t /tmp",
            "rm -rf /",
        ] {
            assert!(parse(command).is_err(), "{command:?}");
        }
        assert_eq!(parse("bash -i"), Err(GitCommandError::NotAllowed));
    }

    #[test]
    fn refuses_path_tricks() {
        for command in [
            "git-receive-pack '../x.git'",
            "git-receive-pack '/etc/passwd'",
            "git-receive-pack '..'",
            "git-receive-pack 'a/../b.git'",
            "git-receive-pack '~/hello.git'",
            "git-receive-pack '//hello.git'",
            "git-receive-pack 'hello.git.git'",
            "git-receive-pack 'Hello.git'",
            "git-receive-pack '.git'",
            "git-receive-pack '/'",
            "git-receive-pack 'repos/hello.git'",
            "git-receive-pack '-hello.git'",
            "git-receive-pack --help",
        ] {
            assert!(
                matches!(parse(command), Err(GitCommandError::BadPath(_))),
                "{command:?}: {:?}",
                parse(command)
            );
        }
    }

    #[test]
    fn refuses_quoting_and_injection() {
        assert_eq!(
            parse("git-receive-pack 'x.git'; touch /tmp/p"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack \"x.git'; touch /tmp/p\""),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack 'x.git"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack x.git'"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack \"x.git\""),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack 'x'.git"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack x\\.git"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack 'a.git' 'b.git'"),
            Err(GitCommandError::BadQuotes)
        );
        assert_eq!(
            parse("git-receive-pack a.git b.git"),
            Err(GitCommandError::BadArguments)
        );
        assert_eq!(
            parse("git-receive-pack  a.git"),
            Err(GitCommandError::BadArguments)
        );
        assert_eq!(
            parse("git-receive-pack 'a b.git'"),
            Err(GitCommandError::BadArguments)
        );
        assert_eq!(
            parse("git-receive-pack ''"),
            Err(GitCommandError::BadArguments)
        );
    }

    #[test]
    fn refuses_control_characters_and_bad_bytes() {
        for command in [
            "git-receive-pack 'x\n.git'",
            "git-receive-pack 'x.git'\n",
            "git-receive-pack 'x.git'\nsh",
            "git-receive-pack 'x\0.git'",
            "git-receive-pack\t'x.git'",
            "git-receive-pack 'x.git'\r",
            "git-receive-pack 'x\u{7f}.git'",
        ] {
            assert_eq!(
                parse(command),
                Err(GitCommandError::ControlCharacter),
                "{command:?}"
            );
        }
        assert_eq!(
            parse_git_command(b"git-receive-pack '\xff.git'"),
            Err(GitCommandError::NotUtf8)
        );
        let long = format!("git-receive-pack '{}.git'", "a".repeat(MAX_COMMAND_BYTES));
        assert_eq!(parse(&long), Err(GitCommandError::TooLong));
    }

    #[test]
    fn refuses_names_that_do_not_validate() {
        let too_long = format!("git-receive-pack '{}.git'", "a".repeat(31));
        assert!(matches!(parse(&too_long), Err(GitCommandError::BadPath(_))));
        assert!(matches!(
            parse("git-receive-pack 'a_b.git'"),
            Err(GitCommandError::BadPath(_))
        ));
        assert!(matches!(
            parse("git-receive-pack 'é.git'"),
            Err(GitCommandError::BadPath(_))
        ));
    }

    #[test]
    fn messages_are_one_line() {
        for err in [
            parse("sh").unwrap_err(),
            parse("git-receive-pack '../x.git'").unwrap_err(),
            parse("git-receive-pack 'x\n'").unwrap_err(),
        ] {
            assert!(!err.to_string().contains('\n'), "{err}");
        }
    }
}

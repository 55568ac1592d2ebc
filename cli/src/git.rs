//! The CLI's few dealings with the user's git repository: reading which app the `paas`
//! remote points at, and adding or fixing that remote. Runs the `git` binary in the current
//! directory.

use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use paas_api::AppName;

/// The remote `apps:create` and `git:remote` manage.
pub const DEFAULT_REMOTE: &str = "paas";

/// The app a git remote URL points at: `ssh://git@host:port/NAME.git` (also without port or
/// `.git`, and the scp form `git@host:NAME.git`). `None` when it is not a paas remote.
pub fn app_from_remote_url(url: &str) -> Option<AppName> {
    let url = url.trim();
    let path = if let Some(rest) = url.strip_prefix("ssh://") {
        let (_authority, path) = rest.split_once('/')?;
        path
    } else if !url.contains("://") {
        let (_host, path) = url.split_once(':')?;
        path
    } else {
        return None;
    };
    let path = path.trim_end_matches('/');
    let name = path.strip_suffix(".git").unwrap_or(path);
    name.parse().ok()
}

fn git(args: &[&str]) -> anyhow::Result<std::process::Output> {
    Command::new("git")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run git; is it installed?")
}

/// Whether the current directory is inside a git repository.
pub fn inside_repository() -> bool {
    git(&["rev-parse", "--git-dir"]).is_ok_and(|out| out.status.success())
}

/// The URL of `remote` in the current repository, if both exist.
pub fn remote_url(remote: &str) -> Option<String> {
    let out = git(&["config", "--get", &format!("remote.{remote}.url")]).ok()?;
    if !out.status.success() {
        return None;
    }
    let url = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!url.is_empty()).then_some(url)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteChange {
    Added,
    Updated,
    Unchanged,
}

/// Points `remote` of the current repository at `url`, adding it if needed.
pub fn set_remote(remote: &str, url: &str) -> anyhow::Result<RemoteChange> {
    let (args, change) = match remote_url(remote) {
        Some(current) if current == url => return Ok(RemoteChange::Unchanged),
        Some(_) => (["remote", "set-url", remote, url], RemoteChange::Updated),
        None => (["remote", "add", remote, url], RemoteChange::Added),
    };
    let out = git(&args)?;
    if !out.status.success() {
        bail!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(change)
}

/// Removes `remote` from the current repository.
pub fn remove_remote(remote: &str) -> anyhow::Result<()> {
    let out = git(&["remote", "remove", remote])?;
    if !out.status.success() {
        bail!(
            "git remote remove {remote} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paas_remote_urls_name_their_app() {
        for (url, app) in [
            ("ssh://git@127.0.0.1:2222/web.git", "web"),
            ("ssh://git@paas.example.com/my-app-2.git", "my-app-2"),
            ("ssh://git@host:22/web", "web"),
            ("ssh://git@host:22/web.git/\n", "web"),
            ("git@host:web.git", "web"),
        ] {
            assert_eq!(app_from_remote_url(url).as_deref(), Some(app), "{url}");
        }
    }

    #[test]
    fn other_remote_urls_name_no_app() {
        for url in [
            "https://github.com/x/web.git",
            "ssh://git@host:22/../x.git",
            "ssh://git@host:22/org/web.git",
            "ssh://git@host:22/Web.git",
            "ssh://git@host:22",
            "/srv/repos/web.git",
            "",
        ] {
            assert_eq!(app_from_remote_url(url), None, "{url}");
        }
    }
}

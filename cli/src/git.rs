//! The CLI's few dealings with the user's git repository: reading which app a remote (the
//! `paas` one, or the only one pointing at the server) points at, adding or fixing that
//! remote, and cloning an app's repository. Runs the `git` binary in the current
//! directory.

use std::path::Path;
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

/// Where a paas remote URL points, without its app: `ssh://git@host:port` for
/// `ssh://git@host:port/NAME.git`, `git@host` for `git@host:NAME.git`. `None` when the URL is
/// not a paas remote.
pub fn server_of_remote_url(url: &str) -> Option<&str> {
    app_from_remote_url(url)?;
    let url = url.trim();
    let end = if let Some(rest) = url.strip_prefix("ssh://") {
        rest.find('/')? + "ssh://".len()
    } else {
        url.find(':')?
    };
    Some(&url[..end])
}

/// Every remote of the current repository with its URL, by name.
pub fn remotes() -> Vec<(String, String)> {
    let Ok(out) = git(&["config", "--get-regexp", r"^remote\..*\.url$"]) else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let (key, url) = line.split_once(' ')?;
            let name = key.strip_prefix("remote.")?.strip_suffix(".url")?;
            Some((name.to_owned(), url.trim().to_owned()))
        })
        .collect()
}

/// The remotes (name, app) that point at an app on one of `servers` (see
/// [`server_of_remote_url`]), sorted by name.
pub fn paas_remotes(remotes: &[(String, String)], servers: &[&str]) -> Vec<(String, AppName)> {
    let mut found: Vec<(String, AppName)> = remotes
        .iter()
        .filter(|(_, url)| server_of_remote_url(url).is_some_and(|s| servers.contains(&s)))
        .filter_map(|(name, url)| Some((name.clone(), app_from_remote_url(url)?)))
        .collect();
    found.sort();
    found
}

/// Clones `url` into `dir` with its remote named `remote`; git's own progress goes to the
/// terminal.
pub fn clone(url: &str, dir: &Path, remote: &str) -> anyhow::Result<()> {
    let status = Command::new("git")
        .args(["clone", "--origin", remote, url])
        .arg(dir)
        .stdin(Stdio::null())
        .status()
        .context("cannot run git; is it installed?")?;
    if !status.success() {
        bail!("git clone {url} failed ({status})");
    }
    Ok(())
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
            assert_eq!(server_of_remote_url(url), None, "{url}");
        }
    }

    #[test]
    fn a_paas_remote_url_names_its_server() {
        for (url, server) in [
            (
                "ssh://git@127.0.0.1:2222/web.git",
                "ssh://git@127.0.0.1:2222",
            ),
            (
                "ssh://git@paas.example.com/web",
                "ssh://git@paas.example.com",
            ),
            ("git@host:web.git", "git@host"),
        ] {
            assert_eq!(server_of_remote_url(url), Some(server), "{url}");
        }
    }

    #[test]
    fn only_remotes_on_the_server_count_as_paas_remotes() {
        let remotes = [
            ("origin", "ssh://git@127.0.0.1:2222/web.git"),
            ("github", "git@github.com:web.git"),
            ("staging", "ssh://git@127.0.0.1:2222/web-staging.git"),
            ("other", "ssh://git@10.0.0.9:2222/web.git"),
            ("docs", "https://example.com/web.git"),
        ]
        .map(|(name, url)| (name.to_owned(), url.to_owned()));
        let found = paas_remotes(&remotes, &["ssh://git@127.0.0.1:2222"]);
        let found: Vec<(&str, &str)> = found
            .iter()
            .map(|(r, a)| (r.as_str(), a.as_str()))
            .collect();
        assert_eq!(found, [("origin", "web"), ("staging", "web-staging")]);
        assert!(paas_remotes(&remotes, &[]).is_empty());
    }
}

//! The bare git repositories under `<data>/repos/<app>.git`, and the hooks installed in them.

use std::path::{Path, PathBuf};

/// `hooks/pre-receive` from the source tree, installed into every app repository.
const PRE_RECEIVE: &str = include_str!("../../hooks/pre-receive");

pub fn repo_path(repos_dir: &Path, app: &str) -> PathBuf {
    repos_dir.join(format!("{app}.git"))
}

/// Why a repository could not be made or refreshed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    #[error("repository {} already exists", .0.display())]
    Exists(PathBuf),
    #[error("{}: {source}", path.display())]
    Git { path: PathBuf, source: git2::Error },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Creates the bare repository of a new app, with paas's hooks and settings.
pub fn create(repos_dir: &Path, app: &str, max_push_bytes: u64) -> Result<PathBuf, RepoError> {
    let path = repo_path(repos_dir, app);
    if path.exists() {
        return Err(RepoError::Exists(path));
    }
    if let Err(source) = git2::Repository::init_opts(
        &path,
        git2::RepositoryInitOptions::new()
            .bare(true)
            .no_reinit(true)
            .initial_head("main"),
    ) {
        return Err(RepoError::Git { path, source });
    }
    refresh(&path, max_push_bytes)?;
    Ok(path)
}

/// (Re)writes paas's hooks and git settings into a repository; run for every repository when
/// gitd starts, so an upgrade or a changed `[quotas]` reaches existing apps.
pub fn refresh(repo: &Path, max_push_bytes: u64) -> Result<(), RepoError> {
    apply_settings(repo, max_push_bytes).map_err(|source| RepoError::Git {
        path: repo.to_owned(),
        source,
    })?;
    install_hooks(repo).map_err(|source| RepoError::Io {
        path: repo.to_owned(),
        source,
    })
}

/// The settings git itself enforces on a push: objects are checked before any of them is
/// deployed, and a pack over `max_push_bytes` (0: no limit) is refused by receive-pack.
fn apply_settings(repo: &Path, max_push_bytes: u64) -> Result<(), git2::Error> {
    let mut config = git2::Repository::open_bare(repo)?.config()?;
    config.set_bool("receive.fsckObjects", true)?;
    if max_push_bytes == 0 {
        match config.remove("receive.maxInputSize") {
            Err(err) if err.code() != git2::ErrorCode::NotFound => return Err(err),
            _ => {}
        }
    } else {
        let limit = i64::try_from(max_push_bytes).unwrap_or(i64::MAX);
        config.set_i64("receive.maxInputSize", limit)?;
    }
    Ok(())
}

fn install_hooks(repo: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let hooks = repo.join("hooks");
    std::fs::create_dir_all(&hooks)?;
    let target = hooks.join("pre-receive");
    let staging = hooks.join(".pre-receive.new");
    std::fs::write(&staging, PRE_RECEIVE)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(staging, target)
}

/// [`refresh`] of every app repository; returns how many there are.
pub fn refresh_everywhere(repos_dir: &Path, max_push_bytes: u64) -> Result<usize, RepoError> {
    let mut count = 0;
    if !repos_dir.exists() {
        return Ok(0);
    }
    let listing = |source| RepoError::Io {
        path: repos_dir.to_owned(),
        source,
    };
    for entry in std::fs::read_dir(repos_dir).map_err(listing)? {
        let path = entry.map_err(listing)?.path();
        if path.extension().is_some_and(|ext| ext == "git") {
            refresh(&path, max_push_bytes)?;
            count += 1;
        }
    }
    Ok(count)
}

/// Moves a repository out of the way so its removal can be undone until `discard` runs.
pub fn set_aside(repos_dir: &Path, app: &str) -> std::io::Result<Option<PathBuf>> {
    let path = repo_path(repos_dir, app);
    if !path.exists() {
        return Ok(None);
    }
    let aside = repos_dir.join(format!(".{app}.git.removing-{}", std::process::id()));
    std::fs::rename(&path, &aside)?;
    Ok(Some(aside))
}

pub fn restore(repos_dir: &Path, app: &str, aside: &Path) -> std::io::Result<()> {
    std::fs::rename(aside, repo_path(repos_dir, app))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn max_input_size(repo: &Path) -> Option<i64> {
        let config = git2::Repository::open_bare(repo).unwrap().config().unwrap();
        config.get_i64("receive.maxInputSize").ok()
    }

    #[test]
    fn repositories_carry_the_push_limit_and_follow_its_changes() {
        let dir = tempfile::tempdir().unwrap();
        let repo = create(dir.path(), "hello", 4096).unwrap();
        assert_eq!(max_input_size(&repo), Some(4096));
        assert!(repo.join("hooks/pre-receive").exists());

        assert_eq!(refresh_everywhere(dir.path(), 1 << 20).unwrap(), 1);
        assert_eq!(max_input_size(&repo), Some(1 << 20));
        refresh_everywhere(dir.path(), 0).unwrap();
        assert_eq!(max_input_size(&repo), None);
        refresh_everywhere(dir.path(), 0).unwrap();
    }
}

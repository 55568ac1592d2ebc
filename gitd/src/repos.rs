//! The bare git repositories under `<data>/repos/<app>.git`, and the hooks installed in them.

use std::path::{Path, PathBuf};

/// `hooks/pre-receive` from the source tree, installed into every app repository.
const PRE_RECEIVE: &str = include_str!("../../hooks/pre-receive");

pub fn repo_path(repos_dir: &Path, app: &str) -> PathBuf {
    repos_dir.join(format!("{app}.git"))
}

/// Creates the bare repository of a new app, with paas's hooks.
pub fn create(repos_dir: &Path, app: &str) -> anyhow::Result<PathBuf> {
    let path = repo_path(repos_dir, app);
    if path.exists() {
        anyhow::bail!("repository {} already exists", path.display());
    }
    let repo = git2::Repository::init_opts(
        &path,
        git2::RepositoryInitOptions::new()
            .bare(true)
            .no_reinit(true)
            .initial_head("main"),
    )?;
    let mut config = repo.config()?;
    // Objects pushed must be sound before any of them is deployed.
    config.set_bool("receive.fsckObjects", true)?;
    install_hooks(&path)?;
    Ok(path)
}

/// (Re)writes paas's hooks into a repository; run for every repository when gitd starts, so
/// an upgrade reaches existing apps.
pub fn install_hooks(repo: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let hooks = repo.join("hooks");
    std::fs::create_dir_all(&hooks)?;
    let target = hooks.join("pre-receive");
    let staging = hooks.join(".pre-receive.new");
    std::fs::write(&staging, PRE_RECEIVE)?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(staging, target)
}

pub fn install_hooks_everywhere(repos_dir: &Path) -> std::io::Result<usize> {
    let mut count = 0;
    if !repos_dir.exists() {
        return Ok(0);
    }
    for entry in std::fs::read_dir(repos_dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "git") {
            install_hooks(&path)?;
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

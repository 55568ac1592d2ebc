//! The pushed commit, read while git still holds it in quarantine: the few small files that
//! decide the build (read with git2, size-capped), and the whole tree as a tar stream from
//! `git archive`, which goes straight to the agent. Exporting through a child process keeps
//! blob contents out of gitd's memory (libgit2 inflates a packed blob whole), needs no scratch
//! copy on disk, and keeps symlinks and executable bits; submodules (gitlinks) become empty
//! directories, which the caller warns about.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use paas_api::app_json::{AppJson, AppJsonError, MAX_APP_JSON_BYTES, parse_app_json};
use paas_api::buildpacks::{BuildpacksError, BuildpacksFile, parse_buildpacks_yaml};
use paas_api::procfile::{ProcfileError, parse_procfile};

/// Files the deploy reads from the tree are refused above this size (`app.json`'s own limit).
const MAX_CONTROL_FILE_BYTES: usize = MAX_APP_JSON_BYTES;

/// Where the pushed objects are: the repository plus, during pre-receive, git's quarantine.
#[derive(Debug, Clone)]
pub struct PushedSource {
    pub repo: PathBuf,
    pub quarantine: Option<PathBuf>,
}

/// What the tree at the pushed commit says about building it.
#[derive(Debug, Default)]
pub struct SourceFiles {
    pub buildpacks: Option<BuildpacksFile>,
    pub procfile: Option<BTreeMap<paas_api::ProcessType, String>>,
    /// The root `app.json`'s cron jobs and checks (empty without one).
    pub app_json: AppJson,
    /// The root `Dockerfile`'s text.
    pub dockerfile: Option<String>,
    /// Paths of submodules, which are not part of the build.
    pub submodules: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read the pushed commit: {0}")]
    Git(#[from] git2::Error),
    #[error("{0} is over {MAX_CONTROL_FILE_BYTES} bytes")]
    TooLarge(&'static str),
    #[error("{0} is not valid UTF-8")]
    NotUtf8(&'static str),
    #[error("{0}")]
    Buildpacks(#[from] BuildpacksError),
    #[error("{0}")]
    Procfile(#[from] ProcfileError),
    #[error("{0}")]
    AppJson(#[from] AppJsonError),
}

impl PushedSource {
    fn open(&self) -> Result<git2::Repository, git2::Error> {
        let repo = git2::Repository::open_bare(&self.repo)?;
        if let Some(quarantine) = &self.quarantine {
            repo.odb()?
                .add_disk_alternate(&quarantine.to_string_lossy())?;
        }
        Ok(repo)
    }

    /// Whether `refs/heads/<branch>` exists (before this push updates anything).
    pub fn has_branch(&self, branch: &str) -> Result<bool, git2::Error> {
        let repo = git2::Repository::open_bare(&self.repo)?;
        Ok(repo.find_reference(&format!("refs/heads/{branch}")).is_ok())
    }

    /// Reads the build-deciding files of `commit`. Blocking.
    pub fn read(&self, commit: &str) -> Result<SourceFiles, SourceError> {
        let repo = self.open()?;
        let tree = repo.find_commit(git2::Oid::from_str(commit)?)?.tree()?;
        let mut files = SourceFiles {
            dockerfile: read_text(&repo, &tree, "Dockerfile")?,
            ..SourceFiles::default()
        };
        if let Some(text) = read_text(&repo, &tree, "buildpacks.yaml")? {
            files.buildpacks = Some(parse_buildpacks_yaml(&text)?);
        }
        if let Some(text) = read_text(&repo, &tree, "Procfile")? {
            files.procfile = Some(parse_procfile(&text)?);
        }
        if let Some(text) = read_text(&repo, &tree, "app.json")? {
            files.app_json = parse_app_json(&text)?;
        }
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, entry| {
            if entry.kind() == Some(git2::ObjectType::Commit) {
                files
                    .submodules
                    .push(format!("{dir}{}", entry.name().unwrap_or("?")));
            }
            git2::TreeWalkResult::Ok
        })?;
        Ok(files)
    }

    /// Points HEAD at `branch`, so clones check it out. Blocking.
    pub fn set_head(&self, branch: &str) -> Result<(), git2::Error> {
        git2::Repository::open_bare(&self.repo)?.set_head(&format!("refs/heads/{branch}"))
    }

    /// Starts `git archive` of `commit`; its stdout is the tar of the tree.
    pub fn archive(&self, commit: &str) -> std::io::Result<tokio::process::Child> {
        let objects = self.repo.join("objects");
        let mut command = tokio::process::Command::new("git");
        command
            .args(["archive", "--format=tar", commit])
            .current_dir(&self.repo)
            .env_clear()
            .env("GIT_DIR", &self.repo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        if let Some(quarantine) = &self.quarantine {
            command
                .env("GIT_OBJECT_DIRECTORY", quarantine)
                .env("GIT_ALTERNATE_OBJECT_DIRECTORIES", &objects);
        }
        command.spawn()
    }
}

/// A small root-level file of the tree, if it is there as a regular file.
fn read_text(
    repo: &git2::Repository,
    tree: &git2::Tree,
    name: &'static str,
) -> Result<Option<String>, SourceError> {
    let Some(entry) = tree.get_name(name) else {
        return Ok(None);
    };
    if entry.kind() != Some(git2::ObjectType::Blob) {
        return Ok(None);
    }
    let (size, _) = repo.odb()?.read_header(entry.id())?;
    if size > MAX_CONTROL_FILE_BYTES {
        return Err(SourceError::TooLarge(name));
    }
    let blob = repo.find_blob(entry.id())?;
    String::from_utf8(blob.content().to_vec())
        .map(Some)
        .map_err(|_| SourceError::NotUtf8(name))
}

/// Validates the quarantine directory git named: it must be inside the repository's object
/// store, so a request can only point the export at the push's own objects.
pub fn quarantine_dir(repo: &Path, requested: Option<&str>) -> Result<Option<PathBuf>, String> {
    let Some(requested) = requested.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let objects = repo
        .join("objects")
        .canonicalize()
        .map_err(|e| format!("cannot open the repository's objects: {e}"))?;
    let path = Path::new(requested);
    let path = if path.is_absolute() {
        path.to_owned()
    } else {
        repo.join(path)
    };
    match path.canonicalize() {
        Ok(path) if path.starts_with(&objects) => Ok(Some(path)),
        _ => Err(format!("unexpected object directory {requested:?}")),
    }
}

/// The `ARG` names a Dockerfile declares: config vars with these names become build args.
pub fn dockerfile_args(dockerfile: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in dockerfile.lines() {
        let mut words = line.split_whitespace();
        if !words
            .next()
            .is_some_and(|word| word.eq_ignore_ascii_case("ARG"))
        {
            continue;
        }
        for word in words {
            let name = word.split_once('=').map_or(word, |(name, _)| name);
            names.insert(name.to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_dockerfile_args() {
        let args = dockerfile_args(
            "FROM base\narg GREETING\n  ARG A=1 B\nRUN echo ARG C\n# ARG D\nENV X=1\n",
        );
        assert_eq!(args.into_iter().collect::<Vec<_>>(), ["A", "B", "GREETING"]);
    }

    #[test]
    fn quarantine_must_be_inside_the_object_store() {
        let repo = tempfile::tempdir().unwrap();
        let objects = repo.path().join("objects");
        std::fs::create_dir_all(objects.join("tmp_objdir-incoming-x")).unwrap();
        let inside = objects.join("tmp_objdir-incoming-x");
        assert_eq!(
            quarantine_dir(repo.path(), Some(inside.to_str().unwrap())).unwrap(),
            Some(inside.canonicalize().unwrap())
        );
        assert_eq!(quarantine_dir(repo.path(), None).unwrap(), None);
        assert!(quarantine_dir(repo.path(), Some("/tmp")).is_err());
        assert!(quarantine_dir(repo.path(), Some("objects/../..")).is_err());
        assert!(quarantine_dir(repo.path(), Some("/nonexistent")).is_err());
    }
}

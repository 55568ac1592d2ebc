//! The desired state of each app on disk: the last [`AppSpec`] a rollout put live, one JSON
//! file per app under `<state_dir>/apps/`, replaced atomically (a temporary file, fsync,
//! rename, fsync of the directory), so a crash leaves the old spec or the new one, never half
//! of one. It is what the agent converges to when it starts, when Docker's event stream comes
//! back and when a container of the app dies or is removed. It records nothing Docker knows:
//! what runs is still read back from Docker's labels. Only the runtime touches these files.
//!
//! Beside each spec, `<app>.stopped` lists the instances `paas ps:stop` stopped (`web.1`):
//! convergence leaves them down until a restart of them or a new spec clears them.

use std::collections::BTreeSet;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use paas_api::agent::AppSpec;

#[derive(Debug, thiserror::Error)]
pub enum DesiredStateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid desired state in {path}: {source}")]
    Invalid {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// How `<app>.stopped` names an instance: `web.1`.
pub fn stopped_key(process: &str, index: u32) -> String {
    format!("{process}.{index}")
}

pub struct DesiredState {
    apps_dir: PathBuf,
}

impl DesiredState {
    /// The store under `state_dir`, created if missing.
    pub fn open(state_dir: &Path) -> Result<DesiredState, DesiredStateError> {
        let apps_dir = state_dir.join("apps");
        fs::create_dir_all(&apps_dir).map_err(|source| DesiredStateError::Write {
            path: apps_dir.clone(),
            source,
        })?;
        Ok(DesiredState { apps_dir })
    }

    /// App names are checked before they get here (lowercase letters, digits, dashes), so
    /// they are plain file names.
    fn path(&self, app: &str) -> PathBuf {
        self.apps_dir.join(format!("{app}.json"))
    }

    pub fn save(&self, app: &str, spec: &AppSpec) -> Result<(), DesiredStateError> {
        let json = serde_json::to_vec_pretty(spec).expect("an app spec always serializes");
        self.replace(&self.path(app), &json)
    }

    /// Writes `bytes` to `path` atomically: the old content or the new, never half of one.
    fn replace(&self, path: &Path, bytes: &[u8]) -> Result<(), DesiredStateError> {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("state");
        let partial = self.apps_dir.join(format!(".{name}.partial"));
        let write_err = |source| DesiredStateError::Write {
            path: path.to_owned(),
            source,
        };
        let mut file = fs::File::create(&partial).map_err(write_err)?;
        file.write_all(bytes).map_err(write_err)?;
        file.sync_all().map_err(write_err)?;
        fs::rename(&partial, path).map_err(write_err)?;
        fs::File::open(&self.apps_dir)
            .and_then(|dir| dir.sync_all())
            .map_err(write_err)
    }

    /// The app's spec; `None` when there is none (never deployed by an agent that keeps one,
    /// or removed).
    pub fn load(&self, app: &str) -> Result<Option<AppSpec>, DesiredStateError> {
        let path = self.path(app);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(DesiredStateError::Read { path, source }),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| DesiredStateError::Invalid { path, source })
    }

    pub fn remove(&self, app: &str) -> Result<(), DesiredStateError> {
        for path in [self.path(app), self.stopped_path(app)] {
            match fs::remove_file(&path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(DesiredStateError::Write { path, source: err });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn stopped_path(&self, app: &str) -> PathBuf {
        self.apps_dir.join(format!("{app}.stopped"))
    }

    /// The app's instances `paas ps:stop` stopped, as `web.1`.
    pub fn stopped(&self, app: &str) -> Result<BTreeSet<String>, DesiredStateError> {
        let path = self.stopped_path(app);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| DesiredStateError::Invalid { path, source }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(BTreeSet::new()),
            Err(source) => Err(DesiredStateError::Read { path, source }),
        }
    }

    /// Replaces the app's stopped instances.
    pub fn set_stopped(
        &self,
        app: &str,
        stopped: &BTreeSet<String>,
    ) -> Result<(), DesiredStateError> {
        let json = serde_json::to_vec(stopped).expect("names always serialize");
        self.replace(&self.stopped_path(app), &json)
    }

    /// Every app that has a desired state, in name order.
    pub fn apps(&self) -> Result<Vec<String>, DesiredStateError> {
        let read_err = |source| DesiredStateError::Read {
            path: self.apps_dir.clone(),
            source,
        };
        let mut apps = Vec::new();
        for entry in fs::read_dir(&self.apps_dir).map_err(read_err)? {
            let name = entry.map_err(read_err)?.file_name();
            if let Some(app) = name
                .to_str()
                .and_then(|name| name.strip_suffix(".json"))
                .filter(|app| app.parse::<paas_api::AppName>().is_ok())
            {
                apps.push(app.to_owned());
            }
        }
        apps.sort();
        Ok(apps)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::agent::ProcessSpec;

    use super::*;

    fn spec(release: u32) -> AppSpec {
        AppSpec {
            release,
            image: format!("paas/hello:v{release}"),
            env: BTreeMap::from([("GREETING".into(), "Hi".into())]),
            processes: BTreeMap::from([(
                "web".parse().unwrap(),
                ProcessSpec {
                    command: None,
                    quantity: 2,
                    resources: Default::default(),
                },
            )]),
            domains: vec!["www.example.com".into()],
            health_check_path: None,
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    #[test]
    fn specs_are_saved_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = DesiredState::open(dir.path()).unwrap();
        assert_eq!(store.load("hello").unwrap(), None);
        store.save("hello", &spec(1)).unwrap();
        store.save("hello", &spec(2)).unwrap();
        store.save("other", &spec(1)).unwrap();
        assert_eq!(store.load("hello").unwrap(), Some(spec(2)));
        // A reopened store (a restarted agent) reads the same; no temporary file is left.
        let store = DesiredState::open(dir.path()).unwrap();
        assert_eq!(store.apps().unwrap(), ["hello", "other"]);
        assert_eq!(fs::read_dir(dir.path().join("apps")).unwrap().count(), 2);
        store.remove("hello").unwrap();
        store.remove("hello").unwrap();
        assert_eq!(store.load("hello").unwrap(), None);
        assert_eq!(store.apps().unwrap(), ["other"]);
    }

    #[test]
    fn stopped_instances_are_kept_beside_the_spec_and_go_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = DesiredState::open(dir.path()).unwrap();
        assert!(store.stopped("hello").unwrap().is_empty());
        store.save("hello", &spec(1)).unwrap();
        let stopped = BTreeSet::from(["web.1".to_owned(), "worker.2".to_owned()]);
        store.set_stopped("hello", &stopped).unwrap();
        let store = DesiredState::open(dir.path()).unwrap();
        assert_eq!(store.stopped("hello").unwrap(), stopped);
        assert_eq!(store.apps().unwrap(), ["hello"], "not an app of its own");
        store.remove("hello").unwrap();
        assert!(store.stopped("hello").unwrap().is_empty());
    }

    #[test]
    fn a_damaged_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = DesiredState::open(dir.path()).unwrap();
        fs::write(dir.path().join("apps/hello.json"), "{").unwrap();
        let err = store.load("hello").unwrap_err().to_string();
        assert!(err.contains("hello.json"), "{err}");
    }
}

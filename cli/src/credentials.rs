//! Where the API token lives: the system keyring (the `keyring` crate: Secret Service on
//! Linux, Keychain on macOS, Credential Manager on Windows), one entry per server URL.
//!
//! Headless machines often have no keyring at all, or one that never answers (no D-Bus
//! session). Every keyring call therefore runs on a helper thread with a deadline; when the
//! keyring fails or misses it, the token goes to `credentials.toml` in the config directory,
//! created with mode 0600 from the start, and a warning is printed once.
//! `PAAS_KEYRING=off` skips the keyring on purpose (scripts, CI, tests).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::ensure_private_dir;

const KEYRING_SERVICE: &str = "paas";
/// How long a keyring backend may take to answer before the file is used instead.
const KEYRING_DEADLINE: Duration = Duration::from_secs(3);
const FILE_NAME: &str = "credentials.toml";

/// Where a token was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredIn {
    Keyring,
    File(PathBuf),
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CredentialsFile {
    /// Server URL → token.
    #[serde(default)]
    tokens: BTreeMap<String, String>,
}

pub struct CredentialStore {
    dir: PathBuf,
    use_keyring: bool,
}

impl CredentialStore {
    /// A store in the config directory `dir`, using the keyring unless `PAAS_KEYRING=off`.
    pub fn new(dir: &Path) -> CredentialStore {
        let keyring_off = std::env::var("PAAS_KEYRING")
            .map(|v| {
                matches!(
                    v.to_ascii_lowercase().as_str(),
                    "off" | "0" | "false" | "no"
                )
            })
            .unwrap_or(false);
        CredentialStore {
            dir: dir.to_owned(),
            use_keyring: !keyring_off,
        }
    }

    pub fn file_path(&self) -> PathBuf {
        self.dir.join(FILE_NAME)
    }

    /// Stores the token for `server`, in the keyring if one answers, else in the file.
    pub fn save(&self, server: &str, token: &str) -> anyhow::Result<StoredIn> {
        let reason = if self.use_keyring {
            let (server_owned, token_owned) = (server.to_owned(), token.to_owned());
            match keyring_call(move || {
                keyring::Entry::new(KEYRING_SERVICE, &server_owned)?.set_password(&token_owned)
            }) {
                Ok(()) => {
                    self.remove_from_file(server)?;
                    return Ok(StoredIn::Keyring);
                }
                Err(reason) => reason,
            }
        } else {
            "PAAS_KEYRING=off".to_owned()
        };
        self.write_to_file(server, token)?;
        let path = self.file_path();
        warn_once(&format!(
            "warning: no system keyring available ({reason}); the token is stored in {} (mode 0600)",
            path.display()
        ));
        Ok(StoredIn::File(path))
    }

    /// The token stored for `server`, if any. The file is read first so that machines without
    /// a keyring do not wait for it on every command.
    pub fn load(&self, server: &str) -> anyhow::Result<Option<String>> {
        if let Some(token) = self.read_file()?.tokens.remove(server) {
            return Ok(Some(token));
        }
        if !self.use_keyring {
            return Ok(None);
        }
        let server = server.to_owned();
        let found = keyring_call(move || {
            match keyring::Entry::new(KEYRING_SERVICE, &server)?.get_password() {
                Ok(token) => Ok(Some(token)),
                Err(keyring::Error::NoEntry) => Ok(None),
                Err(e) => Err(e),
            }
        });
        Ok(found.unwrap_or(None))
    }

    /// Forgets the token for `server` everywhere it may be stored.
    pub fn forget(&self, server: &str) -> anyhow::Result<()> {
        self.remove_from_file(server)?;
        if self.use_keyring {
            let server = server.to_owned();
            // A missing entry or an absent keyring both mean there is nothing left to forget.
            let _ = keyring_call(move || {
                match keyring::Entry::new(KEYRING_SERVICE, &server)?.delete_credential() {
                    Err(keyring::Error::NoEntry) => Ok(()),
                    other => other,
                }
            });
        }
        Ok(())
    }

    fn read_file(&self) -> anyhow::Result<CredentialsFile> {
        let path = self.file_path();
        match fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(CredentialsFile::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    fn write_to_file(&self, server: &str, token: &str) -> anyhow::Result<()> {
        let mut file = self.read_file()?;
        file.tokens.insert(server.to_owned(), token.to_owned());
        self.write_file(&file)
    }

    fn remove_from_file(&self, server: &str) -> anyhow::Result<()> {
        let mut file = self.read_file()?;
        if file.tokens.remove(server).is_some() {
            self.write_file(&file)?;
        }
        Ok(())
    }

    /// Writes the whole file through a temporary file that is 0600 from its creation, then
    /// renames it into place, so the token is never readable by others, even briefly.
    fn write_file(&self, file: &CredentialsFile) -> anyhow::Result<()> {
        ensure_private_dir(&self.dir)?;
        let path = self.file_path();
        let tmp = self.dir.join(format!("{FILE_NAME}.tmp"));
        let _ = fs::remove_file(&tmp);
        let mut out = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        out.write_all(toml::to_string(file)?.as_bytes())?;
        out.sync_all()?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Runs a keyring operation on its own thread and gives up after [`KEYRING_DEADLINE`]; the
/// error is a short reason for the warning.
fn keyring_call<T: Send + 'static>(
    op: impl FnOnce() -> keyring::Result<T> + Send + 'static,
) -> Result<T, String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(op());
    });
    match rx.recv_timeout(KEYRING_DEADLINE) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(keyring::Error::NoDefaultStore)) => Err(match keyring::Entry::store_status() {
            Err(why) => first_line(&why.to_string()),
            Ok(()) => first_line(&keyring::Error::NoDefaultStore.to_string()),
        }),
        Ok(Err(e)) => Err(first_line(&e.to_string())),
        Err(_) => Err(format!(
            "the keyring did not answer within {}s",
            KEYRING_DEADLINE.as_secs()
        )),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().to_owned()
}

fn warn_once(message: &str) {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| eprintln!("{message}"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file_store(dir: &Path) -> CredentialStore {
        CredentialStore {
            dir: dir.to_owned(),
            use_keyring: false,
        }
    }

    #[test]
    fn file_tokens_are_kept_per_server_in_a_private_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = file_store(&tmp.path().join("paas"));
        assert_eq!(store.load("http://a").unwrap(), None);
        let stored = store.save("http://a", "token-a").unwrap();
        store.save("http://b", "token-b").unwrap();
        assert_eq!(stored, StoredIn::File(store.file_path()));
        assert_eq!(store.load("http://a").unwrap().as_deref(), Some("token-a"));
        assert_eq!(store.load("http://b").unwrap().as_deref(), Some("token-b"));
        let mode = fs::metadata(store.file_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        store.forget("http://a").unwrap();
        assert_eq!(store.load("http://a").unwrap(), None);
        assert_eq!(store.load("http://b").unwrap().as_deref(), Some("token-b"));
    }
}

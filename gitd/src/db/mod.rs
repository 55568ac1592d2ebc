//! The embedded SQLite database: the one place paas state lives. gitd is its only owner.
//!
//! One connection serves every request, behind a mutex, on the blocking pool: SQLite allows one
//! writer at a time anyway, and a single connection makes "read, decide, write" sequences
//! (next release number, uniqueness checks) atomic without retry loops. WAL keeps readers of
//! the file (backups, `sqlite3`) from blocking it. The file and its `-wal`/`-shm` are 0600.

mod migrations;
pub mod queries;

use std::path::Path;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub const DB_FILE: &str = "paas.db";

#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    pub fn open(data_dir: &Path) -> anyhow::Result<Db> {
        let path = data_dir.join(DB_FILE);
        restrict_to_owner(&path)?;
        let mut conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        for companion in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(companion);
            let companion = std::path::PathBuf::from(name);
            if companion.exists() {
                restrict_to_owner(&companion)?;
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        migrations::apply(&mut conn)?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    pub async fn call<T, F>(&self, f: F) -> T
    where
        F: FnOnce(&mut Connection) -> T + Send + 'static,
        T: Send + 'static,
    {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            f(&mut guard)
        })
        .await
        .expect("database task panicked")
    }

    /// Runs `f` with the connection on the current thread (for the CLI subcommands).
    pub fn call_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> T) -> T {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// Makes `path` (created empty when missing) readable and writable by its owner only: the
/// database holds password hashes and config values, and a data dir made by hand (or by an
/// older version) may have left it 0644. SQLite gives `-wal` and `-shm` the database's mode.
fn restrict_to_owner(path: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| anyhow::anyhow!("cannot make {} private: {e}", path.display()))
}

pub fn now() -> i64 {
    Utc::now().timestamp()
}

pub fn to_time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// True when `err` is a UNIQUE or other constraint violation.
pub fn is_constraint_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _) if e.code == rusqlite::ErrorCode::ConstraintViolation
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_database_is_private_even_when_it_was_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        Db::open(dir.path()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.call_blocking(|conn| {
            conn.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        })
        .unwrap();
        assert_eq!(mode(&path), 0o600);
        for companion in ["paas.db-wal", "paas.db-shm"] {
            let companion = dir.path().join(companion);
            assert!(companion.exists(), "{}", companion.display());
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
    }
}

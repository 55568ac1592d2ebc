//! The store: the embedded SQLite database, the one place paas state lives, behind typed
//! methods per entity (one file each). It is the only code that touches SQLite: callers see
//! row structs, API types and [`StoreError`], never a connection, a transaction or SQL. A
//! change that spans several statements (a release and its number, a replaced config, an app
//! and everything it owns) is one method, run as one transaction here. It knows nothing of
//! HTTP, the agent or what a change means for a running app.
//!
//! One connection serves every request, behind a mutex, on the blocking pool: SQLite allows one
//! writer at a time anyway, and a single connection makes "read, decide, write" sequences
//! (next release number, uniqueness checks) atomic without retry loops. WAL keeps readers of
//! the file (backups, `sqlite3`) from blocking it. The file and its `-wal`/`-shm` are 0600.
//! Foreign keys are on, so deleting an app or a user cascades to what it owns.
//!
//! The two reads every request makes (its token, the app it names) are single rows by an
//! indexed key, microseconds of work: they run on the calling task when the connection is
//! free, because two hand-overs to the blocking pool and back cost more than the query on a
//! busy machine (each one a wake-up waiting for a CPU), and on the pool when it is not.

mod addons;
mod apps;
mod builds;
mod collaborators;
mod config_vars;
mod cron_runs;
mod domains;
mod events;
mod features;
mod formation;
mod images;
mod keys;
mod metrics;
mod migrations;
mod releases;
mod routing;
mod sessions;
mod storage;
mod tokens;
mod users;
mod webhooks;

pub use addons::{AddonRow, NewAddon};
pub use apps::{AppListing, AppRow, CreateAppError};
pub use collaborators::CollaboratorAdded;
pub use cron_runs::CronClaim;
pub use domains::DomainClaim;
pub use events::{EventFilter, EventRow};
pub use formation::DeployedState;
pub use keys::NewKey;
pub use metrics::{InstanceSlot, MarkerRow, MetricsRows, RequestSlot, Resolution};
pub use releases::{Interrupted, NewRelease, ReleaseKind, ReleaseOutcome};
pub use sessions::SessionRow;
pub use storage::{MountAdded, VolumeDeletion};
pub use users::{UserRemoval, UserRow};
pub use webhooks::{AttemptRecord, DueDelivery};

use std::path::Path;
use std::sync::{Arc, Mutex, TryLockError};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction};

pub const DB_FILE: &str = "paas.db";

/// What a store method can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row a change was about does not exist.
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A row with the same unique key exists already.
    #[error("it exists already")]
    Conflict,
    #[error("database error: {0}")]
    Database(rusqlite::Error),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        let unique = matches!(
            &err,
            rusqlite::Error::SqliteFailure(e, _)
                if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        );
        if unique {
            StoreError::Conflict
        } else {
            StoreError::Database(err)
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Why the database could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot open database {}: {source}", path.display())]
    File {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot make {} private: {source}", path.display())]
    Private {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open database {}: {source}", path.display())]
    Sqlite {
        path: std::path::PathBuf,
        source: rusqlite::Error,
    },
}

#[derive(Clone)]
pub struct Store {
    conn: Arc<Mutex<Connection>>,
}

impl Store {
    pub fn open(data_dir: &Path) -> Result<Store, OpenError> {
        let path = data_dir.join(DB_FILE);
        restrict_to_owner(&path)?;
        let sqlite = |source| OpenError::Sqlite {
            path: path.clone(),
            source,
        };
        let mut conn = Connection::open(&path).map_err(sqlite)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sqlite)?;
        for companion in ["-wal", "-shm"] {
            let mut name = path.clone().into_os_string();
            name.push(companion);
            let companion = std::path::PathBuf::from(name);
            if companion.exists() {
                restrict_to_owner(&companion)?;
            }
        }
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sqlite)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))
            .map_err(sqlite)?;
        migrations::apply(&mut conn).map_err(sqlite)?;
        Ok(Store {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    /// The store for the CLI subcommands, which run without an async runtime.
    pub fn blocking(&self) -> BlockingStore<'_> {
        BlockingStore { store: self }
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn run<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
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

    /// Runs `f`, a read of one row by an indexed key, on the calling task if the connection
    /// is free, else on the blocking pool (see the module's docs): an async worker never
    /// waits for the lock.
    async fn read_row<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        {
            let guard = match self.conn.try_lock() {
                Ok(guard) => Some(guard),
                Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => None,
            };
            if let Some(mut guard) = guard {
                return f(&mut guard);
            }
        }
        self.run(f).await
    }

    /// Runs `f` in one transaction on the blocking pool; it commits only if `f` succeeds.
    async fn transaction<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(&Transaction) -> StoreResult<T> + Send + 'static,
        T: Send + 'static,
    {
        self.run(|conn| in_transaction(conn, f)).await
    }

    /// Runs `f` with the connection on the current thread.
    fn run_blocking<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut guard = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard)
    }
}

/// The typed methods the CLI subcommands (`paas-gitd init`) use, run on the calling thread.
pub struct BlockingStore<'a> {
    store: &'a Store,
}

fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.transaction()?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Makes `path` (created empty when missing) readable and writable by its owner only: the
/// database holds password hashes and config values, and a data dir made by hand (or by an
/// older version) may have left it 0644. SQLite gives `-wal` and `-shm` the database's mode.
fn restrict_to_owner(path: &Path) -> Result<(), OpenError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| OpenError::File {
            path: path.to_owned(),
            source,
        })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        OpenError::Private {
            path: path.to_owned(),
            source,
        }
    })
}

/// A column holding a validated name or domain, read back as its type. The rules are checked
/// before anything is written, so a stored value that breaks one is a corrupt row.
fn typed<T>(row: &rusqlite::Row, column: impl rusqlite::RowIndex) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let index = column.idx(row.as_ref())?;
    let text: String = row.get(index)?;
    text.parse().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, Box::new(err))
    })
}

/// Times are stored as Unix seconds.
fn now() -> i64 {
    Utc::now().timestamp()
}

fn to_time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod testing {
    //! A store on a real SQLite file in a temporary directory, with an owner to make apps for.

    use super::*;

    pub struct TestStore {
        pub store: Store,
        _dir: tempfile::TempDir,
    }

    impl TestStore {
        pub fn new() -> TestStore {
            let dir = tempfile::tempdir().unwrap();
            TestStore {
                store: Store::open(dir.path()).unwrap(),
                _dir: dir,
            }
        }

        /// Runs raw SQL to look at what the typed methods left behind.
        pub fn count(&self, sql: &str) -> i64 {
            self.store
                .run_blocking(|conn| Ok(conn.query_row(sql, [], |r| r.get(0))?))
                .unwrap()
        }

        pub async fn user(&self, name: &str) -> UserRow {
            match self.store.user_by_name(name).await.unwrap() {
                Some(user) => user,
                None => self
                    .store
                    .create_user(&name.parse().unwrap(), "hash", false)
                    .await
                    .unwrap(),
            }
        }

        /// An app owned by `alice`.
        pub async fn app(&self, name: &str) -> AppRow {
            self.app_of("alice", name).await
        }

        pub async fn app_of(&self, owner: &str, name: &str) -> AppRow {
            let owner = self.user(owner).await;
            self.store
                .create_app(&name.parse().unwrap(), &owner, |_| Ok(()))
                .await
                .unwrap()
        }
    }
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
        Store::open(dir.path()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .blocking()
            .create_user(&"alice".parse().unwrap(), "hash", false)
            .unwrap();
        assert_eq!(mode(&path), 0o600);
        for companion in ["paas.db-wal", "paas.db-shm"] {
            let companion = dir.path().join(companion);
            assert!(companion.exists(), "{}", companion.display());
            assert_eq!(mode(&companion), 0o600, "{}", companion.display());
        }
    }

    #[tokio::test]
    async fn a_unique_violation_is_a_conflict() {
        let test = testing::TestStore::new();
        test.user("alice").await;
        let again = test
            .store
            .create_user(&"alice".parse().unwrap(), "other", false)
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
    }
}

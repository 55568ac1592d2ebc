//! Accounts: who may log in, with which password hash, and who is an admin.

use chrono::{DateTime, Utc};
use paas_api::Username;
use paas_api::types::User;
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{BlockingStore, Store, StoreError, StoreResult, now, to_time, typed};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: Username,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

impl UserRow {
    pub fn to_api(&self) -> User {
        User {
            username: self.username.clone(),
            is_admin: self.is_admin,
            created_at: self.created_at,
        }
    }

    pub(super) fn from_row(row: &Row) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            id: row.get("id")?,
            username: typed(row, "username")?,
            password_hash: row.get("password_hash")?,
            is_admin: row.get("is_admin")?,
            created_at: to_time(row.get("created_at")?),
        })
    }
}

/// How removing a user went; a refusal changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserRemoval {
    Removed,
    NoSuchUser,
    /// The user still owns these apps (by name).
    OwnsApps(Vec<String>),
    LastAdmin,
}

pub(super) const USER_COLUMNS: &str =
    "users.id, users.username, users.password_hash, users.is_admin, users.created_at";

pub(super) fn user_by_name(conn: &Connection, username: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
        [username],
        UserRow::from_row,
    )
    .optional()
}

fn insert_user(
    conn: &Connection,
    username: &Username,
    password_hash: &str,
    is_admin: bool,
) -> StoreResult<UserRow> {
    let created_at = now();
    conn.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![username.as_str(), password_hash, is_admin, created_at],
    )?;
    Ok(UserRow {
        id: conn.last_insert_rowid(),
        username: username.clone(),
        password_hash: password_hash.to_owned(),
        is_admin,
        created_at: to_time(created_at),
    })
}

impl Store {
    pub async fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRow>> {
        let username = username.to_owned();
        self.run(move |conn| Ok(user_by_name(conn, &username)?))
            .await
    }

    pub async fn list_users(&self) -> StoreResult<Vec<UserRow>> {
        self.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {USER_COLUMNS} FROM users ORDER BY username"
            ))?;
            Ok(stmt
                .query_map([], UserRow::from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// [`StoreError::Conflict`] when the name is taken.
    pub async fn create_user(
        &self,
        username: &Username,
        password_hash: &str,
        is_admin: bool,
    ) -> StoreResult<UserRow> {
        let (username, password_hash) = (username.clone(), password_hash.to_owned());
        self.run(move |conn| insert_user(conn, &username, &password_hash, is_admin))
            .await
    }

    /// Removes the user, with their keys, tokens and collaborations, unless they own apps or
    /// are the last admin: decided and done in one transaction.
    pub async fn remove_user(&self, username: &str) -> StoreResult<UserRemoval> {
        let username = username.to_owned();
        self.transaction(move |tx| {
            let Some(user) = user_by_name(tx, &username)? else {
                return Ok(UserRemoval::NoSuchUser);
            };
            let owned = super::apps::names_owned_by(tx, user.id)?;
            if !owned.is_empty() {
                return Ok(UserRemoval::OwnsApps(owned));
            }
            let admins: i64 =
                tx.query_row("SELECT COUNT(*) FROM users WHERE is_admin = 1", [], |r| {
                    r.get(0)
                })?;
            if user.is_admin && admins <= 1 {
                return Ok(UserRemoval::LastAdmin);
            }
            tx.execute("DELETE FROM users WHERE id = ?1", [user.id])?;
            Ok(UserRemoval::Removed)
        })
        .await
    }
}

impl BlockingStore<'_> {
    pub fn user_by_name(&self, username: &str) -> StoreResult<Option<UserRow>> {
        self.store
            .run_blocking(|conn| Ok(user_by_name(conn, username)?))
    }

    pub fn create_user(
        &self,
        username: &Username,
        password_hash: &str,
        is_admin: bool,
    ) -> StoreResult<UserRow> {
        self.store
            .run_blocking(|conn| insert_user(conn, username, password_hash, is_admin))
    }

    /// Gives the user a new password and makes them an admin (`init` resetting the admin).
    pub fn reset_admin(&self, username: &str, password_hash: &str) -> StoreResult<()> {
        self.store.run_blocking(|conn| {
            let changed = conn.execute(
                "UPDATE users SET password_hash = ?1, is_admin = 1 WHERE username = ?2",
                params![password_hash, username],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound("user"));
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    #[tokio::test]
    async fn a_user_who_owns_apps_or_is_the_last_admin_stays() {
        let test = TestStore::new();
        let admin = test
            .store
            .create_user(&"root".parse().unwrap(), "hash", true)
            .await
            .unwrap();
        test.app_of("alice", "web").await;
        assert_eq!(
            test.store.remove_user("alice").await.unwrap(),
            UserRemoval::OwnsApps(vec!["web".into()])
        );
        assert_eq!(
            test.store.remove_user(&admin.username).await.unwrap(),
            UserRemoval::LastAdmin
        );
        assert_eq!(
            test.store.remove_user("nobody").await.unwrap(),
            UserRemoval::NoSuchUser
        );
        test.user("bob").await;
        assert_eq!(
            test.store.remove_user("bob").await.unwrap(),
            UserRemoval::Removed
        );
        assert!(test.store.user_by_name("bob").await.unwrap().is_none());
        assert_eq!(test.store.list_users().await.unwrap().len(), 2);
    }

    #[test]
    fn resetting_a_missing_admin_is_not_found() {
        let test = TestStore::new();
        let reset = test.store.blocking().reset_admin("root", "hash");
        assert!(matches!(reset, Err(StoreError::NotFound("user"))));
    }
}

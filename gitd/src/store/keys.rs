//! SSH public keys: each belongs to one user, and a fingerprint is registered once.

use paas_api::types::SshKey;
use rusqlite::{OptionalExtension, Row, params};

use super::users::{USER_COLUMNS, UserRow};
use super::{Store, StoreResult, now, to_time};

/// A key as registered by `keys:add`.
pub struct NewKey {
    pub fingerprint: String,
    pub algorithm: String,
    pub public_key: String,
    pub comment: String,
}

fn key_from_row(row: &Row) -> rusqlite::Result<SshKey> {
    Ok(SshKey {
        id: row.get("id")?,
        fingerprint: row.get("fingerprint")?,
        algorithm: row.get("algorithm")?,
        comment: row.get("comment")?,
        created_at: to_time(row.get("created_at")?),
    })
}

impl Store {
    pub async fn keys_of(&self, user_id: i64) -> StoreResult<Vec<SshKey>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT id, fingerprint, algorithm, comment, created_at FROM ssh_keys WHERE user_id = ?1 ORDER BY id",
            )?;
            Ok(stmt
                .query_map([user_id], key_from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// [`super::StoreError::Conflict`] when the fingerprint is registered already.
    pub async fn add_key(&self, user_id: i64, key: NewKey) -> StoreResult<SshKey> {
        self.run(move |conn| {
            let created_at = now();
            conn.execute(
                "INSERT INTO ssh_keys (user_id, fingerprint, algorithm, public_key, comment, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    user_id,
                    key.fingerprint,
                    key.algorithm,
                    key.public_key,
                    key.comment,
                    created_at
                ],
            )?;
            Ok(SshKey {
                id: conn.last_insert_rowid(),
                fingerprint: key.fingerprint,
                algorithm: key.algorithm,
                comment: key.comment,
                created_at: to_time(created_at),
            })
        })
        .await
    }

    /// Removes one of the user's keys named by id or fingerprint; returns whether one was.
    pub async fn remove_key(&self, user_id: i64, id_or_fingerprint: &str) -> StoreResult<bool> {
        let wanted = id_or_fingerprint.to_owned();
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM ssh_keys WHERE user_id = ?1 AND (fingerprint = ?2 OR CAST(id AS TEXT) = ?2)",
                params![user_id, wanted],
            )? > 0)
        })
        .await
    }

    /// The owner of a registered SSH key, by its `SHA256:` fingerprint.
    pub async fn user_by_key_fingerprint(&self, fingerprint: &str) -> StoreResult<Option<UserRow>> {
        let fingerprint = fingerprint.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {USER_COLUMNS} FROM ssh_keys JOIN users ON users.id = ssh_keys.user_id
                         WHERE ssh_keys.fingerprint = ?1"
                    ),
                    [fingerprint],
                    UserRow::from_row,
                )
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::StoreError;
    use super::super::testing::TestStore;
    use super::*;

    fn key(fingerprint: &str) -> NewKey {
        NewKey {
            fingerprint: fingerprint.into(),
            algorithm: "ssh-ed25519".into(),
            public_key: "ssh-ed25519 AAAA".into(),
            comment: "laptop".into(),
        }
    }

    #[tokio::test]
    async fn a_fingerprint_is_registered_once() {
        let test = TestStore::new();
        let alice = test.user("alice").await;
        let bob = test.user("bob").await;
        let added = test.store.add_key(alice.id, key("SHA256:a")).await.unwrap();
        let again = test.store.add_key(bob.id, key("SHA256:a")).await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
        let owner = test
            .store
            .user_by_key_fingerprint("SHA256:a")
            .await
            .unwrap();
        assert_eq!(owner.unwrap().username, "alice");
        assert!(!test.store.remove_key(bob.id, "SHA256:a").await.unwrap());
        assert!(
            test.store
                .remove_key(alice.id, &added.id.to_string())
                .await
                .unwrap()
        );
        assert!(test.store.keys_of(alice.id).await.unwrap().is_empty());
    }
}

//! Login tokens: only their hashes are stored, each with when it expires.

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use super::users::{USER_COLUMNS, UserRow};
use super::{Store, StoreResult, now, to_time};

impl Store {
    /// Stores a token that lives `ttl_seconds` and clears the expired ones; returns when it
    /// expires.
    pub async fn create_token(
        &self,
        user_id: i64,
        token_hash: &str,
        ttl_seconds: i64,
    ) -> StoreResult<DateTime<Utc>> {
        let token_hash = token_hash.to_owned();
        self.transaction(move |tx| {
            let now = now();
            let expires_at = now + ttl_seconds;
            tx.execute("DELETE FROM tokens WHERE expires_at <= ?1", [now])?;
            tx.execute(
                "INSERT INTO tokens (user_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![user_id, token_hash, now, expires_at],
            )?;
            Ok(to_time(expires_at))
        })
        .await
    }

    /// The user a live token belongs to, with the token's row id.
    pub async fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserRow, i64)>> {
        let token_hash = token_hash.to_owned();
        self.read_row(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {USER_COLUMNS}, tokens.id AS token_id FROM tokens JOIN users ON users.id = tokens.user_id
                         WHERE tokens.token_hash = ?1 AND tokens.expires_at > ?2"
                    ),
                    params![token_hash, now()],
                    |row| Ok((UserRow::from_row(row)?, row.get("token_id")?)),
                )
                .optional()?)
        })
        .await
    }

    pub async fn delete_token(&self, token_id: i64) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute("DELETE FROM tokens WHERE id = ?1", [token_id])?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;

    #[tokio::test]
    async fn a_token_finds_its_user_until_it_expires_or_is_deleted() {
        let test = TestStore::new();
        let alice = test.user("alice").await;
        test.store
            .create_token(alice.id, "live", 3600)
            .await
            .unwrap();
        test.store.create_token(alice.id, "dead", -1).await.unwrap();
        let (user, token_id) = test.store.user_by_token("live").await.unwrap().unwrap();
        assert_eq!(user.username, "alice");
        assert!(test.store.user_by_token("dead").await.unwrap().is_none());
        // The next login clears expired tokens.
        test.store
            .create_token(alice.id, "again", 3600)
            .await
            .unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM tokens"), 2);
        test.store.delete_token(token_id).await.unwrap();
        assert!(test.store.user_by_token("live").await.unwrap().is_none());
    }
}

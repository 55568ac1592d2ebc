//! The dashboard's sessions. A session is a login token (so it expires, and ends, as tokens
//! do) that a browser holds in a cookie, with the CSRF secret the session's forms carry.

use rusqlite::{OptionalExtension, params};

use super::users::{USER_COLUMNS, UserRow};
use super::{Store, StoreResult, now};

/// A live session: whose it is, its token's row id, and the secret its forms must carry.
#[derive(Debug, Clone)]
pub struct SessionRow {
    pub user: UserRow,
    pub token_id: i64,
    pub csrf_token: String,
}

impl Store {
    /// Makes the live token `token_hash` a session with `csrf_token`; false when the token
    /// does not exist or has expired.
    pub async fn start_session(&self, token_hash: &str, csrf_token: &str) -> StoreResult<bool> {
        let (token_hash, csrf_token) = (token_hash.to_owned(), csrf_token.to_owned());
        self.run(move |conn| {
            let started = conn.execute(
                "INSERT INTO sessions (token_id, csrf_token)
                 SELECT id, ?2 FROM tokens WHERE token_hash = ?1 AND expires_at > ?3",
                params![token_hash, csrf_token, now()],
            )?;
            Ok(started == 1)
        })
        .await
    }

    /// The session whose token hashes to `token_hash`, while it lives. A token that is not a
    /// session's (the CLI's) is none.
    pub async fn session_by_token(&self, token_hash: &str) -> StoreResult<Option<SessionRow>> {
        let token_hash = token_hash.to_owned();
        self.read_row(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {USER_COLUMNS}, tokens.id AS token_id, sessions.csrf_token
                         FROM sessions JOIN tokens ON tokens.id = sessions.token_id
                         JOIN users ON users.id = tokens.user_id
                         WHERE tokens.token_hash = ?1 AND tokens.expires_at > ?2"
                    ),
                    params![token_hash, now()],
                    |row| {
                        Ok(SessionRow {
                            user: UserRow::from_row(row)?,
                            token_id: row.get("token_id")?,
                            csrf_token: row.get("csrf_token")?,
                        })
                    },
                )
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;

    #[tokio::test]
    async fn a_session_lives_as_long_as_its_token() {
        let test = TestStore::new();
        let alice = test.user("alice").await;
        test.store
            .create_token(alice.id, "web", 3600)
            .await
            .unwrap();
        test.store
            .create_token(alice.id, "cli", 3600)
            .await
            .unwrap();
        test.store.create_token(alice.id, "old", -1).await.unwrap();
        assert!(test.store.start_session("web", "secret").await.unwrap());
        assert!(!test.store.start_session("old", "secret").await.unwrap());
        assert!(!test.store.start_session("gone", "secret").await.unwrap());

        let session = test.store.session_by_token("web").await.unwrap().unwrap();
        assert_eq!(session.user.username, "alice");
        assert_eq!(session.csrf_token, "secret");
        assert!(
            test.store.session_by_token("cli").await.unwrap().is_none(),
            "a CLI token is no session"
        );

        test.store.delete_token(session.token_id).await.unwrap();
        assert!(test.store.session_by_token("web").await.unwrap().is_none());
        assert_eq!(test.count("SELECT COUNT(*) FROM sessions"), 0);
    }
}

//! Collaborators: users other than the owner who may push to and manage an app's config.

use paas_api::Username;
use rusqlite::params;

use super::users::user_by_name;
use super::{Store, StoreError, StoreResult, now, typed};

/// How adding a collaborator went; anything but `Added` changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CollaboratorAdded {
    Added,
    NoSuchUser,
    IsOwner,
    AlreadyCollaborator,
}

impl Store {
    /// The app's collaborators' names, in order.
    pub async fn collaborators(&self, app_id: i64) -> StoreResult<Vec<Username>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT users.username FROM collaborators JOIN users ON users.id = collaborators.user_id
                 WHERE collaborators.app_id = ?1 ORDER BY users.username",
            )?;
            Ok(stmt
                .query_map([app_id], |r| typed(r, 0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub async fn add_collaborator(
        &self,
        app_id: i64,
        owner_id: i64,
        username: &str,
    ) -> StoreResult<CollaboratorAdded> {
        let username = username.to_owned();
        self.run(move |conn| {
            let Some(user) = user_by_name(conn, &username)? else {
                return Ok(CollaboratorAdded::NoSuchUser);
            };
            if user.id == owner_id {
                return Ok(CollaboratorAdded::IsOwner);
            }
            let inserted = conn.execute(
                "INSERT INTO collaborators (app_id, user_id, created_at) VALUES (?1, ?2, ?3)",
                params![app_id, user.id, now()],
            );
            match inserted.map_err(StoreError::from) {
                Ok(_) => Ok(CollaboratorAdded::Added),
                Err(StoreError::Conflict) => Ok(CollaboratorAdded::AlreadyCollaborator),
                Err(err) => Err(err),
            }
        })
        .await
    }

    /// Returns whether `username` was a collaborator.
    pub async fn remove_collaborator(&self, app_id: i64, username: &str) -> StoreResult<bool> {
        let username = username.to_owned();
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM collaborators WHERE app_id = ?1
                 AND user_id = (SELECT id FROM users WHERE username = ?2)",
                params![app_id, username],
            )? > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    #[tokio::test]
    async fn collaborators_are_unique_and_never_the_owner() {
        let test = TestStore::new();
        let web = test.app("web").await;
        test.user("bob").await;
        let add = |name: &'static str| test.store.add_collaborator(web.id, web.owner_id, name);
        assert_eq!(add("bob").await.unwrap(), CollaboratorAdded::Added);
        assert_eq!(
            add("bob").await.unwrap(),
            CollaboratorAdded::AlreadyCollaborator
        );
        assert_eq!(add("alice").await.unwrap(), CollaboratorAdded::IsOwner);
        assert_eq!(add("carol").await.unwrap(), CollaboratorAdded::NoSuchUser);
        assert_eq!(test.store.collaborators(web.id).await.unwrap(), ["bob"]);
        assert!(test.store.remove_collaborator(web.id, "bob").await.unwrap());
        assert!(!test.store.remove_collaborator(web.id, "bob").await.unwrap());
        assert!(
            !test
                .store
                .remove_collaborator(web.id, "carol")
                .await
                .unwrap()
        );
    }
}

//! Apps: name, owner, deploy branch. Deleting one takes everything it owns with it
//! (collaborators, config vars, releases and their output, formation, events, domains,
//! features) through the schema's cascades, in one transaction.

use chrono::{DateTime, Utc};
use paas_api::types::Release;
use paas_api::{AppName, Username};
use rusqlite::{Connection, OptionalExtension, Row, named_params, params};

use super::formation::DeployedState;
use super::users::UserRow;
use super::{Store, StoreError, StoreResult, now, to_time, typed};
use crate::quotas::QuotaExceeded;

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: i64,
    pub name: AppName,
    pub owner_id: i64,
    pub owner: Username,
    pub deploy_branch: String,
    pub created_at: DateTime<Utc>,
}

impl AppRow {
    pub(super) fn from_row(row: &Row) -> rusqlite::Result<AppRow> {
        Ok(AppRow {
            id: row.get("id")?,
            name: typed(row, "name")?,
            owner_id: row.get("owner_id")?,
            owner: typed(row, "owner")?,
            deploy_branch: row.get("deploy_branch")?,
            created_at: to_time(row.get("created_at")?),
        })
    }
}

/// An app as `apps` lists it: what it runs and its last deploy, read together.
#[derive(Debug, Clone)]
pub struct AppListing {
    pub app: AppRow,
    pub deployed: DeployedState,
    pub last_deploy: Option<Release>,
}

/// Why an app was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateAppError {
    #[error("the name is taken")]
    NameTaken,
    #[error(transparent)]
    OverQuota(#[from] QuotaExceeded),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(super) const APP_SELECT: &str = "SELECT apps.id, apps.name, apps.owner_id, users.username AS owner, apps.deploy_branch, apps.created_at
     FROM apps JOIN users ON users.id = apps.owner_id";

/// Who may see an app: its owner, its collaborators and admins.
const VISIBLE_TO_USER: &str = "(:is_admin OR apps.owner_id = :user_id OR EXISTS (
    SELECT 1 FROM collaborators c WHERE c.app_id = apps.id AND c.user_id = :user_id))";

pub(super) fn names_owned_by(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM apps WHERE owner_id = ?1 ORDER BY name")?;
    stmt.query_map([user_id], |r| r.get(0))?.collect()
}

impl Store {
    /// The app if `user` may see and use it: owner, collaborator or admin. `None` otherwise,
    /// so callers answer "not found" without telling whether the app exists.
    pub async fn app_for_user(&self, user: &UserRow, name: &str) -> StoreResult<Option<AppRow>> {
        let (user_id, is_admin, name) = (user.id, user.is_admin, name.to_owned());
        self.read_row(move |conn| {
            Ok(conn
                .query_row(
                    &format!("{APP_SELECT} WHERE apps.name = :name AND {VISIBLE_TO_USER}"),
                    named_params! {":name": name, ":is_admin": is_admin, ":user_id": user_id},
                    AppRow::from_row,
                )
                .optional()?)
        })
        .await
    }

    /// The id of the app named `name`, whoever may see it (for events the platform records).
    pub async fn app_id_by_name(&self, name: &str) -> StoreResult<Option<i64>> {
        let name = name.to_owned();
        self.run(move |conn| {
            Ok(conn
                .query_row("SELECT id FROM apps WHERE name = ?1", [name], |r| r.get(0))
                .optional()?)
        })
        .await
    }

    /// The apps `user` may see, in name order, each with the version of its current release.
    pub async fn apps_for_user(&self, user: &UserRow) -> StoreResult<Vec<AppListing>> {
        let (user_id, is_admin) = (user.id, user.is_admin);
        self.run(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{APP_SELECT} WHERE {VISIBLE_TO_USER} ORDER BY apps.name"
            ))?;
            let apps = stmt
                .query_map(
                    named_params! {":is_admin": is_admin, ":user_id": user_id},
                    AppRow::from_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            apps.into_iter()
                .map(|app| {
                    Ok(AppListing {
                        deployed: DeployedState {
                            current: super::releases::current_release(conn, app.id)?,
                            formation: super::formation::formation(conn, app.id)?,
                        },
                        last_deploy: super::releases::last_deploy(conn, app.id)?,
                        app,
                    })
                })
                .collect()
        })
        .await
    }

    /// Creates an app owned by `owner`. `admit` is asked with the number of apps the owner
    /// has, counted in the transaction that inserts, so parallel creates cannot overshoot it.
    pub async fn create_app(
        &self,
        name: &AppName,
        owner: &UserRow,
        admit: impl FnOnce(usize) -> Result<(), QuotaExceeded> + Send + 'static,
    ) -> Result<AppRow, CreateAppError> {
        let (name, owner) = (name.to_owned(), owner.clone());
        let created = self
            .transaction(move |tx| {
                let owned = names_owned_by(tx, owner.id)?.len();
                if let Err(exceeded) = admit(owned) {
                    return Ok(Err(exceeded));
                }
                let created_at = now();
                tx.execute(
                    "INSERT INTO apps (name, owner_id, created_at) VALUES (?1, ?2, ?3)",
                    params![name.as_str(), owner.id, created_at],
                )?;
                Ok(Ok(AppRow {
                    id: tx.last_insert_rowid(),
                    name,
                    owner_id: owner.id,
                    owner: owner.username,
                    deploy_branch: "main".into(),
                    created_at: to_time(created_at),
                }))
            })
            .await;
        match created {
            Ok(Ok(app)) => Ok(app),
            Ok(Err(exceeded)) => Err(exceeded.into()),
            Err(StoreError::Conflict) => Err(CreateAppError::NameTaken),
            Err(err) => Err(err.into()),
        }
    }

    /// Deletes the app and everything it owns, in one transaction.
    pub async fn delete_app(&self, app_id: i64) -> StoreResult<()> {
        self.transaction(move |tx| {
            tx.execute("DELETE FROM apps WHERE id = ?1", [app_id])?;
            Ok(())
        })
        .await
    }
}

impl Store {
    /// The apps with a release left `building` by a daemon that stopped mid-change: what
    /// start-up recovery settles (`ops::recovery`).
    pub async fn apps_with_unfinished_releases(&self) -> StoreResult<Vec<AppRow>> {
        self.run(|conn| {
            let mut stmt = conn.prepare(&format!(
                "{APP_SELECT} WHERE EXISTS (SELECT 1 FROM releases r
                 WHERE r.app_id = apps.id AND r.status = 'building') ORDER BY apps.name"
            ))?;
            Ok(stmt
                .query_map([], AppRow::from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::types::{Feature, ReleaseStatus};

    use super::super::testing::TestStore;
    use super::super::{NewRelease, ReleaseOutcome};
    use super::*;

    #[tokio::test]
    async fn a_taken_name_and_a_full_quota_are_refused() {
        let test = TestStore::new();
        let alice = test.user("alice").await;
        test.app("web").await;
        let bob = test.user("bob").await;
        let taken = test
            .store
            .create_app(&"web".parse().unwrap(), &bob, |_| Ok(()))
            .await;
        assert!(matches!(taken, Err(CreateAppError::NameTaken)), "{taken:?}");
        let full = test
            .store
            .create_app(&"api".parse().unwrap(), &alice, |owned| {
                assert_eq!(owned, 1);
                Err(QuotaExceeded::Apps { limit: 1 })
            })
            .await;
        assert!(
            matches!(full, Err(CreateAppError::OverQuota(_))),
            "{full:?}"
        );
        assert!(test.store.app_id_by_name("api").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn an_app_is_seen_by_its_owner_collaborators_and_admins_only() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let bob = test.user("bob").await;
        let root = test
            .store
            .create_user(&"root".parse().unwrap(), "hash", true)
            .await
            .unwrap();
        assert!(
            test.store
                .app_for_user(&bob, "web")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            test.store
                .app_for_user(&root, "web")
                .await
                .unwrap()
                .is_some()
        );
        test.store
            .add_collaborator(web.id, web.owner_id, "bob")
            .await
            .unwrap();
        assert!(
            test.store
                .app_for_user(&bob, "web")
                .await
                .unwrap()
                .is_some()
        );
        let listed = test.store.apps_for_user(&bob).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].deployed.current.is_none());
        assert!(listed[0].deployed.formation.is_empty());
        assert!(listed[0].last_deploy.is_none());
    }

    #[tokio::test]
    async fn deleting_an_app_takes_everything_it_owns() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        test.user("bob").await;
        for app in [&web, &api] {
            let config: BTreeMap<_, _> = [("A".parse().unwrap(), "1".to_owned())].into();
            let release = test
                .store
                .create_release(NewRelease {
                    app_id: app.id,
                    kind: crate::store::ReleaseKind::Deploy,
                    description: "Deploy 1234567".into(),
                    username: "alice".parse().unwrap(),
                    image: None,
                    commit: None,
                    processes: BTreeMap::new(),
                    config: config.clone(),
                    resources: Default::default(),
                    app_json: Default::default(),
                })
                .await
                .unwrap();
            test.store
                .finish_release(
                    app.id,
                    release.version,
                    ReleaseOutcome {
                        status: ReleaseStatus::Succeeded,
                        image: None,
                        processes: BTreeMap::new(),
                        config: Some(config),
                        output: Some("built".into()),
                    },
                )
                .await
                .unwrap();
            test.store
                .replace_formation(app.id, [("web".parse().unwrap(), 2)].into())
                .await
                .unwrap();
            test.store
                .add_collaborator(app.id, app.owner_id, "bob")
                .await
                .unwrap();
            test.store
                .set_feature(app.id, Feature::NonRoot, true)
                .await
                .unwrap();
            test.store
                .record_event(
                    app.id,
                    super::super::EventRow {
                        at_micros: 1,
                        dyno: "deploy".into(),
                        message: "hi".into(),
                        release: None,
                    },
                    10,
                )
                .await
                .unwrap();
        }
        test.store
            .add_domain(web.id, &"www.example.com".parse().unwrap())
            .await
            .unwrap();
        test.store.delete_app(web.id).await.unwrap();
        for table in [
            "apps",
            "collaborators",
            "config_vars",
            "releases",
            "release_output",
            "formation",
            "events",
            "app_features",
        ] {
            assert_eq!(
                test.count(&format!("SELECT COUNT(*) FROM {table}")),
                1,
                "{table}"
            );
        }
        assert_eq!(test.count("SELECT COUNT(*) FROM domains"), 0);
        assert!(test.store.app_id_by_name("web").await.unwrap().is_none());
    }
}

//! Releases: each numbered per app (1, 2, …) in the transaction that inserts it, with the image,
//! commit, process types and config snapshot it runs, its status, and the output of its build
//! or rollout. The current release is the newest that succeeded. A deploy's release is made by
//! its build (`builds.rs`) and its output is the build's; other releases keep their own.

use std::collections::BTreeMap;

use paas_api::app_json::AppJson;
use paas_api::resources::Resources;
use paas_api::types::{Release, ReleaseStatus};
use paas_api::{ConfigKey, ProcessType, Username};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::config_vars::replace_config_vars;
use super::{Store, StoreError, StoreResult, now, to_time, typed};

/// What kind of change a release is: what it records and what becomes the app's with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseKind {
    /// A push, after its build.
    Deploy,
    /// Config set/unset: the release's config becomes the app's once it serves.
    Config,
    /// A rollback to release `to`: its config becomes the app's again, as on Heroku.
    Rollback { to: u32 },
    /// New sizes for a process type (`paas ps:resize`): the config stays as it is.
    Resize,
    /// A volume mounted or unmounted (`paas storage:mount`/`unmount`): the mounts are the
    /// app's, stored before the rollout and put back if it fails; the config stays.
    Storage,
}

impl ReleaseKind {
    /// How the kind is stored (the `kind` column); a rollback's target is in its description.
    fn stored(self) -> &'static str {
        match self {
            ReleaseKind::Deploy => "deploy",
            ReleaseKind::Config => "config",
            ReleaseKind::Rollback { .. } => "rollback",
            ReleaseKind::Resize => "resize",
            ReleaseKind::Storage => "storage",
        }
    }
}

/// What a new release is made of; its version is the app's next one.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub app_id: i64,
    pub kind: ReleaseKind,
    pub description: String,
    pub username: Username,
    pub image: Option<String>,
    pub commit: Option<String>,
    pub processes: BTreeMap<ProcessType, Option<String>>,
    pub config: BTreeMap<ConfigKey, String>,
    pub resources: Resources,
    pub app_json: AppJson,
}

/// How a release's build or rollout ended.
#[derive(Debug, Clone)]
pub struct ReleaseOutcome {
    pub status: ReleaseStatus,
    /// Set once the build produced an image; `None` keeps the stored one.
    pub image: Option<String>,
    pub processes: BTreeMap<ProcessType, Option<String>>,
    /// Becomes the app's config vars, in the same transaction.
    pub config: Option<BTreeMap<ConfigKey, String>>,
    /// Kept as the release's output (`paas releases:output`).
    pub output: Option<String>,
}

/// What [`Store::fail_interrupted`] marked failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted {
    pub releases: usize,
    pub builds: usize,
}

fn status_name(status: ReleaseStatus) -> &'static str {
    match status {
        ReleaseStatus::Building => "building",
        ReleaseStatus::Failed => "failed",
        ReleaseStatus::Succeeded => "succeeded",
    }
}

fn release_from_row(row: &Row) -> rusqlite::Result<Release> {
    let status: String = row.get("status")?;
    let processes: String = row.get("processes")?;
    let config: String = row.get("config")?;
    let resources: String = row.get("resources")?;
    let app_json: String = row.get("app_json")?;
    Ok(Release {
        version: row.get("version")?,
        description: row.get("description")?,
        user: typed(row, "username")?,
        created_at: to_time(row.get("created_at")?),
        status: match status.as_str() {
            "building" => ReleaseStatus::Building,
            "succeeded" => ReleaseStatus::Succeeded,
            _ => ReleaseStatus::Failed,
        },
        image: row.get("image")?,
        commit: row.get("commit_sha")?,
        processes: serde_json::from_str(&processes).unwrap_or_default(),
        config: serde_json::from_str(&config).unwrap_or_default(),
        resources: serde_json::from_str(&resources).unwrap_or_default(),
        app_json: serde_json::from_str(&app_json).unwrap_or_default(),
    })
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("a map of strings serializes")
}

const RELEASE_COLUMNS: &str = "version, description, username, created_at, status, image, commit_sha, processes, config, resources, app_json";

/// Numbers and inserts the release; run inside the caller's transaction.
pub(super) fn insert_release(
    conn: &Connection,
    new: NewRelease,
    status: ReleaseStatus,
) -> rusqlite::Result<Release> {
    let version = next_version(conn, new.app_id)?;
    let created_at = now();
    conn.execute(
        "INSERT INTO releases (app_id, version, kind, description, username, created_at, status, image, commit_sha, processes, config, resources, app_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            new.app_id,
            version,
            new.kind.stored(),
            new.description,
            new.username.as_str(),
            created_at,
            status_name(status),
            new.image,
            new.commit,
            to_json(&new.processes),
            to_json(&new.config),
            to_json(&new.resources),
            to_json(&new.app_json),
        ],
    )?;
    Ok(Release {
        version,
        description: new.description,
        user: new.username,
        created_at: to_time(created_at),
        status,
        image: new.image,
        commit: new.commit,
        processes: new.processes,
        config: new.config,
        resources: new.resources,
        app_json: new.app_json,
    })
}

fn next_version(conn: &Connection, app_id: i64) -> rusqlite::Result<u32> {
    conn.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_id = ?1",
        [app_id],
        |r| r.get(0),
    )
}

/// Keeps `output` as the release's: on the build that made it, if one did.
fn save_output(conn: &Connection, app_id: i64, version: u32, output: &str) -> rusqlite::Result<()> {
    let on_build = conn.execute(
        "UPDATE builds SET output = ?3 WHERE app_id = ?1 AND release_version = ?2",
        params![app_id, version, output],
    )?;
    if on_build == 0 {
        conn.execute(
            "INSERT OR REPLACE INTO release_output (app_id, version, output) VALUES (?1, ?2, ?3)",
            params![app_id, version, output],
        )?;
    }
    Ok(())
}

/// The newest successful release: what runs (or should run) now.
pub(super) fn current_release(conn: &Connection, app_id: i64) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 AND status = 'succeeded'
             ORDER BY version DESC LIMIT 1"
        ),
        [app_id],
        release_from_row,
    )
    .optional()
}

/// The newest successful deploy or rollback.
pub(super) fn last_deploy(conn: &Connection, app_id: i64) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 AND status = 'succeeded'
             AND kind IN (?2, ?3) ORDER BY version DESC LIMIT 1"
        ),
        params![
            app_id,
            ReleaseKind::Deploy.stored(),
            ReleaseKind::Rollback { to: 0 }.stored()
        ],
        release_from_row,
    )
    .optional()
}

impl Store {
    /// The version the app's next release will get. Read by a push, under the app's lock, to
    /// name the image it builds for that release.
    pub async fn next_release_version(&self, app_id: i64) -> StoreResult<u32> {
        self.run(move |conn| Ok(next_version(conn, app_id)?)).await
    }

    /// Records a release that is about to be rolled out, as `building`, under the app's next
    /// version number.
    pub async fn create_release(&self, new: NewRelease) -> StoreResult<Release> {
        self.transaction(move |tx| Ok(insert_release(tx, new, ReleaseStatus::Building)?))
            .await
    }

    /// Records a release that is live as it is made (a config change while nothing runs):
    /// `succeeded`, and its config becomes the app's, in one transaction.
    pub async fn create_live_release(&self, new: NewRelease) -> StoreResult<Release> {
        self.transaction(move |tx| {
            let (app_id, config) = (new.app_id, new.config.clone());
            let release = insert_release(tx, new, ReleaseStatus::Succeeded)?;
            replace_config_vars(tx, app_id, &config)?;
            Ok(release)
        })
        .await
    }

    /// Records how the release's build or rollout ended, with what the outcome carries (its
    /// image, the app's new config, its output), in one transaction.
    pub async fn finish_release(
        &self,
        app_id: i64,
        version: u32,
        outcome: ReleaseOutcome,
    ) -> StoreResult<()> {
        self.transaction(move |tx| {
            let changed = tx.execute(
                "UPDATE releases SET status = ?3, image = COALESCE(?4, image), processes = ?5
                 WHERE app_id = ?1 AND version = ?2",
                params![
                    app_id,
                    version,
                    status_name(outcome.status),
                    outcome.image,
                    to_json(&outcome.processes),
                ],
            )?;
            if changed == 0 {
                return Err(StoreError::NotFound("release"));
            }
            if let Some(config) = &outcome.config {
                replace_config_vars(tx, app_id, config)?;
            }
            if let Some(output) = &outcome.output {
                save_output(tx, app_id, version, output)?;
            }
            Ok(())
        })
        .await
    }

    /// Marks what a daemon that stopped mid-push or mid-change left unfinished as failed, in
    /// one step: releases left `building` (mid-build or mid-rollout) and builds left pending.
    pub async fn fail_interrupted(&self) -> StoreResult<Interrupted> {
        self.transaction(|tx| {
            let releases = tx.execute(
                "UPDATE releases SET status = 'failed' WHERE status = 'building'",
                [],
            )?;
            let builds = tx.execute(
                "UPDATE builds SET status = 'failed', finished_at = ?1 WHERE status = 'pending'",
                [now()],
            )?;
            Ok(Interrupted { releases, builds })
        })
        .await
    }

    /// The app's newest `limit` releases, newest first.
    pub async fn releases(&self, app_id: i64, limit: u32) -> StoreResult<Vec<Release>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 ORDER BY version DESC LIMIT ?2"
            ))?;
            Ok(stmt
                .query_map(params![app_id, limit], release_from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    pub async fn release(&self, app_id: i64, version: u32) -> StoreResult<Option<Release>> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 AND version = ?2"
                    ),
                    params![app_id, version],
                    release_from_row,
                )
                .optional()?)
        })
        .await
    }

    /// The newest successful release: what runs (or should run) now.
    pub async fn current_release(&self, app_id: i64) -> StoreResult<Option<Release>> {
        self.run(move |conn| Ok(current_release(conn, app_id)?))
            .await
    }

    /// The newest successful release that put code live: a deploy or a rollback.
    pub async fn last_deploy(&self, app_id: i64) -> StoreResult<Option<Release>> {
        self.run(move |conn| Ok(last_deploy(conn, app_id)?)).await
    }

    pub async fn save_release_output(
        &self,
        app_id: i64,
        version: u32,
        output: &str,
    ) -> StoreResult<()> {
        let output = output.to_owned();
        self.run(move |conn| Ok(save_output(conn, app_id, version, &output)?))
            .await
    }

    /// The release's output: its build's for a deploy, its own for the other kinds.
    pub async fn release_output(&self, app_id: i64, version: u32) -> StoreResult<Option<String>> {
        self.run(move |conn| {
            Ok(conn.query_row(
                "SELECT COALESCE(
                     (SELECT output FROM builds WHERE app_id = ?1 AND release_version = ?2),
                     (SELECT output FROM release_output WHERE app_id = ?1 AND version = ?2))",
                params![app_id, version],
                |r| r.get(0),
            )?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    fn new_release(
        app_id: i64,
        kind: ReleaseKind,
        description: &str,
        config: &[(&str, &str)],
    ) -> NewRelease {
        NewRelease {
            app_id,
            kind,
            description: description.into(),
            username: "alice".parse().unwrap(),
            image: Some("paas/web:v1".into()),
            commit: Some("1234567".into()),
            processes: [("web".parse().unwrap(), None)].into(),
            config: config
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.to_string()))
                .collect(),
            resources: Default::default(),
            app_json: Default::default(),
        }
    }

    #[tokio::test]
    async fn a_release_keeps_the_sizes_of_its_process_types() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let sizes = paas_api::resources::ProcessResources {
            memory: Some("256M".parse().unwrap()),
            cpus: Some("0.5".parse().unwrap()),
        };
        let mut sized = new_release(web.id, ReleaseKind::Resize, "Resize web", &[]);
        sized.resources = [("web".parse().unwrap(), sizes)].into();
        let plain = test
            .store
            .create_release(new_release(
                web.id,
                ReleaseKind::Deploy,
                "Deploy 1234567",
                &[],
            ))
            .await
            .unwrap();
        let created = test.store.create_release(sized).await.unwrap();
        assert_eq!(created.resources["web"], sizes);
        let read = test.store.release(web.id, created.version).await.unwrap();
        assert_eq!(read.unwrap().resources["web"], sizes);
        let read = test.store.release(web.id, plain.version).await.unwrap();
        assert!(read.unwrap().resources.is_empty());
    }

    #[tokio::test]
    async fn a_release_keeps_its_app_json() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let app_json = paas_api::app_json::parse_app_json(
            r#"{"cron":[{"command":"echo tick","schedule":"* * * * *"}],
                "healthchecks":{"web":[{"name":"ready","path":"/health"}]}}"#,
        )
        .unwrap();
        let mut new = new_release(web.id, ReleaseKind::Deploy, "Deploy 1234567", &[]);
        new.app_json = app_json.clone();
        let created = test.store.create_release(new).await.unwrap();
        let read = test.store.release(web.id, created.version).await.unwrap();
        assert_eq!(read.unwrap().app_json, app_json);
    }

    fn outcome(status: ReleaseStatus) -> ReleaseOutcome {
        ReleaseOutcome {
            status,
            image: None,
            processes: [("web".parse().unwrap(), None)].into(),
            config: None,
            output: None,
        }
    }

    #[tokio::test]
    async fn versions_count_up_per_app() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let mut versions = Vec::new();
        for app in [&web, &web, &api, &web] {
            let release = test
                .store
                .create_release(new_release(
                    app.id,
                    ReleaseKind::Deploy,
                    "Deploy 1234567",
                    &[],
                ))
                .await
                .unwrap();
            assert_eq!(release.status, ReleaseStatus::Building);
            versions.push(release.version);
        }
        assert_eq!(versions, [1, 2, 1, 3]);
        let listed: Vec<u32> = test
            .store
            .releases(web.id, 2)
            .await
            .unwrap()
            .iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(listed, [3, 2]);
    }

    #[tokio::test]
    async fn parallel_creates_never_share_a_version() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let creates = (0..20).map(|_| {
            let store = test.store.clone();
            tokio::spawn(async move {
                store
                    .create_release(new_release(
                        web.id,
                        ReleaseKind::Deploy,
                        "Deploy 1234567",
                        &[],
                    ))
                    .await
                    .unwrap()
                    .version
            })
        });
        let mut versions = Vec::new();
        for create in creates.collect::<Vec<_>>() {
            versions.push(create.await.unwrap());
        }
        versions.sort();
        assert_eq!(versions, (1..=20).collect::<Vec<u32>>());
    }

    #[tokio::test]
    async fn finishing_sets_status_image_config_and_output_together() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let mut new = new_release(web.id, ReleaseKind::Deploy, "Deploy 1234567", &[("A", "1")]);
        new.image = None;
        let release = test.store.create_release(new).await.unwrap();
        assert!(test.store.current_release(web.id).await.unwrap().is_none());
        test.store
            .finish_release(
                web.id,
                release.version,
                ReleaseOutcome {
                    image: Some("paas/web:v1".into()),
                    config: Some(release.config.clone()),
                    output: Some("-----> built".into()),
                    ..outcome(ReleaseStatus::Succeeded)
                },
            )
            .await
            .unwrap();
        let current = test.store.current_release(web.id).await.unwrap().unwrap();
        assert_eq!(current.version, release.version);
        assert_eq!(current.image.as_deref(), Some("paas/web:v1"));
        assert_eq!(
            test.store.config_vars(web.id).await.unwrap(),
            release.config
        );
        assert_eq!(
            test.store
                .release_output(web.id, 1)
                .await
                .unwrap()
                .as_deref(),
            Some("-----> built")
        );
        assert_eq!(
            test.store
                .last_deploy(web.id)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );

        // A failed rollout keeps the image and leaves the config as it was.
        let second = test
            .store
            .create_release(new_release(
                web.id,
                ReleaseKind::Config,
                "Set B config vars",
                &[("B", "2")],
            ))
            .await
            .unwrap();
        test.store
            .finish_release(web.id, second.version, outcome(ReleaseStatus::Failed))
            .await
            .unwrap();
        let failed = test.store.release(web.id, 2).await.unwrap().unwrap();
        assert_eq!(failed.status, ReleaseStatus::Failed);
        assert_eq!(failed.image.as_deref(), Some("paas/web:v1"));
        assert_eq!(
            test.store.config_vars(web.id).await.unwrap(),
            release.config
        );
        assert_eq!(
            test.store
                .current_release(web.id)
                .await
                .unwrap()
                .unwrap()
                .version,
            1
        );

        let missing = test
            .store
            .finish_release(web.id, 9, outcome(ReleaseStatus::Failed))
            .await;
        assert!(matches!(missing, Err(StoreError::NotFound("release"))));
    }

    #[tokio::test]
    async fn a_live_release_replaces_the_config_at_once() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let mut new = new_release(
            web.id,
            ReleaseKind::Config,
            "Set A config vars",
            &[("A", "1")],
        );
        new.image = None;
        let release = test.store.create_live_release(new).await.unwrap();
        assert_eq!(release.status, ReleaseStatus::Succeeded);
        let mut new = new_release(
            web.id,
            ReleaseKind::Config,
            "Unset A config vars; Set B",
            &[("B", "2")],
        );
        new.image = None;
        test.store.create_live_release(new).await.unwrap();
        assert_eq!(
            test.store.config_vars(web.id).await.unwrap(),
            [("B".parse().unwrap(), "2".to_owned())].into()
        );
        // Only deploys and rollbacks count as the last deploy, whatever their description.
        let mut new = new_release(web.id, ReleaseKind::Config, "Deploy-like description", &[]);
        new.image = None;
        test.store.create_live_release(new).await.unwrap();
        assert!(test.store.last_deploy(web.id).await.unwrap().is_none());
        let mut new = new_release(web.id, ReleaseKind::Rollback { to: 1 }, "Back to v1", &[]);
        new.image = None;
        let rollback = test.store.create_live_release(new).await.unwrap();
        let last = test.store.last_deploy(web.id).await.unwrap().unwrap();
        assert_eq!(last.version, rollback.version);
    }

    #[tokio::test]
    async fn unfinished_releases_are_failed_on_start() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let building = test
            .store
            .create_release(new_release(
                web.id,
                ReleaseKind::Deploy,
                "Deploy 1234567",
                &[],
            ))
            .await
            .unwrap();
        let done = test
            .store
            .create_release(new_release(
                web.id,
                ReleaseKind::Deploy,
                "Deploy 89abcde",
                &[],
            ))
            .await
            .unwrap();
        test.store
            .finish_release(web.id, done.version, outcome(ReleaseStatus::Succeeded))
            .await
            .unwrap();
        test.store
            .create_release(new_release(
                web.id,
                ReleaseKind::Deploy,
                "Deploy 0000000",
                &[],
            ))
            .await
            .unwrap();
        assert_eq!(test.store.fail_interrupted().await.unwrap().releases, 2);
        assert_eq!(test.store.fail_interrupted().await.unwrap().releases, 0);
        let statuses: Vec<ReleaseStatus> = test
            .store
            .releases(web.id, u32::MAX)
            .await
            .unwrap()
            .iter()
            .map(|r| r.status)
            .collect();
        assert_eq!(
            statuses,
            [
                ReleaseStatus::Failed,
                ReleaseStatus::Succeeded,
                ReleaseStatus::Failed
            ]
        );
        assert_eq!(
            test.store
                .release(web.id, building.version)
                .await
                .unwrap()
                .unwrap()
                .status,
            ReleaseStatus::Failed
        );
    }
}

//! Builds: each numbered per app (1, 2, …) in the transaction that inserts it, apart from
//! releases, with who pushed which commit, how it ended and its output. A build that
//! succeeds makes its release in the same transaction, so a release number is only ever
//! taken by an image that exists; the output of that release is the build's (one copy).

use paas_api::Username;
use paas_api::builds::{Build, BuildStatus};
use paas_api::types::{Release, ReleaseStatus};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::releases::{NewRelease, insert_release};
use super::{Store, StoreError, StoreResult, now, to_time, typed};

const BUILD_COLUMNS: &str =
    "number, status, username, commit_sha, created_at, finished_at, release_version";

fn build_from_row(row: &Row) -> rusqlite::Result<Build> {
    let status: String = row.get("status")?;
    Ok(Build {
        id: row.get("number")?,
        status: match status.as_str() {
            "pending" => BuildStatus::Pending,
            "succeeded" => BuildStatus::Succeeded,
            _ => BuildStatus::Failed,
        },
        commit: row.get("commit_sha")?,
        user: typed(row, "username")?,
        created_at: to_time(row.get("created_at")?),
        finished_at: row.get::<_, Option<i64>>("finished_at")?.map(to_time),
        release: row.get("release_version")?,
    })
}

/// Ends a pending build; run inside the caller's transaction.
fn finish(
    conn: &Connection,
    app_id: i64,
    id: u32,
    status: BuildStatus,
    release: Option<u32>,
    output: &str,
) -> StoreResult<()> {
    let changed = conn.execute(
        "UPDATE builds SET status = ?3, finished_at = ?4, release_version = ?5, output = ?6
         WHERE app_id = ?1 AND number = ?2 AND status = 'pending'",
        params![app_id, id, status.as_str(), now(), release, output],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound("pending build"));
    }
    Ok(())
}

impl Store {
    /// Records a build of `commit` pushed by `user`, as pending, under the app's next build
    /// number.
    pub async fn create_build(
        &self,
        app_id: i64,
        user: Username,
        commit: String,
    ) -> StoreResult<Build> {
        self.transaction(move |tx| {
            let id: u32 = tx.query_row(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM builds WHERE app_id = ?1",
                [app_id],
                |r| r.get(0),
            )?;
            let created_at = now();
            tx.execute(
                "INSERT INTO builds (app_id, number, status, username, commit_sha, created_at)
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5)",
                params![app_id, id, user.as_str(), commit, created_at],
            )?;
            Ok(Build {
                id,
                status: BuildStatus::Pending,
                commit,
                user,
                created_at: to_time(created_at),
                finished_at: None,
                release: None,
            })
        })
        .await
    }

    /// Records the build failed, with its output; it makes no release.
    pub async fn fail_build(&self, app_id: i64, id: u32, output: String) -> StoreResult<()> {
        self.transaction(move |tx| finish(tx, app_id, id, BuildStatus::Failed, None, &output))
            .await
    }

    /// Records the build succeeded and makes its release (`building`, with the image) in one
    /// transaction. `built_for` is the version the image was named for
    /// ([`Store::next_release_version`] when the build began): a release taking any other
    /// number would run an image named for another, so that is refused as a conflict.
    pub async fn build_succeeded(
        &self,
        id: u32,
        built_for: u32,
        release: NewRelease,
        output: String,
    ) -> StoreResult<Release> {
        self.transaction(move |tx| {
            let app_id = release.app_id;
            let release = insert_release(tx, release, ReleaseStatus::Building)?;
            if release.version != built_for {
                return Err(StoreError::Conflict);
            }
            finish(
                tx,
                app_id,
                id,
                BuildStatus::Succeeded,
                Some(release.version),
                &output,
            )?;
            Ok(release)
        })
        .await
    }

    /// The app's newest `limit` builds, newest first.
    pub async fn builds(&self, app_id: i64, limit: u32) -> StoreResult<Vec<Build>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(&format!(
                "SELECT {BUILD_COLUMNS} FROM builds WHERE app_id = ?1 ORDER BY number DESC LIMIT ?2"
            ))?;
            Ok(stmt
                .query_map(params![app_id, limit], build_from_row)?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// The build and its output (none while it is pending, or when it was cut off).
    pub async fn build_output(
        &self,
        app_id: i64,
        id: u32,
    ) -> StoreResult<Option<(Build, Option<String>)>> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    &format!(
                        "SELECT {BUILD_COLUMNS}, output FROM builds WHERE app_id = ?1 AND number = ?2"
                    ),
                    params![app_id, id],
                    |row| Ok((build_from_row(row)?, row.get("output")?)),
                )
                .optional()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::super::{ReleaseKind, ReleaseOutcome};
    use super::*;

    fn deploy(app_id: i64, image: &str) -> NewRelease {
        NewRelease {
            app_id,
            kind: ReleaseKind::Deploy,
            description: "Deploy 1234567".into(),
            username: "alice".parse().unwrap(),
            image: Some(image.into()),
            commit: Some("1234567".into()),
            processes: [("web".parse().unwrap(), None)].into(),
            config: Default::default(),
            resources: Default::default(),
            app_json: Default::default(),
        }
    }

    async fn pending(test: &TestStore, app_id: i64) -> Build {
        test.store
            .create_build(app_id, "alice".parse().unwrap(), "1234567".into())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_failed_build_takes_no_release_number() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let first = pending(&test, web.id).await;
        assert_eq!((first.id, first.status), (1, BuildStatus::Pending));
        assert_eq!(pending(&test, api.id).await.id, 1, "numbered per app");
        test.store
            .fail_build(web.id, first.id, "-----> Building…\n !     broken".into())
            .await
            .unwrap();

        let second = pending(&test, web.id).await;
        assert_eq!(second.id, 2);
        let version = test.store.next_release_version(web.id).await.unwrap();
        assert_eq!(version, 1);
        let release = test
            .store
            .build_succeeded(
                second.id,
                version,
                deploy(web.id, "paas/web:v1"),
                "built".into(),
            )
            .await
            .unwrap();
        assert_eq!(
            (release.version, release.status),
            (1, ReleaseStatus::Building)
        );
        assert_eq!(release.image.as_deref(), Some("paas/web:v1"));

        let builds = test.store.builds(web.id, 10).await.unwrap();
        let summary: Vec<_> = builds.iter().map(|b| (b.id, b.status, b.release)).collect();
        assert_eq!(
            summary,
            [
                (2, BuildStatus::Succeeded, Some(1)),
                (1, BuildStatus::Failed, None)
            ]
        );
        assert!(builds.iter().all(|b| b.finished_at.is_some()));
        let (failed, output) = test.store.build_output(web.id, 1).await.unwrap().unwrap();
        assert_eq!(failed.status, BuildStatus::Failed);
        assert_eq!(output.as_deref(), Some("-----> Building…\n !     broken"));
        assert!(test.store.build_output(web.id, 3).await.unwrap().is_none());
        assert!(
            test.store
                .fail_build(web.id, 1, String::new())
                .await
                .is_err(),
            "an ended build stays as it ended"
        );
    }

    #[tokio::test]
    async fn a_release_of_a_build_reads_and_keeps_its_output_on_the_build() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let build = pending(&test, web.id).await;
        test.store
            .build_succeeded(build.id, 1, deploy(web.id, "paas/web:v1"), "built".into())
            .await
            .unwrap();
        assert_eq!(
            test.store
                .release_output(web.id, 1)
                .await
                .unwrap()
                .as_deref(),
            Some("built")
        );
        test.store
            .save_release_output(web.id, 1, "built\nrolled out")
            .await
            .unwrap();
        let (_, output) = test.store.build_output(web.id, 1).await.unwrap().unwrap();
        assert_eq!(output.as_deref(), Some("built\nrolled out"));
        assert_eq!(test.count("SELECT COUNT(*) FROM release_output"), 0);
        test.store
            .finish_release(
                web.id,
                1,
                ReleaseOutcome {
                    status: ReleaseStatus::Failed,
                    image: None,
                    processes: Default::default(),
                    config: None,
                    output: Some("built\nfailed to start".into()),
                },
            )
            .await
            .unwrap();
        assert_eq!(
            test.store
                .release_output(web.id, 1)
                .await
                .unwrap()
                .as_deref(),
            Some("built\nfailed to start")
        );
    }

    #[tokio::test]
    async fn a_release_numbered_apart_from_its_image_is_refused() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let build = pending(&test, web.id).await;
        let refused = test
            .store
            .build_succeeded(build.id, 2, deploy(web.id, "paas/web:v2"), String::new())
            .await;
        assert!(matches!(refused, Err(StoreError::Conflict)), "{refused:?}");
        assert!(test.store.releases(web.id, 10).await.unwrap().is_empty());
        let (build, _) = test.store.build_output(web.id, 1).await.unwrap().unwrap();
        assert_eq!(build.status, BuildStatus::Pending);
    }

    #[tokio::test]
    async fn unfinished_builds_are_failed_on_start() {
        let test = TestStore::new();
        let web = test.app("web").await;
        pending(&test, web.id).await;
        let done = pending(&test, web.id).await;
        test.store
            .fail_build(web.id, done.id, String::new())
            .await
            .unwrap();
        assert_eq!(test.store.fail_interrupted().await.unwrap().builds, 1);
        assert_eq!(test.store.fail_interrupted().await.unwrap().builds, 0);
        let builds = test.store.builds(web.id, 10).await.unwrap();
        assert!(builds.iter().all(|b| b.status == BuildStatus::Failed));
    }
}

//! Versioned schema migrations, applied in order at start; `PRAGMA user_version` records how
//! many have run. Append new steps; never edit one that has shipped.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: accounts, apps, keys, config vars, releases.
    r#"
    CREATE TABLE users (
        id            INTEGER PRIMARY KEY,
        username      TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        is_admin      INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE tokens (
        id         INTEGER PRIMARY KEY,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
    );
    CREATE TABLE ssh_keys (
        id          INTEGER PRIMARY KEY,
        user_id     INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        fingerprint TEXT NOT NULL UNIQUE,
        algorithm   TEXT NOT NULL,
        public_key  TEXT NOT NULL,
        comment     TEXT NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE apps (
        id            INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        owner_id      INTEGER NOT NULL REFERENCES users(id),
        deploy_branch TEXT NOT NULL DEFAULT 'main',
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE collaborators (
        app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        user_id    INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, user_id)
    );
    CREATE TABLE config_vars (
        app_id INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        PRIMARY KEY (app_id, key)
    );
    CREATE TABLE releases (
        id          INTEGER PRIMARY KEY,
        app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        version     INTEGER NOT NULL,
        description TEXT NOT NULL,
        username    TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        status      TEXT NOT NULL,
        image       TEXT,
        commit_sha  TEXT,
        processes   TEXT NOT NULL,
        config      TEXT NOT NULL,
        UNIQUE (app_id, version)
    );
    "#,
    // 2: how many instances of each process type an app runs.
    r#"
    CREATE TABLE formation (
        app_id   INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        process  TEXT NOT NULL,
        quantity INTEGER NOT NULL,
        PRIMARY KEY (app_id, process)
    );
    "#,
    // 3: platform events (bounded per app by the code that writes them), each release's build
    // and rollout output, and custom domains (unique across apps).
    r#"
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY,
        app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        at_micros  INTEGER NOT NULL,
        dyno       TEXT NOT NULL,
        message    TEXT NOT NULL
    );
    CREATE INDEX events_by_app ON events (app_id, id);
    CREATE TABLE release_output (
        app_id  INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        version INTEGER NOT NULL,
        output  TEXT NOT NULL,
        PRIMARY KEY (app_id, version)
    );
    CREATE TABLE domains (
        hostname   TEXT PRIMARY KEY,
        app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        created_at INTEGER NOT NULL
    );
    CREATE INDEX domains_by_app ON domains (app_id);
    "#,
    // 4: the lock-downs each app opted into (`paas features:enable`), by feature name.
    r#"
    CREATE TABLE app_features (
        app_id  INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        feature TEXT NOT NULL,
        PRIMARY KEY (app_id, feature)
    );
    "#,
    // 5: the sizes each release gives its process types (`paas ps:resize`), as JSON.
    r#"
    ALTER TABLE releases ADD COLUMN resources TEXT NOT NULL DEFAULT '{}';
    "#,
    // 6: how each app's traffic is routed beyond its hosts (`paas maintenance`, `paas ps:sticky`);
    // an app without a row has both off.
    r#"
    CREATE TABLE app_routing (
        app_id INTEGER PRIMARY KEY REFERENCES apps(id) ON DELETE CASCADE,
        maintenance INTEGER NOT NULL DEFAULT 0,
        sticky_sessions INTEGER NOT NULL DEFAULT 0
    );
    "#,
    // 7: the app's volumes (`paas storage`), kept until destroyed, and where each is mounted.
    // The mounts belong to the app, not to a release: every rollout reads them from here.
    r#"
    CREATE TABLE app_volumes (
        app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name       TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (app_id, name)
    );
    CREATE TABLE app_mounts (
        app_id INTEGER NOT NULL,
        name   TEXT NOT NULL,
        path   TEXT NOT NULL,
        PRIMARY KEY (app_id, path),
        FOREIGN KEY (app_id, name) REFERENCES app_volumes (app_id, name) ON DELETE CASCADE
    );
    "#,
    // 8: what each release took from its tree's app.json (cron jobs, health checks), as JSON,
    // and the runs of cron jobs.
    r#"
    ALTER TABLE releases ADD COLUMN app_json TEXT NOT NULL DEFAULT '{}';
    -- Each run of a cron job, claimed (unique per job and minute) before it is launched, so
    -- no restart or deploy within the minute starts it twice.
    CREATE TABLE cron_runs (
        id            INTEGER PRIMARY KEY,
        app_id        INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        job_id        TEXT NOT NULL,
        scheduled_for INTEGER NOT NULL,
        status        TEXT NOT NULL,
        exit_status   INTEGER,
        dyno          TEXT,
        UNIQUE (app_id, job_id, scheduled_for)
    );
    "#,
    // 9: add-ons, owned by the app they were created on (names unique per owner), and the
    // apps attached to them, each under a name unique per app. No cascade from apps: an app
    // that owns an add-on is deleted only after it.
    r#"
    CREATE TABLE addons (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        owner_id   INTEGER NOT NULL REFERENCES users(id),
        app_id     INTEGER NOT NULL REFERENCES apps(id),
        name       TEXT NOT NULL,
        kind       TEXT NOT NULL,
        url        TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (owner_id, name)
    );
    CREATE TABLE addon_attachments (
        addon_id INTEGER NOT NULL REFERENCES addons(id) ON DELETE CASCADE,
        app_id   INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        name     TEXT NOT NULL,
        PRIMARY KEY (addon_id, app_id),
        UNIQUE (app_id, name)
    );
    "#,
    // 10: what kind of change each release is (deploy, config, rollback, resize, storage), so
    // that queries need not read it out of the description; older rows are classified by
    // the descriptions they were written with.
    r#"
    ALTER TABLE releases ADD COLUMN kind TEXT NOT NULL DEFAULT 'config';
    UPDATE releases SET kind = CASE
        WHEN description LIKE 'Deploy %' THEN 'deploy'
        WHEN description LIKE 'Rollback %' THEN 'rollback'
        WHEN description LIKE 'Resize %' THEN 'resize'
        WHEN description LIKE 'Mount %' OR description LIKE 'Unmount %' THEN 'storage'
        ELSE 'config'
    END;
    "#,
    // 11: builds, numbered per app apart from releases, so that a failed build takes no
    // release number; a deploy's output is its build's. Each older deploy release becomes
    // the build it was (failed when it never got an image), keeping its number and moving
    // its output over.
    r#"
    CREATE TABLE builds (
        app_id          INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        number          INTEGER NOT NULL,
        status          TEXT NOT NULL,
        username        TEXT NOT NULL,
        commit_sha      TEXT NOT NULL,
        created_at      INTEGER NOT NULL,
        finished_at     INTEGER,
        release_version INTEGER,
        output          TEXT,
        PRIMARY KEY (app_id, number),
        UNIQUE (app_id, release_version)
    );
    INSERT INTO builds (app_id, number, status, username, commit_sha, created_at, finished_at,
                        release_version, output)
    SELECT r.app_id,
           (SELECT COUNT(*) FROM releases earlier WHERE earlier.app_id = r.app_id
                AND earlier.kind = 'deploy' AND earlier.version <= r.version),
           CASE WHEN r.image IS NULL THEN 'failed' ELSE 'succeeded' END,
           r.username, COALESCE(r.commit_sha, ''), r.created_at, r.created_at, r.version, o.output
    FROM releases r
    LEFT JOIN release_output o ON o.app_id = r.app_id AND o.version = r.version
    WHERE r.kind = 'deploy';
    DELETE FROM release_output WHERE EXISTS (
        SELECT 1 FROM builds b
        WHERE b.app_id = release_output.app_id AND b.release_version = release_output.version);
    "#,
    // 12: an app's webhooks, the queue of what is to be posted to them (one row per
    // event and webhook, kept while due, so a restart resumes it) and the log of attempts.
    r#"
    CREATE TABLE webhooks (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        app_id     INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        url        TEXT NOT NULL,
        events     TEXT NOT NULL,
        secret     TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE webhook_deliveries (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        webhook_id      INTEGER NOT NULL REFERENCES webhooks(id) ON DELETE CASCADE,
        app_id          INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        payload_id      TEXT NOT NULL,
        event           TEXT NOT NULL,
        body            TEXT NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        due_at_ms       INTEGER
    );
    CREATE INDEX webhook_deliveries_due ON webhook_deliveries (due_at_ms)
        WHERE due_at_ms IS NOT NULL;
    CREATE TABLE webhook_attempts (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        delivery_id INTEGER NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
        app_id      INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        attempt     INTEGER NOT NULL,
        at_ms       INTEGER NOT NULL,
        status      INTEGER,
        error       TEXT,
        retry_in_ms INTEGER
    );
    CREATE INDEX webhook_attempts_app ON webhook_attempts (app_id, id);
    "#,
    // 13: the dashboard's sessions: a login token held in a cookie, with the secret its forms
    // carry against cross-site requests; it ends with its token.
    r#"
    CREATE TABLE sessions (
        token_id   INTEGER PRIMARY KEY REFERENCES tokens(id) ON DELETE CASCADE,
        csrf_token TEXT NOT NULL
    );
    "#,
    // 14: the release a platform event happened in (a deploy, a restart, an instance's state), so
    // that `logs --release` shows it; none for what concerns the whole app (a domain, an add-on).
    r#"
    ALTER TABLE events ADD COLUMN release_version INTEGER;
    "#,
    // 15: metrics pulled from the agent: CPU and memory per instance and requests per app, in
    // slots of 10 s (kept an hour) and of 60 s (kept a day), each accumulating the sampling
    // rounds that fall in it; and the time of the last round stored, which the next pull asks
    // after.
    r#"
    CREATE TABLE metric_instances (
        app_id       INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        resolution   INTEGER NOT NULL,
        slot         INTEGER NOT NULL,
        process      TEXT NOT NULL,
        instance     INTEGER NOT NULL,
        rounds       INTEGER NOT NULL,
        cpu_sum      REAL NOT NULL,
        memory_max   INTEGER NOT NULL,
        memory_limit INTEGER,
        PRIMARY KEY (app_id, resolution, slot, process, instance)
    ) WITHOUT ROWID;
    CREATE INDEX metric_instances_age ON metric_instances (resolution, slot);
    CREATE TABLE metric_requests (
        app_id       INTEGER NOT NULL REFERENCES apps(id) ON DELETE CASCADE,
        resolution   INTEGER NOT NULL,
        slot         INTEGER NOT NULL,
        requests     INTEGER NOT NULL,
        status_2xx   INTEGER NOT NULL,
        status_3xx   INTEGER NOT NULL,
        status_4xx   INTEGER NOT NULL,
        status_5xx   INTEGER NOT NULL,
        p50_weighted REAL NOT NULL,
        p50_requests INTEGER NOT NULL,
        p95_max      REAL,
        PRIMARY KEY (app_id, resolution, slot)
    ) WITHOUT ROWID;
    CREATE INDEX metric_requests_age ON metric_requests (resolution, slot);
    CREATE TABLE metric_cursor (
        id       INTEGER PRIMARY KEY CHECK (id = 1),
        after_ms INTEGER NOT NULL
    );
    "#,
];

pub fn apply(conn: &mut Connection) -> rusqlite::Result<()> {
    let applied: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(applied) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", index + 1)?;
        tx.commit()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_once_and_is_idempotent() {
        let mut conn = Connection::open_in_memory().unwrap();
        apply(&mut conn).unwrap();
        apply(&mut conn).unwrap();
        let version: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len());
    }

    /// A database as the first `steps` migrations left it, with alice and her app `web`.
    fn database_after(steps: usize) -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        for sql in &MIGRATIONS[..steps] {
            conn.execute_batch(sql).unwrap();
        }
        conn.pragma_update(None, "user_version", steps).unwrap();
        conn.execute(
            "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES ('alice', 'x', 1, 0)",
            [],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO apps (name, owner_id, created_at) VALUES ('web', 1, 0)",
            [],
        )
        .unwrap();
        conn
    }

    #[test]
    fn releases_from_before_the_kind_column_get_theirs_from_their_description() {
        let mut conn = database_after(9);
        let descriptions = [
            "Deploy 1234567",
            "Set A config vars",
            "Rollback to v1",
            "Resize web to 256M",
            "Mount data at /data",
            "Unmount data from /data",
        ];
        for (version, description) in descriptions.iter().enumerate() {
            conn.execute(
                "INSERT INTO releases (app_id, version, description, username, created_at, status, processes, config)
                 VALUES (1, ?1, ?2, 'alice', 0, 'succeeded', '{}', '{}')",
                rusqlite::params![version + 1, description],
            )
            .unwrap();
        }
        apply(&mut conn).unwrap();
        let kinds: Vec<String> = conn
            .prepare("SELECT kind FROM releases ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            kinds,
            [
                "deploy", "config", "rollback", "resize", "storage", "storage"
            ]
        );
    }

    #[test]
    fn deploy_releases_from_before_builds_become_builds_with_their_numbers_and_output() {
        let mut conn = database_after(10);
        // v1 built and ran, v2 a config change, v3 a build that failed, v4 built but failed
        // to start, v5 a rollback.
        let releases = [
            (
                1,
                "deploy",
                "succeeded",
                Some("paas/web:v1"),
                Some("built v1"),
            ),
            (2, "config", "succeeded", Some("paas/web:v1"), None),
            (3, "deploy", "failed", None, Some("build broke")),
            (
                4,
                "deploy",
                "failed",
                Some("paas/web:v4"),
                Some("built v4; crashed"),
            ),
            (
                5,
                "rollback",
                "succeeded",
                Some("paas/web:v1"),
                Some("rolled back"),
            ),
        ];
        for (version, kind, status, image, output) in releases {
            conn.execute(
                "INSERT INTO releases (app_id, version, kind, description, username, created_at, status, image, commit_sha, processes, config)
                 VALUES (1, ?1, ?2, 'x', 'alice', ?1, ?3, ?4, 'abc', '{}', '{}')",
                rusqlite::params![version, kind, status, image],
            )
            .unwrap();
            if let Some(output) = output {
                conn.execute(
                    "INSERT INTO release_output (app_id, version, output) VALUES (1, ?1, ?2)",
                    rusqlite::params![version, output],
                )
                .unwrap();
            }
        }
        apply(&mut conn).unwrap();
        let builds: Vec<(u32, String, u32, Option<String>)> = conn
            .prepare("SELECT number, status, release_version, output FROM builds ORDER BY number")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let owned = |text: &str| Some(text.to_owned());
        assert_eq!(
            builds,
            [
                (1, "succeeded".to_owned(), 1, owned("built v1")),
                (2, "failed".to_owned(), 3, owned("build broke")),
                (3, "succeeded".to_owned(), 4, owned("built v4; crashed")),
            ]
        );
        // The rollback keeps its own output; the deploys' moved, none is kept twice.
        let kept: Vec<u32> = conn
            .prepare("SELECT version FROM release_output ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(kept, [5]);
        let versions: Vec<u32> = conn
            .prepare("SELECT version FROM releases ORDER BY version")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(versions, [1, 2, 3, 4, 5], "releases keep their numbers");
    }
}

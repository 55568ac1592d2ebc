//! Typed queries. Each takes the connection it runs on, so callers compose them inside one
//! transaction where a change touches several tables.

use std::collections::{BTreeMap, BTreeSet};

use paas_api::types::{Feature, Release, ReleaseStatus, SshKey, User};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{now, to_time};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub created_at: i64,
}

impl UserRow {
    pub fn to_api(&self) -> User {
        User {
            username: self.username.clone(),
            is_admin: self.is_admin,
            created_at: to_time(self.created_at),
        }
    }

    fn from_row(row: &Row) -> rusqlite::Result<UserRow> {
        Ok(UserRow {
            id: row.get("id")?,
            username: row.get("username")?,
            password_hash: row.get("password_hash")?,
            is_admin: row.get("is_admin")?,
            created_at: row.get("created_at")?,
        })
    }
}

const USER_COLUMNS: &str =
    "users.id, users.username, users.password_hash, users.is_admin, users.created_at";

pub fn user_by_name(conn: &Connection, username: &str) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
        [username],
        UserRow::from_row,
    )
    .optional()
}

pub fn list_users(conn: &Connection) -> rusqlite::Result<Vec<UserRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {USER_COLUMNS} FROM users ORDER BY username"
    ))?;
    stmt.query_map([], UserRow::from_row)?.collect()
}

pub fn insert_user(
    conn: &Connection,
    username: &str,
    password_hash: &str,
    is_admin: bool,
) -> rusqlite::Result<UserRow> {
    let created_at = now();
    conn.execute(
        "INSERT INTO users (username, password_hash, is_admin, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![username, password_hash, is_admin, created_at],
    )?;
    Ok(UserRow {
        id: conn.last_insert_rowid(),
        username: username.to_owned(),
        password_hash: password_hash.to_owned(),
        is_admin,
        created_at,
    })
}

pub fn delete_user(conn: &Connection, user_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM users WHERE id = ?1", [user_id])?;
    Ok(())
}

pub fn count_admins(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM users WHERE is_admin = 1", [], |r| {
        r.get(0)
    })
}

pub fn insert_token(
    conn: &Connection,
    user_id: i64,
    token_hash: &str,
    expires_at: i64,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO tokens (user_id, token_hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
        params![user_id, token_hash, now(), expires_at],
    )?;
    Ok(())
}

/// The user a live token belongs to, with the token's row id.
pub fn user_by_token(
    conn: &Connection,
    token_hash: &str,
) -> rusqlite::Result<Option<(UserRow, i64)>> {
    conn.query_row(
        &format!(
            "SELECT {USER_COLUMNS}, tokens.id AS token_id FROM tokens JOIN users ON users.id = tokens.user_id
             WHERE tokens.token_hash = ?1 AND tokens.expires_at > ?2"
        ),
        params![token_hash, now()],
        |row| Ok((UserRow::from_row(row)?, row.get("token_id")?)),
    )
    .optional()
}

pub fn delete_token(conn: &Connection, token_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM tokens WHERE id = ?1", [token_id])?;
    Ok(())
}

pub fn delete_expired_tokens(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute("DELETE FROM tokens WHERE expires_at <= ?1", [now()])
}

#[derive(Debug, Clone)]
pub struct AppRow {
    pub id: i64,
    pub name: String,
    pub owner_id: i64,
    pub owner: String,
    pub deploy_branch: String,
    pub created_at: i64,
}

impl AppRow {
    fn from_row(row: &Row) -> rusqlite::Result<AppRow> {
        Ok(AppRow {
            id: row.get("id")?,
            name: row.get("name")?,
            owner_id: row.get("owner_id")?,
            owner: row.get("owner")?,
            deploy_branch: row.get("deploy_branch")?,
            created_at: row.get("created_at")?,
        })
    }
}

const APP_SELECT: &str = "SELECT apps.id, apps.name, apps.owner_id, users.username AS owner, apps.deploy_branch, apps.created_at
     FROM apps JOIN users ON users.id = apps.owner_id";

/// The app if `user` may see and use it: owner, collaborator or admin. `None` otherwise, so
/// callers answer "not found" without telling whether the app exists.
pub fn app_for_user(
    conn: &Connection,
    user: &UserRow,
    name: &str,
) -> rusqlite::Result<Option<AppRow>> {
    conn.query_row(
        &format!(
            "{APP_SELECT} WHERE apps.name = ?1 AND (?2 OR apps.owner_id = ?3 OR EXISTS (
                SELECT 1 FROM collaborators c WHERE c.app_id = apps.id AND c.user_id = ?3))"
        ),
        params![name, user.is_admin, user.id],
        AppRow::from_row,
    )
    .optional()
}

/// The id of the app named `name`, whoever may see it (for events the platform itself records).
pub fn app_id_by_name(conn: &Connection, name: &str) -> rusqlite::Result<Option<i64>> {
    conn.query_row("SELECT id FROM apps WHERE name = ?1", [name], |r| r.get(0))
        .optional()
}

pub fn apps_for_user(conn: &Connection, user: &UserRow) -> rusqlite::Result<Vec<AppRow>> {
    let mut stmt = conn.prepare(&format!(
        "{APP_SELECT} WHERE ?1 OR apps.owner_id = ?2 OR EXISTS (
            SELECT 1 FROM collaborators c WHERE c.app_id = apps.id AND c.user_id = ?2)
         ORDER BY apps.name"
    ))?;
    stmt.query_map(params![user.is_admin, user.id], AppRow::from_row)?
        .collect()
}

pub fn apps_owned_by(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT name FROM apps WHERE owner_id = ?1 ORDER BY name")?;
    stmt.query_map([user_id], |r| r.get(0))?.collect()
}

pub fn insert_app(conn: &Connection, name: &str, owner: &UserRow) -> rusqlite::Result<AppRow> {
    let created_at = now();
    conn.execute(
        "INSERT INTO apps (name, owner_id, created_at) VALUES (?1, ?2, ?3)",
        params![name, owner.id, created_at],
    )?;
    Ok(AppRow {
        id: conn.last_insert_rowid(),
        name: name.to_owned(),
        owner_id: owner.id,
        owner: owner.username.clone(),
        deploy_branch: "main".into(),
        created_at,
    })
}

pub fn delete_app(conn: &Connection, app_id: i64) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM apps WHERE id = ?1", [app_id])?;
    Ok(())
}

pub fn collaborators(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT users.username FROM collaborators JOIN users ON users.id = collaborators.user_id
         WHERE collaborators.app_id = ?1 ORDER BY users.username",
    )?;
    stmt.query_map([app_id], |r| r.get(0))?.collect()
}

pub fn insert_collaborator(conn: &Connection, app_id: i64, user_id: i64) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO collaborators (app_id, user_id, created_at) VALUES (?1, ?2, ?3)",
        params![app_id, user_id, now()],
    )?;
    Ok(())
}

/// Returns whether a row was removed.
pub fn delete_collaborator(conn: &Connection, app_id: i64, user_id: i64) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM collaborators WHERE app_id = ?1 AND user_id = ?2",
        params![app_id, user_id],
    )? > 0)
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

pub fn keys_of(conn: &Connection, user_id: i64) -> rusqlite::Result<Vec<SshKey>> {
    let mut stmt = conn.prepare(
        "SELECT id, fingerprint, algorithm, comment, created_at FROM ssh_keys WHERE user_id = ?1 ORDER BY id",
    )?;
    stmt.query_map([user_id], key_from_row)?.collect()
}

pub struct NewKey<'a> {
    pub fingerprint: &'a str,
    pub algorithm: &'a str,
    pub public_key: &'a str,
    pub comment: &'a str,
}

pub fn insert_key(conn: &Connection, user_id: i64, key: &NewKey) -> rusqlite::Result<SshKey> {
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
        fingerprint: key.fingerprint.to_owned(),
        algorithm: key.algorithm.to_owned(),
        comment: key.comment.to_owned(),
        created_at: to_time(created_at),
    })
}

/// Removes one of the user's keys named by id or fingerprint; returns whether one was removed.
pub fn delete_key(
    conn: &Connection,
    user_id: i64,
    id_or_fingerprint: &str,
) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM ssh_keys WHERE user_id = ?1 AND (fingerprint = ?2 OR CAST(id AS TEXT) = ?2)",
        params![user_id, id_or_fingerprint],
    )? > 0)
}

/// The owner of a registered SSH key, by its `SHA256:` fingerprint.
pub fn user_by_key_fingerprint(
    conn: &Connection,
    fingerprint: &str,
) -> rusqlite::Result<Option<UserRow>> {
    conn.query_row(
        &format!(
            "SELECT {USER_COLUMNS} FROM ssh_keys JOIN users ON users.id = ssh_keys.user_id
             WHERE ssh_keys.fingerprint = ?1"
        ),
        [fingerprint],
        UserRow::from_row,
    )
    .optional()
}

pub fn config_vars(conn: &Connection, app_id: i64) -> rusqlite::Result<BTreeMap<String, String>> {
    let mut stmt = conn.prepare("SELECT key, value FROM config_vars WHERE app_id = ?1")?;
    stmt.query_map([app_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

pub fn replace_config_vars(
    conn: &Connection,
    app_id: i64,
    vars: &BTreeMap<String, String>,
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM config_vars WHERE app_id = ?1", [app_id])?;
    let mut insert =
        conn.prepare("INSERT INTO config_vars (app_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (key, value) in vars {
        insert.execute(params![app_id, key, value])?;
    }
    Ok(())
}

/// What a new release is made of; its version is the app's next one.
pub struct NewRelease<'a> {
    pub app_id: i64,
    pub description: &'a str,
    pub username: &'a str,
    pub status: ReleaseStatus,
    pub image: Option<&'a str>,
    pub commit: Option<&'a str>,
    pub processes: &'a BTreeMap<String, Option<String>>,
    pub config: &'a BTreeMap<String, String>,
}

pub fn insert_release(conn: &Connection, new: &NewRelease) -> rusqlite::Result<Release> {
    let version: u32 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE app_id = ?1",
        [new.app_id],
        |r| r.get(0),
    )?;
    let created_at = now();
    conn.execute(
        "INSERT INTO releases (app_id, version, description, username, created_at, status, image, commit_sha, processes, config)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            new.app_id,
            version,
            new.description,
            new.username,
            created_at,
            status_name(new.status),
            new.image,
            new.commit,
            serde_json::to_string(new.processes).expect("a map of strings serializes"),
            serde_json::to_string(new.config).expect("a map of strings serializes"),
        ],
    )?;
    Ok(Release {
        version,
        description: new.description.to_owned(),
        user: new.username.to_owned(),
        created_at: to_time(created_at),
        status: new.status,
        image: new.image.map(str::to_owned),
        commit: new.commit.map(str::to_owned),
        processes: new.processes.clone(),
        config: new.config.clone(),
    })
}

/// Records the outcome of a build or rollout; `image` is set once the build produced one.
pub fn finish_release(
    conn: &Connection,
    app_id: i64,
    version: u32,
    status: ReleaseStatus,
    image: Option<&str>,
    processes: &BTreeMap<String, Option<String>>,
) -> rusqlite::Result<()> {
    conn.execute(
        "UPDATE releases SET status = ?3, image = COALESCE(?4, image), processes = ?5
         WHERE app_id = ?1 AND version = ?2",
        params![
            app_id,
            version,
            status_name(status),
            image,
            serde_json::to_string(processes).expect("a map of strings serializes"),
        ],
    )?;
    Ok(())
}

/// Marks releases left `building` by a daemon that stopped mid-build as failed; returns how
/// many there were.
pub fn fail_unfinished_releases(conn: &Connection) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE releases SET status = 'failed' WHERE status = 'building'",
        [],
    )
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
    Ok(Release {
        version: row.get("version")?,
        description: row.get("description")?,
        user: row.get("username")?,
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
    })
}

const RELEASE_COLUMNS: &str =
    "version, description, username, created_at, status, image, commit_sha, processes, config";

/// Newest first.
pub fn releases(conn: &Connection, app_id: i64, limit: u32) -> rusqlite::Result<Vec<Release>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 ORDER BY version DESC LIMIT ?2"
    ))?;
    stmt.query_map(params![app_id, limit], release_from_row)?
        .collect()
}

pub fn release(conn: &Connection, app_id: i64, version: u32) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!("SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 AND version = ?2"),
        params![app_id, version],
        release_from_row,
    )
    .optional()
}

/// The newest successful release: what runs (or should run) now.
pub fn current_release(conn: &Connection, app_id: i64) -> rusqlite::Result<Option<Release>> {
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

/// The stored quantity of each process type (what the last rollout or scale applied).
pub fn formation(conn: &Connection, app_id: i64) -> rusqlite::Result<BTreeMap<String, u32>> {
    let mut stmt = conn.prepare("SELECT process, quantity FROM formation WHERE app_id = ?1")?;
    stmt.query_map([app_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

pub fn replace_formation(
    conn: &Connection,
    app_id: i64,
    formation: &BTreeMap<String, u32>,
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM formation WHERE app_id = ?1", [app_id])?;
    let mut insert =
        conn.prepare("INSERT INTO formation (app_id, process, quantity) VALUES (?1, ?2, ?3)")?;
    for (process, quantity) in formation {
        insert.execute(params![app_id, process, quantity])?;
    }
    Ok(())
}

/// One platform event of an app (`paas[deploy]: Deploy 1a2b3c4 by user alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub at_micros: i64,
    pub dyno: String,
    pub message: String,
}

/// Records an event and drops the app's oldest ones beyond `keep`.
pub fn insert_event(
    conn: &Connection,
    app_id: i64,
    event: &EventRow,
    keep: u32,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT INTO events (app_id, at_micros, dyno, message) VALUES (?1, ?2, ?3, ?4)",
        params![app_id, event.at_micros, event.dyno, event.message],
    )?;
    conn.execute(
        "DELETE FROM events WHERE app_id = ?1 AND id <= (
             SELECT id FROM events WHERE app_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        params![app_id, keep],
    )?;
    Ok(())
}

/// The app's newest `limit` events, oldest first.
pub fn recent_events(
    conn: &Connection,
    app_id: i64,
    limit: u32,
) -> rusqlite::Result<Vec<EventRow>> {
    let mut stmt = conn.prepare(
        "SELECT at_micros, dyno, message FROM (
             SELECT id, at_micros, dyno, message FROM events WHERE app_id = ?1
             ORDER BY id DESC LIMIT ?2)
         ORDER BY id",
    )?;
    stmt.query_map(params![app_id, limit], |r| {
        Ok(EventRow {
            at_micros: r.get(0)?,
            dyno: r.get(1)?,
            message: r.get(2)?,
        })
    })?
    .collect()
}

pub fn save_release_output(
    conn: &Connection,
    app_id: i64,
    version: u32,
    output: &str,
) -> rusqlite::Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO release_output (app_id, version, output) VALUES (?1, ?2, ?3)",
        params![app_id, version, output],
    )?;
    Ok(())
}

pub fn release_output(
    conn: &Connection,
    app_id: i64,
    version: u32,
) -> rusqlite::Result<Option<String>> {
    conn.query_row(
        "SELECT output FROM release_output WHERE app_id = ?1 AND version = ?2",
        params![app_id, version],
        |r| r.get(0),
    )
    .optional()
}

/// The app's custom domains with when they were added, in name order.
pub fn domains(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<(String, i64)>> {
    let mut stmt = conn
        .prepare("SELECT hostname, created_at FROM domains WHERE app_id = ?1 ORDER BY hostname")?;
    stmt.query_map([app_id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect()
}

/// Fails with a constraint violation when any app has the domain already.
pub fn insert_domain(conn: &Connection, app_id: i64, hostname: &str) -> rusqlite::Result<i64> {
    let created_at = now();
    conn.execute(
        "INSERT INTO domains (hostname, app_id, created_at) VALUES (?1, ?2, ?3)",
        params![hostname, app_id, created_at],
    )?;
    Ok(created_at)
}

/// Returns whether the app had the domain.
pub fn delete_domain(conn: &Connection, app_id: i64, hostname: &str) -> rusqlite::Result<bool> {
    Ok(conn.execute(
        "DELETE FROM domains WHERE app_id = ?1 AND hostname = ?2",
        params![app_id, hostname],
    )? > 0)
}

/// Every domain of every app but `app_id`, for the overlap check of a new domain.
/// The domains of apps whose owner is not this app's owner: one owner's apps may share a
/// zone (`*.example.com` on one, `www.example.com` on another), other tenants' may not.
pub fn domains_of_other_owners(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT d.hostname FROM domains d JOIN apps a ON a.id = d.app_id
         WHERE a.owner_id != (SELECT owner_id FROM apps WHERE id = ?1)",
    )?;
    stmt.query_map([app_id], |r| r.get(0))?.collect()
}

/// The distinct images of the app's newest `limit` successful releases.
pub fn recent_release_images(
    conn: &Connection,
    app_id: i64,
    limit: u32,
) -> rusqlite::Result<Vec<String>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT image FROM (
             SELECT image FROM releases WHERE app_id = ?1 AND status = 'succeeded'
             AND image IS NOT NULL ORDER BY version DESC LIMIT ?2)",
    )?;
    stmt.query_map(params![app_id, limit], |r| r.get(0))?
        .collect()
}

/// The newest successful release that put code live: a deploy or a rollback.
pub fn last_deploy(conn: &Connection, app_id: i64) -> rusqlite::Result<Option<Release>> {
    conn.query_row(
        &format!(
            "SELECT {RELEASE_COLUMNS} FROM releases WHERE app_id = ?1 AND status = 'succeeded'
             AND (description LIKE 'Deploy %' OR description LIKE 'Rollback %')
             ORDER BY version DESC LIMIT 1"
        ),
        [app_id],
        release_from_row,
    )
    .optional()
}

/// The features the app has enabled. Names this version does not know are skipped.
pub fn enabled_features(conn: &Connection, app_id: i64) -> rusqlite::Result<BTreeSet<Feature>> {
    let mut stmt = conn.prepare("SELECT feature FROM app_features WHERE app_id = ?1")?;
    let names = stmt
        .query_map([app_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().filter_map(|name| name.parse().ok()).collect())
}

pub fn set_feature(
    conn: &Connection,
    app_id: i64,
    feature: Feature,
    enabled: bool,
) -> rusqlite::Result<()> {
    if enabled {
        conn.execute(
            "INSERT OR IGNORE INTO app_features (app_id, feature) VALUES (?1, ?2)",
            params![app_id, feature.name()],
        )?;
    } else {
        conn.execute(
            "DELETE FROM app_features WHERE app_id = ?1 AND feature = ?2",
            params![app_id, feature.name()],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with_owner(conn: &Connection, name: &str) -> AppRow {
        let owner = match user_by_name(conn, "alice").unwrap() {
            Some(user) => user,
            None => insert_user(conn, "alice", "hash", false).unwrap(),
        };
        insert_app(conn, name, &owner).unwrap()
    }

    fn database() -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        super::super::migrations::apply(&mut conn).unwrap();
        conn
    }

    fn event(n: i64) -> EventRow {
        EventRow {
            at_micros: n,
            dyno: "deploy".into(),
            message: format!("event {n}"),
        }
    }

    #[test]
    fn features_are_kept_per_app_and_go_with_it() {
        let conn = database();
        let web = app_with_owner(&conn, "web");
        let api = app_with_owner(&conn, "api");
        set_feature(&conn, web.id, Feature::ReadOnlyFs, true).unwrap();
        set_feature(&conn, web.id, Feature::ReadOnlyFs, true).unwrap();
        set_feature(&conn, web.id, Feature::NonRoot, true).unwrap();
        set_feature(&conn, web.id, Feature::NonRoot, false).unwrap();
        assert_eq!(
            enabled_features(&conn, web.id).unwrap(),
            [Feature::ReadOnlyFs].into()
        );
        assert!(enabled_features(&conn, api.id).unwrap().is_empty());
        delete_app(&conn, web.id).unwrap();
        let left: i64 = conn
            .query_row("SELECT COUNT(*) FROM app_features", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 0);
    }

    #[test]
    fn events_are_bounded_per_app_and_read_oldest_first() {
        let conn = database();
        let web = app_with_owner(&conn, "web");
        let api = app_with_owner(&conn, "api");
        for n in 1..=5 {
            insert_event(&conn, web.id, &event(n), 3).unwrap();
        }
        insert_event(&conn, api.id, &event(100), 3).unwrap();
        let kept: Vec<i64> = recent_events(&conn, web.id, 10)
            .unwrap()
            .into_iter()
            .map(|e| e.at_micros)
            .collect();
        assert_eq!(kept, [3, 4, 5]);
        let newest: Vec<i64> = recent_events(&conn, web.id, 2)
            .unwrap()
            .into_iter()
            .map(|e| e.at_micros)
            .collect();
        assert_eq!(newest, [4, 5]);
        assert_eq!(recent_events(&conn, api.id, 10).unwrap().len(), 1);
    }

    #[test]
    fn a_domain_belongs_to_one_app_and_goes_with_it() {
        let conn = database();
        let web = app_with_owner(&conn, "web");
        let api = app_with_owner(&conn, "api");
        insert_domain(&conn, web.id, "www.example.com").unwrap();
        let taken = insert_domain(&conn, api.id, "www.example.com").unwrap_err();
        assert!(crate::db::is_constraint_violation(&taken));
        assert!(!delete_domain(&conn, api.id, "www.example.com").unwrap());
        delete_app(&conn, web.id).unwrap();
        insert_domain(&conn, api.id, "www.example.com").unwrap();
        assert_eq!(domains(&conn, api.id).unwrap()[0].0, "www.example.com");
    }
}

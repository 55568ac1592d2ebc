//! Add-ons (`paas addons`) and their attachments. An add-on row belongs to the app it was
//! created on and that app's owner (its name is unique per owner) and keeps the URL its
//! service answers at, credentials included; an attachment gives one app of the same owner
//! that URL under a name (`DATABASE` → `DATABASE_URL`), unique per app. The owning app's
//! attachment is made with the add-on and goes only with it. An app cannot be deleted while
//! it owns an add-on: its attachments elsewhere would be left without their service.

use paas_api::addons::{AddonKind, AddonName, Attachment, AttachmentName};
use paas_api::{AppName, Username};
use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreResult, now, typed};

/// One add-on as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AddonRow {
    pub id: i64,
    pub name: AddonName,
    pub kind: AddonKind,
    pub owner_id: i64,
    pub owner: Username,
    /// The app it was created on.
    pub app_id: i64,
    pub app: AppName,
    /// What attached apps connect with; a secret.
    pub url: String,
    /// Every app that uses it, the owning app first.
    pub attachments: Vec<Attachment>,
}

impl std::fmt::Debug for AddonRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddonRow")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("owner", &self.owner)
            .field("app", &self.app)
            .field("attachments", &self.attachments)
            .finish_non_exhaustive()
    }
}

impl AddonRow {
    /// The attachment of `app`, if it is attached.
    pub fn attachment(&self, app: &str) -> Option<&Attachment> {
        self.attachments.iter().find(|a| a.app == app)
    }
}

/// A new add-on, attached to its app as `attachment`.
pub struct NewAddon {
    pub owner_id: i64,
    pub app_id: i64,
    pub name: AddonName,
    pub kind: AddonKind,
    pub url: String,
    pub attachment: AttachmentName,
}

const SELECT_ADDON: &str =
    "SELECT a.id, a.name, a.kind, a.owner_id, u.username, a.app_id, p.name, a.url
     FROM addons a JOIN users u ON u.id = a.owner_id JOIN apps p ON p.id = a.app_id";

fn attachments(
    conn: &Connection,
    addon_id: i64,
    owning_app: i64,
) -> rusqlite::Result<Vec<Attachment>> {
    let mut stmt = conn.prepare(
        "SELECT p.name, t.name FROM addon_attachments t JOIN apps p ON p.id = t.app_id
         WHERE t.addon_id = ?1 ORDER BY t.app_id != ?2, p.name",
    )?;
    stmt.query_map(params![addon_id, owning_app], |r| {
        Ok(Attachment {
            app: typed(r, 0)?,
            name: typed(r, 1)?,
        })
    })?
    .collect()
}

fn addons_where(
    conn: &Connection,
    condition: &str,
    values: impl rusqlite::Params,
) -> rusqlite::Result<Vec<AddonRow>> {
    let mut stmt = conn.prepare(&format!("{SELECT_ADDON} WHERE {condition} ORDER BY a.name"))?;
    let rows = stmt
        .query_map(values, |r| {
            Ok(AddonRow {
                id: r.get(0)?,
                name: typed(r, 1)?,
                kind: typed(r, 2)?,
                owner_id: r.get(3)?,
                owner: typed(r, 4)?,
                app_id: r.get(5)?,
                app: typed(r, 6)?,
                url: r.get(7)?,
                attachments: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter()
        .map(|mut row| {
            row.attachments = attachments(conn, row.id, row.app_id)?;
            Ok(row)
        })
        .collect()
}

impl Store {
    /// The add-on `name` of the owner.
    pub async fn addon(&self, owner_id: i64, name: AddonName) -> StoreResult<Option<AddonRow>> {
        self.run(move |conn| {
            let mut found = addons_where(
                conn,
                "a.owner_id = ?1 AND a.name = ?2",
                params![owner_id, name.as_str()],
            )?;
            Ok(found.pop())
        })
        .await
    }

    /// The add-ons attached to the app, its own among them.
    pub async fn app_addons(&self, app_id: i64) -> StoreResult<Vec<AddonRow>> {
        self.run(move |conn| {
            Ok(addons_where(
                conn,
                "a.id IN (SELECT addon_id FROM addon_attachments WHERE app_id = ?1)",
                [app_id],
            )?)
        })
        .await
    }

    /// Records a new add-on and its owning app's attachment; `Conflict` if the owner has one
    /// of that name or the app an attachment of that name.
    pub async fn insert_addon(&self, new: NewAddon) -> StoreResult<AddonRow> {
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO addons (owner_id, app_id, name, kind, url, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    new.owner_id,
                    new.app_id,
                    new.name.as_str(),
                    new.kind.as_str(),
                    new.url,
                    now()
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO addon_attachments (addon_id, app_id, name) VALUES (?1, ?2, ?3)",
                params![id, new.app_id, new.attachment.as_str()],
            )?;
            let mut rows = addons_where(tx, "a.id = ?1", [id])?;
            Ok(rows.pop().expect("the add-on was just inserted"))
        })
        .await
    }

    /// Attaches the add-on to the app as `name`; `Conflict` if it is attached there already
    /// or the app has an attachment of that name.
    pub async fn attach_addon(
        &self,
        addon_id: i64,
        app_id: i64,
        name: AttachmentName,
    ) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO addon_attachments (addon_id, app_id, name) VALUES (?1, ?2, ?3)",
                params![addon_id, app_id, name.as_str()],
            )?;
            Ok(())
        })
        .await
    }

    /// Removes the app's attachment of the add-on; whether there was one.
    pub async fn detach_addon(&self, addon_id: i64, app_id: i64) -> StoreResult<bool> {
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM addon_attachments WHERE addon_id = ?1 AND app_id = ?2",
                params![addon_id, app_id],
            )? == 1)
        })
        .await
    }

    /// Removes the add-on and its attachments.
    pub async fn delete_addon(&self, addon_id: i64) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute("DELETE FROM addons WHERE id = ?1", [addon_id])?;
            Ok(())
        })
        .await
    }

    /// The add-on whose attachment in the app is `name`, if any.
    pub async fn addon_attached_as(
        &self,
        app_id: i64,
        name: AttachmentName,
    ) -> StoreResult<Option<AddonName>> {
        self.run(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT a.name FROM addon_attachments t JOIN addons a ON a.id = t.addon_id
                     WHERE t.app_id = ?1 AND t.name = ?2",
                    params![app_id, name.as_str()],
                    |r| typed(r, 0),
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

    fn new(owner_id: i64, app_id: i64, name: &str, attachment: &str) -> NewAddon {
        NewAddon {
            owner_id,
            app_id,
            name: name.parse().unwrap(),
            kind: AddonKind::Postgres,
            url: format!("postgres://u:p@{name}:5432/d"),
            attachment: attachment.parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn names_are_unique_per_owner_and_attachments_per_app() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let bobs = test.app_of("bob", "bobs").await;
        let store = &test.store;
        let db = store
            .insert_addon(new(web.owner_id, web.id, "db", "DATABASE"))
            .await
            .unwrap();
        assert_eq!(db.app, "web");
        assert_eq!(db.attachments.len(), 1);
        let again = store
            .insert_addon(new(api.owner_id, api.id, "db", "DATABASE"))
            .await;
        assert!(matches!(again, Err(StoreError::Conflict)), "{again:?}");
        let same_var = store
            .insert_addon(new(web.owner_id, web.id, "other", "DATABASE"))
            .await;
        assert!(
            matches!(same_var, Err(StoreError::Conflict)),
            "{same_var:?}"
        );
        assert_eq!(
            test.count("SELECT COUNT(*) FROM addons"),
            1,
            "nothing half-made"
        );
        // Another owner may use the name.
        store
            .insert_addon(new(bobs.owner_id, bobs.id, "db", "DATABASE"))
            .await
            .unwrap();

        store
            .attach_addon(db.id, api.id, "MAIN_DB".parse().unwrap())
            .await
            .unwrap();
        let twice = store
            .attach_addon(db.id, api.id, "OTHER".parse().unwrap())
            .await;
        assert!(matches!(twice, Err(StoreError::Conflict)));
        let found = store
            .addon(web.owner_id, "db".parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        let apps: Vec<&str> = found.attachments.iter().map(|a| a.app.as_str()).collect();
        assert_eq!(apps, ["web", "api"], "the owning app first");
        assert_eq!(store.app_addons(api.id).await.unwrap().len(), 1);
        assert_eq!(
            store
                .addon_attached_as(api.id, "MAIN_DB".parse().unwrap())
                .await
                .unwrap(),
            Some("db".parse().unwrap())
        );

        assert!(store.detach_addon(db.id, api.id).await.unwrap());
        assert!(!store.detach_addon(db.id, api.id).await.unwrap());
        assert!(store.app_addons(api.id).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn an_app_that_owns_an_add_on_is_not_deleted_under_it() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let store = &test.store;
        let db = store
            .insert_addon(new(web.owner_id, web.id, "db", "DATABASE"))
            .await
            .unwrap();
        assert!(store.delete_app(web.id).await.is_err());
        store.delete_addon(db.id).await.unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM addon_attachments"), 0);
        store.delete_app(web.id).await.unwrap();
    }
}

//! How each app's traffic is routed beyond its hosts: maintenance mode (`paas maintenance`)
//! and sticky sessions (`paas ps:sticky`). An app without a row has both off.

use rusqlite::{Connection, OptionalExtension, params};

use super::{Store, StoreResult};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Routing {
    pub maintenance: bool,
    pub sticky_sessions: bool,
}

pub(super) fn routing(conn: &Connection, app_id: i64) -> rusqlite::Result<Routing> {
    Ok(conn
        .query_row(
            "SELECT maintenance, sticky_sessions FROM app_routing WHERE app_id = ?1",
            [app_id],
            |r| {
                Ok(Routing {
                    maintenance: r.get(0)?,
                    sticky_sessions: r.get(1)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

impl Store {
    pub async fn routing(&self, app_id: i64) -> StoreResult<Routing> {
        self.run(move |conn| Ok(routing(conn, app_id)?)).await
    }

    pub async fn set_maintenance(&self, app_id: i64, enabled: bool) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO app_routing (app_id, maintenance) VALUES (?1, ?2)
                 ON CONFLICT (app_id) DO UPDATE SET maintenance = excluded.maintenance",
                params![app_id, enabled],
            )?;
            Ok(())
        })
        .await
    }

    pub async fn set_sticky_sessions(&self, app_id: i64, enabled: bool) -> StoreResult<()> {
        self.run(move |conn| {
            conn.execute(
                "INSERT INTO app_routing (app_id, sticky_sessions) VALUES (?1, ?2)
                 ON CONFLICT (app_id) DO UPDATE SET sticky_sessions = excluded.sticky_sessions",
                params![app_id, enabled],
            )?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    #[tokio::test]
    async fn each_setting_is_kept_per_app_apart_from_the_other_and_goes_with_it() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let store = &test.store;
        assert_eq!(store.routing(web.id).await.unwrap(), Routing::default());
        store.set_maintenance(web.id, true).await.unwrap();
        store.set_sticky_sessions(web.id, true).await.unwrap();
        store.set_maintenance(web.id, false).await.unwrap();
        assert_eq!(
            store.routing(web.id).await.unwrap(),
            Routing {
                maintenance: false,
                sticky_sessions: true
            }
        );
        assert_eq!(store.routing(api.id).await.unwrap(), Routing::default());
        assert!(
            store
                .rollout_settings(web.id)
                .await
                .unwrap()
                .sticky_sessions
        );
        assert!(
            !store
                .rollout_settings(api.id)
                .await
                .unwrap()
                .sticky_sessions
        );
        store.delete_app(web.id).await.unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM app_routing"), 0);
    }
}

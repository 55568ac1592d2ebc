//! The formation: how many instances of each process type an app runs, as the last rollout
//! or scale applied it.

use std::collections::BTreeMap;

use paas_api::ProcessType;
use paas_api::types::Release;
use rusqlite::{Connection, params};

use super::releases::current_release;
use super::{Store, StoreResult, typed};

/// What an app runs now: its current release (if any) and the stored quantity of each process
/// type, read together.
#[derive(Debug, Clone)]
pub struct DeployedState {
    pub current: Option<Release>,
    pub formation: BTreeMap<ProcessType, u32>,
}

pub(super) fn formation(
    conn: &Connection,
    app_id: i64,
) -> rusqlite::Result<BTreeMap<ProcessType, u32>> {
    let mut stmt = conn.prepare("SELECT process, quantity FROM formation WHERE app_id = ?1")?;
    stmt.query_map([app_id], |r| Ok((typed(r, 0)?, r.get(1)?)))?
        .collect()
}

impl Store {
    pub async fn formation(&self, app_id: i64) -> StoreResult<BTreeMap<ProcessType, u32>> {
        self.run(move |conn| Ok(formation(conn, app_id)?)).await
    }

    pub async fn deployed_state(&self, app_id: i64) -> StoreResult<DeployedState> {
        self.run(move |conn| {
            Ok(DeployedState {
                current: current_release(conn, app_id)?,
                formation: formation(conn, app_id)?,
            })
        })
        .await
    }

    /// Makes `formation` the app's whole formation, in one transaction.
    pub async fn replace_formation(
        &self,
        app_id: i64,
        formation: BTreeMap<ProcessType, u32>,
    ) -> StoreResult<()> {
        self.transaction(move |tx| {
            tx.execute("DELETE FROM formation WHERE app_id = ?1", [app_id])?;
            let mut insert = tx
                .prepare("INSERT INTO formation (app_id, process, quantity) VALUES (?1, ?2, ?3)")?;
            for (process, quantity) in &formation {
                insert.execute(params![app_id, process.as_str(), quantity])?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;

    #[tokio::test]
    async fn a_formation_is_replaced_whole_and_per_app() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        test.store
            .replace_formation(
                web.id,
                [("web".parse().unwrap(), 2), ("worker".parse().unwrap(), 1)].into(),
            )
            .await
            .unwrap();
        test.store
            .replace_formation(api.id, [("web".parse().unwrap(), 5)].into())
            .await
            .unwrap();
        test.store
            .replace_formation(web.id, [("web".parse().unwrap(), 3)].into())
            .await
            .unwrap();
        assert_eq!(
            test.store.formation(web.id).await.unwrap(),
            [("web".parse().unwrap(), 3)].into()
        );
        let api_state = test.store.deployed_state(api.id).await.unwrap();
        assert_eq!(api_state.formation, [("web".parse().unwrap(), 5)].into());
        assert!(api_state.current.is_none());
    }
}

//! The lock-downs each app opted into (`paas features:enable`), by feature name.

use std::collections::BTreeSet;

use paas_api::DomainName;
use paas_api::storage::Mount;
use paas_api::types::Feature;
use rusqlite::{Connection, params};

use super::domains::hostnames;
use super::storage::mounts;
use super::{Store, StoreResult};

/// What every rollout of an app applies besides its release: its custom domains, its
/// enabled features, whether it has sticky sessions and its volume mounts, as they are stored now.
#[derive(Debug, Clone)]
pub struct RolloutSettings {
    pub domains: Vec<DomainName>,
    pub features: BTreeSet<Feature>,
    pub sticky_sessions: bool,
    pub mounts: Vec<Mount>,
}

/// Names this version does not know are skipped.
fn enabled_features(conn: &Connection, app_id: i64) -> rusqlite::Result<BTreeSet<Feature>> {
    let mut stmt = conn.prepare("SELECT feature FROM app_features WHERE app_id = ?1")?;
    let names = stmt
        .query_map([app_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(names.iter().filter_map(|name| name.parse().ok()).collect())
}

impl Store {
    pub async fn enabled_features(&self, app_id: i64) -> StoreResult<BTreeSet<Feature>> {
        self.run(move |conn| Ok(enabled_features(conn, app_id)?))
            .await
    }

    pub async fn rollout_settings(&self, app_id: i64) -> StoreResult<RolloutSettings> {
        self.run(move |conn| {
            Ok(RolloutSettings {
                domains: hostnames(conn, app_id)?,
                features: enabled_features(conn, app_id)?,
                sticky_sessions: super::routing::routing(conn, app_id)?.sticky_sessions,
                mounts: mounts(conn, app_id)?,
            })
        })
        .await
    }

    pub async fn set_feature(
        &self,
        app_id: i64,
        feature: Feature,
        enabled: bool,
    ) -> StoreResult<()> {
        self.run(move |conn| {
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
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    #[tokio::test]
    async fn features_are_kept_per_app_and_go_with_it() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        let store = &test.store;
        store
            .set_feature(web.id, Feature::ReadOnlyFs, true)
            .await
            .unwrap();
        store
            .set_feature(web.id, Feature::ReadOnlyFs, true)
            .await
            .unwrap();
        store
            .set_feature(web.id, Feature::NonRoot, true)
            .await
            .unwrap();
        store
            .set_feature(web.id, Feature::NonRoot, false)
            .await
            .unwrap();
        assert_eq!(
            store.enabled_features(web.id).await.unwrap(),
            [Feature::ReadOnlyFs].into()
        );
        assert!(store.enabled_features(api.id).await.unwrap().is_empty());
        store
            .add_domain(web.id, &"www.example.com".parse().unwrap())
            .await
            .unwrap();
        let settings = store.rollout_settings(web.id).await.unwrap();
        assert_eq!(settings.domains, ["www.example.com"]);
        assert_eq!(settings.features, [Feature::ReadOnlyFs].into());
        store.delete_app(web.id).await.unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM app_features"), 0);
    }
}

//! Which images an app's releases name, for pruning the ones nothing can go back to.

use rusqlite::params;

use super::{Store, StoreResult};

impl Store {
    /// The distinct images of the app's newest `limit` successful releases.
    pub async fn recent_release_images(&self, app_id: i64, limit: u32) -> StoreResult<Vec<String>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT DISTINCT image FROM (
                     SELECT image FROM releases WHERE app_id = ?1 AND status = 'succeeded'
                     AND image IS NOT NULL ORDER BY version DESC LIMIT ?2)",
            )?;
            Ok(stmt
                .query_map(params![app_id, limit], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

//! Config vars: the app's environment as it runs now. Each release also keeps its own
//! snapshot; these rows change when a release that carries new config goes live.

use std::collections::BTreeMap;

use paas_api::ConfigKey;
use rusqlite::{Connection, params};

use super::{Store, StoreResult, typed};

pub(super) fn config_vars(
    conn: &Connection,
    app_id: i64,
) -> rusqlite::Result<BTreeMap<ConfigKey, String>> {
    let mut stmt = conn.prepare("SELECT key, value FROM config_vars WHERE app_id = ?1")?;
    stmt.query_map([app_id], |r| Ok((typed(r, 0)?, r.get(1)?)))?
        .collect()
}

/// Makes `vars` the app's whole config; run inside the caller's transaction.
pub(super) fn replace_config_vars(
    conn: &Connection,
    app_id: i64,
    vars: &BTreeMap<ConfigKey, String>,
) -> rusqlite::Result<()> {
    conn.execute("DELETE FROM config_vars WHERE app_id = ?1", [app_id])?;
    let mut insert =
        conn.prepare("INSERT INTO config_vars (app_id, key, value) VALUES (?1, ?2, ?3)")?;
    for (key, value) in vars {
        insert.execute(params![app_id, key.as_str(), value])?;
    }
    Ok(())
}

impl Store {
    pub async fn config_vars(&self, app_id: i64) -> StoreResult<BTreeMap<ConfigKey, String>> {
        self.run(move |conn| Ok(config_vars(conn, app_id)?)).await
    }
}

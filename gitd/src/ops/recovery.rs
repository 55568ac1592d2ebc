//! What gitd settles when it starts, before it accepts any change: a previous run that died
//! mid-change (killed, crashed, the host lost power) leaves no release `building`, and the
//! agent serves what the store says is current.

use crate::db::queries;
use crate::state::SharedState;

use super::OpsError;

/// Marks the releases a previous run left unfinished as failed.
pub async fn recover(state: &SharedState) -> Result<(), OpsError> {
    let interrupted = state
        .db
        .call(|conn| queries::fail_unfinished_releases(conn))
        .await?;
    if interrupted > 0 {
        tracing::warn!(
            releases = interrupted,
            "releases interrupted by a restart marked failed"
        );
    }
    Ok(())
}

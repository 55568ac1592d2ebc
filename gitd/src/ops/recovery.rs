//! What gitd settles when it starts, before it accepts any change: a previous run that died
//! mid-change (killed, crashed, the host lost power) leaves no release `building`, and the
//! agent serves what the store says is current.

use crate::state::SharedState;

use super::OpsError;

/// Marks the releases a previous run left unfinished as failed.
pub async fn recover(state: &SharedState) -> Result<(), OpsError> {
    let interrupted = state.store.fail_unfinished_releases().await?;
    if interrupted > 0 {
        tracing::warn!(
            releases = interrupted,
            "releases interrupted by a restart marked failed"
        );
    }
    Ok(())
}

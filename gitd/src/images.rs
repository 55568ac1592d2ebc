//! Which of an app's images stay on the host: those of its last [`KEPT_RELEASES`] successful
//! releases (what `paas rollback` can go back to). Older ones are pruned through the agent
//! by the release lifecycle (`ops::release`) once a release serves, under the app's lock.

use crate::state::SharedState;

/// Successful releases whose images are kept.
pub const KEPT_RELEASES: u32 = 5;

/// Removes the app's images but the kept ones. A failure only costs disk space, so it is
/// logged, never reported to the user as a failed deploy.
pub async fn prune(state: &SharedState, app_id: i64, app: &str) {
    let Some(agent) = state.agent.as_ref() else {
        return;
    };
    let keep = match state
        .store
        .recent_release_images(app_id, KEPT_RELEASES)
        .await
    {
        Ok(keep) => keep,
        Err(err) => {
            tracing::error!(%app, error = %err, "cannot read the images to keep");
            return;
        }
    };
    // Nothing succeeded yet: nothing is known to be safe to remove.
    if keep.is_empty() {
        return;
    }
    match agent.prune(app, keep).await {
        Ok(result) if !result.removed.is_empty() => {
            tracing::info!(%app, removed = ?result.removed, "pruned old release images");
        }
        Ok(_) => {}
        Err(err) => tracing::warn!(%app, error = %err, "cannot prune old release images"),
    }
}

//! Features (`paas features`): lock-downs an app opts into for its containers. A change rolls
//! the running release out again with the new container options, the way scaling does, and
//! is stored only once that succeeded; before the first deploy it is just stored.

use std::collections::BTreeSet;

use axum::extract::State;
use paas_api::types::{AppFeature, Feature, FeatureUpdate};

use super::formation::{current_formation, deploy_failed, detached};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::queries;
use crate::deploy::rollout;
use crate::state::SharedState;
use paas_api::AppName;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<AppFeature>>> {
    let app = auth.app(&state, &name).await?;
    let enabled = state
        .db
        .call(move |conn| queries::enabled_features(conn, app.id))
        .await?;
    Ok(Json(
        Feature::ALL
            .into_iter()
            .map(|feature| app_feature(feature, &enabled))
            .collect(),
    ))
}

pub async fn update(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, feature)): Path<(AppName, String)>,
    Json(update): Json<FeatureUpdate>,
) -> ApiResult<Json<AppFeature>> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        let feature: Feature = feature
            .parse()
            .map_err(|err: paas_api::types::UnknownFeature| ApiError::invalid(err.to_string()))?;
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        let app_id = app.id;
        let mut features = state
            .db
            .call(move |conn| queries::enabled_features(conn, app_id))
            .await?;
        let changed = if update.enabled {
            features.insert(feature)
        } else {
            features.remove(&feature)
        };
        if !changed {
            return Ok(Json(app_feature(feature, &features)));
        }
        let verb = if update.enabled { "Enabled" } else { "Disabled" };
        let (release, formation) = current_formation(&state, &app).await?;
        if let Some(release) = release {
            rollout::roll_out_with(
                &state,
                &app,
                &release,
                formation,
                Some(features.clone()),
                |line| tracing::info!(app = %app.name, "{line}"),
            )
            .await
            .map_err(|failure| {
                deploy_failed(
                    &format!(
                        "v{} failed to start with {feature} {}; nothing was changed",
                        release.version,
                        verb.to_lowercase()
                    ),
                    &failure,
                )
            })?;
        }
        let enabled = update.enabled;
        state
            .db
            .call(move |conn| queries::set_feature(conn, app_id, feature, enabled))
            .await?;
        tracing::info!(app = %app.name, %feature, enabled, by = %auth.user.username, "feature changed");
        let message = format!("{verb} feature {feature} by user {}", auth.user.username);
        crate::events::record(&state, app_id, "feature", message).await;
        Ok(Json(app_feature(feature, &features)))
    })
    .await
}

fn app_feature(feature: Feature, enabled: &BTreeSet<Feature>) -> AppFeature {
    AppFeature {
        name: feature,
        description: feature.description().to_owned(),
        enabled: enabled.contains(&feature),
    }
}

//! Features (`paas features`): lock-downs an app opts into for its containers. A change is an
//! operation ([`crate::ops::changes::set_feature`]): the running release is rolled out again
//! with the new container options, and the change stored only once that succeeded.

use axum::extract::State;
use axum::response::Response;
use paas_api::types::{AppFeature, Feature, FeatureUpdate};

use super::progress::{WantsProgress, answer};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::ops::changes::{self, app_feature};
use crate::state::SharedState;
use paas_api::AppName;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<AppFeature>>> {
    let app = auth.app(&state, &name).await?;
    let enabled = state.store.enabled_features(app.id).await?;
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
    wants: WantsProgress,
    Json(update): Json<FeatureUpdate>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let feature: Feature = feature
        .parse()
        .map_err(|err: paas_api::types::UnknownFeature| ApiError::invalid(err.to_string()))?;
    let op = changes::set_feature(&state, app, &auth.user, feature, update.enabled);
    answer(wants, op, Json::<AppFeature>).await
}

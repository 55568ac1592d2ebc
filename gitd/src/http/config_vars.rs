//! Config vars: `GET` reads them; `PATCH` hands the change to [`crate::ops::config`] and
//! answers once it is live.

use axum::extract::State;
use paas_api::types::{ConfigUpdate, ConfigUpdated, ConfigVars};

use super::{ApiResult, AuthUser, Json, Path};
use crate::ops;
use crate::state::SharedState;
use paas_api::AppName;

pub async fn get(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<ConfigVars>> {
    let app = auth.app(&state, &name).await?;
    let vars = state.store.config_vars(app.id).await?;
    Ok(Json(ConfigVars { vars }))
}

pub async fn update(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(update): Json<ConfigUpdate>,
) -> ApiResult<Json<ConfigUpdated>> {
    let app = auth.app(&state, &name).await?;
    let updated = ops::config::update(&state, app, &auth.user, update)
        .finished()
        .await?;
    Ok(Json(updated))
}

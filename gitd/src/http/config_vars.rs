//! Config vars: `GET` reads them; `PATCH` hands the change to [`crate::ops::config`] and
//! answers once it is live.

use axum::extract::State;
use paas_api::types::{ConfigUpdate, ConfigUpdated, ConfigVars};

use axum::response::Response;

use super::progress::{WantsProgress, answer};
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
    wants: WantsProgress,
    Json(update): Json<ConfigUpdate>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = ops::config::update(&state, app, &auth.user, update);
    answer(wants, op, Json::<ConfigUpdated>).await
}

//! `paas addons:*`: the add-ons attached to an app, and the changes to them, which
//! [`crate::ops::addons`] carries out. Anyone who may see the app sees and attaches its
//! add-ons; destroying one takes the owner of the app it was created on. An add-on is found
//! through an app it is attached to (attach: among the app's owner's add-ons, and only one
//! the user may see through an app of its own), so another user's add-on is never found.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use paas_api::AppName;
use paas_api::addons::{Addon, AddonChange, AddonName, AttachAddon, CreateAddon};
use serde::Deserialize;

use super::progress::{WantsProgress, answer};
use super::{ApiError, ApiResult, AuthUser, Json, Path, Query};
use crate::ops::addons;
use crate::state::SharedState;
use crate::store::{AddonRow, AppRow};

pub(super) fn addon_not_found() -> ApiError {
    ApiError::new(paas_api::ErrorCode::NotFound, "Couldn't find that add-on.")
}

/// The add-on `name` attached to `app`.
pub(super) async fn attached(
    state: &SharedState,
    app: &AppRow,
    name: &AddonName,
) -> ApiResult<AddonRow> {
    state
        .store
        .addon(app.owner_id, name.clone())
        .await?
        .filter(|addon| addon.attachment(&app.name).is_some())
        .ok_or_else(addon_not_found)
}

/// With its service's state, if the agent answers.
async fn described(state: &SharedState, addon: AddonRow) -> Addon {
    let status = match state.agent.as_ref() {
        Some(agent) => agent
            .addon_status(&addon.owner, &addon.name)
            .await
            .inspect_err(|err| tracing::warn!(addon = %addon.name, error = %err, "no status"))
            .ok(),
        None => None,
    };
    Addon {
        name: addon.name,
        kind: addon.kind,
        app: addon.app,
        attachments: addon.attachments,
        status,
    }
}

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Addon>>> {
    let app = auth.app(&state, &name).await?;
    let rows = state.store.app_addons(app.id).await?;
    let described = futures::future::join_all(rows.into_iter().map(|row| described(&state, row)));
    Ok(Json(described.await))
}

pub async fn info(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
) -> ApiResult<Json<Addon>> {
    let app = auth.app(&state, &name).await?;
    let addon = attached(&state, &app, &addon).await?;
    Ok(Json(described(&state, addon).await))
}

pub async fn create(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<CreateAddon>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = addons::create(&state, app, &auth.user, request);
    answer(wants, op, Json::<AddonChange>).await
}

pub async fn attach(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
    Json(request): Json<AttachAddon>,
) -> ApiResult<Json<AddonChange>> {
    let app = auth.app(&state, &name).await?;
    let addon = state
        .store
        .addon(app.owner_id, addon)
        .await?
        .ok_or_else(addon_not_found)?;
    // Seeing the target app is not enough: the user must see the add-on through its own app.
    auth.app(&state, &addon.app)
        .await
        .map_err(|_| addon_not_found())?;
    let change = addons::attach(&state, app, addon, &auth.user, request.attachment)
        .finished()
        .await?;
    Ok(Json(change))
}

pub async fn detach(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
) -> ApiResult<Json<AddonChange>> {
    let app = auth.app(&state, &name).await?;
    let addon = attached(&state, &app, &addon).await?;
    let change = addons::detach(&state, app, addon, &auth.user)
        .finished()
        .await?;
    Ok(Json(change))
}

#[derive(Deserialize)]
pub struct DestroyQuery {
    confirm: Option<String>,
    #[serde(default)]
    force: bool,
}

pub async fn destroy(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
    Query(query): Query<DestroyQuery>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    let addon = attached(&state, &app, &addon).await?;
    let owning = auth.app(&state, &addon.app).await?;
    auth.require_owner(&owning)?;
    if query.confirm.as_deref() != Some(addon.name.as_str()) {
        return Err(ApiError::invalid(format!(
            "Confirmation required: destroying {0} deletes its data; confirm with the add-on name ({0}).",
            addon.name
        )));
    }
    addons::destroy(&state, addon, &auth.user, query.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

//! Custom domains: `GET`/`POST /v1/apps/{app}/domains`, `DELETE …/domains/{hostname}`. Adding
//! or removing one is an operation ([`crate::ops::changes`]): it re-rolls the app's `web`
//! instances with the new Traefik rule, and is undone if that fails.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use paas_api::types::{AddDomainRequest, Domain};

use super::progress::{WantsProgress, answer};
use super::{ApiResult, AuthUser, Json, Path};
use crate::ops::changes;
use crate::state::SharedState;
use paas_api::{AppName, DomainName};

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Domain>>> {
    let app = auth.app(&state, &name).await?;
    Ok(Json(state.store.domains(app.id).await?))
}

pub async fn add(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    wants: WantsProgress,
    Json(request): Json<AddDomainRequest>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = changes::add_domain(&state, app, &auth.user, request.hostname)?;
    answer(wants, op, |added: Domain| {
        (StatusCode::CREATED, Json(added))
    })
    .await
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, hostname)): Path<(AppName, DomainName)>,
    wants: WantsProgress,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let op = changes::remove_domain(&state, app, &auth.user, hostname);
    answer(wants, op, |()| StatusCode::NO_CONTENT).await
}

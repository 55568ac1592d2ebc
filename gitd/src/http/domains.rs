//! Custom domains: `GET`/`POST /v1/apps/{app}/domains`, `DELETE …/domains/{hostname}`. Adding
//! or removing one is an operation ([`crate::ops::changes`]): it re-rolls the app's `web`
//! instances with the new Traefik rule, and is undone if that fails.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::types::{AddDomainRequest, Domain};

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
    Json(request): Json<AddDomainRequest>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let app = auth.app(&state, &name).await?;
    let added = changes::add_domain(&state, app, &auth.user, request.hostname)?
        .finished()
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, hostname)): Path<(AppName, DomainName)>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    changes::remove_domain(&state, app, &auth.user, hostname)
        .finished()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

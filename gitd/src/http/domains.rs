//! Custom domains: `GET`/`POST /v1/apps/{app}/domains`, `DELETE …/domains/{hostname}`. A
//! domain belongs to one app at most. Adding or removing one re-rolls the app's `web`
//! instances with the new Traefik rule (zero downtime, no new release); if that rollout fails,
//! the change is undone and the app keeps its old routing.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::domains::validate_domain;
use paas_api::types::{AddDomainRequest, Domain};

use super::formation::{current_formation, deploy_failed};
use super::{ApiError, ApiResult, AuthUser, Json};
use crate::db::queries::AppRow;
use crate::db::{self, is_constraint_violation, queries};
use crate::deploy::rollout;
use crate::events;
use crate::state::SharedState;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<Domain>>> {
    let app = auth.app(&state, &name).await?;
    let domains = state
        .db
        .call(move |conn| queries::domains(conn, app.id))
        .await?;
    Ok(Json(
        domains
            .into_iter()
            .map(|(hostname, created_at)| Domain {
                hostname,
                created_at: db::to_time(created_at),
            })
            .collect(),
    ))
}

pub async fn add(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
    Json(request): Json<AddDomainRequest>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let app = auth.app(&state, &name).await?;
    let hostname = request.hostname;
    validate_domain(&hostname).map_err(|err| ApiError::invalid(err.to_string()))?;
    let platform = &state.config.domain;
    let bare = hostname.strip_prefix("*.").unwrap_or(&hostname);
    if bare == platform || bare.ends_with(&format!(".{platform}")) {
        return Err(ApiError::invalid(format!(
            "{hostname} is under {platform}, the platform's own domain; apps get <app>.{platform} already."
        )));
    }
    let lock = state.app_locks.for_app(&app.name);
    let _held = lock.lock().await;
    let app_id = app.id;
    let added = {
        let hostname = hostname.clone();
        state
            .db
            .call(move |conn| -> ApiResult<i64> {
                let owned = queries::domains(conn, app_id)?
                    .into_iter()
                    .any(|(existing, _)| existing == hostname);
                if owned {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("{hostname} is already a domain of this app."),
                    ));
                }
                match queries::insert_domain(conn, app_id, &hostname) {
                    Err(err) if is_constraint_violation(&err) => Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("{hostname} is already in use by another app."),
                    )),
                    other => Ok(other?),
                }
            })
            .await?
    };
    if let Err(err) = reroute(&state, &app).await {
        let undo = hostname.clone();
        state
            .db
            .call(move |conn| queries::delete_domain(conn, app_id, &undo))
            .await?;
        return Err(err);
    }
    events::record(
        &state,
        app_id,
        "domains",
        format!("Added domain {hostname} by user {}", auth.user.username),
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(Domain {
            hostname,
            created_at: db::to_time(added),
        }),
    ))
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, hostname)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    let lock = state.app_locks.for_app(&app.name);
    let _held = lock.lock().await;
    let app_id = app.id;
    let removed = {
        let hostname = hostname.clone();
        state
            .db
            .call(move |conn| queries::delete_domain(conn, app_id, &hostname))
            .await?
    };
    if !removed {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{} has no domain {hostname}.", app.name),
        ));
    }
    if let Err(err) = reroute(&state, &app).await {
        let undo = hostname.clone();
        state
            .db
            .call(move |conn| queries::insert_domain(conn, app_id, &undo))
            .await?;
        return Err(err);
    }
    events::record(
        &state,
        app_id,
        "domains",
        format!("Removed domain {hostname} by user {}", auth.user.username),
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Rolls the running release out again with the domains as stored now; an app that runs
/// nothing yet picks them up on its first deploy.
async fn reroute(state: &SharedState, app: &AppRow) -> ApiResult<()> {
    let (release, formation) = current_formation(state, app).await?;
    let Some(release) = release else {
        return Ok(());
    };
    rollout::roll_out(state, app, &release, formation, |line| {
        tracing::info!(app = %app.name, "{line}");
    })
    .await
    .map_err(|failure| deploy_failed("Routing the new domains failed", &failure))
}

//! Custom domains: `GET`/`POST /v1/apps/{app}/domains`, `DELETE …/domains/{hostname}`. A
//! domain belongs to one app at most. Adding or removing one re-rolls the app's `web`
//! instances with the new Traefik rule (zero downtime, no new release); if that rollout fails,
//! the change is undone and the app keeps its old routing. Names of the platform's own hosts
//! and their neighbours are refused, and so is any name that overlaps another app's (a
//! wildcard over its name, or a name under its wildcard); see `paas_api::domains`.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::domains::{check_platform_hosts, is_wildcard, overlaps, validate_domain};
use paas_api::types::{AddDomainRequest, Domain};

use super::formation::{current_formation, deploy_failed, detached};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::queries::AppRow;
use crate::db::{self, is_constraint_violation, queries};
use crate::deploy::rollout;
use crate::events;
use crate::state::SharedState;
use paas_api::AppName;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
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
    Path(name): Path<AppName>,
    Json(request): Json<AddDomainRequest>,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let app = auth.app(&state, &name).await?;
    let hostname = request.hostname;
    validate_domain(&hostname).map_err(|err| ApiError::invalid(err.to_string()))?;
    let platform_hosts: Vec<&str> = std::iter::once(state.config.domain.as_str())
        .chain(state.config.http.public_hosts.iter().map(String::as_str))
        .collect();
    check_platform_hosts(&hostname, &platform_hosts)
        .map_err(|err| ApiError::invalid(format!("{err}.")))?;
    detached(add_detached(state, auth.user.username, app, hostname)).await
}

/// The rest of [`add`], run to completion even if the client hangs up: the domain row and the
/// routing the agent was given must not part ways.
async fn add_detached(
    state: SharedState,
    by: String,
    app: AppRow,
    hostname: String,
) -> ApiResult<(StatusCode, Json<Domain>)> {
    let lock = state.app_locks.for_app(&app.name);
    let _held = lock.lock().await;
    let app_id = app.id;
    let added = {
        let hostname = hostname.clone();
        state
            .db
            .call(move |conn| -> ApiResult<i64> {
                let tx = conn.transaction()?;
                let owned = queries::domains(&tx, app_id)?
                    .into_iter()
                    .any(|(existing, _)| existing == hostname);
                if owned {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("{hostname} is already a domain of this app."),
                    ));
                }
                // Which app holds the other name is not said: that is another tenant's.
                let taken = queries::domains_of_other_owners(&tx, app_id)?
                    .iter()
                    .any(|other| overlaps(&hostname, other));
                if taken {
                    return Err(in_use(&hostname));
                }
                let added = match queries::insert_domain(&tx, app_id, &hostname) {
                    Err(err) if is_constraint_violation(&err) => Err(in_use(&hostname)),
                    other => Ok(other?),
                }?;
                tx.commit()?;
                Ok(added)
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
        format!("Added domain {hostname} by user {by}"),
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

/// The one answer for a name that another app has, or that overlaps one of its names.
fn in_use(hostname: &str) -> ApiError {
    let what = if is_wildcard(hostname) {
        "covers a domain another app serves"
    } else {
        "is already in use by another app"
    };
    ApiError::new(ErrorCode::Conflict, format!("{hostname} {what}."))
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, hostname)): Path<(AppName, String)>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    detached(remove_detached(state, auth.user.username, app, hostname)).await
}

/// The rest of [`remove`], run to completion even if the client hangs up.
async fn remove_detached(
    state: SharedState,
    by: String,
    app: AppRow,
    hostname: String,
) -> ApiResult<StatusCode> {
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
        format!("Removed domain {hostname} by user {by}"),
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

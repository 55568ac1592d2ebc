//! Add-on services (contract in `paas_api::addons`): a Postgres or Redis container per add-on
//! with its own volume and generated credentials, from the image `[addons]` names for its
//! kind, on the networks of the apps it is attached to and no other (never the host's: it
//! publishes no port). Routes, each under the add-on's own lock:
//!
//! - `PUT /v1/addons/{owner}/{name}` ([`ServiceSpec`] → NDJSON [`ChangeEvent`]s of a
//!   [`ServiceCreated`]): creates it on the app's network, says what it waits for while the
//!   service starts, and answers once it accepts connections with its credentials; asked
//!   again, it answers the same URL. A failed start removes what it made. The creation runs
//!   to its end even if the caller hangs up.
//! - `GET /v1/addons/{owner}/{name}` → [`ServiceStatus`] (state, version, size of its data).
//! - `PUT`/`DELETE /v1/addons/{owner}/{name}/networks/{app}`: joins or leaves an app's network,
//!   reachable there as its name.
//! - `DELETE /v1/addons/{owner}/{name}`: the container, then the volume and its data.
//! - `/v1/addons/{owner}/{name}/backups…`, `…/restores`: Postgres backups ([`backups`]).
//! - `GET /v1/addons/{owner}/{name}/console`: `psql` or `redis-cli` attached, in
//!   [`console`]; `GET /v1/addons/{owner}/{name}/pg-info`: a Postgres's numbers, in [`info`].
//!   Neither takes the lock.
//!
//! Nothing about add-ons is kept by the agent: the container's labels, environment and
//! command say what it is, and gitd keeps which apps use it.

mod backups;
mod console;
mod docker;
mod info;
mod placement;
mod service;
mod swarm;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use bollard::models::ContainerInspectResponse;
use paas_api::addons::{
    AddonKind, AddonName, ServiceCreated, ServiceSpec, ServiceState, ServiceStatus,
};
use paas_api::progress::{ChangeEvent, WaitSubject};
use paas_api::{AppName, ErrorBody, ErrorCode, Username};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::error::{ApiError, Path};
use crate::naming;
use crate::runtime::progress;
use crate::state::AgentState;
use docker::{Addon, AddonFailure};

/// Log lines of a container that failed to start, carried in the error.
const FAILURE_LOG_LINES: usize = 5;
/// Progress reports a slow reader of a create may fall behind by before some are dropped.
const PROGRESS_BUFFER: usize = 16;

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route(
            "/v1/addons/{owner}/{name}",
            put(create).get(status).delete(destroy),
        )
        .route(
            "/v1/addons/{owner}/{name}/networks/{app}",
            put(attach).delete(detach),
        )
        .merge(backups::routes())
        .route("/v1/addons/{owner}/{name}/console", get(console::open))
        .route("/v1/addons/{owner}/{name}/pg-info", get(info::stats))
}

impl From<AddonFailure> for ApiError {
    fn from(failure: AddonFailure) -> ApiError {
        match failure {
            AddonFailure::Docker(err) => {
                ApiError::new(ErrorCode::Internal, format!("Docker: {err}"))
            }
            AddonFailure::Refused(message) => ApiError::new(ErrorCode::Conflict, message),
            AddonFailure::NotReady { reason, logs } => {
                let skip = logs.len().saturating_sub(FAILURE_LOG_LINES);
                let mut message = reason;
                for line in &logs[skip..] {
                    message.push_str(" | ");
                    message.push_str(line.trim());
                }
                ApiError::new(ErrorCode::DeployFailed, message)
            }
        }
    }
}

fn docker_error(err: bollard::errors::Error) -> ApiError {
    AddonFailure::from(err).into()
}

/// One add-on's operations run one at a time. The runtime's per-app locks are keyed by
/// name; an add-on's container name has a dot, which no app name has.
async fn lock(state: &AgentState, owner: &str, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
    state
        .runtime
        .lock(&naming::addon_container(owner, name))
        .await
}

async fn create(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: ServiceSpec = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid add-on spec: {err}"),
        )
    })?;
    let guard = lock(&state, &owner, &name).await;
    let (events, received) = mpsc::channel(PROGRESS_BUFFER);
    if let Some(found) = placement::find(&state, &owner, &name).await? {
        let (kind, details) = &found;
        let kind = *kind;
        if kind != spec.kind {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("add-on {name} of {owner} exists and is a {kind}"),
            ));
        }
        let credentials = docker::credentials(kind, details)?;
        // A create asked again (gitd cut off before it recorded the first) is for this app too.
        let _app = state.runtime.lock(&spec.app).await;
        placement::connect(&state, &found, (&owner, &name), &spec.app).await?;
        let created = ServiceCreated {
            url: service::url(kind, &name, &credentials),
        };
        let _ = events.try_send(ChangeEvent::Done(created));
        return Ok(progress::ndjson(received));
    }
    let credentials = service::Credentials::generate();
    {
        let _app = state.runtime.lock(&spec.app).await;
        crate::runtime::ensure_app_network(&state, &spec.app)
            .await
            .map_err(docker_error)?;
    }
    tokio::spawn(async move {
        let _guard = guard;
        let addon = Addon {
            key: state.config.instance_key(),
            owner: &owner,
            name: &name,
            kind: spec.kind,
        };
        let limit_secs = state.config.addons.ready_timeout_secs;
        let created = placement::create(&state, &addon, &spec.app, &credentials);
        let started = match created.await {
            Ok(()) => {
                let subject = WaitSubject::Connections {
                    addon: name.to_string(),
                };
                let ready = placement::wait_ready(&state, &addon, &credentials);
                let begun = tokio::time::Instant::now();
                progress::while_waiting(&events, subject, begun, limit_secs, ready).await
            }
            Err(err) => Err(err),
        };
        let last = match started {
            Ok(version) => {
                info!(%owner, %name, kind = %spec.kind, %version, app = %spec.app, "add-on created");
                ChangeEvent::Done(ServiceCreated {
                    url: service::url(spec.kind, &name, &credentials),
                })
            }
            Err(err) => {
                // Refused before anything was made (a foreign volume): nothing to clean up.
                if !matches!(err, AddonFailure::Refused(_))
                    && let Err(cleanup) = placement::remove(&state, &owner, &name).await
                {
                    warn!(%owner, %name, error = %cleanup, "cannot remove a failed add-on");
                }
                warn!(%owner, %name, error = %err, "add-on failed to start");
                let ApiError { code, message } = err.into();
                ChangeEvent::Failed(ErrorBody::new(code, message))
            }
        };
        let _ = events.send(last).await;
    });
    Ok(progress::ndjson(received))
}

async fn status(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
) -> Result<Json<ServiceStatus>, ApiError> {
    let status = match placement::find(&state, &owner, &name).await? {
        Some((kind, details)) => docker::status(&state.docker, kind, &details).await,
        None => ServiceStatus {
            state: ServiceState::Missing,
            version: None,
            size_bytes: None,
        },
    };
    Ok(Json(status))
}

/// The kind and container of `owner`'s add-on `name`, or the one not-found answer.
async fn existing(
    state: &AgentState,
    owner: &str,
    name: &str,
) -> Result<(AddonKind, ContainerInspectResponse), ApiError> {
    placement::find(state, owner, name).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::NotFound,
            format!("there is no add-on {name} of {owner}"),
        )
    })
}

async fn attach(
    State(state): State<AgentState>,
    Path((owner, name, app)): Path<(Username, AddonName, AppName)>,
) -> Result<Response, ApiError> {
    let _guard = lock(&state, &owner, &name).await;
    let found = existing(&state, &owner, &name).await?;
    let _app = state.runtime.lock(&app).await;
    placement::connect(&state, &found, (&owner, &name), &app).await?;
    info!(%owner, %name, %app, "add-on attached");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn detach(
    State(state): State<AgentState>,
    Path((owner, name, app)): Path<(Username, AddonName, AppName)>,
) -> Result<Response, ApiError> {
    let _guard = lock(&state, &owner, &name).await;
    if let Some((_, details)) = placement::find(&state, &owner, &name).await? {
        placement::disconnect(&state, &details, (&owner, &name), &app).await?;
    }
    info!(%owner, %name, %app, "add-on detached");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn destroy(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
) -> Result<Response, ApiError> {
    let _guard = lock(&state, &owner, &name).await;
    // Refuses a container of that name that is not this add-on.
    placement::find(&state, &owner, &name).await?;
    placement::remove(&state, &owner, &name)
        .await
        .map_err(docker_error)?;
    info!(%owner, %name, "add-on destroyed");
    Ok(StatusCode::NO_CONTENT.into_response())
}

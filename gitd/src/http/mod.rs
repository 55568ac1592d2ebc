//! The JSON API under `/v1` that the CLI talks to. Every route but login needs a bearer token;
//! every app route answers 404 to a user who may not see the app, exactly as for an app that
//! does not exist, so names of other users' apps do not leak.

mod addons;
mod apps;
mod attach;
mod backups;
mod builds;
mod config_vars;
mod consoles;
mod cron;
mod domains;
mod features;
mod formation;
mod keys;
mod logs;
mod metrics;
mod nodes;
mod progress;
mod releases;
mod resources;
mod rollback;
mod routing;
mod run;
pub mod server;
mod session;
mod storage;
mod users;
mod webhooks;

pub use users::MIN_PASSWORD_CHARS;

/// The API's handlers the dashboard ([`crate::web`]) answers with, so that a page shows what
/// the CLI shows and checks access the same way.
pub(crate) mod handlers {
    pub use super::addons::list as addons;
    pub use super::apps::{info as app, list as apps, list_collaborators as collaborators};
    pub use super::config_vars::get as config_vars;
    pub use super::formation::ps;
    pub use super::logs::{LogsQuery, logs};
    pub use super::metrics::app_metrics as metrics;
    pub use super::releases::output as release_output;
    pub use super::session::login;
    pub use super::storage::list as storage;
    pub use super::users::list as users;
}

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post, put};
/// Path segments are typed, and one that breaks its rule is answered 404, by the one rule
/// every paas server shares.
pub use paas_api::extract::Path;
use paas_api::{AppName, ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;

use crate::state::SharedState;
use crate::store::{AppRow, StoreError, UserRow};
use server::{RouteClass, with_deadline};

/// Bodies over this are refused before they are read in full.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

pub fn router(state: SharedState) -> Router {
    let quick = Router::new()
        .route("/v1/login", post(session::login))
        .route("/v1/logout", post(session::logout))
        .route("/v1/whoami", get(session::whoami))
        .route("/v1/users", get(users::list).post(users::create))
        .route("/v1/users/{username}", delete(users::remove))
        .route("/v1/apps", get(apps::list).post(apps::create))
        .route("/v1/apps/{app}", get(apps::info))
        .route(
            "/v1/apps/{app}/collaborators",
            get(apps::list_collaborators).post(apps::add_collaborator),
        )
        .route(
            "/v1/apps/{app}/collaborators/{username}",
            delete(apps::remove_collaborator),
        )
        .route("/v1/keys", get(keys::list).post(keys::add))
        .route("/v1/keys/challenge", post(keys::challenge))
        .route("/v1/keys/{key}", delete(keys::remove))
        .route("/v1/apps/{app}/config", get(config_vars::get))
        .route("/v1/apps/{app}/releases", get(releases::list))
        .route("/v1/apps/{app}/builds", get(builds::list))
        .route("/v1/apps/{app}/builds/{id}/output", get(builds::output))
        .route("/v1/apps/{app}/releases/{version}", get(releases::info))
        .route("/v1/apps/{app}/ps", get(formation::ps))
        .route("/v1/apps/{app}/formation", get(formation::list))
        // Streams: the deadline covers the backlog, up to the response head; the followed
        // stream after it runs as long as the client stays.
        .route("/v1/apps/{app}/logs", get(logs::logs))
        .route(
            "/v1/apps/{app}/releases/{version}/output",
            get(releases::output),
        )
        .route("/v1/apps/{app}/domains", get(domains::list))
        .route("/v1/apps/{app}/features", get(features::list))
        .route("/v1/apps/{app}/resources", get(resources::list))
        .route("/v1/apps/{app}/maintenance", get(routing::maintenance))
        .route("/v1/apps/{app}/sticky", get(routing::sticky))
        // Attached sessions: the deadline covers the upgrade; the session runs on after it.
        .route("/v1/apps/{app}/run/attached", get(attach::run))
        .route("/v1/apps/{app}/ps/exec", get(attach::exec))
        .route("/v1/apps/{app}/storage", get(storage::list))
        .route("/v1/apps/{app}/addons", get(addons::list))
        .route("/v1/apps/{app}/addons/{addon}", get(addons::info))
        .route("/v1/apps/{app}/addons/{addon}/backups", get(backups::list))
        // A download streams: the deadline covers the response head only.
        .route(
            "/v1/apps/{app}/addons/{addon}/backups/{backup}",
            get(backups::download).delete(backups::delete),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/console",
            get(consoles::console),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/pg-info",
            get(consoles::pg_info),
        )
        .route("/v1/apps/{app}/cron", get(cron::jobs))
        .route("/v1/apps/{app}/checks", get(cron::checks))
        .route(
            "/v1/apps/{app}/webhooks",
            get(webhooks::list).post(webhooks::add),
        )
        .route("/v1/apps/{app}/webhooks/{id}", delete(webhooks::remove))
        .route(
            "/v1/apps/{app}/webhook-deliveries",
            get(webhooks::deliveries),
        )
        .route("/v1/apps/{app}/metrics", get(metrics::app_metrics))
        .route("/v1/nodes", get(nodes::list))
        .route(
            "/v1/nodes/{node}/availability",
            put(nodes::set_availability),
        );
    let rollouts = Router::new()
        .route("/v1/apps/{app}", delete(apps::destroy))
        .route("/v1/apps/{app}/config", patch(config_vars::update))
        .route("/v1/apps/{app}/formation", patch(formation::scale))
        .route("/v1/apps/{app}/restart", post(formation::restart))
        .route("/v1/apps/{app}/ps/stop", post(formation::stop))
        .route("/v1/apps/{app}/rollback", post(rollback::rollback))
        .route("/v1/apps/{app}/run/detached", post(run::detached))
        .route("/v1/apps/{app}/domains", post(domains::add))
        .route("/v1/apps/{app}/domains/{hostname}", delete(domains::remove))
        .route("/v1/apps/{app}/features/{feature}", patch(features::update))
        .route("/v1/apps/{app}/resources", patch(resources::resize))
        .route("/v1/apps/{app}/maintenance", put(routing::set_maintenance))
        .route("/v1/apps/{app}/sticky", put(routing::set_sticky))
        .route("/v1/apps/{app}/storage/mounts", post(storage::mount))
        .route("/v1/apps/{app}/storage/unmounts", post(storage::unmount))
        .route("/v1/apps/{app}/storage/{volume}", delete(storage::destroy))
        .route("/v1/apps/{app}/addons", post(addons::create))
        .route("/v1/apps/{app}/addons/{addon}", delete(addons::destroy))
        .route(
            "/v1/apps/{app}/addons/{addon}/attachment",
            post(addons::attach).delete(addons::detach),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/backups",
            post(backups::capture),
        )
        .route(
            "/v1/apps/{app}/addons/{addon}/restores",
            post(backups::restore),
        );
    with_deadline(quick, RouteClass::Quick)
        .merge(with_deadline(rollouts, RouteClass::Rollout))
        .merge(crate::web::router())
        .fallback(|| async { ApiError::new(ErrorCode::NotFound, "No such API route.") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                ErrorCode::InvalidInput,
                "That method is not allowed on this route.",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state)
}

/// An error answered as `{"error":{"code","message"}}` with the code's status.
#[derive(Debug)]
pub struct ApiError {
    code: ErrorCode,
    message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidInput, message)
    }

    pub fn app_not_found() -> Self {
        Self::new(ErrorCode::NotFound, paas_api::extract::APP_NOT_FOUND)
    }

    /// The envelope, for an answer already under way (a streamed change's last event).
    pub fn into_body(self) -> ErrorBody {
        ErrorBody::new(self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

/// The one mapping of store failures to API errors. Handlers that owe the user a more
/// specific answer (which name is taken) match the error before it gets here.
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound(what) => {
                ApiError::new(ErrorCode::NotFound, format!("No such {what}."))
            }
            StoreError::Conflict => ApiError::new(ErrorCode::Conflict, "That exists already."),
            StoreError::Database(err) => {
                tracing::error!(error = %err, "database error");
                ApiError::new(ErrorCode::Internal, "Internal error; see the server log.")
            }
        }
    }
}

/// The one mapping of operation errors to API errors.
impl From<crate::ops::OpsError> for ApiError {
    fn from(err: crate::ops::OpsError) -> Self {
        use crate::ops::OpsError;
        let code = match err {
            OpsError::Store(store) => return store.into(),
            OpsError::Panicked => {
                return ApiError::new(ErrorCode::Internal, "Internal error; see the server log.");
            }
            OpsError::Repository => ErrorCode::Internal,
            OpsError::Invalid(_) => ErrorCode::InvalidInput,
            OpsError::NotFound(_) => ErrorCode::NotFound,
            OpsError::Conflict(_) => ErrorCode::Conflict,
            OpsError::Quota(_) => ErrorCode::Forbidden,
            OpsError::NoAgent | OpsError::Agent { .. } => ErrorCode::DeployFailed,
        };
        ApiError::new(code, err.with_logs())
    }
}

impl From<paas_api::ValidationError> for ApiError {
    fn from(err: paas_api::ValidationError) -> Self {
        ApiError::invalid(err.to_string())
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// `axum::extract::Query` whose rejections (a parameter that breaks its type's rule, an
/// unknown value) are answered `400 invalid_input` in the API's error envelope.
pub struct Query<T>(pub T);

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection| {
                ApiError::invalid(format!("Malformed query: {}.", rejection.body_text()))
            })
    }
}

/// `axum::Json` whose rejections (bad JSON, wrong content type, oversized body) are answered
/// in the API's error envelope.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Parsed to a value first: serde would otherwise accept `[]` for a struct whose fields
        // are all optional, and a malformed body must never change anything.
        let axum::Json(value) = axum::Json::<serde_json::Value>::from_request(req, state)
            .await
            .map_err(json_rejection)?;
        if !value.is_object() {
            return Err(ApiError::invalid(
                "Malformed request body: expected a JSON object.",
            ));
        }
        serde_json::from_value(value)
            .map(Json)
            .map_err(|err| ApiError::invalid(format!("Malformed request body: {err}.")))
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if let Some(timed_out) = find_source::<server::BodyTimedOut>(&rejection) {
        return ApiError::invalid(format!("Request body too slow: {timed_out}."));
    }
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "Request body is over the {} KiB limit.",
                MAX_BODY_BYTES / 1024
            ),
        );
    }
    let detail = match rejection {
        JsonRejection::MissingJsonContentType(_) => {
            "expected Content-Type: application/json".to_owned()
        }
        other => other.body_text(),
    };
    ApiError::invalid(format!("Malformed request body: {detail}"))
}

/// The first error of type `E` in the chain of `err`'s sources.
fn find_source<'a, E: std::error::Error + 'static>(
    err: &'a (dyn std::error::Error + 'static),
) -> Option<&'a E> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        current = err.source();
    }
    None
}

/// The user behind the request's bearer token.
pub struct AuthUser {
    pub user: UserRow,
    pub token_id: i64,
}

impl FromRequestParts<SharedState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(ErrorCode::Unauthorized, "Not logged in: run `paas login`.")
            })?;
        let token = header
            .strip_prefix("Bearer ")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::Unauthorized,
                    "Authorization must be `Bearer <token>`.",
                )
            })?;
        let hash = crate::auth::token_hash(token);
        let found = state.store.user_by_token(&hash).await?;
        let (user, token_id) = found.ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unauthorized,
                "Invalid or expired token: run `paas login`.",
            )
        })?;
        Ok(AuthUser { user, token_id })
    }
}

impl AuthUser {
    pub fn require_admin(&self) -> ApiResult<()> {
        if self.user.is_admin {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                "Only admins can do that.",
            ))
        }
    }

    /// The named app, if this user may see it.
    pub async fn app(&self, state: &SharedState, name: &AppName) -> ApiResult<AppRow> {
        state
            .store
            .app_for_user(&self.user, name.as_str())
            .await?
            .ok_or_else(ApiError::app_not_found)
    }

    /// Owners and admins manage an app's access and may destroy it; collaborators may not.
    pub fn require_owner(&self, app: &AppRow) -> ApiResult<()> {
        if self.user.is_admin || app.owner_id == self.user.id {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::Forbidden,
                format!(
                    "Only the owner of {} ({}) can do that.",
                    app.name, app.owner
                ),
            ))
        }
    }
}

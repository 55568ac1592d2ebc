//! Maintenance mode (`PUT /v1/apps/{app}/maintenance`, contract in `paas_api::routing`): the
//! app's hosts answer 503 with a maintenance page while its instances keep running untouched.
//! The page and its routes are [`crate::pages`]' (a file for Traefik's file provider per app in
//! maintenance, one priority step above the app's own routers); this is the switch, answered
//! once Traefik's API shows the change. Off removes the file; the app's own routers were there
//! all along.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use paas_api::routing::Maintenance;
use paas_api::{AppName, ErrorCode};
use tracing::info;

use crate::error::{ApiError, Path as AppPath};
use crate::pages::Page;
use crate::runtime;
use crate::state::AgentState;

/// How long a change may take to show in Traefik's API before the request fails.
const APPLY_TIMEOUT: Duration = Duration::from_secs(15);

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/apps/{app}/maintenance", put(put_maintenance))
}

fn internal(message: String) -> ApiError {
    ApiError::new(ErrorCode::Internal, message)
}

async fn put_maintenance(
    State(state): State<AgentState>,
    AppPath(app): AppPath<AppName>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Maintenance = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid maintenance request: {err}"),
        )
    })?;
    let _guard = state.runtime.lock(&app).await;
    if request.enabled {
        let hosts = runtime::app_hosts(&state, &app).map_err(|err| internal(err.to_string()))?;
        state
            .pages
            .put(Page::Maintenance, &app, &hosts, &state.config.runtime)
            .map_err(|err| internal(format!("cannot write the maintenance routes: {err}")))?;
    } else {
        state
            .pages
            .remove(Page::Maintenance, &app)
            .map_err(|err| internal(format!("cannot remove the maintenance routes: {err}")))?;
    }
    if let Some(traefik) = runtime::traefik_api(&state.config.runtime, state.config.engine) {
        wait_for_traefik(&traefik, &app, request.enabled).await?;
    }
    info!(%app, enabled = request.enabled, "maintenance");
    Ok(axum::Json(request).into_response())
}

/// Until Traefik's API shows the app's maintenance router (or no longer does).
async fn wait_for_traefik(
    traefik: &runtime::TraefikApi,
    app: &str,
    enabled: bool,
) -> Result<(), ApiError> {
    let router = format!("{}@file", Page::Maintenance.name(app));
    let deadline = Instant::now() + APPLY_TIMEOUT;
    loop {
        let last = match traefik.router_exists(&router).await {
            Ok(exists) if exists == enabled => return Ok(()),
            Ok(_) => "it still shows the old state".to_owned(),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(internal(format!(
                "Traefik did not pick up the maintenance change in {}s: {last}",
                APPLY_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

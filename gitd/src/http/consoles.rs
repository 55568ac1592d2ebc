//! `paas pg:psql`, `paas redis:cli` and `paas pg:info`: an add-on's console and a Postgres
//! add-on's numbers. The add-on is found as for `addons:info`, through an app it is attached
//! to that the user may see (404 otherwise, before any upgrade); a console is then an
//! attached session ([`super::attach::upgrade`]) whose agent side is the add-on's
//! `psql`/`redis-cli`. Neither changes an app, so neither goes through `ops/` or takes a lock.

use axum::extract::{Request, State};
use axum::response::Response;
use paas_agent_client::AttachStream;
use paas_api::addons::{AddonConsole, AddonKind, AddonName, PostgresInfo};
use paas_api::{AppName, ErrorCode};

use super::addons::attached;
use super::attach::upgrade;
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::ops::OpsError;
use crate::state::SharedState;
use crate::store::{AddonRow, UserRow};

pub async fn console(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
    request: Request,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let addon = attached(&state, &app, &addon).await?;
    upgrade(request, state, app, auth.user, |state, _, user, console| {
        Box::pin(async move { open(&state, &user, &addon, console).await })
    })
}

/// The agent's side of the console `request` asks for.
async fn open(
    state: &SharedState,
    by: &UserRow,
    addon: &AddonRow,
    request: AddonConsole,
) -> Result<AttachStream, OpsError> {
    if let Some(refusal) = request.refusal(&addon.name, addon.kind) {
        return Err(OpsError::Invalid(refusal));
    }
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    tracing::info!(addon = %addon.name, owner = %addon.owner, by = %by.username, tty = request.tty, "add-on console");
    agent
        .attach_console(&addon.owner, &addon.name, &request)
        .await
        .map_err(|err| OpsError::Agent {
            what: format!("Could not open a console on {}", addon.name),
            reason: err.to_string(),
            logs: Vec::new(),
        })
}

pub async fn pg_info(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, addon)): Path<(AppName, AddonName)>,
) -> ApiResult<Json<PostgresInfo>> {
    let app = auth.app(&state, &name).await?;
    let addon = attached(&state, &app, &addon).await?;
    if addon.kind != AddonKind::Postgres {
        return Err(ApiError::invalid(format!(
            "{} is a {} add-on, not postgres: see `paas addons:info {0}`.",
            addon.name, addon.kind
        )));
    }
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    let stats = agent
        .postgres_stats(&addon.owner, &addon.name)
        .await
        .map_err(|err| {
            ApiError::new(
                ErrorCode::DeployFailed,
                format!("Could not ask {} for its numbers: {err}", addon.name),
            )
        })?;
    Ok(Json(PostgresInfo {
        name: addon.name,
        app: addon.app,
        attachments: addon.attachments,
        stats,
    }))
}

//! Admins add and remove users.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{CreateUserRequest, User};

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::auth;
use crate::db::{is_constraint_violation, queries};
use crate::state::SharedState;
use paas_api::Username;

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;

pub async fn list(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<Json<Vec<User>>> {
    auth.require_admin()?;
    let users = state.db.call(|conn| queries::list_users(conn)).await?;
    Ok(Json(users.iter().map(|u| u.to_api()).collect()))
}

pub async fn create(
    State(state): State<SharedState>,
    auth: AuthUser,
    Json(request): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    auth.require_admin()?;
    check_password(&request.password)?;
    let password = request.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .expect("password hashing panicked");
    let username = request.username.clone();
    let is_admin = request.is_admin;
    let created = state
        .db
        .call(move |conn| queries::insert_user(conn, &username, &hash, is_admin))
        .await;
    match created {
        Ok(user) => {
            tracing::info!(username = %user.username, by = %auth.user.username, "user added");
            Ok((StatusCode::CREATED, Json(user.to_api())))
        }
        Err(err) if is_constraint_violation(&err) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("User {} already exists.", request.username),
        )),
        Err(err) => Err(err.into()),
    }
}

pub fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::invalid(format!(
            "Password too short: use at least {MIN_PASSWORD_CHARS} characters."
        )));
    }
    Ok(())
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(username): Path<Username>,
) -> ApiResult<StatusCode> {
    auth.require_admin()?;
    let target = username.clone();
    state
        .db
        .call(move |conn| -> ApiResult<()> {
            let tx = conn.transaction()?;
            let user = queries::user_by_name(&tx, &target)?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("No user named {target}."))
            })?;
            let owned = queries::apps_owned_by(&tx, user.id)?;
            if !owned.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!(
                        "{target} owns {}; destroy those apps first.",
                        owned.join(", ")
                    ),
                ));
            }
            if user.is_admin && queries::count_admins(&tx)? <= 1 {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{target} is the last admin and cannot be removed."),
                ));
            }
            queries::delete_user(&tx, user.id)?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    state.ssh_access.bump();
    tracing::info!(%username, by = %auth.user.username, "user removed");
    Ok(StatusCode::NO_CONTENT)
}

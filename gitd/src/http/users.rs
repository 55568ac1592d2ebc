//! Admins add and remove users.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::Username;
use paas_api::types::{CreateUserRequest, User};

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::auth;
use crate::state::SharedState;
use crate::store::{StoreError, UserRemoval};

/// Shorter passwords are refused.
pub const MIN_PASSWORD_CHARS: usize = 8;

pub async fn list(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<Json<Vec<User>>> {
    auth.require_admin()?;
    let users = state.store.list_users().await?;
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
    let created = state
        .store
        .create_user(&request.username, &hash, request.is_admin)
        .await;
    match created {
        Ok(user) => {
            tracing::info!(username = %user.username, by = %auth.user.username, "user added");
            Ok((StatusCode::CREATED, Json(user.to_api())))
        }
        Err(StoreError::Conflict) => Err(ApiError::new(
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
    match state.store.remove_user(&username).await? {
        UserRemoval::Removed => {}
        UserRemoval::NoSuchUser => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("No user named {username}."),
            ));
        }
        UserRemoval::OwnsApps(owned) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!(
                    "{username} owns {}; destroy those apps first.",
                    owned.join(", ")
                ),
            ));
        }
        UserRemoval::LastAdmin => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{username} is the last admin and cannot be removed."),
            ));
        }
    }
    state.ssh_access.bump();
    tracing::info!(%username, by = %auth.user.username, "user removed");
    Ok(StatusCode::NO_CONTENT)
}

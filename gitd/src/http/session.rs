//! Login, logout, whoami.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{LoginRequest, LoginResponse, User};

use super::server::ClientAddress;
use super::{ApiError, ApiResult, AuthUser, Json};
use crate::auth;
use crate::state::SharedState;

pub async fn login(
    State(state): State<SharedState>,
    ClientAddress(address): ClientAddress,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    // A malformed name cannot be anyone's: it counts against the address only, unverified.
    let username = request
        .username
        .parse::<paas_api::Username>()
        .is_ok()
        .then_some(request.username.as_str());
    let attempt = state
        .login_throttle
        .reserve(username, address)
        .map_err(|wait| {
            ApiError::new(
                ErrorCode::RateLimited,
                match wait.as_secs().max(1) {
                    1 => "Too many failed logins; try again in 1 second.".to_owned(),
                    seconds => format!("Too many failed logins; try again in {seconds} seconds."),
                },
            )
        })?;
    let user = match username {
        Some(username) => state.store.user_by_name(username).await?,
        None => None,
    };
    let verified = if username.is_some() {
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.clone())
            .unwrap_or_else(|| auth::decoy_hash().to_owned());
        match state.login_throttle.verify(request.password, hash).await {
            Ok(verified) => verified,
            Err(auth::Busy) => {
                attempt.not_tried();
                return Err(ApiError::new(
                    ErrorCode::RateLimited,
                    "Too many logins at once; try again in a few seconds.",
                ));
            }
        }
    } else {
        false
    };
    let user = match user {
        Some(user) if verified => user,
        _ => {
            drop(attempt);
            tracing::warn!(username = %auth::loggable(&request.username), %address, "failed login");
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "Invalid username or password.",
            ));
        }
    };
    attempt.succeeded();
    let token = auth::new_token();
    let token_hash = auth::token_hash(&token);
    let expires_at = state
        .store
        .create_token(user.id, &token_hash, state.config.token_ttl_seconds)
        .await?;
    tracing::info!(username = %user.username, %address, "login");
    Ok(Json(LoginResponse {
        token,
        user: user.to_api(),
        expires_at,
    }))
}

pub async fn logout(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<StatusCode> {
    state.store.delete_token(auth.token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn whoami(auth: AuthUser) -> Json<User> {
    Json(auth.user.to_api())
}

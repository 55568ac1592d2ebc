//! Login, logout, whoami.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{LoginRequest, LoginResponse, User};

use super::{ApiError, ApiResult, AuthUser, Json};
use crate::auth;
use crate::db::{self, queries};
use crate::state::SharedState;

pub async fn login(
    State(state): State<SharedState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Json(request): Json<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let address = peer.ip();
    if let Err(wait) = state.login_throttle.check(&request.username, address) {
        return Err(ApiError::new(
            ErrorCode::RateLimited,
            match wait.as_secs().max(1) {
                1 => "Too many failed logins; try again in 1 second.".to_owned(),
                seconds => format!("Too many failed logins; try again in {seconds} seconds."),
            },
        ));
    }
    let username = request.username.clone();
    let user = state
        .db
        .call(move |conn| queries::user_by_name(conn, &username))
        .await?;
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| auth::decoy_hash().to_owned());
    let password = request.password;
    let verified = tokio::task::spawn_blocking(move || auth::verify_password(&password, &hash))
        .await
        .expect("password check panicked");
    let user = match user {
        Some(user) if verified => user,
        _ => {
            state
                .login_throttle
                .record_failure(&request.username, address);
            tracing::warn!(username = %request.username, %address, "failed login");
            return Err(ApiError::new(
                ErrorCode::Unauthorized,
                "Invalid username or password.",
            ));
        }
    };
    state
        .login_throttle
        .record_success(&request.username, address);
    let token = auth::new_token();
    let token_hash = auth::token_hash(&token);
    let expires_at = db::now() + state.config.token_ttl_seconds;
    let user_id = user.id;
    state
        .db
        .call(move |conn| {
            queries::delete_expired_tokens(conn)?;
            queries::insert_token(conn, user_id, &token_hash, expires_at)
        })
        .await?;
    tracing::info!(username = %user.username, "login");
    Ok(Json(LoginResponse {
        token,
        user: user.to_api(),
        expires_at: db::to_time(expires_at),
    }))
}

pub async fn logout(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<StatusCode> {
    let token_id = auth.token_id;
    state
        .db
        .call(move |conn| queries::delete_token(conn, token_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn whoami(auth: AuthUser) -> Json<User> {
    Json(auth.user.to_api())
}

//! Logging in and out of the dashboard. The login form posts to the API's own login (its
//! throttle, its password check, its token lifetime); the token it hands out becomes a session
//! ([`crate::store::SessionRow`]) and goes to the browser in a cookie that scripts cannot read
//! (`HttpOnly`), that other sites' requests do not carry (`SameSite=Lax`: their links still
//! arrive logged in, their posts do not) and that is `Secure` when the dashboard is served over
//! HTTPS ([`super::origin`]). Logging out deletes the token, and with it the session.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use paas_api::types::LoginRequest;
use rand::RngCore;
use serde::Deserialize;

use super::csrf::{ChangeForm, OwnOrigin};
use super::page::{self, PageError};
use crate::auth;
use crate::http::server::ClientAddress;
use crate::http::{AuthUser, Json, handlers};
use crate::state::SharedState;
use crate::store::SessionRow;

const COOKIE: &str = "paas_session";

/// The logged-in user behind the request's session cookie. Pages that need one send a
/// browser without one to the login form.
pub struct Session(pub SessionRow);

impl Session {
    /// The session's user as the API's handlers take it.
    pub fn auth(&self) -> AuthUser {
        AuthUser {
            user: self.0.user.clone(),
            token_id: self.0.token_id,
        }
    }
}

impl FromRequestParts<SharedState> for Session {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = session_cookie(&parts.headers) else {
            return Err(Redirect::to("/login").into_response());
        };
        match state.store.session_by_token(&auth::token_hash(token)).await {
            Ok(Some(session)) => Ok(Session(session)),
            Ok(None) => Err(Redirect::to("/login").into_response()),
            Err(err) => Err(PageError::from(crate::http::ApiError::from(err)).into_response()),
        }
    }
}

/// The value of the session cookie, from however many `Cookie` headers.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|value| !value.is_empty())
}

pub async fn login_form() -> Response {
    login_page(StatusCode::OK, None)
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let body = html! {
        main class="narrow" {
            h1 { "Log in to paas" }
            @if let Some(error) = error {
                p class="error" role="alert" { (error) }
            }
            form method="post" action="/login" class="stack" {
                label for="username" { "Username" }
                input id="username" name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password"
                    autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        }
    };
    (status, page::document("Log in", None, body)).into_response()
}

#[derive(Deserialize)]
pub struct LoginFields {
    username: String,
    password: String,
}

/// Checks the password through the API's login; on success the new token becomes a session.
/// The form must come from the dashboard itself, so that no other site can log a browser into
/// an account of its choosing.
pub async fn login(
    State(state): State<SharedState>,
    OwnOrigin(origin): OwnOrigin,
    address: ClientAddress,
    axum::Form(fields): axum::Form<LoginFields>,
) -> Response {
    let request = LoginRequest {
        username: fields.username,
        password: fields.password,
    };
    let login = match handlers::login(State(state.clone()), address, Json(request)).await {
        Ok(Json(login)) => login,
        Err(err) => {
            let body = err.into_body();
            let status = StatusCode::from_u16(body.error.code.http_status())
                .unwrap_or(StatusCode::UNAUTHORIZED);
            return login_page(status, Some(&body.error.message));
        }
    };
    let csrf_token = new_csrf_token();
    match state
        .store
        .start_session(&auth::token_hash(&login.token), &csrf_token)
        .await
    {
        Ok(true) => {}
        Ok(false) => return login_page(StatusCode::UNAUTHORIZED, Some("The login expired.")),
        Err(err) => return PageError::from(crate::http::ApiError::from(err)).into_response(),
    }
    let max_age = (login.expires_at - chrono::Utc::now()).num_seconds().max(0);
    let cookie = format!(
        "{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        login.token,
        if origin.https { "; Secure" } else { "" }
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}

/// Ends the session: its token is deleted, so the cookie is worthless even if it was kept.
pub async fn logout(State(state): State<SharedState>, form: ChangeForm) -> Response {
    if let Err(err) = state.store.delete_token(form.session.token_id).await {
        return PageError::from(crate::http::ApiError::from(err)).into_response();
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

fn new_csrf_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; paas_session=tok".parse().unwrap());
        assert_eq!(session_cookie(&headers), Some("tok"));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, "paas_session=; x=y".parse().unwrap());
        assert_eq!(session_cookie(&empty), None);
        let mut lookalike = HeaderMap::new();
        lookalike.append(header::COOKIE, "xpaas_session=tok".parse().unwrap());
        assert_eq!(session_cookie(&lookalike), None);
    }
}

//! Protection against cross-site requests, on every form that changes something: the form
//! must come from the dashboard's own origin (`Origin`, else `Referer`: [`OwnOrigin`]) and
//! carry its session's secret in the `csrf` field ([`ChangeForm`]). Either alone would stop a
//! forged post from a browser; both are checked, so that neither is the only defence.

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::origin::Origin;
use super::page::PageError;
use super::session::Session;
use crate::state::SharedState;
use crate::store::SessionRow;

/// The name of the field that carries the session's secret.
pub const FIELD: &str = "csrf";

/// A request that comes from the dashboard's own origin, which it carries.
pub struct OwnOrigin(pub Origin);

impl FromRequestParts<SharedState> for OwnOrigin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let origin = Origin::of(&state.config.http, parts);
        let header = |name| {
            parts
                .headers
                .get(name)
                .and_then(|value: &header::HeaderValue| value.to_str().ok())
        };
        if origin.sent(header(header::ORIGIN), header(header::REFERER)) {
            Ok(OwnOrigin(origin))
        } else {
            tracing::warn!(origin = ?header(header::ORIGIN), "a cross-site form post was refused");
            Err(refused("This form was not sent from this dashboard."))
        }
    }
}

/// A change posted from one of the session's own forms: its session and its other fields.
pub struct ChangeForm {
    pub session: SessionRow,
    pub fields: HashMap<String, String>,
}

impl ChangeForm {
    pub fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .map(String::as_str)
            .unwrap_or_default()
    }
}

impl FromRequest<SharedState> for ChangeForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        OwnOrigin::from_request_parts(&mut parts, state).await?;
        let Session(session) = Session::from_request_parts(&mut parts, state).await?;
        let request = Request::from_parts(parts, body);
        let axum::Form(pairs) = axum::Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(|rejection| {
                PageError::new(rejection.status(), rejection.body_text()).into_response()
            })?;
        let mut fields: HashMap<String, String> = pairs.into_iter().collect();
        let sent = fields.remove(FIELD).unwrap_or_default();
        if !same_secret(&sent, &session.csrf_token) {
            tracing::warn!(user = %session.user.username, "a form post without its session's secret was refused");
            return Err(refused(
                "This form is stale or was not sent from this dashboard: reload the page.",
            ));
        }
        Ok(ChangeForm { session, fields })
    }
}

/// Compares digests, so the time taken says nothing about how much of the secret matched.
fn same_secret(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && Sha256::digest(sent.as_bytes()) == Sha256::digest(expected.as_bytes())
}

fn refused(message: &str) -> Response {
    PageError::new(StatusCode::FORBIDDEN, message).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_secret_passes() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abd", "abc"));
        assert!(!same_secret("", "abc"));
        assert!(!same_secret("", ""), "a session always has a secret");
    }
}

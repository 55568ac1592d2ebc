//! The path extractor of every paas server (gitd's API, the agent's), so that both answer a bad
//! path segment by one rule. Segments are typed (`Path<AppName>`, `Path<(AppName, Username)>`),
//! and a segment that breaks its type's rule is answered `404 not_found`, never `400`: a name
//! that cannot be valid cannot be anything's, and answering it differently from a valid name
//! nobody may see would tell a tenant which names exist. An app segment reads "Couldn't find
//! that app.", Heroku's words, as for an app the caller may not see.
//!
//! It lives here, behind the `axum` feature, because the rule is part of the wire contract
//! both servers speak and both already depend on this crate; the CLI builds without axum. It
//! reads only the request's already-parsed path, no I/O.

use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection as AxumRejection;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::error::{ErrorBody, ErrorCode};
use crate::names::AppName;

/// The message for a path naming an app that does not exist, may not be seen, or cannot exist.
pub const APP_NOT_FOUND: &str = "Couldn't find that app.";

/// `axum::extract::Path` whose rejections are answered in the API's error envelope.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = PathRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let rejection = match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => return Ok(Path(value)),
            Err(rejection) => rejection,
        };
        // Told from the raw segment: axum names the failing key only for some shapes of `T`.
        let bad_app = RawPathParams::from_request_parts(parts, state)
            .await
            .is_ok_and(|params| {
                params
                    .iter()
                    .any(|(key, value)| key == "app" && value.parse::<AppName>().is_err())
            });
        Err(PathRejection::new(rejection, bad_app))
    }
}

/// Why a path was refused: `404 not_found` for a segment that breaks its rule, `500` when the
/// route and the extractor disagree (a programming error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRejection {
    pub code: ErrorCode,
    pub message: String,
}

impl PathRejection {
    fn new(rejection: AxumRejection, bad_app: bool) -> PathRejection {
        match rejection {
            AxumRejection::FailedToDeserializePathParams(err) => {
                let message = match err.kind() {
                    _ if bad_app => APP_NOT_FOUND.to_owned(),
                    ErrorKind::DeserializeError { message, .. } | ErrorKind::Message(message) => {
                        format!("Not found: {message}.")
                    }
                    kind => format!("Not found: {kind}."),
                };
                PathRejection {
                    code: ErrorCode::NotFound,
                    message,
                }
            }
            other => PathRejection {
                code: ErrorCode::Internal,
                message: other.body_text(),
            },
        }
    }
}

impl IntoResponse for PathRejection {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::Request;
    use axum::routing::get;
    use tower_service::Service;

    use super::*;
    use crate::Username;

    async fn answer(path: &str) -> (u16, serde_json::Value) {
        let mut router: Router = Router::new()
            .route(
                "/apps/{app}",
                get(|Path(app): Path<AppName>| async move { app.to_string() }),
            )
            .route(
                "/apps/{app}/users/{username}",
                get(|Path((app, user)): Path<(AppName, Username)>| async move {
                    format!("{app} {user}")
                }),
            )
            .route(
                "/users/{username}",
                get(|Path(user): Path<Username>| async move { user.to_string() }),
            );
        let request = Request::get(path).body(Body::empty()).unwrap();
        let response = router.call(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(&bytes).into()));
        (status, body)
    }

    #[tokio::test]
    async fn valid_segments_reach_the_handler() {
        assert_eq!(answer("/apps/hello").await, (200, "hello".into()));
        assert_eq!(
            answer("/apps/hello/users/alice").await,
            (200, "hello alice".into())
        );
    }

    #[tokio::test]
    async fn a_bad_app_segment_is_an_app_that_is_not_there() {
        let not_found =
            serde_json::json!({"error": {"code": "not_found", "message": APP_NOT_FOUND}});
        for path in [
            "/apps/A",
            "/apps/..%2Fx",
            "/apps/a%3Bb",
            "/apps/A/users/alice",
        ] {
            assert_eq!(answer(path).await, (404, not_found.clone()), "{path}");
        }
    }

    #[tokio::test]
    async fn other_bad_segments_are_not_found_with_their_rule() {
        for path in ["/users/Eve", "/apps/hello/users/Eve"] {
            let (status, body) = answer(path).await;
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(body["error"]["code"], "not_found", "{path}: {body}");
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("invalid username \"Eve\""),
                "{path}: {message}"
            );
        }
    }
}

//! The error every agent route answers with, in the API's envelope
//! (`{"error":{"code","message"}}`), and the extractors whose rejections use it. It owns no
//! routes and calls nothing: every area of the agent imports it, so it imports none of them.

use axum::extract::FromRequestParts;
use axum::extract::path::ErrorKind;
use axum::extract::rejection::PathRejection;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use paas_api::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;

/// An error answered as `{"error":{"code","message"}}` with the code's status.
#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(ErrorBody::new(self.code, self.message))).into_response()
    }
}

/// `axum::extract::Path` whose rejections are answered as [`ApiError`]s. Segments are typed
/// (`Path<AppName>`), so a name that breaks its rule is refused with that rule's message.
pub struct Path<T>(pub T);

impl<T, S> FromRequestParts<S> for Path<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(path_rejection)
    }
}

fn path_rejection(rejection: PathRejection) -> ApiError {
    match rejection {
        PathRejection::FailedToDeserializePathParams(err) => {
            let message = match err.kind() {
                ErrorKind::DeserializeError { message, .. } | ErrorKind::Message(message) => {
                    message.clone()
                }
                kind => kind.to_string(),
            };
            ApiError::new(ErrorCode::InvalidInput, message)
        }
        other => ApiError::new(ErrorCode::Internal, other.body_text()),
    }
}

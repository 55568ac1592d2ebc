//! The error every agent route answers with, in the API's envelope
//! (`{"error":{"code","message"}}`), and the path extractor (shared with gitd, from
//! `paas_api::extract`). It owns no routes and calls nothing: every area of the agent imports
//! it, so it imports none of them.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use paas_api::{ErrorBody, ErrorCode};

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

/// Path segments are typed (`Path<AppName>`), and one that breaks its rule is answered 404,
/// by the one rule every paas server shares.
pub use paas_api::extract::Path;

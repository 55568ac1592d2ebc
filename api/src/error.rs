//! The error envelope every HTTP API of paas answers with:
//! `{"error":{"code":"…","message":"…"}}`.

use serde::{Deserialize, Serialize};

/// Machine-readable error codes; the HTTP status goes with the code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Malformed request: bad JSON, a field out of range, an invalid name.
    InvalidInput,
    /// Missing, expired, revoked or forged credentials.
    Unauthorized,
    /// The caller is known but may not do this (e.g. a non-admin managing users).
    Forbidden,
    /// No such thing, or the caller may not see it.
    NotFound,
    /// The thing exists already or the request clashes with current state.
    Conflict,
    /// The request body is over the size limit.
    PayloadTooLarge,
    /// Too many failed attempts; try again later.
    RateLimited,
    /// A build, rollout or agent call failed.
    DeployFailed,
    /// Something went wrong on the server side.
    Internal,
}

impl ErrorCode {
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::InvalidInput => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::RateLimited => 429,
            ErrorCode::DeployFailed => 502,
            ErrorCode::Internal => 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_as_the_documented_envelope() {
        let body = ErrorBody::new(ErrorCode::NotFound, "Couldn't find that app.");
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":{"code":"not_found","message":"Couldn't find that app."}}"#
        );
    }
}

//! The agent's HTTP API: one router merged from each area's routes, behind bearer-token auth.
//! Every area (builds, the container runtime, logs, events, images, one-off containers, maintenance, attached sessions, add-ons, metrics, nodes) contributes a `routes()` that is merged
//! here, so all of them share the auth layer; the error envelope is `crate::error`'s.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use paas_api::ErrorCode;

use crate::addons;
use crate::attach;
use crate::builds;
use crate::error::ApiError;
use crate::events;
use crate::images;
use crate::instances;
use crate::logs;
use crate::maintenance;
use crate::metrics;
use crate::nodes;
use crate::oneoff;
use crate::runtime;
use crate::state::AgentState;

pub fn router(state: AgentState) -> Router {
    Router::new()
        .merge(builds::routes())
        .merge(runtime::routes())
        .merge(logs::routes())
        .merge(events::routes())
        .merge(images::routes())
        .merge(oneoff::routes())
        .merge(maintenance::routes())
        .merge(attach::routes())
        .merge(addons::routes())
        .merge(metrics::routes())
        .merge(nodes::routes())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            instances::track_changes,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .with_state(state)
}

async fn require_token(State(state): State<AgentState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented {
        Some(token) if tokens_match(token.as_bytes(), state.config.token.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => ApiError::new(ErrorCode::Unauthorized, "wrong agent token").into_response(),
        None => ApiError::new(
            ErrorCode::Unauthorized,
            "missing `Authorization: Bearer <agent token>` header",
        )
        .into_response(),
    }
}

/// Compares in time independent of where the first difference is, so the token cannot be
/// guessed byte by byte from response times.
fn tokens_match(presented: &[u8], expected: &[u8]) -> bool {
    presented.len() == expected.len()
        && presented
            .iter()
            .zip(expected)
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(b"abc", b"abc"));
        assert!(!tokens_match(b"abd", b"abc"));
        assert!(!tokens_match(b"ab", b"abc"));
        assert!(!tokens_match(b"", b"abc"));
    }
}

//! A change answered as it runs, for a client that asks for it (`Accept:
//! application/x-ndjson`): NDJSON [`ChangeEvent`]s, what the rollout waits for and what new
//! instances print while it does, then the answer a plain request would have had (`done`) or
//! the error envelope (`failed`). Problems found before the change starts (a bad request, an
//! app one may not see) are answered as usual, before any stream; a plain request waits for
//! the whole change and gets the usual JSON.

use axum::body::{Body, Bytes};
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use paas_api::progress::ChangeEvent;
use serde::Serialize;
use tokio::sync::mpsc;

use super::{ApiError, ApiResult};
use crate::ops::Op;

const NDJSON: &str = "application/x-ndjson";

/// Whether the requester asked to follow the change as it runs.
pub struct WantsProgress(bool);

impl<S: Send + Sync> FromRequestParts<S> for WantsProgress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let accepts = parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .any(|value| value.split(',').any(|kind| kind.trim() == NDJSON));
        Ok(WantsProgress(accepts))
    }
}

/// Answers `op`: streamed if the requester wants its progress, else with `plain` of its
/// result once it has finished.
pub async fn answer<T, R>(
    wants: WantsProgress,
    op: Op<T>,
    plain: impl FnOnce(T) -> R,
) -> ApiResult<Response>
where
    T: Serialize + Send + 'static,
    R: IntoResponse,
{
    let WantsProgress(streamed) = wants;
    if !streamed {
        return Ok(plain(op.finished().await?).into_response());
    }
    let (events, mut received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let outcome = op
            .relay(|progress| {
                let _ = events.send(encode(&ChangeEvent::<T>::Progress(progress)));
            })
            .await;
        let last = match outcome {
            Ok(answer) => ChangeEvent::Done(answer),
            Err(err) => ChangeEvent::Failed(ApiError::from(err).into_body()),
        };
        let _ = events.send(encode(&last));
    });
    let body = futures::stream::poll_fn(move |cx| received.poll_recv(cx))
        .map(Ok::<_, std::convert::Infallible>);
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, NDJSON)
        .body(Body::from_stream(body))
        .expect("static headers are valid"))
}

fn encode<T: Serialize>(event: &ChangeEvent<T>) -> Bytes {
    let mut line = serde_json::to_vec(event).expect("change events always serialize");
    line.push(b'\n');
    Bytes::from(line)
}

//! `GET /v1/apps/{app}/run/attached` and `GET /v1/apps/{app}/ps/exec`: attached sessions
//! (contract in `paas_api::attach`). The app is authorised as for `run:detached` (404 to a
//! user who may not see it) before the connection is upgraded; then the session's request is
//! read from its first frame, [`crate::ops::attach`] opens the agent's side, and bytes are
//! copied both ways until both ends close. What cannot start is one error frame. Add-on
//! consoles ([`super::consoles`]) are sessions of the same kind.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use paas_api::attach::{Frame, PROTOCOL, asks_for_protocol};
use paas_api::{AppName, ErrorCode};
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use super::{ApiError, ApiResult, AuthUser, Path};
use crate::ops::{self, OpsError};
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

pub async fn run(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    request: Request,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    upgrade(request, state, app, auth.user, |state, app, user, open| {
        Box::pin(async move { ops::attach::run(&state, &app, &user, open).await })
    })
}

pub async fn exec(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    request: Request,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    upgrade(request, state, app, auth.user, |state, app, user, open| {
        Box::pin(async move { ops::attach::exec(&state, &app, &user, open).await })
    })
}

type Opened = std::pin::Pin<
    Box<dyn Future<Output = Result<paas_agent_client::AttachStream, OpsError>> + Send>,
>;

/// Answers 101 and, on the upgraded connection, reads the request `T`, has `open` start the
/// agent's side and relays the session.
pub(super) fn upgrade<T>(
    mut request: Request,
    state: SharedState,
    app: AppRow,
    user: UserRow,
    open: impl FnOnce(SharedState, AppRow, UserRow, T) -> Opened + Send + 'static,
) -> ApiResult<Response>
where
    T: DeserializeOwned + Send + 'static,
{
    let asked = request
        .headers()
        .get(header::UPGRADE)
        .is_some_and(|value| asks_for_protocol(value.as_bytes()));
    if !asked {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("This route needs `Connection: Upgrade` and `Upgrade: {PROTOCOL}`."),
        ));
    }
    let upgrading = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        let upgraded = match upgrading.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "an attach upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(upgraded);
        let mut buffer = Vec::new();
        let opened = match read_open::<T>(&mut client, &mut buffer).await {
            Ok(request) => open(state, app, user, request)
                .await
                .map_err(|err| err.to_string()),
            Err(message) => Err(message),
        };
        match opened {
            Ok(mut agent) => {
                // What the client sent after its request (stdin typed ahead) goes on first.
                if agent.write_all(&buffer).await.is_ok() {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut agent).await;
                }
            }
            Err(message) => {
                let _ = client.write_all(&Frame::Error(message).encode()).await;
                let _ = client.shutdown().await;
            }
        }
    });
    Ok(Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, HeaderValue::from_static(PROTOCOL))
        .body(axum::body::Body::empty())
        .expect("static headers are valid"))
}

/// The session's request from the first frame; the bytes read past it stay in `buffer`.
async fn read_open<T: DeserializeOwned>(
    client: &mut (impl AsyncRead + Unpin),
    buffer: &mut Vec<u8>,
) -> Result<T, String> {
    loop {
        match Frame::decode(buffer) {
            Ok(Some(Frame::Open(json))) => {
                return serde_json::from_slice(&json)
                    .map_err(|err| format!("Invalid attach request: {err}"));
            }
            Ok(Some(_)) => return Err("The session did not start with its request.".to_owned()),
            Err(err) => return Err(err.to_string()),
            Ok(None) => {}
        }
        match client.read_buf(buffer).await {
            Ok(0) => return Err("The connection closed before the request.".to_owned()),
            Ok(_) => {}
            Err(err) => return Err(format!("Cannot read the request: {err}")),
        }
    }
}

//! An app's webhooks: `GET`/`POST /v1/apps/{app}/webhooks`, `DELETE …/webhooks/{id}`, and the
//! log of delivery attempts, `GET /v1/apps/{app}/webhook-deliveries?webhook=ID&limit=N`. Who
//! may see the app manages its webhooks; anyone else gets the app's not-found answer. Adding
//! one changes nothing the app runs, so it is a store write, not an operation.

use axum::extract::State;
use axum::http::StatusCode;
use paas_api::AppName;
use paas_api::webhooks::{
    CreateWebhookRequest, CreatedWebhook, DeliveriesQuery, DeliveryAttempt, Webhook, WebhookSecret,
};

use super::{ApiError, ApiResult, AuthUser, Json, Path, Query};
use crate::state::SharedState;
use crate::webhooks::addresses;

/// Webhooks one app may have.
pub const MAX_WEBHOOKS_PER_APP: usize = 20;
/// Attempts `webhooks:deliveries` shows unless asked for fewer…
const DEFAULT_ATTEMPTS_SHOWN: u32 = 20;
/// …or more, up to this.
const MAX_ATTEMPTS_SHOWN: u32 = 500;

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Webhook>>> {
    let app = auth.app(&state, &name).await?;
    Ok(Json(state.store.webhooks(app.id).await?))
}

pub async fn add(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<CreateWebhookRequest>,
) -> ApiResult<(StatusCode, Json<CreatedWebhook>)> {
    let app = auth.app(&state, &name).await?;
    let mut events = request.events;
    events.sort();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::invalid(
            paas_api::webhooks::WebhookError::NoEvents.to_string(),
        ));
    }
    // A name is checked on what it resolves to when delivering; an address can be now.
    if let Ok(address) = request.url.host().parse() {
        let allow = state.config.webhooks.allow_private_addresses;
        let literal = [std::net::SocketAddr::new(address, 0)];
        addresses::check(request.url.host(), &literal, allow)
            .map_err(|err| ApiError::invalid(format!("{err}.")))?;
    }
    if state.store.webhooks(app.id).await?.len() >= MAX_WEBHOOKS_PER_APP {
        return Err(ApiError::invalid(format!(
            "{} has {MAX_WEBHOOKS_PER_APP} webhooks, the most an app may have: remove one first.",
            app.name
        )));
    }
    let secret = match request.secret {
        Some(secret) => secret,
        None => hex::encode(rand::random::<[u8; 32]>())
            .parse::<WebhookSecret>()
            .expect("64 hex digits make a valid secret"),
    };
    let webhook = state
        .store
        .add_webhook(app.id, &request.url, &events, &secret)
        .await?;
    tracing::info!(app = %app.name, id = webhook.id, by = %auth.user.username, "webhook added");
    Ok((
        StatusCode::CREATED,
        Json(CreatedWebhook { webhook, secret }),
    ))
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, id)): Path<(AppName, u64)>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    if !state.store.remove_webhook(app.id, id).await? {
        return Err(ApiError::new(
            paas_api::ErrorCode::NotFound,
            format!("{} has no webhook {id}.", app.name),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn deliveries(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryAttempt>>> {
    let app = auth.app(&state, &name).await?;
    let limit = query
        .limit
        .unwrap_or(DEFAULT_ATTEMPTS_SHOWN)
        .clamp(1, MAX_ATTEMPTS_SHOWN);
    Ok(Json(
        state
            .store
            .delivery_attempts(app.id, query.webhook, limit)
            .await?,
    ))
}

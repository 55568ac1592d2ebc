//! The delivery worker, a task `serve` starts: it posts each due delivery, records the attempt
//! and, on failure (no answer within the timeout, or a status other than 2xx), makes it due
//! again after the back-off ([`super::backoff`]) until the attempts are used up. It sleeps
//! until the next delivery is due or a new one is queued. The queue is in the store, so what
//! was due when gitd stopped is delivered after it starts.

use std::time::Duration;

use chrono::Utc;
use paas_api::webhooks::{AttemptResult, DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER};

use super::{WebhookSettings, addresses, backoff, signing};
use crate::state::SharedState;
use crate::store::{AttemptRecord, DueDelivery};

/// Deliveries attempted at once.
const BATCH: u32 = 16;
/// The longest the worker sleeps without looking at the queue.
const IDLE: Duration = Duration::from_secs(60);

/// Runs until the task is aborted.
pub async fn deliver(state: SharedState) {
    loop {
        match state
            .store
            .due_deliveries(Utc::now().timestamp_millis(), BATCH)
            .await
        {
            Ok(due) if !due.is_empty() => {
                futures::future::join_all(
                    due.into_iter().map(|delivery| attempt(&state, delivery)),
                )
                .await;
                continue;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(error = %err, "cannot read the webhook deliveries due"),
        }
        let wait = match state.store.next_delivery_due().await {
            Ok(Some(due)) => {
                let in_ms = due.saturating_sub(Utc::now().timestamp_millis()).max(0) as u64;
                Duration::from_millis(in_ms).min(IDLE)
            }
            _ => IDLE,
        };
        tokio::select! {
            () = state.webhooks.queued.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One attempt at `delivery`, recorded with what happens next.
async fn attempt(state: &SharedState, delivery: DueDelivery) {
    let settings = &state.config.webhooks;
    let at_ms = Utc::now().timestamp_millis();
    let result = post(settings, &delivery).await;
    let made = delivery.attempts + 1;
    let delivered = matches!(result, AttemptResult::Status(status) if (200..300).contains(&status));
    let retry_in_ms = if delivered {
        None
    } else {
        backoff::retry_delay(settings, made).map(|wait| wait.as_millis() as u64)
    };
    if !delivered {
        tracing::info!(app_id = delivery.app_id, url = %delivery.url, attempt = made, ?result, ?retry_in_ms, "webhook delivery failed");
    }
    let record = AttemptRecord {
        at_ms,
        result,
        retry_in_ms,
    };
    if let Err(err) = state.store.record_attempt(delivery.id, record).await {
        tracing::error!(error = %err, "cannot record a webhook delivery attempt");
    }
}

/// Posts the delivery to the addresses its host resolves to now, if they are allowed.
async fn post(settings: &WebhookSettings, delivery: &DueDelivery) -> AttemptResult {
    let url = match reqwest::Url::parse(delivery.url.as_str()) {
        Ok(url) => url,
        Err(err) => return AttemptResult::Error(format!("invalid URL: {err}")),
    };
    let host = delivery.url.host();
    let port = url.port_or_known_default().unwrap_or(80);
    let addresses = match addresses::resolve(host, port, settings.allow_private_addresses).await {
        Ok(addresses) => addresses,
        Err(err) => return AttemptResult::Error(err.to_string()),
    };
    let timeout = Duration::from_millis(settings.timeout_ms);
    let client = reqwest::Client::builder()
        // A redirect would reach an address nobody checked.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        // Connects to the addresses checked, not to what a second lookup might answer.
        .resolve_to_addrs(host, &addresses)
        .user_agent(concat!("paas-webhooks/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => return AttemptResult::Error(format!("cannot make an HTTP client: {err}")),
    };
    let signature = signing::signature(
        delivery.secret.as_str(),
        Utc::now().timestamp(),
        &delivery.body,
    );
    let sent = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature)
        .header(DELIVERY_HEADER, &delivery.payload_id)
        .header(EVENT_HEADER, delivery.event.as_str())
        .body(delivery.body.clone())
        .send()
        .await;
    match sent {
        Ok(response) => AttemptResult::Status(response.status().as_u16()),
        Err(err) if err.is_timeout() => {
            AttemptResult::Error(format!("no answer within {} ms", settings.timeout_ms))
        }
        Err(err) => AttemptResult::Error(root_cause(&err)),
    }
}

/// The innermost reason (`Connection refused (os error 111)`), not reqwest's wrapping.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

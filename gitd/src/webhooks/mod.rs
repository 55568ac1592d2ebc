//! Notifications: an app's webhooks are told what happens to it. [`notify`] is called where
//! things happen (the ops layer's outcomes, and [`instance_event`] for the agent's instance
//! events that gitd follows); it queues a signed delivery in the store for each of the app's
//! webhooks that include the event, and wakes the worker ([`delivery`]), which posts them and
//! retries failures with back-off ([`backoff`]), to allowed addresses only ([`addresses`]).
//! Like recording a platform event, notifying never fails the change it describes: a
//! database error is logged.

pub mod addresses;
pub mod backoff;
pub mod delivery;
pub mod selection;
pub mod signing;

use chrono::Utc;
use paas_api::agent::InstanceEvent;
use paas_api::types::Release;
use paas_api::webhooks::{EventDetails, WebhookEvent, WebhookPayload};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

use crate::state::SharedState;

/// `[webhooks]` in gitd.toml.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookSettings {
    /// Deliver to loopback, private and link-local addresses too: for local development and
    /// tests only, never where tenants are not trusted with the host's network.
    pub allow_private_addresses: bool,
    /// Attempts per delivery, the first included.
    pub attempts: u32,
    /// The wait before the first retry, doubled for each one after.
    pub first_retry_ms: u64,
    /// How long a receiver has to answer.
    pub timeout_ms: u64,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            allow_private_addresses: false,
            attempts: 6,
            first_retry_ms: 1000,
            timeout_ms: 5000,
        }
    }
}

/// What the worker and the event sources share.
#[derive(Default)]
pub struct Webhooks {
    /// Woken when deliveries are queued.
    pub queued: Notify,
    pub crashes: selection::CrashWatch,
}

/// Queues `event` for the app's webhooks that include it.
pub async fn notify(
    state: &SharedState,
    app_id: i64,
    app: &str,
    event: WebhookEvent,
    data: EventDetails,
) {
    let payload = WebhookPayload {
        id: format!("{:032x}", rand::random::<u128>()),
        event,
        app: app.to_owned(),
        created_at: Utc::now(),
        data,
    };
    let body = serde_json::to_string(&payload).expect("a payload serializes");
    let queued = state
        .store
        .queue_deliveries(
            app_id,
            event,
            &payload.id,
            &body,
            Utc::now().timestamp_millis(),
        )
        .await;
    match queued {
        Ok(0) => {}
        Ok(_) => state.webhooks.queued.notify_one(),
        Err(err) => tracing::error!(error = %err, %event, "cannot queue a webhook delivery"),
    }
}

/// Notifies what an instance event of the app is, if anything ([`selection`]).
pub async fn instance_event(state: &SharedState, app_id: i64, event: &InstanceEvent) {
    for (kind, details) in state.webhooks.crashes.observe(event) {
        notify(state, app_id, &event.app, kind, details).await;
    }
}

/// The details of an event about `release`: its number, commit and who made it.
pub fn release_details(release: &Release, message: impl Into<String>) -> EventDetails {
    EventDetails {
        message: message.into(),
        release: Some(release.version),
        commit: release.commit.clone(),
        user: Some(release.user.to_string()),
        ..EventDetails::default()
    }
}

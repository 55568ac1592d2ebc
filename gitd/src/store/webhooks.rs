//! Webhooks, the queue of deliveries and the log of their attempts. A delivery is one event
//! for one webhook; it is due (`due_at_ms` set) until it is delivered or given up on, so a
//! restart picks up what was pending. The finished deliveries of an app beyond the newest
//! [`KEPT_FINISHED_PER_APP`] are dropped with their attempts when a new one is queued.

use paas_api::webhooks::{
    AttemptNext, AttemptResult, DeliveryAttempt, Webhook, WebhookEvent, WebhookSecret, WebhookUrl,
};
use rusqlite::{Connection, params};

use super::{Store, StoreResult, now, to_time, typed};

/// Finished deliveries kept per app, with their attempts.
pub const KEPT_FINISHED_PER_APP: u32 = 200;

/// A delivery that is due: what to post, where, and how often it was tried.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub app_id: i64,
    pub payload_id: String,
    pub event: WebhookEvent,
    pub body: String,
    pub url: WebhookUrl,
    pub secret: WebhookSecret,
    /// Attempts made before this one.
    pub attempts: u32,
}

/// An attempt's outcome, as the worker records it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub at_ms: i64,
    pub result: AttemptResult,
    /// When to try again (`None`: delivered or given up).
    pub retry_in_ms: Option<u64>,
}

fn events_text(events: &[WebhookEvent]) -> String {
    events
        .iter()
        .map(|kind| kind.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn read_events(text: &str) -> Vec<WebhookEvent> {
    text.split(',')
        .filter_map(|name| name.parse().ok())
        .collect()
}

fn webhook(row: &rusqlite::Row) -> rusqlite::Result<Webhook> {
    Ok(Webhook {
        id: row.get(0)?,
        url: typed(row, 1)?,
        events: read_events(&row.get::<_, String>(2)?),
        created_at: to_time(row.get(3)?),
    })
}

fn webhooks_of(conn: &Connection, app_id: i64) -> rusqlite::Result<Vec<Webhook>> {
    let mut stmt = conn.prepare(
        "SELECT id, url, events, created_at FROM webhooks WHERE app_id = ?1 ORDER BY id",
    )?;
    stmt.query_map([app_id], webhook)?.collect()
}

impl Store {
    pub async fn add_webhook(
        &self,
        app_id: i64,
        url: &WebhookUrl,
        events: &[WebhookEvent],
        secret: &WebhookSecret,
    ) -> StoreResult<Webhook> {
        let (url, events, secret) = (url.clone(), events.to_vec(), secret.clone());
        self.run(move |conn| {
            let created_at = now();
            conn.execute(
                "INSERT INTO webhooks (app_id, url, events, secret, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    app_id,
                    url.as_str(),
                    events_text(&events),
                    secret.as_str(),
                    created_at
                ],
            )?;
            Ok(Webhook {
                id: conn.last_insert_rowid() as u64,
                url,
                events,
                created_at: to_time(created_at),
            })
        })
        .await
    }

    /// The app's webhooks, oldest first.
    pub async fn webhooks(&self, app_id: i64) -> StoreResult<Vec<Webhook>> {
        self.run(move |conn| Ok(webhooks_of(conn, app_id)?)).await
    }

    /// Whether the app had the webhook; its deliveries and their log go with it.
    pub async fn remove_webhook(&self, app_id: i64, id: u64) -> StoreResult<bool> {
        self.run(move |conn| {
            Ok(conn.execute(
                "DELETE FROM webhooks WHERE app_id = ?1 AND id = ?2",
                params![app_id, id],
            )? > 0)
        })
        .await
    }

    /// Queues `body` (payload `payload_id` of kind `event`) for each of the app's webhooks
    /// that include `event`, due now; returns how many. Old finished deliveries are pruned.
    pub async fn queue_deliveries(
        &self,
        app_id: i64,
        event: WebhookEvent,
        payload_id: &str,
        body: &str,
        now_ms: i64,
    ) -> StoreResult<usize> {
        let (payload_id, body) = (payload_id.to_owned(), body.to_owned());
        self.transaction(move |tx| {
            let mut queued = 0;
            for webhook in webhooks_of(tx, app_id)? {
                if !webhook.events.contains(&event) {
                    continue;
                }
                tx.execute(
                    "INSERT INTO webhook_deliveries
                         (webhook_id, app_id, payload_id, event, body, due_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![webhook.id, app_id, payload_id, event.as_str(), body, now_ms],
                )?;
                queued += 1;
            }
            tx.execute(
                "DELETE FROM webhook_deliveries WHERE app_id = ?1 AND due_at_ms IS NULL
                 AND id NOT IN (SELECT id FROM webhook_deliveries
                                WHERE app_id = ?1 AND due_at_ms IS NULL
                                ORDER BY id DESC LIMIT ?2)",
                params![app_id, KEPT_FINISHED_PER_APP],
            )?;
            Ok(queued)
        })
        .await
    }

    /// Up to `limit` deliveries due at `now_ms`, the longest due first.
    pub async fn due_deliveries(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<DueDelivery>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT d.id, d.app_id, d.payload_id, d.event, d.body, w.url, w.secret, d.attempts
                 FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
                 WHERE d.due_at_ms IS NOT NULL AND d.due_at_ms <= ?1
                 ORDER BY d.due_at_ms, d.id LIMIT ?2",
            )?;
            Ok(stmt
                .query_map(params![now_ms, limit], |r| {
                    Ok(DueDelivery {
                        id: r.get(0)?,
                        app_id: r.get(1)?,
                        payload_id: r.get(2)?,
                        event: typed(r, 3)?,
                        body: r.get(4)?,
                        url: typed(r, 5)?,
                        secret: typed(r, 6)?,
                        attempts: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }

    /// When the next delivery is due, if any is.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<i64>> {
        self.run(|conn| {
            Ok(conn.query_row(
                "SELECT MIN(due_at_ms) FROM webhook_deliveries WHERE due_at_ms IS NOT NULL",
                [],
                |r| r.get(0),
            )?)
        })
        .await
    }

    /// Logs an attempt at `delivery` and makes it due again after `retry_in_ms`, or finished.
    pub async fn record_attempt(&self, delivery: i64, record: AttemptRecord) -> StoreResult<()> {
        self.transaction(move |tx| {
            let (status, error) = match &record.result {
                AttemptResult::Status(status) => (Some(*status), None),
                AttemptResult::Error(error) => (None, Some(error.clone())),
            };
            let due = record
                .retry_in_ms
                .map(|wait| record.at_ms.saturating_add(wait as i64));
            tx.execute(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, due_at_ms = ?2
                 WHERE id = ?1",
                params![delivery, due],
            )?;
            tx.execute(
                "INSERT INTO webhook_attempts
                     (delivery_id, app_id, attempt, at_ms, status, error, retry_in_ms)
                 SELECT id, app_id, attempts, ?2, ?3, ?4, ?5 FROM webhook_deliveries WHERE id = ?1",
                params![delivery, record.at_ms, status, error, record.retry_in_ms],
            )?;
            Ok(())
        })
        .await
    }

    /// The app's newest attempts first, of one webhook or all.
    pub async fn delivery_attempts(
        &self,
        app_id: i64,
        webhook: Option<u64>,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT a.at_ms, d.webhook_id, d.payload_id, d.event, a.attempt, a.status, a.error,
                        a.retry_in_ms
                 FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id
                 WHERE a.app_id = ?1 AND (?2 IS NULL OR d.webhook_id = ?2)
                 ORDER BY a.id DESC LIMIT ?3",
            )?;
            Ok(stmt
                .query_map(params![app_id, webhook, limit], |r| {
                    let status: Option<u16> = r.get(5)?;
                    let retry_in_ms: Option<u64> = r.get(7)?;
                    let result = match status {
                        Some(status) => AttemptResult::Status(status),
                        None => {
                            AttemptResult::Error(r.get::<_, Option<String>>(6)?.unwrap_or_default())
                        }
                    };
                    let next = match (&result, retry_in_ms) {
                        (AttemptResult::Status(status), _) if (200..300).contains(status) => {
                            AttemptNext::Delivered
                        }
                        (_, Some(wait)) => AttemptNext::RetryInMs(wait),
                        (_, None) => AttemptNext::GaveUp,
                    };
                    Ok(DeliveryAttempt {
                        at: chrono::DateTime::from_timestamp_millis(r.get(0)?).unwrap_or_default(),
                        webhook: r.get(1)?,
                        delivery: r.get(2)?,
                        event: typed(r, 3)?,
                        attempt: r.get(4)?,
                        result,
                        next,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    fn url() -> WebhookUrl {
        "https://hooks.example.com/paas".parse().unwrap()
    }

    fn secret() -> WebhookSecret {
        "0123456789abcdef".parse().unwrap()
    }

    #[tokio::test]
    async fn an_event_is_queued_for_the_webhooks_that_include_it_until_it_is_finished() {
        let test = TestStore::new();
        let app = test.app("web").await;
        let deploys = test
            .store
            .add_webhook(app.id, &url(), &[WebhookEvent::DeploySucceeded], &secret())
            .await
            .unwrap();
        test.store
            .add_webhook(app.id, &url(), &[WebhookEvent::Scale], &secret())
            .await
            .unwrap();
        let queued = test
            .store
            .queue_deliveries(app.id, WebhookEvent::DeploySucceeded, "p1", "{}", 1000)
            .await
            .unwrap();
        assert_eq!(queued, 1);
        assert!(test.store.due_deliveries(999, 10).await.unwrap().is_empty());
        let due = test.store.due_deliveries(1000, 10).await.unwrap();
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].attempts, 0);

        let refused = AttemptRecord {
            at_ms: 1000,
            result: AttemptResult::Error("connection refused".into()),
            retry_in_ms: Some(500),
        };
        test.store.record_attempt(due[0].id, refused).await.unwrap();
        assert_eq!(test.store.next_delivery_due().await.unwrap(), Some(1500));
        let delivered = AttemptRecord {
            at_ms: 1500,
            result: AttemptResult::Status(204),
            retry_in_ms: None,
        };
        test.store
            .record_attempt(due[0].id, delivered)
            .await
            .unwrap();
        assert_eq!(test.store.next_delivery_due().await.unwrap(), None);

        let log = test
            .store
            .delivery_attempts(app.id, Some(deploys.id), 10)
            .await
            .unwrap();
        let summary: Vec<(u32, AttemptNext)> =
            log.iter().map(|a| (a.attempt, a.next.clone())).collect();
        assert_eq!(
            summary,
            [
                (2, AttemptNext::Delivered),
                (1, AttemptNext::RetryInMs(500))
            ]
        );
        assert!(test.store.remove_webhook(app.id, deploys.id).await.unwrap());
        assert_eq!(test.count("SELECT COUNT(*) FROM webhook_attempts"), 0);
    }

    #[tokio::test]
    async fn another_apps_webhook_cannot_be_removed_through_this_one() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let other = test.app_of("bob", "other").await;
        let hook = test
            .store
            .add_webhook(web.id, &url(), &[WebhookEvent::Scale], &secret())
            .await
            .unwrap();
        assert!(!test.store.remove_webhook(other.id, hook.id).await.unwrap());
        assert_eq!(test.store.webhooks(web.id).await.unwrap(), [hook]);
    }

    #[tokio::test]
    async fn finished_deliveries_are_bounded_per_app() {
        let test = TestStore::new();
        let app = test.app("web").await;
        test.store
            .add_webhook(app.id, &url(), &[WebhookEvent::Scale], &secret())
            .await
            .unwrap();
        for n in 0..KEPT_FINISHED_PER_APP + 5 {
            let id = format!("p{n}");
            test.store
                .queue_deliveries(app.id, WebhookEvent::Scale, &id, "{}", 0)
                .await
                .unwrap();
            let due = test.store.due_deliveries(0, 10).await.unwrap();
            let gave_up = AttemptRecord {
                at_ms: 0,
                result: AttemptResult::Status(500),
                retry_in_ms: None,
            };
            test.store.record_attempt(due[0].id, gave_up).await.unwrap();
        }
        let kept = test.count("SELECT COUNT(*) FROM webhook_deliveries");
        assert!(kept <= i64::from(KEPT_FINISHED_PER_APP) + 1, "{kept}");
    }
}

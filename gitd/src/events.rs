//! Platform events: what happened to an app and who did it (deploys, releases, scaling, config
//! changes, restarts, rollbacks, domains), shown by `paas logs` as `paas[deploy]: …` lines. They
//! are kept in the database, the newest [`KEPT_PER_APP`] per app, so recent deploys still show
//! after their containers are gone, and announced to the `logs --tail` streams running now.
//! Recording an event never fails the change it describes: a database error is logged.

use paas_api::types::{LogLine, LogSource};
use tokio::sync::broadcast;

use crate::db::queries::{self, EventRow};
use crate::state::SharedState;

/// Events kept per app; older ones are dropped as new ones arrive.
pub const KEPT_PER_APP: u32 = 1000;
/// Events a slow follower may fall behind by before it skips some.
const LIVE_BUFFER: usize = 256;

/// Announces events as they are recorded, by app id.
pub struct EventBus {
    sender: broadcast::Sender<(i64, LogLine)>,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<(i64, LogLine)> {
        self.sender.subscribe()
    }
}

/// Records `message` under `paas[<dyno>]` for the app and announces it.
pub async fn record(state: &SharedState, app_id: i64, dyno: &str, message: impl Into<String>) {
    let line = LogLine {
        timestamp: chrono::Utc::now(),
        source: LogSource::Paas,
        dyno: dyno.to_owned(),
        line: message.into(),
    };
    let row = EventRow {
        at_micros: line.timestamp.timestamp_micros(),
        dyno: line.dyno.clone(),
        message: line.line.clone(),
    };
    let stored = state
        .db
        .call(move |conn| queries::insert_event(conn, app_id, &row, KEPT_PER_APP))
        .await;
    if let Err(err) = stored {
        tracing::error!(error = %err, "cannot record a platform event");
    }
    // Nobody following is fine.
    let _ = state.events.sender.send((app_id, line));
}

/// `web@3 worker@1`, as Heroku words a formation in its scale events.
pub fn formation_summary(formation: &std::collections::BTreeMap<String, u32>) -> String {
    formation
        .iter()
        .map(|(process, quantity)| format!("{process}@{quantity}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A stored event as a log line.
pub fn to_log_line(row: EventRow) -> LogLine {
    LogLine {
        timestamp: chrono::DateTime::from_timestamp_micros(row.at_micros).unwrap_or_default(),
        source: LogSource::Paas,
        dyno: row.dyno,
        line: row.message,
    }
}

//! Platform events: what happened to an app and who did it (deploys, releases, scaling, config
//! changes, restarts, rollbacks, domains), shown by `paas logs` as `paas[deploy]: …` lines. They
//! are kept in the database, the newest [`KEPT_PER_APP`] per app, so recent deploys still show
//! after their containers are gone, and announced to the `logs --tail` streams running now.
//! Recording an event never fails the change it describes: a database error is logged.
//! What happens to the app's containers (`paas[web.1]: Process exited with status 137`) comes
//! from the agent's instance events, followed for as long as gitd runs ([`follow_agent`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::InstanceEvent;
use paas_api::types::{LogLine, LogSource};
use tokio::sync::broadcast;

use crate::state::SharedState;
use crate::store::EventRow;

/// Events kept per app; older ones are dropped as new ones arrive.
pub const KEPT_PER_APP: u32 = 1000;
/// Events a slow follower may fall behind by before it skips some.
const LIVE_BUFFER: usize = 256;
/// The first wait before reconnecting to an agent that is away, doubled per failed attempt…
const RECONNECT_FIRST: Duration = Duration::from_millis(250);
/// …up to this.
const RECONNECT_MAX: Duration = Duration::from_secs(5);

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
    record_at(state, app_id, Utc::now(), dyno, message.into()).await;
}

/// [`record`] for something that happened at `timestamp`.
async fn record_at(
    state: &SharedState,
    app_id: i64,
    timestamp: DateTime<Utc>,
    dyno: &str,
    message: String,
) {
    let line = LogLine {
        timestamp,
        source: LogSource::Paas,
        dyno: dyno.to_owned(),
        line: message,
    };
    let row = EventRow {
        at_micros: line.timestamp.timestamp_micros(),
        dyno: line.dyno.clone(),
        message: line.line.clone(),
    };
    let stored = state.store.record_event(app_id, row, KEPT_PER_APP).await;
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

/// Follows the agent's instance events for as long as gitd runs, recording each as the app's
/// `paas[<process>.<index>]` event. When the agent is away it retries, waiting longer each time
/// up to [`RECONNECT_MAX`], and says so once per outage rather than per attempt.
pub async fn follow_agent(state: SharedState) {
    let Some(agent) = state.agent.as_ref() else {
        return;
    };
    let mut wait = RECONNECT_FIRST;
    let mut away = false;
    loop {
        match agent.events().await {
            Ok(events) => {
                if away {
                    tracing::info!("following the agent's instance events again");
                }
                away = false;
                wait = RECONNECT_FIRST;
                let mut events = std::pin::pin!(events);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) => record_instance_event(&state, event).await,
                        Err(err) => {
                            tracing::warn!(error = %err, "the agent's instance events broke off");
                            away = true;
                            break;
                        }
                    }
                }
            }
            Err(err) => {
                if !away {
                    tracing::warn!(
                        error = %err,
                        "cannot follow the agent's instance events; retrying until it is back"
                    );
                    away = true;
                }
            }
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

async fn record_instance_event(state: &SharedState, event: InstanceEvent) {
    let app_id = state.store.app_id_by_name(&event.app).await;
    match app_id {
        Ok(Some(app_id)) => {
            let dyno = format!("{}.{}", event.process, event.index);
            record_at(state, app_id, event.timestamp, &dyno, event.message).await;
        }
        // The app was deleted meanwhile: its containers' last events belong to nobody.
        Ok(None) => {}
        Err(err) => tracing::error!(error = %err, "cannot record an instance event"),
    }
}

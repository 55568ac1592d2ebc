//! Platform events: what happened to an app and who did it (deploys, releases, scaling, config
//! changes, restarts, rollbacks, domains), shown by `paas logs` as `paas[deploy]: …` lines, each
//! with the release it happened in where there is one (so `logs --release` shows it: a deploy, a
//! restart, what happened to an instance; not a domain or an add-on). They are kept in the database, the newest [`KEPT_PER_APP`] per app, so recent deploys still show
//! after their containers are gone, and announced to the `logs --tail` streams running now.
//! Recording an event never fails the change it describes: a database error is logged.
//! What happens to the app's containers (`paas[web.1]: Process exited with status 137`) comes
//! from the agent's instance events, followed for as long as gitd runs ([`follow_agent`]). The
//! agent numbers them; gitd keeps the position of the last one it recorded in
//! [`AGENT_EVENTS_CURSOR`] (a file in its data dir, not the database: it is a bookmark in the
//! agent's stream), and asks the agent from there when it reconnects or restarts, so what
//! happened to containers while gitd was down or cut off is recorded then, once.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::agent::{EventCursor, InstanceEvent, NumberedEvent};
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

/// The file in gitd's data dir with the position in the agent's events of the last one recorded
/// (`<boot>:<seq>`).
pub const AGENT_EVENTS_CURSOR: &str = "agent-events.cursor";

/// Announces events as they are recorded.
pub struct EventBus {
    sender: broadcast::Sender<Announced>,
}

/// An event as it was recorded, for those following the app's events.
#[derive(Debug, Clone)]
pub struct Announced {
    pub app_id: i64,
    /// The release it happened in, if any.
    pub release: Option<u32>,
    pub line: LogLine,
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus {
            sender: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

impl EventBus {
    pub fn subscribe(&self) -> broadcast::Receiver<Announced> {
        self.sender.subscribe()
    }
}

/// Records `message` under `paas[<dyno>]` for the whole app (no one release) and announces it.
pub async fn record(state: &SharedState, app_id: i64, dyno: &str, message: impl Into<String>) {
    record_at(state, app_id, None, Utc::now(), dyno, message.into()).await;
}

/// [`record`] for something that happened in `release` (`None` when the app has none yet).
pub async fn record_in(
    state: &SharedState,
    app_id: i64,
    release: Option<u32>,
    dyno: &str,
    message: impl Into<String>,
) {
    record_at(state, app_id, release, Utc::now(), dyno, message.into()).await;
}

/// [`record_in`] for something that happened at `timestamp`.
async fn record_at(
    state: &SharedState,
    app_id: i64,
    release: Option<u32>,
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
        release,
    };
    let stored = state.store.record_event(app_id, row, KEPT_PER_APP).await;
    if let Err(err) = stored {
        tracing::error!(error = %err, "cannot record a platform event");
    }
    // Nobody following is fine.
    let _ = state.events.sender.send(Announced {
        app_id,
        release,
        line,
    });
}

/// `web@3 worker@1`, as Heroku words a formation in its scale events.
pub fn formation_summary(
    formation: &std::collections::BTreeMap<paas_api::ProcessType, u32>,
) -> String {
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
/// `paas[<process>.<index>]` event, from where it was the last time (the events the agent kept
/// meanwhile first). When the agent is away it retries, waiting longer each time up to
/// [`RECONNECT_MAX`], and says so once per outage rather than per attempt.
pub async fn follow_agent(state: SharedState) {
    let Some(agent) = state.agent.as_ref() else {
        return;
    };
    let cursor_file = state.data_dir.join(AGENT_EVENTS_CURSOR);
    let mut cursor = read_cursor(&cursor_file);
    let mut wait = RECONNECT_FIRST;
    let mut away = false;
    loop {
        match agent.events(cursor.as_ref()).await {
            Ok(stream) => {
                if away {
                    tracing::info!("following the agent's instance events again");
                }
                away = false;
                wait = RECONNECT_FIRST;
                if cursor.is_none()
                    && let Some(position) = stream.position
                {
                    save_cursor(&cursor_file, &position);
                    cursor = Some(position);
                }
                let mut events = std::pin::pin!(stream.events);
                while let Some(event) = events.next().await {
                    match event {
                        Ok(event) => {
                            let position = recorded_position(&event);
                            record_instance_event(&state, event.event).await;
                            if let Some(position) = position {
                                save_cursor(&cursor_file, &position);
                                cursor = Some(position);
                            }
                        }
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

/// The position after `event`; `None` for an agent that does not number its events.
fn recorded_position(event: &NumberedEvent) -> Option<EventCursor> {
    (event.seq > 0).then(|| EventCursor {
        boot: event.boot.clone(),
        since: event.seq,
    })
}

/// The saved position; none (new events only) when there is no file or it cannot be read.
fn read_cursor(path: &Path) -> Option<EventCursor> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return None,
        Err(err) => {
            tracing::warn!(error = %err, path = %path.display(), "cannot read the agent events cursor");
            return None;
        }
    };
    match text.trim().parse() {
        Ok(cursor) => Some(cursor),
        Err(err) => {
            tracing::warn!(error = %err, path = %path.display(), "ignoring a bad agent events cursor");
            None
        }
    }
}

/// Written atomically (a reader never sees half a cursor). A failure is logged: at worst the
/// events after the last saved position are recorded again after a restart.
fn save_cursor(path: &Path, cursor: &EventCursor) {
    let partial = path.with_extension("partial");
    let written = std::fs::write(&partial, format!("{cursor}\n"))
        .and_then(|()| std::fs::rename(&partial, path));
    if let Err(err) = written {
        tracing::warn!(error = %err, path = %path.display(), "cannot save the agent events cursor");
    }
}

async fn record_instance_event(state: &SharedState, event: InstanceEvent) {
    let app_id = state.store.app_id_by_name(&event.app).await;
    match app_id {
        Ok(Some(app_id)) => {
            crate::webhooks::instance_event(state, app_id, &event).await;
            let dyno = format!("{}.{}", event.process, event.index);
            let release = Some(event.release);
            record_at(
                state,
                app_id,
                release,
                event.timestamp,
                &dyno,
                event.message,
            )
            .await;
        }
        // The app was deleted meanwhile: its containers' last events belong to nobody.
        Ok(None) => {}
        Err(err) => tracing::error!(error = %err, "cannot record an instance event"),
    }
}

//! `GET /v1/apps/{app}/logs?num=N&tail=true&ps=web|web.1&source=app|paas&router=false&release=N`:
//! the app's recent log lines, router lines and platform events merged in time order, then (with
//! `tail`) new ones as they happen. The agent filters its own lines (so `num` counts matching
//! ones); `release` keeps the lines of that release's instances and the events recorded in it,
//! and leaves out app-wide events, which belong to no one release.
//! The agent's stream is relayed line by line (agent → gitd → CLI, NDJSON); only the backlog of
//! at most `num` lines is held, to merge it with the stored events.

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use futures::{Stream, StreamExt};
use paas_api::agent::{LogEntry, LogMessage, LogStream};
use paas_api::types::{LogLine, LogSource, ProcessFilter};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use super::formation::{deploy_failed, no_agent};
use super::{ApiError, ApiResult, AuthUser, Path, Query};
use crate::events;
use crate::state::SharedState;
use crate::store::EventFilter;
use paas_agent_client::LogsRequest;
use paas_api::AppName;

/// Lines shown when the request names no `num`.
const DEFAULT_NUM: usize = 100;
/// The most lines one request may ask for (the agent's own limit).
const MAX_NUM: usize = 100_000;

#[derive(Debug, Deserialize)]
pub struct LogsQuery {
    num: Option<usize>,
    #[serde(default)]
    tail: bool,
    /// A process type or one instance; refused when it is neither.
    ps: Option<ProcessFilter>,
    /// `app` or `paas`.
    source: Option<LogSource>,
    /// `false`: without the router's lines.
    router: Option<bool>,
    /// Only the lines of this release.
    release: Option<u32>,
}

/// Which lines a request wants.
#[derive(Clone)]
struct Filter {
    process: Option<ProcessFilter>,
    source: Option<LogSource>,
}

impl Filter {
    fn wants(&self, line: &LogLine) -> bool {
        let source_ok = self.source.is_none_or(|source| source == line.source);
        // `-p web` keeps the web instances' lines and events, not app-wide events; `-p router`
        // the router's lines.
        let process_ok = self.process.as_ref().is_none_or(|process| {
            process.matches_dyno(&line.dyno)
                || (is_router_line(line) && *process == ProcessFilter::Type(router_process()))
        });
        source_ok && process_ok
    }
}

pub async fn logs(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<LogsQuery>,
) -> ApiResult<Response> {
    let app = auth.app(&state, &name).await?;
    let num = query.num.unwrap_or(DEFAULT_NUM);
    if num == 0 || num > MAX_NUM {
        return Err(ApiError::invalid(format!(
            "Invalid number of lines {num}: use 1 to {MAX_NUM}."
        )));
    }
    let filter = Filter {
        process: query.ps.clone(),
        source: query.source,
    };
    // Subscribed before anything is read, so an event recorded meanwhile is not missed.
    let mut live_events = query.tail.then(|| state.events.subscribe());
    let agent = state.agent.as_ref().ok_or_else(no_agent)?;
    let process = query.ps.as_ref().map(ToString::to_string);
    let release = query.release;
    if release == Some(0) {
        return Err(ApiError::invalid(
            "Invalid release 0: releases start at v1.",
        ));
    }
    let mut agent_stream = agent
        .logs(
            &app.name,
            &LogsRequest {
                tail: num,
                follow: query.tail,
                process: process.as_deref(),
                // Router lines are the platform's: none when only the app's own are asked for.
                router: query.router.unwrap_or(true) && filter.source != Some(LogSource::App),
                release,
            },
        )
        .await
        .map_err(|err| deploy_failed("Could not read the app's logs", &err.into()))?
        .boxed();

    let app_id = app.id;
    let limit = u32::try_from(num).unwrap_or(u32::MAX);
    // Platform events are all `paas`'s: none when only the app's own lines are asked for.
    let stored = if filter.source == Some(LogSource::App) {
        Vec::new()
    } else {
        let events = EventFilter {
            process: query.ps.clone(),
            release,
        };
        state.store.recent_events(app_id, limit, &events).await?
    };
    let mut backlog: Vec<LogLine> = stored
        .into_iter()
        .map(events::to_log_line)
        .filter(|line| filter.wants(line))
        .collect();
    let mut agent_live = false;
    while let Some(message) = agent_stream.next().await {
        match message {
            Ok(LogMessage::Line(entry)) => {
                let line = to_log_line(entry);
                if filter.wants(&line) {
                    backlog.push(line);
                }
            }
            Ok(LogMessage::Live) => {
                agent_live = true;
                break;
            }
            Err(err) => {
                return Err(deploy_failed("Could not read the app's logs", &err.into()));
            }
        }
    }
    backlog.sort_by_key(|line| line.timestamp);
    let skip = backlog.len().saturating_sub(num);
    backlog.drain(..skip);

    let live = async_stream::stream! {
        for line in backlog {
            yield encode(&line);
        }
        let Some(events) = live_events.as_mut() else {
            return;
        };
        let mut agent_stream = agent_live.then_some(agent_stream);
        loop {
            let line = tokio::select! {
                message = next_message(&mut agent_stream) => match message {
                    Some(Ok(LogMessage::Line(entry))) => to_log_line(entry),
                    Some(Ok(LogMessage::Live)) => continue,
                    Some(Err(err)) => {
                        tracing::warn!(error = %err, "the agent's log stream broke");
                        break;
                    }
                    None => break,
                },
                event = events.recv() => match event {
                    Ok(event) if event.app_id == app_id
                        && release.is_none_or(|wanted| event.release == Some(wanted)) => event.line,
                    Ok(_) | Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                },
            };
            if filter.wants(&line) {
                yield encode(&line);
            }
        }
    };
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(
            live.map(Ok::<_, std::convert::Infallible>),
        ))
        .expect("static headers are valid"))
}

/// The next agent message; never resolves once there is no agent stream.
async fn next_message<S>(stream: &mut Option<S>) -> Option<S::Item>
where
    S: Stream + Unpin,
{
    match stream {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

/// The dyno of the router's lines, `paas[router]` (Heroku's `heroku[router]`).
const ROUTER_DYNO: &str = "router";

fn router_process() -> paas_api::ProcessType {
    ROUTER_DYNO
        .parse()
        .expect("`router` is a valid process type")
}

fn is_router_line(line: &LogLine) -> bool {
    line.source == LogSource::Paas && line.dyno == ROUTER_DYNO
}

fn to_log_line(entry: LogEntry) -> LogLine {
    let (source, dyno) = match entry.stream {
        LogStream::Router => (LogSource::Paas, ROUTER_DYNO.to_owned()),
        LogStream::Platform => (
            LogSource::Paas,
            format!("{}.{}", entry.process, entry.index),
        ),
        LogStream::Stdout | LogStream::Stderr => {
            (LogSource::App, format!("{}.{}", entry.process, entry.index))
        }
    };
    LogLine {
        timestamp: entry.timestamp,
        source,
        dyno,
        line: entry.line,
    }
}

fn encode(line: &LogLine) -> Bytes {
    let mut bytes = serde_json::to_vec(line).expect("log lines always serialize");
    bytes.push(b'\n');
    Bytes::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(source: LogSource, dyno: &str) -> LogLine {
        LogLine {
            timestamp: chrono::Utc::now(),
            source,
            dyno: dyno.into(),
            line: "x".into(),
        }
    }

    #[test]
    fn filters_by_source_and_process() {
        let all = Filter {
            process: None,
            source: None,
        };
        assert!(all.wants(&line(LogSource::Paas, "deploy")));
        let web = Filter {
            process: Some("web".parse().unwrap()),
            source: None,
        };
        assert!(web.wants(&line(LogSource::App, "web.2")));
        assert!(web.wants(&line(LogSource::Paas, "web.1")));
        assert!(!web.wants(&line(LogSource::App, "worker.1")));
        assert!(!web.wants(&line(LogSource::Paas, "deploy")));
        let web2 = Filter {
            process: Some("web.2".parse().unwrap()),
            source: None,
        };
        assert!(web2.wants(&line(LogSource::App, "web.2")));
        assert!(!web2.wants(&line(LogSource::App, "web.1")));
        assert!(!web2.wants(&line(LogSource::Paas, "deploy")));
        let platform = Filter {
            process: None,
            source: Some(LogSource::Paas),
        };
        assert!(platform.wants(&line(LogSource::Paas, "scale")));
        assert!(!platform.wants(&line(LogSource::App, "web.1")));
    }

    #[test]
    fn agent_entries_become_dyno_lines() {
        let entry = LogEntry {
            timestamp: chrono::Utc::now(),
            process: "web".into(),
            index: 3,
            stream: LogStream::Platform,
            line: "State changed from starting to up".into(),
            release: Some(2),
        };
        let line = to_log_line(entry.clone());
        assert_eq!(line.dyno, "web.3");
        assert_eq!(line.source, LogSource::Paas);
        let router = to_log_line(LogEntry {
            process: "router".into(),
            index: 0,
            stream: LogStream::Router,
            line: "at=info method=GET".into(),
            ..entry
        });
        assert_eq!(
            (router.source, router.dyno.as_str()),
            (LogSource::Paas, "router")
        );
    }

    #[test]
    fn router_lines_are_kept_by_dash_p_router_only() {
        let router = line(LogSource::Paas, "router");
        let by_type = |process: &str| Filter {
            process: Some(process.parse().unwrap()),
            source: None,
        };
        assert!(by_type("router").wants(&router));
        assert!(!by_type("web").wants(&router));
        assert!(!by_type("router.1").wants(&router));
        assert!(by_type("router").wants(&line(LogSource::App, "router.1")));
        assert!(!by_type("router").wants(&line(LogSource::Paas, "deploy")));
    }
}

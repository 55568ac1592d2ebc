//! `/apps/<name>/logs`: the app's log, live, as `paas logs --tail` shows it. The page's script
//! reads `/apps/<name>/logs/stream`, which is the API's own log route (`GET
//! /v1/apps/<name>/logs?tail=true`, NDJSON) behind the session cookie, and appends each line as
//! text. Filters (process type or instance, source) reload the page; pausing holds new lines
//! back until resumed.

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use paas_api::AppName;
use paas_api::types::{LogSource, ProcessFilter};
use serde::Deserialize;

use super::page::{self, PageError, PageResult};
use super::session::Session;
use crate::http::{Json, Path, handlers};
use crate::state::SharedState;

/// Lines of backlog the view starts with.
const BACKLOG: u32 = 200;

#[derive(Deserialize)]
pub struct ViewQuery {
    /// A process type or instance; empty for all.
    #[serde(default)]
    ps: String,
    /// `app`, `paas`, or empty for both.
    #[serde(default)]
    source: String,
}

pub async fn show(
    State(state): State<SharedState>,
    session: Session,
    Path(name): Path<AppName>,
    Query(query): Query<ViewQuery>,
) -> PageResult {
    let Json(app) = handlers::app(State(state.clone()), session.auth(), Path(name)).await?;
    let process = (!query.ps.is_empty())
        .then(|| query.ps.parse::<ProcessFilter>())
        .transpose()
        .map_err(|err| PageError::new(axum::http::StatusCode::BAD_REQUEST, err.to_string()))?;
    let source = match query.source.as_str() {
        "" => None,
        "app" => Some(LogSource::App),
        "paas" => Some(LogSource::Paas),
        other => {
            return Err(PageError::new(
                axum::http::StatusCode::BAD_REQUEST,
                format!("Unknown log source {other:?}: use app or paas."),
            ));
        }
    };
    let mut stream = format!("/apps/{}/logs/stream?tail=true&num={BACKLOG}", app.name);
    if let Some(process) = &process {
        stream.push_str(&format!("&ps={process}"));
    }
    if let Some(source) = source {
        stream.push_str(&format!("&source={}", source.as_str()));
    }
    let selected_process = process
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let body = html! {
        main class="logs-page" {
            h1 { "Logs of " (app.name) }
            (page::app_tabs(&app.name, page::AppTab::Logs))
            form method="get" class="inline filters" {
                label for="ps" { "Process" }
                select id="ps" name="ps" {
                    option value="" selected[selected_process.is_empty()] { "all" }
                    @for process in app.formation.keys() {
                        option value=(process) selected[selected_process == process.as_str()] {
                            (process)
                        }
                    }
                }
                label for="source" { "Source" }
                select id="source" name="source" {
                    option value="" selected[source.is_none()] { "app and platform" }
                    option value="app" selected[source == Some(LogSource::App)] { "app" }
                    option value="paas" selected[source == Some(LogSource::Paas)] { "platform" }
                }
                button type="submit" { "Filter" }
                button type="button" id="pause" aria-pressed="false" { "Pause" }
                span id="log-status" role="status" { "Connecting…" }
            }
            ol id="log" class="log" data-stream=(stream) tabindex="0" aria-label="Log lines" {}
        }
    };
    Ok(page::document(
        &format!("Logs of {}", app.name),
        Some(&session.0),
        body,
    ))
}

/// The API's log stream, for the session's user.
pub async fn stream(
    State(state): State<SharedState>,
    session: Session,
    Path(name): Path<AppName>,
    query: crate::http::Query<handlers::LogsQuery>,
) -> Result<Response, PageError> {
    Ok(handlers::logs(State(state), session.auth(), Path(name), query).await?)
}

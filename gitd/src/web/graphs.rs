//! `/apps/<name>/metrics`: the app's graphs over the last hour or 24 hours, as `paas metrics`
//! lists them: requests per second, responses by status class and latency (from Traefik), then
//! CPU and memory of each process type, in total and per instance (from Docker stats), with
//! deploys and restarts marked on every time axis. The data is the API's own
//! (`GET /v1/apps/<name>/metrics`); `/apps/<name>/metrics/graphs` answers the graphs alone,
//! which the page's script fetches every few seconds to keep them live.

use axum::extract::{Query, State};
use maud::{Markup, html};
use paas_api::AppName;
use paas_api::metrics::{
    AppMetrics, MetricsPeriod, MetricsQuery, ProcessMetrics, RequestPoint, ResourcePoint,
    StatusClasses,
};

use super::chart::{Chart, Series, Unit};
use super::page::{self, PageResult};
use super::session::Session;
use crate::http::{Json, Path, Query as ApiQuery, handlers};
use crate::state::SharedState;

/// How often the page's script fetches the graphs again, in milliseconds.
const REFRESH_MS: u32 = 5000;

pub async fn show(
    State(state): State<SharedState>,
    session: Session,
    Path(name): Path<AppName>,
    Query(query): Query<MetricsQuery>,
) -> PageResult {
    let metrics = app_metrics(&state, &session, name, query.period).await?;
    let refresh = format!(
        "/apps/{}/metrics/graphs?period={}",
        metrics.app, metrics.period
    );
    let body = html! {
        main {
            h1 { "Metrics of " (metrics.app) }
            (page::app_tabs(&metrics.app, page::AppTab::Metrics))
            nav aria-label="Period" class="periods" {
                @for period in [MetricsPeriod::Hour, MetricsPeriod::Day] {
                    a href={ "/apps/" (metrics.app) "/metrics?period=" (period) }
                        aria-current=[(period == metrics.period).then_some("page")] {
                        "Last " (period)
                    }
                }
                span id="graphs-status" role="status" { "Live" }
            }
            section id="graphs" aria-label="Graphs" data-refresh=(refresh)
                data-every-ms=(REFRESH_MS) {
                (graphs(&metrics))
            }
        }
    };
    Ok(page::document(
        &format!("Metrics of {}", metrics.app),
        Some(&session.0),
        body,
    ))
}

/// The graphs alone, for the page's script to swap in.
pub async fn fragment(
    State(state): State<SharedState>,
    session: Session,
    Path(name): Path<AppName>,
    Query(query): Query<MetricsQuery>,
) -> PageResult {
    let metrics = app_metrics(&state, &session, name, query.period).await?;
    Ok(graphs(&metrics))
}

async fn app_metrics(
    state: &SharedState,
    session: &Session,
    name: AppName,
    period: MetricsPeriod,
) -> Result<AppMetrics, page::PageError> {
    let Json(metrics) = handlers::metrics(
        State(state.clone()),
        session.auth(),
        Path(name),
        ApiQuery(MetricsQuery { period }),
    )
    .await?;
    Ok(metrics)
}

fn graphs(metrics: &AppMetrics) -> Markup {
    let per_second = |requests: u64| requests as f64 / f64::from(metrics.resolution_secs);
    let chart = |id: &str, title: String, unit: Unit, series: Vec<Series>| Chart {
        id: id.to_owned(),
        title,
        unit,
        from: metrics.from,
        to: metrics.to,
        resolution_secs: metrics.resolution_secs,
        series,
        markers: &metrics.markers,
    };
    let requests = &metrics.requests;
    let status_class = |name: &str, count: fn(&StatusClasses) -> u64| Series {
        name: name.to_owned(),
        points: requests
            .iter()
            .map(|point| (point.at, per_second(count(&point.status))))
            .collect(),
    };
    let status_classes = vec![
        status_class("2xx", |status| status.success),
        status_class("3xx", |status| status.redirect),
        status_class("4xx", |status| status.client_error),
        status_class("5xx", |status| status.server_error),
    ];
    let latency = |name: &str, pick: fn(&RequestPoint) -> Option<f64>| Series {
        name: name.to_owned(),
        points: requests
            .iter()
            .filter_map(|point| pick(point).map(|ms| (point.at, ms)))
            .collect(),
    };
    html! {
        @if requests.is_empty() && metrics.processes.is_empty() {
            p { "No samples yet: they are taken while the app's instances run." }
        }
        (chart("requests", "Requests".into(), Unit::PerSecond, vec![Series {
            name: "requests/s".into(),
            points: requests.iter().map(|point| (point.at, point.requests_per_sec)).collect(),
        }]).render())
        (chart("status", "Responses by status".into(), Unit::PerSecond, status_classes).render())
        (chart("latency", "Latency".into(), Unit::Millis, vec![
            latency("p50", |point| point.p50_ms),
            latency("p95", |point| point.p95_ms),
        ]).render())
        @for process in &metrics.processes {
            (chart(&format!("cpu-{}", process.process), format!("CPU of {}", process.process),
                Unit::Percent, resource_series(process, |point| point.cpu_percent)).render())
            (chart(&format!("memory-{}", process.process), format!("Memory of {}", process.process),
                Unit::Bytes, resource_series(process, |point| point.memory_bytes as f64)).render())
        }
    }
}

/// The process type's total, then each instance's own line.
fn resource_series(process: &ProcessMetrics, value: fn(&ResourcePoint) -> f64) -> Vec<Series> {
    let line = |points: &[ResourcePoint]| points.iter().map(|p| (p.at, value(p))).collect();
    let mut series = vec![Series {
        name: format!("{} total", process.process),
        points: line(&process.total),
    }];
    series.extend(process.instances.iter().map(|instance| Series {
        name: instance.instance.clone(),
        points: line(&instance.points),
    }));
    series
}

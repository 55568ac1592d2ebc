//! The apps' metrics: gitd pulls the agent's sampling rounds every [`PULL_EVERY`] (and before
//! answering a metrics request, so graphs are as fresh as the agent's last round) from the
//! time of the newest round it stored, so after being down it catches up on as much as the
//! agent kept (an hour by default); the store adds them into its 10 s and 1 min slots and
//! deletes what is past retention. [`app_metrics`] shapes an app's stored slots into the API's
//! series.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use paas_api::metrics::{
    AppMetrics, InstanceMetrics, Marker, MetricsPeriod, ProcessMetrics, RequestPoint,
    ResourcePoint, SampleQuery, StatusClasses,
};
use paas_api::{AppName, ProcessType};

use crate::state::SharedState;
use crate::store::{InstanceSlot, MetricsRows, RequestSlot, Resolution, StoreError};

/// How often gitd pulls the agent's rounds.
pub const PULL_EVERY: Duration = Duration::from_secs(10);
/// A pull reads at most this many pages, so a request that pulls first is answered soon.
const MAX_PAGES: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("cannot read the agent's metrics: {0}")]
    Agent(#[from] paas_agent_client::RuntimeError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Pulls for as long as gitd runs; an agent that is away is tried again next time, and said
/// so once per outage.
pub async fn pull_periodically(state: SharedState) {
    let mut ticks = tokio::time::interval(PULL_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut away = false;
    loop {
        ticks.tick().await;
        match pull(&state).await {
            Ok(()) if away => {
                tracing::info!("pulling the agent's metrics again");
                away = false;
            }
            Ok(()) => {}
            Err(err) if !away => {
                tracing::warn!(error = %err, "cannot pull metrics; retrying");
                away = true;
            }
            Err(_) => {}
        }
    }
}

/// Stores the rounds the agent took since the newest one stored, and deletes what is past
/// retention. Without an agent there is nothing to pull.
pub async fn pull(state: &SharedState) -> Result<(), PullError> {
    let Some(agent) = state.agent.as_ref() else {
        return Ok(());
    };
    for _ in 0..MAX_PAGES {
        let after = state.store.metrics_cursor().await?;
        let batch = agent.metrics(SampleQuery { after }).await?;
        state.store.ingest_metrics(batch.rounds).await?;
        if !batch.more {
            break;
        }
    }
    state.store.prune_metrics(Utc::now().timestamp()).await?;
    Ok(())
}

/// The resolution a period is read at: 10 s slots for an hour, 1 min slots for a day.
pub fn resolution_of(period: MetricsPeriod) -> Resolution {
    match period {
        MetricsPeriod::Hour => Resolution::Fine,
        MetricsPeriod::Day => Resolution::Coarse,
    }
}

/// An app's stored slots as the API's series, the period ending at `to`.
pub fn app_metrics(
    app: AppName,
    period: MetricsPeriod,
    to: DateTime<Utc>,
    rows: MetricsRows,
) -> AppMetrics {
    let resolution = resolution_of(period);
    let from = to - chrono::Duration::seconds(period.seconds());
    let mut by_process: BTreeMap<String, BTreeMap<u32, Vec<ResourcePoint>>> = BTreeMap::new();
    let mut totals: BTreeMap<String, BTreeMap<i64, ResourcePoint>> = BTreeMap::new();
    for slot in rows.instances {
        let InstanceSlot {
            slot,
            process,
            index,
            cpu_percent,
            memory_bytes,
            memory_limit_bytes,
        } = slot;
        let point = ResourcePoint {
            at: time_of(slot),
            cpu_percent,
            memory_bytes,
            memory_limit_bytes,
        };
        let total = totals
            .entry(process.clone())
            .or_default()
            .entry(slot)
            .or_insert_with(|| ResourcePoint {
                at: point.at,
                cpu_percent: 0.0,
                memory_bytes: 0,
                memory_limit_bytes: Some(0),
            });
        total.cpu_percent += point.cpu_percent;
        total.memory_bytes += point.memory_bytes;
        total.memory_limit_bytes = total
            .memory_limit_bytes
            .zip(point.memory_limit_bytes)
            .map(|(sum, limit)| sum + limit);
        by_process
            .entry(process)
            .or_default()
            .entry(index)
            .or_default()
            .push(point);
    }
    let processes = by_process
        .into_iter()
        .filter_map(|(process, instances)| {
            let total = totals.remove(&process).unwrap_or_default();
            Some(ProcessMetrics {
                process: process.parse::<ProcessType>().ok()?,
                total: total.into_values().collect(),
                instances: instances
                    .into_iter()
                    .map(|(index, points)| InstanceMetrics {
                        instance: format!("{process}.{index}"),
                        index,
                        points,
                    })
                    .collect(),
            })
        })
        .collect();
    let requests = rows
        .requests
        .into_iter()
        .map(|slot| request_point(slot, resolution, to))
        .collect();
    let markers = rows
        .markers
        .into_iter()
        .map(|marker| Marker {
            at: DateTime::from_timestamp_micros(marker.at_micros).unwrap_or_default(),
            kind: marker.kind,
            label: marker.label,
        })
        .collect();
    AppMetrics {
        app,
        period,
        resolution_secs: resolution.seconds() as u32,
        from,
        to,
        processes,
        requests,
        markers,
    }
}

fn time_of(slot: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(slot, 0).unwrap_or_default()
}

/// The rate of the slot still filling is over the part of it that has passed.
fn request_point(slot: RequestSlot, resolution: Resolution, to: DateTime<Utc>) -> RequestPoint {
    let passed = (to.timestamp() - slot.slot).clamp(1, resolution.seconds());
    let [success, redirect, client_error, server_error] = slot.status;
    RequestPoint {
        at: time_of(slot.slot),
        requests: slot.requests,
        requests_per_sec: slot.requests as f64 / passed as f64,
        status: StatusClasses {
            success,
            redirect,
            client_error,
            server_error,
        },
        p50_ms: slot.p50_ms,
        p95_ms: slot.p95_ms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MarkerRow;
    use paas_api::metrics::MarkerKind;

    fn instance(slot: i64, process: &str, index: u32, cpu: f64) -> InstanceSlot {
        InstanceSlot {
            slot,
            process: process.into(),
            index,
            cpu_percent: cpu,
            memory_bytes: 100,
            memory_limit_bytes: Some(1000),
        }
    }

    #[test]
    fn slots_become_series_per_instance_with_totals_per_process_type() {
        let rows = MetricsRows {
            instances: vec![
                instance(600, "web", 1, 10.0),
                instance(600, "web", 2, 5.0),
                instance(600, "worker", 1, 1.0),
                instance(610, "web", 1, 20.0),
            ],
            requests: vec![RequestSlot {
                slot: 610,
                requests: 50,
                status: [45, 0, 3, 2],
                p50_ms: Some(3.0),
                p95_ms: Some(9.0),
            }],
            markers: vec![MarkerRow {
                at_micros: 605_000_000,
                kind: MarkerKind::Deploy,
                label: "v2".into(),
            }],
        };
        let to = time_of(615);
        let metrics = app_metrics("hello".parse().unwrap(), MetricsPeriod::Hour, to, rows);
        assert_eq!(metrics.resolution_secs, 10);
        assert_eq!(metrics.from, time_of(615 - 3600));
        let web = &metrics.processes[0];
        assert_eq!(web.process.as_str(), "web");
        assert_eq!(web.instances.len(), 2);
        assert_eq!(web.instances[0].instance, "web.1");
        assert_eq!(web.instances[0].points.len(), 2);
        assert_eq!(web.total[0].cpu_percent, 15.0);
        assert_eq!(web.total[0].memory_bytes, 200);
        assert_eq!(web.total[0].memory_limit_bytes, Some(2000));
        assert_eq!(web.total[1].cpu_percent, 20.0);
        assert_eq!(metrics.processes[1].process.as_str(), "worker");
        assert_eq!(
            metrics.requests[0].requests_per_sec, 10.0,
            "50 requests in the 5 s of the slot that passed"
        );
        assert_eq!(metrics.requests[0].status.client_error, 3);
        assert_eq!(metrics.markers[0].at, time_of(605));
    }

    #[test]
    fn a_full_slot_rates_over_its_length() {
        let slot = RequestSlot {
            slot: 0,
            requests: 120,
            status: [120, 0, 0, 0],
            p50_ms: None,
            p95_ms: None,
        };
        let point = request_point(slot, Resolution::Coarse, time_of(3600));
        assert_eq!(point.requests_per_sec, 2.0);
    }
}

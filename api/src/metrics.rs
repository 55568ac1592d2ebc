//! Metrics on the wire: what the agent samples (`GET /v1/metrics?after=<ms>` on the agent:
//! [`SampleBatch`]) and what gitd answers for an app (`GET /v1/apps/{app}/metrics?period=1h|24h`:
//! [`AppMetrics`]), which the CLI (`paas metrics`) and the dashboard's graphs read.
//!
//! Units are in the field names: CPU in percent of one core (`cpu_percent`, 200.0 is two cores
//! busy), memory in bytes, latency in milliseconds, times as RFC 3339 UTC and, on the agent's
//! cursor, Unix milliseconds.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{AppName, ProcessType};

/// One sampling round of the agent: every running instance's CPU and memory, and the requests
/// Traefik routed to each app since the round before.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRound {
    /// When the round was taken, Unix milliseconds: the cursor gitd asks from (`after`).
    pub at_ms: i64,
    /// How long the requests of this round were counted over, in milliseconds.
    pub interval_ms: u64,
    /// How long the round took the agent (Docker's stats of every instance, Traefik's
    /// metrics): what sampling costs.
    pub took_ms: u64,
    pub instances: Vec<InstanceSample>,
    /// Apps that were routed no request this round are left out.
    pub requests: Vec<RequestSample>,
}

/// One instance's resource use at the moment of a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSample {
    pub app: AppName,
    pub process: ProcessType,
    pub index: u32,
    /// Since the instance's previous sample, in percent of one core.
    pub cpu_percent: f64,
    /// Resident use without the reclaimable file cache, as `docker stats` counts it.
    pub memory_bytes: u64,
    /// The container's memory limit; none when it has none.
    pub memory_limit_bytes: Option<u64>,
}

/// The requests Traefik routed to one app during a round.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestSample {
    pub app: AppName,
    pub requests: u64,
    pub status: StatusClasses,
    /// Estimated from Traefik's latency histogram; none when no request was timed.
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// Responses by status class (1xx and anything odd count in none of them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusClasses {
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirect: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
}

impl StatusClasses {
    /// Counts `count` responses with HTTP status `code`.
    pub fn add(&mut self, code: u16, count: u64) {
        match code {
            200..=299 => self.success += count,
            300..=399 => self.redirect += count,
            400..=499 => self.client_error += count,
            500..=599 => self.server_error += count,
            _ => {}
        }
    }
}

/// `GET /v1/metrics?after=<ms>` on the agent: the kept rounds taken after `after`, oldest
/// first, at most a page of them; `more` says another page follows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleBatch {
    pub rounds: Vec<SampleRound>,
    pub more: bool,
}

/// The query of the agent's `GET /v1/metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct SampleQuery {
    /// Unix milliseconds; rounds taken at or before it are left out. None: every kept round.
    pub after: Option<i64>,
}

/// The span `GET /v1/apps/{app}/metrics` covers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetricsPeriod {
    #[default]
    #[serde(rename = "1h")]
    Hour,
    #[serde(rename = "24h")]
    Day,
}

impl MetricsPeriod {
    pub fn seconds(self) -> i64 {
        match self {
            MetricsPeriod::Hour => 3600,
            MetricsPeriod::Day => 24 * 3600,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MetricsPeriod::Hour => "1h",
            MetricsPeriod::Day => "24h",
        }
    }
}

impl fmt::Display for MetricsPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MetricsPeriod {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "1h" => Ok(MetricsPeriod::Hour),
            "24h" => Ok(MetricsPeriod::Day),
            other => Err(format!("invalid period {other:?}: use 1h or 24h")),
        }
    }
}

/// The query of gitd's `GET /v1/apps/{app}/metrics`.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct MetricsQuery {
    #[serde(default)]
    pub period: MetricsPeriod,
}

/// `GET /v1/apps/{app}/metrics`: an app's series over a period, oldest point first. Every
/// series has one point per `resolution_secs` slot that had samples; slots without any are
/// absent (no instance ran, gitd or the agent was down), so graphs should not join across
/// gaps longer than the resolution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppMetrics {
    pub app: AppName,
    pub period: MetricsPeriod,
    pub resolution_secs: u32,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// By process type, in name order.
    pub processes: Vec<ProcessMetrics>,
    pub requests: Vec<RequestPoint>,
    /// Deploys, rollbacks, other releases and restarts, on the same time axis.
    pub markers: Vec<Marker>,
}

/// One process type: the sum over its instances per slot, and each instance's own series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessMetrics {
    pub process: ProcessType,
    pub total: Vec<ResourcePoint>,
    /// By index.
    pub instances: Vec<InstanceMetrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceMetrics {
    /// `web.1`, as `paas ps` names it.
    pub instance: String,
    pub index: u32,
    pub points: Vec<ResourcePoint>,
}

/// Resource use over one slot: mean CPU, peak memory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourcePoint {
    pub at: DateTime<Utc>,
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
}

/// Requests over one slot. The percentiles of a slot longer than a sampling round are
/// combined from the rounds' own: p50 their mean weighted by requests, p95 their maximum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestPoint {
    pub at: DateTime<Utc>,
    pub requests: u64,
    pub requests_per_sec: f64,
    pub status: StatusClasses,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MarkerKind {
    Deploy,
    Rollback,
    /// Any other release: config change, resize, storage.
    Release,
    Restart,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Marker {
    pub at: DateTime<Utc>,
    pub kind: MarkerKind,
    /// `v7`, or the restart event's words.
    pub label: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_fall_into_their_class() {
        let mut classes = StatusClasses::default();
        for (code, count) in [(200, 3), (204, 1), (301, 2), (404, 5), (503, 7), (101, 9)] {
            classes.add(code, count);
        }
        assert_eq!(
            serde_json::to_value(classes).unwrap(),
            serde_json::json!({"2xx": 4, "3xx": 2, "4xx": 5, "5xx": 7})
        );
    }

    #[test]
    fn periods_parse_and_travel_as_typed() {
        assert_eq!("1h".parse(), Ok(MetricsPeriod::Hour));
        assert_eq!("24h".parse(), Ok(MetricsPeriod::Day));
        assert!("2h".parse::<MetricsPeriod>().is_err());
        assert_eq!(
            serde_json::to_string(&MetricsPeriod::Day).unwrap(),
            "\"24h\""
        );
        assert_eq!(MetricsPeriod::Day.seconds(), 86_400);
    }
}

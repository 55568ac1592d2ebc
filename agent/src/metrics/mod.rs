//! Metrics sampling: every [`MetricsConfig::interval_secs`] one round ([`sample_rounds`]) reads
//! every running instance's CPU and memory from Docker ([`instances`]) and the requests Traefik
//! routed to each app since the round before, from its Prometheus metrics
//! (`<runtime.traefik_api>/metrics`, which `paas-agent traefik-config` turns on; [`prometheus`],
//! [`requests`]). The rounds of the last [`MetricsConfig::keep_secs`] are kept in memory
//! ([`SampleLog`]) for gitd, which pulls them (`GET /v1/metrics?after=<ms>`) and keeps them; a
//! gitd that was down catches up on what is still kept. Nothing is persisted: a restarted agent
//! starts a new log (and its first round of requests is only a baseline).
//!
//! Route: `GET /v1/metrics`.

mod instances;
mod prometheus;
mod requests;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use paas_api::AppName;
use paas_api::metrics::{SampleBatch, SampleQuery, SampleRound};
use serde::{Deserialize, Serialize};
use tracing::{debug, warn};

pub use requests::BUCKETS;

use crate::naming::TRAEFIK_LABEL_PREFIX;
use crate::naming::traefik::traefik_labels;
use crate::runtime;
use crate::state::AgentState;

/// The most rounds one `GET /v1/metrics` answers; `more` says the rest follows.
const PAGE: usize = 360;
/// A scrape of Traefik that takes longer is given up for the round.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// `[metrics]` in the agent's config.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Seconds between sampling rounds.
    pub interval_secs: u64,
    /// How long rounds are kept for gitd to pull (and to catch up on after it was down).
    pub keep_secs: u64,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            interval_secs: 10,
            keep_secs: 3600,
        }
    }
}

impl MetricsConfig {
    fn interval(&self) -> Duration {
        Duration::from_secs(self.interval_secs.max(1))
    }

    fn kept_rounds(&self) -> usize {
        (self.keep_secs / self.interval_secs.max(1)).max(1) as usize
    }
}

/// The kept rounds, oldest first.
#[derive(Default)]
pub struct SampleLog {
    rounds: Mutex<VecDeque<SampleRound>>,
}

impl SampleLog {
    fn push(&self, round: SampleRound, keep: usize) {
        let mut rounds = self
            .rounds
            .lock()
            .expect("the sample log is never poisoned");
        rounds.push_back(round);
        while rounds.len() > keep {
            rounds.pop_front();
        }
    }

    /// The kept rounds taken after `after` (all without it), a page at most.
    fn after(&self, after: Option<i64>) -> SampleBatch {
        let rounds = self
            .rounds
            .lock()
            .expect("the sample log is never poisoned");
        let mut newer = rounds
            .iter()
            .filter(|round| after.is_none_or(|after| round.at_ms > after));
        let page: Vec<SampleRound> = newer.by_ref().take(PAGE).cloned().collect();
        SampleBatch {
            rounds: page,
            more: newer.next().is_some(),
        }
    }
}

pub fn routes() -> axum::Router<AgentState> {
    Router::new().route("/v1/metrics", get(batch))
}

async fn batch(
    State(state): State<AgentState>,
    Query(query): Query<SampleQuery>,
) -> Json<SampleBatch> {
    Json(state.metrics.after(query.after))
}

/// Samples a round every interval for as long as the agent runs.
pub async fn sample_rounds(state: AgentState) {
    let config = state.config.metrics.clone();
    let scrape_url = state
        .config
        .runtime
        .traefik_api
        .as_deref()
        .map(|api| format!("{}/metrics", api.trim_end_matches('/')));
    let http = reqwest::Client::builder()
        .timeout(SCRAPE_TIMEOUT)
        .build()
        .expect("an HTTP client with static settings always builds");
    let mut readings = instances::CpuReadings::default();
    let mut counters = requests::RequestCounters::default();
    let mut ticks = tokio::time::interval(config.interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_round: Option<Instant> = None;
    loop {
        ticks.tick().await;
        let started = Instant::now();
        let instances = match instances::sample(
            &state.docker,
            state.config.instance_key(),
            &mut readings,
        )
        .await
        {
            Ok(instances) => instances,
            Err(err) => {
                warn!(error = %err, "cannot sample the instances' stats");
                Vec::new()
            }
        };
        let requests = match &scrape_url {
            Some(url) => match scrape(&http, url).await {
                Ok(text) => {
                    let samples = prometheus::parse(
                        &text,
                        &[requests::REQUESTS_TOTAL, requests::DURATION_BUCKET],
                    );
                    let services = service_owners(&state);
                    counters.round(&samples, |service| services.get(service).cloned())
                }
                Err(err) => {
                    debug!(error = %err, "cannot read Traefik's metrics");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let interval_ms = last_round
            .map(|last| started.duration_since(last))
            .unwrap_or(config.interval())
            .as_millis() as u64;
        last_round = Some(started);
        let took_ms = started.elapsed().as_millis() as u64;
        debug!(
            instances = instances.len(),
            took_ms, "sampled a metrics round"
        );
        state.metrics.push(
            SampleRound {
                at_ms: chrono::Utc::now().timestamp_millis(),
                interval_ms,
                took_ms,
                instances,
                requests,
            },
            config.kept_rounds(),
        );
    }
}

async fn scrape(http: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    http.get(url).send().await?.error_for_status()?.text().await
}

/// Which app each Traefik service of the agent's routes to (`paas-hello@docker`), from the
/// labels the agent gives the web containers of every app it has a spec of.
fn service_owners(state: &AgentState) -> HashMap<String, AppName> {
    let apps = runtime::apps_with_spec(state)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|app| {
            let hosts = runtime::app_hosts(state, &app).ok()?;
            Some((app.parse().ok()?, hosts))
        });
    owners_of_services(apps, &state.config.runtime)
}

/// The services the labels of each app's web containers define (plain and sticky, since a
/// rollout may have both), by Traefik's name for them; a name two apps would define is
/// nobody's.
fn owners_of_services(
    apps: impl Iterator<Item = (AppName, Vec<String>)>,
    config: &crate::config::RuntimeConfig,
) -> HashMap<String, AppName> {
    let services_prefix = format!("{TRAEFIK_LABEL_PREFIX}http.services.");
    let mut owners: HashMap<String, Option<AppName>> = HashMap::new();
    for (app, hosts) in apps {
        for sticky in [false, true] {
            let labels = traefik_labels(app.as_str(), &hosts, sticky, config);
            for label in labels.keys() {
                let Some(service) = label
                    .strip_prefix(&services_prefix)
                    .and_then(|rest| rest.split('.').next())
                else {
                    continue;
                };
                owners
                    .entry(format!("{service}@docker"))
                    .and_modify(|owner| {
                        if owner.as_ref() != Some(&app) {
                            *owner = None;
                        }
                    })
                    .or_insert_with(|| Some(app.clone()));
            }
        }
    }
    owners
        .into_iter()
        .filter_map(|(service, owner)| Some((service, owner?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(at_ms: i64) -> SampleRound {
        SampleRound {
            at_ms,
            interval_ms: 10_000,
            took_ms: 5,
            instances: Vec::new(),
            requests: Vec::new(),
        }
    }

    #[test]
    fn the_log_keeps_the_newest_rounds_and_pages_after_a_cursor() {
        let log = SampleLog::default();
        for at in 1..=(PAGE as i64 + 10) {
            log.push(round(at), PAGE + 5);
        }
        let all = log.after(None);
        assert_eq!(all.rounds.len(), PAGE);
        assert_eq!(all.rounds[0].at_ms, 6, "the oldest beyond the limit went");
        assert!(all.more);
        let rest = log.after(Some(all.rounds.last().unwrap().at_ms));
        assert_eq!(
            rest.rounds.iter().map(|r| r.at_ms).collect::<Vec<_>>(),
            (PAGE as i64 + 6..=PAGE as i64 + 10).collect::<Vec<_>>()
        );
        assert!(!rest.more);
        assert_eq!(log.after(Some(i64::MAX)).rounds, []);
    }

    #[test]
    fn services_map_to_the_app_whose_containers_define_them() {
        let app = |name: &str| -> (AppName, Vec<String>) {
            (
                name.parse().unwrap(),
                vec![format!("{name}.paas.localhost")],
            )
        };
        let config = crate::config::RuntimeConfig::default();
        let owners = owners_of_services([app("hello"), app("api")].into_iter(), &config);
        assert_eq!(owners["paas-hello@docker"].as_str(), "hello");
        assert_eq!(owners["paas_sticky-hello@docker"].as_str(), "hello");
        assert_eq!(owners["paas-api@docker"].as_str(), "api");
        assert!(
            !owners.keys().any(|service| service.contains("retry")),
            "{owners:?}"
        );
    }

    #[test]
    fn kept_rounds_follow_the_interval() {
        let config = MetricsConfig::default();
        assert_eq!(config.kept_rounds(), 360);
        let odd = MetricsConfig {
            interval_secs: 0,
            keep_secs: 0,
        };
        assert_eq!(odd.kept_rounds(), 1);
        assert_eq!(odd.interval(), Duration::from_secs(1));
    }
}

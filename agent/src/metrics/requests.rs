//! Traefik's request counters turned into each app's requests of one round: the difference of
//! every series since the previous scrape (a series that went down was reset, by a Traefik
//! restart: its whole value is new), summed per app over methods and protocols, by status
//! class, and the round's p50/p95 latency estimated from the differences of the latency
//! histogram's buckets, as Prometheus' `histogram_quantile` does.

use std::collections::{BTreeMap, HashMap};

use paas_api::AppName;
use paas_api::metrics::{RequestSample, StatusClasses};

use super::prometheus::Sample;

pub const REQUESTS_TOTAL: &str = "traefik_service_requests_total";
pub const DURATION_BUCKET: &str = "traefik_service_request_duration_seconds_bucket";
/// The latency histogram's bucket bounds in seconds, which `paas-agent traefik-config` asks
/// Traefik for (its default, 0.1/0.3/1.2/5, is too coarse for a p50).
pub const BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The counters as last scraped.
#[derive(Default)]
pub struct RequestCounters {
    /// None until the first scrape, whose totals are only the baseline: they count requests
    /// from before the agent ran.
    previous: Option<HashMap<String, f64>>,
}

/// One app's round, summed so far.
#[derive(Default)]
struct AppRound {
    requests: u64,
    status: StatusClasses,
    /// Cumulative counts by upper bound (finite or +Inf, never NaN), in no order.
    buckets: Vec<(f64, f64)>,
}

impl AppRound {
    fn add_to_bucket(&mut self, bound: f64, count: f64) {
        match self.buckets.iter_mut().find(|(known, _)| *known == bound) {
            Some((_, total)) => *total += count,
            None => self.buckets.push((bound, count)),
        }
    }
}

impl RequestCounters {
    /// The apps' requests since the previous scrape; `app_of` names the app a Traefik service
    /// (`paas-hello@docker`) routes to, if it is one of the agent's.
    pub fn round(
        &mut self,
        samples: &[Sample],
        app_of: impl Fn(&str) -> Option<AppName>,
    ) -> Vec<RequestSample> {
        let current: HashMap<String, f64> = samples
            .iter()
            .map(|sample| (sample.series(), sample.value))
            .collect();
        let Some(previous) = self.previous.replace(current) else {
            return Vec::new();
        };
        let mut apps: BTreeMap<AppName, AppRound> = BTreeMap::new();
        for sample in samples {
            let delta = match previous.get(&sample.series()) {
                Some(&before) if sample.value >= before => sample.value - before,
                _ => sample.value,
            };
            if delta <= 0.0 {
                continue;
            }
            let Some(app) = sample.label("service").and_then(&app_of) else {
                continue;
            };
            let round = apps.entry(app).or_default();
            if sample.name == REQUESTS_TOTAL {
                let count = delta.round() as u64;
                round.requests += count;
                if let Some(code) = sample.label("code").and_then(|code| code.parse().ok()) {
                    round.status.add(code, count);
                }
            } else if sample.name == DURATION_BUCKET
                && let Some(bound) = sample.label("le").and_then(parse_bound)
            {
                round.add_to_bucket(bound, delta);
            }
        }
        apps.into_iter()
            .filter(|(_, round)| round.requests > 0)
            .map(|(app, mut round)| {
                round.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
                let buckets = round.buckets;
                RequestSample {
                    app,
                    requests: round.requests,
                    status: round.status,
                    p50_ms: quantile(0.5, &buckets).map(|seconds| seconds * 1000.0),
                    p95_ms: quantile(0.95, &buckets).map(|seconds| seconds * 1000.0),
                }
            })
            .collect()
    }
}

fn parse_bound(text: &str) -> Option<f64> {
    match text {
        "+Inf" => Some(f64::INFINITY),
        other => other.parse().ok().filter(|bound: &f64| bound.is_finite()),
    }
}

/// The `q` quantile of a histogram given as cumulative counts by upper bound (ascending, the
/// last `+Inf`), interpolated linearly within the bucket it falls in; one falling in the `+Inf`
/// bucket is the largest finite bound. None without observations.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    // Cumulative counts never go down; differences of separately reset series may.
    let mut monotonic = Vec::with_capacity(buckets.len());
    let mut highest = 0.0f64;
    for &(bound, count) in buckets {
        highest = highest.max(count);
        monotonic.push((bound, highest));
    }
    let total = monotonic.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (bound, count) in monotonic {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower);
            }
            let within = count - below;
            let fraction = if within > 0.0 {
                (rank - below) / within
            } else {
                1.0
            };
            return Some(lower + (bound - lower) * fraction);
        }
        (lower, below) = (bound, count);
    }
    Some(lower)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::prometheus::parse;

    fn app(name: &str) -> AppName {
        name.parse().unwrap()
    }

    fn hello_only(service: &str) -> Option<AppName> {
        (service == "paas-hello@docker").then(|| app("hello"))
    }

    fn scrape(lines: &[(&str, &str, f64)]) -> Vec<Sample> {
        let text: String = lines
            .iter()
            .map(|(name, labels, value)| format!("{name}{{{labels}}} {value}\n"))
            .collect();
        parse(&text, &[REQUESTS_TOTAL, DURATION_BUCKET])
    }

    fn requests(code: &str, service: &str, value: f64) -> (&'static str, String, f64) {
        (
            REQUESTS_TOTAL,
            format!(r#"code="{code}",method="GET",service="{service}""#),
            value,
        )
    }

    fn owned(lines: &[(&'static str, String, f64)]) -> Vec<Sample> {
        let borrowed: Vec<(&str, &str, f64)> = lines
            .iter()
            .map(|(name, labels, value)| (*name, labels.as_str(), *value))
            .collect();
        scrape(&borrowed)
    }

    #[test]
    fn the_first_scrape_is_a_baseline_and_later_ones_count_differences() {
        let mut counters = RequestCounters::default();
        let first = owned(&[
            requests("200", "paas-hello@docker", 100.0),
            requests("200", "paas-other@docker", 50.0),
        ]);
        assert_eq!(counters.round(&first, hello_only), []);
        let second = owned(&[
            requests("200", "paas-hello@docker", 110.0),
            requests("404", "paas-hello@docker", 2.0),
            requests("500", "paas-hello@docker", 1.0),
            requests("200", "paas-other@docker", 70.0),
        ]);
        let round = counters.round(&second, hello_only);
        assert_eq!(round.len(), 1, "only the agent's apps: {round:?}");
        assert_eq!(round[0].app, app("hello"));
        assert_eq!(round[0].requests, 13);
        assert_eq!(
            round[0].status,
            StatusClasses {
                success: 10,
                redirect: 0,
                client_error: 2,
                server_error: 1
            }
        );
        let idle = counters.round(&second, hello_only);
        assert_eq!(idle, [], "no new requests, no sample");
    }

    #[test]
    fn a_counter_that_went_down_was_reset_and_counts_whole() {
        let mut counters = RequestCounters::default();
        counters.round(
            &owned(&[requests("200", "paas-hello@docker", 500.0)]),
            hello_only,
        );
        let after_restart = owned(&[requests("200", "paas-hello@docker", 7.0)]);
        let round = counters.round(&after_restart, hello_only);
        assert_eq!(round[0].requests, 7);
        let next = owned(&[requests("200", "paas-hello@docker", 9.0)]);
        assert_eq!(counters.round(&next, hello_only)[0].requests, 2);
    }

    #[test]
    fn percentiles_come_from_the_rounds_bucket_differences() {
        let bucket = |le: &str, value: f64| {
            (
                DURATION_BUCKET,
                format!(r#"code="200",service="paas-hello@docker",le="{le}""#),
                value,
            )
        };
        let mut counters = RequestCounters::default();
        counters.round(
            &owned(&[
                requests("200", "paas-hello@docker", 1000.0),
                bucket("0.01", 1000.0),
                bucket("0.1", 1000.0),
                bucket("+Inf", 1000.0),
            ]),
            hello_only,
        );
        // This round: 100 requests, 50 under 10 ms, 50 between 10 and 100 ms.
        let round = counters.round(
            &owned(&[
                requests("200", "paas-hello@docker", 1100.0),
                bucket("0.01", 1050.0),
                bucket("0.1", 1100.0),
                bucket("+Inf", 1100.0),
            ]),
            hello_only,
        );
        let p50 = round[0].p50_ms.unwrap();
        let p95 = round[0].p95_ms.unwrap();
        assert!((p50 - 10.0).abs() < 1e-9, "{p50}");
        assert!((p95 - 91.0).abs() < 1e-9, "{p95}");
    }

    #[test]
    fn quantiles_interpolate_within_buckets() {
        let buckets = [(0.1, 10.0), (0.2, 30.0), (f64::INFINITY, 40.0)];
        assert_eq!(quantile(0.25, &buckets), Some(0.1));
        assert!((quantile(0.5, &buckets).unwrap() - 0.15).abs() < 1e-12);
        assert_eq!(quantile(0.95, &buckets), Some(0.2), "the +Inf bucket");
        assert_eq!(quantile(0.5, &[(0.1, 0.0), (f64::INFINITY, 0.0)]), None);
        assert_eq!(quantile(0.5, &[]), None);
        let uneven = [(0.1, 10.0), (0.2, 4.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.5, &uneven), Some(0.05), "kept monotonic");
    }
}

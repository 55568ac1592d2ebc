//! Zero downtime: steady load through Traefik on the hello app while it is redeployed with
//! `git push`; every request is classed as during a deploy (between the start and the end of a
//! push) or outside one. The load is bounded in time and in count.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

use crate::bench::{Bench, commit};
use crate::http;
use crate::push::{HELLO, hello_checkout, traced_push};
use crate::stats::{fmt_ms, ms, percentile, row, verdict};

/// Load before the first and after the last deploy, to have an outside-deploy baseline.
const QUIET: Duration = Duration::from_secs(5);
const MAX_DURATION: Duration = Duration::from_secs(240);
const MAX_REQUESTS_PER_CONNECTION: usize = 500_000;

struct Sample {
    start: Duration,
    latency: Duration,
    ok: bool,
}

pub fn zero_downtime(
    bench: &Bench,
    deploys: usize,
    connections: usize,
) -> anyhow::Result<Vec<String>> {
    let dir = hello_checkout(bench)?;
    bench.wait_for_body(HELLO, "from")?;
    let stop = Arc::new(AtomicBool::new(false));
    let origin = Instant::now();
    let workers: Vec<_> = (0..connections)
        .map(|_| {
            let (stop, router, host) = (stop.clone(), bench.router.clone(), bench.host(HELLO));
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                while !stop.load(Ordering::Relaxed)
                    && origin.elapsed() < MAX_DURATION
                    && samples.len() < MAX_REQUESTS_PER_CONNECTION
                {
                    let start = origin.elapsed();
                    let ok = http::get(&router, &host, "/")
                        .is_ok_and(|answer| answer.status == 200 && answer.body.contains("from"));
                    samples.push(Sample {
                        start,
                        latency: origin.elapsed() - start,
                        ok,
                    });
                }
                samples
            })
        })
        .collect();

    let mut windows = Vec::new();
    let mut failed_deploys = Vec::new();
    std::thread::sleep(QUIET);
    for i in 1..=deploys {
        commit(&dir, &format!("redeploy {i}"))?;
        let start = origin.elapsed();
        let trace = traced_push(&dir, &bench.gitd_url(HELLO), Instant::now())?;
        windows.push((start, origin.elapsed()));
        if !trace.success {
            failed_deploys.push(trace.transcript());
        }
        if origin.elapsed() > MAX_DURATION - QUIET {
            break;
        }
    }
    std::thread::sleep(QUIET);
    stop.store(true, Ordering::Relaxed);
    let samples: Vec<Sample> = workers
        .into_iter()
        .flat_map(|worker| worker.join().expect("load thread"))
        .collect();
    if !failed_deploys.is_empty() {
        bail!("redeploys failed:\n{}", failed_deploys.join("\n"));
    }

    let in_deploy = |s: &Sample| windows.iter().any(|(a, b)| s.start >= *a && s.start <= *b);
    let deploy_time: f64 = windows.iter().map(|(a, b)| (*b - *a).as_secs_f64()).sum();
    let total_time = samples
        .iter()
        .map(|s| s.start + s.latency)
        .max()
        .unwrap_or_default()
        .as_secs_f64();
    let (during, outside): (Vec<&Sample>, Vec<&Sample>) =
        samples.iter().partition(|s| in_deploy(s));
    let failed = |set: &[&Sample]| set.iter().filter(|s| !s.ok).count();
    let latencies = |set: &[&Sample]| set.iter().map(|s| ms(s.latency)).collect::<Vec<_>>();
    let (during_lat, outside_lat) = (latencies(&during), latencies(&outside));
    let failed_total = failed(&during) + failed(&outside);
    let rps_during = during.len() as f64 / deploy_time;
    let rps_outside = outside.len() as f64 / (total_time - deploy_time);
    Ok(vec![row([
        &format!("3. zero downtime: {deploys} redeploys under load ({connections} connections)"),
        &format!(
            "{failed_total} failed of {}; during deploys {rps_during:.0} req/s, p50 {}, p99 {}",
            samples.len(),
            fmt_ms(percentile(&during_lat, 0.5)),
            fmt_ms(percentile(&during_lat, 0.99)),
        ),
        &format!(
            "outside deploys (same run) {rps_outside:.0} req/s, p50 {}, p99 {}",
            fmt_ms(percentile(&outside_lat, 0.5)),
            fmt_ms(percentile(&outside_lat, 0.99)),
        ),
        &format!("{:.2}× req/s", rps_during / rps_outside),
        "0 failed",
        &verdict(failed_total == 0, || format!("{failed_total} failed")),
        &format!(
            "HTTP/1.0, one connection per request, through Traefik; {:.1} s inside deploys, {:.1} s outside; failed during {}, outside {}",
            deploy_time,
            total_time - deploy_time,
            failed(&during),
            failed(&outside)
        ),
    ])])
}

//! Metrics: what keeping them costs gitd, and what sampling costs the agent.
//!
//! Storage: a real gitd store (`paas_gitd::store::Store`, SQLite on disk in the bench's dir)
//! with `apps` apps, two `web` instances each, is fed the rounds of three whole retention
//! periods (3 × 24 h of 10 s rounds) on a simulated clock, in pulls of 360 rounds as gitd pulls
//! them, pruned after each pull as gitd prunes. At each day's end the store is closed, which
//! checkpoints SQLite's write-ahead log into `paas.db` and removes it, and `paas.db` is
//! measured; the second and third days must add nothing (retention bounds it). The RSS is this
//! process's, which holds the store and does nothing else: not the gitd daemon's. Sampling:
//! bench-hello is scaled to `instances` web instances and the agent's own timing of its rounds
//! (`took_ms` of `GET /v1/metrics`) is read once every instance is in them; then it is scaled
//! back to one.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use paas_api::metrics::{InstanceSample, RequestSample, SampleBatch, SampleRound, StatusClasses};
use paas_gitd::store::Store;

use crate::bench::{Bench, poll, proc_status_mib};
use crate::http;
use crate::push::{HELLO, hello_checkout};
use crate::stats::{fmt_ms, median, ms, row, verdict};

const ROUND_SECS: i64 = 10;
const ROUNDS_PER_DAY: i64 = 24 * 3600 / ROUND_SECS;
/// Rounds per pull, as the agent pages them.
const PULL: i64 = 360;
const INSTANCES_PER_APP: u32 = 2;
/// Rounds of the sampling measurement that must include every instance.
const SAMPLED_ROUNDS: usize = 5;
const TARGET_DB_MIB: f64 = 100.0;
/// Simulated days: the first fills the retention period, the second and third show the plateau.
const DAYS: i64 = 3;
/// What "flat" allows a later day to add: the database, and the process's RSS.
const FLAT_MIB: f64 = 1.0;
const FLAT_RSS_MIB: f64 = 16.0;
const LOOK_EVERY: Duration = Duration::from_millis(500);
const TARGET_ROUND_MS: f64 = 1000.0;

pub fn metrics(bench: &Bench, apps: usize, instances: u32) -> anyhow::Result<Vec<String>> {
    let mut rows = storage(bench, apps)?;
    rows.push(sampling(bench, instances)?);
    Ok(rows)
}

fn app_name(i: usize) -> String {
    format!("bench-metrics-{i:03}")
}

fn round(at_ms: i64, apps: usize) -> SampleRound {
    let wobble = (at_ms / 1000 % 97) as f64;
    let mut instances = Vec::new();
    let mut requests = Vec::new();
    for i in 0..apps {
        let app: paas_api::AppName = app_name(i).parse().expect("a valid app name");
        for index in 1..=INSTANCES_PER_APP {
            instances.push(InstanceSample {
                app: app.clone(),
                process: "web".parse().expect("a valid process type"),
                index,
                cpu_percent: wobble / 10.0,
                memory_bytes: (40 << 20) + (wobble as u64) * 4096,
                memory_limit_bytes: Some(512 << 20),
            });
        }
        requests.push(RequestSample {
            app,
            requests: 50 + wobble as u64,
            status: StatusClasses {
                success: 48 + wobble as u64,
                client_error: 2,
                ..StatusClasses::default()
            },
            p50_ms: Some(3.0 + wobble / 50.0),
            p95_ms: Some(20.0 + wobble / 5.0),
        });
    }
    SampleRound {
        at_ms,
        interval_ms: (ROUND_SECS * 1000) as u64,
        took_ms: 0,
        instances,
        requests,
    }
}

/// `paas.db` in MiB, measured with the store closed: closing SQLite's last connection
/// checkpoints the write-ahead log into the main file and removes it, so the main file is the
/// whole database (an open store's `-wal` keeps its high-water mark until then).
fn database_mib(dir: &Path) -> anyhow::Result<f64> {
    if dir.join("paas.db-wal").exists() {
        bail!("the store is still open: paas.db-wal is there");
    }
    Ok(std::fs::metadata(dir.join("paas.db"))?.len() as f64 / (1024.0 * 1024.0))
}

/// The database's size and this process's RSS at the end of one simulated day.
#[derive(Clone, Copy)]
struct DayEnd {
    db_mib: f64,
    rss_mib: f64,
}

/// How much a figure went up from one day's end to the next, as the verdicts say it.
fn added(from: f64, to: f64) -> String {
    format!("{:+.1} MiB", to - from)
}

fn storage(bench: &Bench, apps: usize) -> anyhow::Result<Vec<String>> {
    let dir = bench.dir.join("metrics-store");
    std::fs::create_dir_all(&dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let me = std::process::id();
    runtime.block_on(async {
        let mut store = Store::open(&dir)?;
        let owner = store
            .create_user(&"bench".parse()?, "x", false)
            .await
            .context("creating the owner")?;
        for i in 0..apps {
            store
                .create_app(&app_name(i).parse()?, &owner, |_| Ok(()))
                .await
                .map_err(|err| anyhow::anyhow!("creating {}: {err}", app_name(i)))?;
        }
        drop(store);
        let empty_mib = database_mib(&dir)?;
        store = Store::open(&dir)?;
        let rss_before = proc_status_mib(me, "VmRSS")?;
        let total_rounds = DAYS * ROUNDS_PER_DAY;
        let start_ms = chrono::Utc::now().timestamp_millis() - total_rounds * ROUND_SECS * 1000;
        let mut day_ends = Vec::new();
        let mut pull_times = Vec::new();
        let mut next = 0;
        while next < total_rounds {
            let rounds: Vec<SampleRound> = (next..(next + PULL).min(total_rounds))
                .map(|n| round(start_ms + n * ROUND_SECS * 1000, apps))
                .collect();
            let newest_ms = rounds.last().map_or(start_ms, |r| r.at_ms);
            next += rounds.len() as i64;
            let started = Instant::now();
            store.ingest_metrics(rounds).await?;
            store.prune_metrics(newest_ms / 1000).await?;
            pull_times.push(ms(started.elapsed()));
            if next % ROUNDS_PER_DAY == 0 {
                let rss_mib = proc_status_mib(me, "VmRSS")?;
                drop(store);
                day_ends.push(DayEnd {
                    db_mib: database_mib(&dir)?,
                    rss_mib,
                });
                store = Store::open(&dir)?;
            }
        }
        let read_started = Instant::now();
        let app_id = store
            .app_id_by_name(&app_name(0))
            .await?
            .context("the first app is gone")?;
        let rows = store
            .app_metrics(
                app_id,
                paas_gitd::store::Resolution::Coarse,
                chrono::Utc::now().timestamp() - 24 * 3600,
            )
            .await?;
        let read = read_started.elapsed();
        if rows.instances.is_empty() {
            bail!("the store kept no slot of the last day");
        }
        let [first, second, third] = day_ends[..] else {
            bail!("{} day ends measured, not {DAYS}", day_ends.len());
        };
        let grown = first.db_mib - empty_mib;
        let third_day_db = third.db_mib - second.db_mib;
        let third_day_rss = third.rss_mib - second.rss_mib;
        let per_pull = median(&pull_times);
        Ok(vec![
            row([
                &format!("metrics: gitd database growth, {apps} apps × {INSTANCES_PER_APP} instances sampled every {ROUND_SECS} s for 24 h (simulated clock)"),
                &format!(
                    "{grown:.1} MiB after 24 h; {} over a second 24 h, {} over a third",
                    added(first.db_mib, second.db_mib),
                    added(second.db_mib, third.db_mib)
                ),
                "",
                "",
                &format!("< {TARGET_DB_MIB:.0} MiB, flat after 24 h (day three adds ≤ {FLAT_MIB:.1} MiB)"),
                &verdict(grown < TARGET_DB_MIB && third_day_db <= FLAT_MIB, || {
                    if grown >= TARGET_DB_MIB {
                        format!("missed by {:.1} MiB", grown - TARGET_DB_MIB)
                    } else {
                        format!("missed: day three adds {}", added(second.db_mib, third.db_mib))
                    }
                }),
                &format!(
                    "paas.db alone, each time with the store closed (which checkpoints the write-ahead log into it and removes the -wal file); {empty_mib:.1} MiB with the apps and no samples; 10 s slots kept 1 h, 1 min slots kept 24 h; pruned after every pull"
                ),
            ]),
            row([
                "metrics: RSS of paas-bench, the process holding gitd's store (`paas_gitd::store::Store`, nothing else in it), while it fills",
                &format!(
                    "{rss_before:.1} MiB before, {:.1} MiB after 24 h, {:.1} MiB after 48 h, {:.1} MiB after 72 h",
                    first.rss_mib, second.rss_mib, third.rss_mib
                ),
                "",
                "",
                &format!("flat after 24 h (day three adds < {FLAT_RSS_MIB:.0} MiB)"),
                &verdict(third_day_rss < FLAT_RSS_MIB, || {
                    format!("missed: day three adds {}", added(second.rss_mib, third.rss_mib))
                }),
                &format!(
                    "not the gitd daemon's RSS (row 6 has that, idle): the store's code and SQLite settings in a process of its own; RSS read before the store is closed at each day's end; one pull of {PULL} rounds for {apps} apps: median {} · reading one app's 24 h: {}",
                    fmt_ms(per_pull),
                    fmt_ms(ms(read))
                ),
            ]),
        ])
    })
}

/// The agent's kept rounds, oldest first.
fn agent_rounds(bench: &Bench) -> anyhow::Result<Vec<SampleRound>> {
    let answer = http::request(
        &bench.agent,
        "GET",
        "/v1/metrics",
        Some(&bench.agent_token),
        None,
    )?;
    if answer.status != 200 {
        bail!(
            "GET /v1/metrics on the agent: {} {}",
            answer.status,
            answer.body
        );
    }
    let batch: SampleBatch = serde_json::from_str(&answer.body)?;
    Ok(batch.rounds)
}

fn sampling(bench: &Bench, instances: u32) -> anyhow::Result<String> {
    hello_checkout(bench)?;
    bench.paas(&["scale", &format!("web={instances}"), "-a", HELLO])?;
    let since_ms = chrono::Utc::now().timestamp_millis();
    let running = |round: &SampleRound| {
        round
            .instances
            .iter()
            .filter(|sample| sample.app.as_str() == HELLO)
            .count()
    };
    let measured = poll("the agent's rounds with every instance", || {
        let rounds = agent_rounds(bench).ok()?;
        let full: Vec<f64> = rounds
            .iter()
            .filter(|round| round.at_ms > since_ms && running(round) >= instances as usize)
            .map(|round| round.took_ms as f64)
            .collect();
        if full.len() < SAMPLED_ROUNDS {
            // The agent samples every 10 s by default: no need to ask it 100 times a second.
            std::thread::sleep(LOOK_EVERY);
            return None;
        }
        Some(full)
    });
    let containers = agent_rounds(bench)?
        .last()
        .map_or(0, |round| round.instances.len());
    bench.paas(&["scale", "web=1", "-a", HELLO])?;
    let took = median(&measured?);
    Ok(row([
        &format!(
            "metrics: one agent sampling round (Docker one-shot stats of every container, Traefik's metrics), {containers} running instances"
        ),
        &fmt_ms(took),
        "",
        "",
        &format!("< {} per round", fmt_ms(TARGET_ROUND_MS)),
        &verdict(took < TARGET_ROUND_MS, || {
            format!("missed by {}", fmt_ms(took - TARGET_ROUND_MS))
        }),
        &format!(
            "median of {SAMPLED_ROUNDS} rounds; the agent asks for every container's stats together, and dockerd answers one-shot requests from its next collection (once a second), so a round with more than one container takes about that second"
        ),
    ]))
}

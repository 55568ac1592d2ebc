//! `paas ps` under load with many apps: `apps` apps exist in gitd and each runs one container
//! on the agent, while a bounded load loop sends requests through Traefik to the hello app;
//! `paas ps -a bench-hello` is timed over and over meanwhile. The apps' containers are started
//! through the agent's own API (one worker each, of hello's image, so no build per app and no
//! health probes loading the machine): what `ps` reads is the same as after a real deploy.
//! They are removed at the end, through the agent, so later scenarios start from a quiet host.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Bench, docker_lines, timed};
use crate::http;
use crate::push::{HELLO, hello_checkout};
use crate::stats::{fmt_ms, ms, percentile, row, verdict};

/// The load loop stops after this long or this many requests, whichever comes first.
const LOAD_LIMIT: Duration = Duration::from_secs(300);
const LOAD_MAX_REQUESTS: usize = 1_000_000;
/// Apps whose containers are started at once through the agent.
const SETUP_PARALLEL: usize = 4;
const TARGET_P99_MS: f64 = 20.0;

fn app_name(i: usize) -> String {
    format!("bench-ps-{i:03}")
}

pub fn ps(bench: &Bench, apps: usize, runs: usize) -> anyhow::Result<Vec<String>> {
    hello_checkout(bench)?;
    let image = docker_lines(&[
        "ps",
        "--filter",
        &format!("label=paas.app={HELLO}"),
        "--filter",
        "label=paas.process=web",
        "--format",
        "{{.Image}}",
    ])?
    .into_iter()
    .next()
    .context("bench-hello runs no web container")?;
    let setup = Instant::now();
    let started = start_apps(bench, apps, &image);
    let setup_time = setup.elapsed();
    let measured = started.and_then(|()| measure(bench, runs));
    let removed = remove_apps(bench, apps);
    let measured = measured?;
    removed?;
    let (p50, p99) = (
        percentile(&measured.cli, 0.5),
        percentile(&measured.cli, 0.99),
    );
    let agent_p99 = percentile(&measured.agent, 0.99);
    let p50_p99 = |samples: &[f64]| {
        format!(
            "p50 {} · p99 {}",
            fmt_ms(percentile(samples, 0.5)),
            fmt_ms(percentile(samples, 0.99))
        )
    };
    Ok(vec![row([
        &format!("8. `paas ps -a {HELLO}` with {apps} running apps under load ({runs} runs)"),
        &p50_p99(&measured.cli),
        &format!(
            "`true` {} · `paas --version` {} · gitd's GET /v1/apps/{HELLO}/ps alone {} · the agent's \
             GET /v1/apps/{HELLO}/instances alone {}",
            p50_p99(&measured.process),
            p50_p99(&measured.version),
            p50_p99(&measured.gitd),
            p50_p99(&measured.agent)
        ),
        &format!("{:.2}× p99 of the agent's answer", p99 / agent_p99),
        "p99 < 20 ms",
        &verdict(p99 < TARGET_P99_MS, || {
            format!("missed by {:.1} ms", p99 - TARGET_P99_MS)
        }),
        &format!(
            "wall time of the whole `paas ps` process; `true` (/bin/true) is what starting and \
             reaping any process costs on this machine under the same load; p50 split: process start-up \
             (`--version`) {}, gitd's own work (its GET minus the agent's) {}, the CLI beyond \
             both (config, token, client, request, rendering) {}; {apps} apps in gitd, each with \
             one worker container started through the agent ({:.0} s to set up); meanwhile a \
             load loop through Traefik to {HELLO}: {} requests, {} failed",
            fmt_ms(percentile(&measured.version, 0.5)),
            fmt_ms(percentile(&measured.gitd, 0.5) - percentile(&measured.agent, 0.5)),
            fmt_ms(p50 - percentile(&measured.version, 0.5) - percentile(&measured.gitd, 0.5)),
            setup_time.as_secs_f64(),
            measured.load_requests,
            measured.load_failed
        ),
    ])])
}

/// Each app created in gitd (if missing) and given one worker container through the agent.
fn start_apps(bench: &Bench, apps: usize, image: &str) -> anyhow::Result<()> {
    let token = bench.token()?;
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..SETUP_PARALLEL)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        if i >= apps {
                            return Ok(());
                        }
                        start_app(bench, &token, &app_name(i), image)?;
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|worker| worker.join().expect("a setup thread panicked"))
    })
}

fn start_app(bench: &Bench, token: &str, app: &str, image: &str) -> anyhow::Result<()> {
    let body = serde_json::json!({ "name": app }).to_string();
    let created = http::request(&bench.api, "POST", "/v1/apps", Some(token), Some(&body))?;
    if !(200..300).contains(&created.status) && created.status != 409 {
        bail!("creating {app}: {} {}", created.status, created.body);
    }
    let spec = serde_json::json!({
        "release": 1,
        "image": image,
        "processes": { "worker": { "quantity": 1 } },
    })
    .to_string();
    let path = format!("/v1/apps/{app}");
    let answer = http::request(
        &bench.agent,
        "PUT",
        &path,
        Some(&bench.agent_token),
        Some(&spec),
    )?;
    let last = answer.body.lines().last().unwrap_or_default();
    if answer.status != 200 || !last.contains("done") {
        bail!(
            "starting {app} on the agent: {} {}",
            answer.status,
            answer.body
        );
    }
    Ok(())
}

fn remove_apps(bench: &Bench, apps: usize) -> anyhow::Result<()> {
    for i in 0..apps {
        let path = format!("/v1/apps/{}", app_name(i));
        let answer = http::request(
            &bench.agent,
            "DELETE",
            &path,
            Some(&bench.agent_token),
            None,
        )?;
        if answer.status != 204 {
            bail!("removing {path}: {} {}", answer.status, answer.body);
        }
    }
    Ok(())
}

/// What [`measure`] found, in milliseconds per run.
struct Measured {
    /// The whole `paas ps -a bench-hello` process.
    cli: Vec<f64>,
    /// The whole `paas --version` process: start-up and exit alone.
    version: Vec<f64>,
    /// The whole `true` process: what any process costs to start and reap here.
    process: Vec<f64>,
    /// gitd's `GET /v1/apps/bench-hello/ps` alone, with an admin token as the CLI sends it.
    gitd: Vec<f64>,
    /// The agent's `GET /v1/apps/bench-hello/instances` alone, which gitd's answer is made of.
    agent: Vec<f64>,
    load_requests: usize,
    load_failed: usize,
}

/// `paas ps` and its parts (any process's start, `paas`'s start-up, gitd's request, the
/// agent's request) timed
/// `runs` times each, one after the other in every run so that all see the same load (after
/// two untimed runs), while the load loop runs.
fn measure(bench: &Bench, runs: usize) -> anyhow::Result<Measured> {
    let token = bench.token()?;
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, router, host) = (stop.clone(), bench.router.clone(), bench.host(HELLO));
        std::thread::spawn(move || {
            let origin = Instant::now();
            let (mut total, mut failed) = (0, 0);
            while !stop.load(Ordering::Relaxed)
                && origin.elapsed() < LOAD_LIMIT
                && total < LOAD_MAX_REQUESTS
            {
                total += 1;
                let ok = http::get(&router, &host, "/").is_ok_and(|answer| answer.status == 200);
                failed += usize::from(!ok);
            }
            (total, failed)
        })
    };
    let mut measured = Measured {
        cli: Vec::new(),
        version: Vec::new(),
        process: Vec::new(),
        gitd: Vec::new(),
        agent: Vec::new(),
        load_requests: 0,
        load_failed: 0,
    };
    let timed_runs = (|| -> anyhow::Result<()> {
        let agent_path = format!("/v1/apps/{HELLO}/instances");
        let gitd_path = format!("/v1/apps/{HELLO}/ps");
        for run in 0..runs + 2 {
            let agent_time = timed_get(&bench.agent, &agent_path, &bench.agent_token)?;
            let gitd_time = timed_get(&bench.api, &gitd_path, &token)?;
            let process_time = timed(&mut Command::new("true"))?;
            let version_time = timed(Command::new("paas").arg("--version"))?;
            let cli_time = timed(
                Command::new("paas")
                    .args(["ps", "-a", HELLO])
                    .current_dir(&bench.dir),
            )?;
            if run >= 2 {
                measured.agent.push(ms(agent_time));
                measured.gitd.push(ms(gitd_time));
                measured.version.push(ms(version_time));
                measured.process.push(ms(process_time));
                measured.cli.push(ms(cli_time));
            }
        }
        Ok(())
    })();
    stop.store(true, Ordering::Relaxed);
    (measured.load_requests, measured.load_failed) = load.join().expect("the load thread panicked");
    timed_runs?;
    Ok(measured)
}

/// Times one `GET path` that must answer 200.
fn timed_get(server: &str, path: &str, token: &str) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let answer = http::request(server, "GET", path, Some(token), None)?;
    let elapsed = start.elapsed();
    if answer.status != 200 {
        bail!("GET {path} on {server}: {} {}", answer.status, answer.body);
    }
    Ok(elapsed)
}

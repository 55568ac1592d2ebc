//! CLI latency and footprint: operations a user repeats all day, and what the daemons
//! cost while idle.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Bench, proc_status_mib, timed};
use crate::http;
use crate::push::{HELLO, hello_checkout};
use crate::stats::{fmt_ms, ms, percentile, row, verdict};

/// Creates `bench-app-NNN` apps through the API until there are `total`.
fn ensure_apps(bench: &Bench, total: usize) -> anyhow::Result<()> {
    let token = bench.token()?;
    let listing = http::request(&bench.api, "GET", "/v1/apps", Some(&token), None)?;
    let apps: serde_json::Value =
        serde_json::from_str(&listing.body).context("GET /v1/apps is not JSON")?;
    let existing = apps.as_array().map_or(0, Vec::len);
    for i in existing..total {
        let body = serde_json::json!({"name": format!("bench-app-{i:03}")}).to_string();
        let answer = http::request(&bench.api, "POST", "/v1/apps", Some(&token), Some(&body))?;
        if !(200..300).contains(&answer.status) {
            bail!("creating an app: {} {}", answer.status, answer.body);
        }
    }
    Ok(())
}

fn times(
    runs: usize,
    mut once: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<f64>> {
    for _ in 0..2 {
        once()?;
    }
    (0..runs).map(|_| once().map(ms)).collect()
}

pub fn cli(bench: &Bench, apps: usize, runs: usize) -> anyhow::Result<Vec<String>> {
    hello_checkout(bench)?;
    ensure_apps(bench, apps)?;
    let token = bench.token()?;
    let api_floor = times(runs, || {
        let start = Instant::now();
        let answer = http::request(&bench.api, "GET", "/v1/apps", Some(&token), None)?;
        if answer.status != 200 {
            bail!("GET /v1/apps: {}", answer.status);
        }
        Ok(start.elapsed())
    })?;
    let start_floor = times(runs, || timed(Command::new("paas").arg("--version")))?;
    let floor = format!(
        "`paas --version` p50 {} · GET /v1/apps alone p50 {}",
        fmt_ms(percentile(&start_floor, 0.5)),
        fmt_ms(percentile(&api_floor, 0.5))
    );
    let mut rows = Vec::new();
    for args in [
        vec!["apps"],
        vec!["ps", "-a", HELLO],
        vec!["config", "-a", HELLO],
    ] {
        let samples = times(runs, || {
            timed(Command::new("paas").args(&args).current_dir(&bench.dir))
        })?;
        let (p50, p99) = (percentile(&samples, 0.5), percentile(&samples, 0.99));
        rows.push(row([
            &format!(
                "5. `paas {}` with {apps} apps ({runs} runs)",
                args.join(" ")
            ),
            &format!("p50 {} · p99 {}", fmt_ms(p50), fmt_ms(p99)),
            &floor,
            &format!(
                "{:.2}× p50 of --version",
                p50 / percentile(&start_floor, 0.5)
            ),
            "p99 < 50 ms",
            &verdict(p99 < 50.0, || format!("missed by {:.1} ms", p99 - 50.0)),
            "wall time of the whole process, logged in, over HTTP to gitd on loopback",
        ]));
    }
    Ok(rows)
}

pub fn footprint(bench: &Bench, apps: usize) -> anyhow::Result<Vec<String>> {
    ensure_apps(bench, apps)?;
    // Idle: let whatever the creations started settle before reading.
    std::thread::sleep(Duration::from_secs(5));
    let rss = |pid| proc_status_mib(pid, "VmRSS");
    let (gitd, agent, traefik) = (
        rss(bench.gitd_pid)?,
        rss(bench.agent_pid)?,
        rss(bench.traefik_pid)?,
    );
    let size = |name: &str| -> anyhow::Result<f64> {
        let path = bench.repo_root.join("target/release").join(name);
        Ok(std::fs::metadata(&path)
            .with_context(|| format!("no {}", path.display()))?
            .len() as f64
            / (1024.0 * 1024.0))
    };
    Ok(vec![
        row([
            &format!("6. idle RSS with {apps} apps"),
            &format!("paas-gitd {gitd:.1} MiB · paas-agent {agent:.1} MiB"),
            &format!("Traefik (peer daemon, same run) {traefik:.1} MiB"),
            &format!("{:.2}× Traefik", (gitd + agent) / traefik),
            "—",
            "—",
            "VmRSS from /proc after 5 s idle; the apps exist in gitd, two of them (hello, logs) run containers",
        ]),
        row([
            "6b. release binary sizes (stripped, thin LTO)",
            &format!(
                "paas {:.1} MiB · paas-gitd {:.1} MiB · paas-agent {:.1} MiB",
                size("paas")?,
                size("paas-gitd")?,
                size("paas-agent")?
            ),
            "—",
            "—",
            "—",
            "—",
            "target/release",
        ]),
    ])
}

//! Scale, CLI latency and footprint: operations a user repeats all day, and what the daemons
//! cost while idle.

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Bench, docker_lines, poll, proc_status_mib, timed};
use crate::http;
use crate::push::{HELLO, hello_checkout, list};
use crate::stats::{fmt_ms, fmt_secs, median, ms, percentile, row, secs, verdict};

const FLOOR_IMAGE: &str = "paas-bench-floor:latest";

fn running_web(app: &str) -> anyhow::Result<usize> {
    Ok(docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &format!("label=paas.app={app}"),
        "--filter",
        "label=paas.process=web",
    ])?
    .len())
}

pub fn scale(bench: &Bench, runs: usize) -> anyhow::Result<Vec<String>> {
    let dir = hello_checkout(bench)?;
    // push-live builds it; run alone, scale builds it from the same tree.
    if docker_lines(&["image", "ls", "-q", FLOOR_IMAGE])?.is_empty() {
        timed(
            Command::new("docker")
                .args(["build", "-q", "-t", FLOOR_IMAGE])
                .arg(&dir),
        )?;
    }
    let (mut up, mut down, mut floor_up, mut floor_down) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        up.push(secs(timed(
            Command::new("paas").args(["scale", "web=10", "-a", HELLO]),
        )?));
        let running = running_web(HELLO)?;
        if running != 10 {
            bail!("scale web=10 returned with {running} web containers running");
        }
        down.push(secs(timed(
            Command::new("paas").args(["scale", "web=1", "-a", HELLO]),
        )?));
        poll("web=1 to leave one container", || {
            running_web(HELLO).ok().filter(|&n| n == 1)
        })?;
        let (started, stopped) = floor_scale(9)?;
        floor_up.push(secs(started));
        floor_down.push(secs(stopped));
    }
    let (u, d, fu, fd) = (
        median(&up),
        median(&down),
        median(&floor_up),
        median(&floor_down),
    );
    Ok(vec![
        row([
            &format!("4. scale web=1 → web=10, all healthy and routed (median of {runs})"),
            &fmt_secs(u),
            &format!(
                "{} (9 × docker run started in parallel, each polled to its first 200)",
                fmt_secs(fu)
            ),
            &format!("{:.2}×", u / fu),
            "≤ 1.3× floor",
            &verdict(u / fu <= 1.3, || {
                format!("missed by {:.1} %", (u / fu / 1.3 - 1.0) * 100.0)
            }),
            &format!(
                "until `paas scale` returns with 10 web containers running; runs [{}], floor \
                 runs [{}]",
                list(up.iter().copied()),
                list(floor_up.iter().copied())
            ),
        ]),
        row([
            &format!("4b. scale web=10 → web=1 (median of {runs})"),
            &fmt_secs(d),
            &format!("{} (one docker rm -f of the 9)", fmt_secs(fd)),
            &format!("{:.2}×", d / fd),
            "—",
            "—",
            &format!(
                "runs [{}]; paas stops containers gracefully (SIGTERM, then waits)",
                list(down.iter().copied())
            ),
        ]),
    ])
}

/// `count` containers of the floor image started in parallel (one `docker run` each), each
/// polled on its published port until its first 200, then removed: what scaling by hand with
/// the Docker CLI takes at best.
fn floor_scale(count: usize) -> anyhow::Result<(Duration, Duration)> {
    let names: Vec<String> = (0..count)
        .map(|i| format!("paas-bench-scale-{i}"))
        .collect();
    let start = Instant::now();
    let result = std::thread::scope(|scope| {
        let runs: Vec<_> = names
            .iter()
            .map(|name| scope.spawn(move || floor_container(name)))
            .collect();
        runs.into_iter()
            .try_for_each(|run| run.join().expect("a floor thread panicked"))
    });
    let started = start.elapsed();
    let stop = Instant::now();
    let _ = Command::new("docker")
        .args(["rm", "-f"])
        .args(&names)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    result?;
    Ok((started, stop.elapsed()))
}

/// One floor container: `docker run -p`, then polled until its first 200.
fn floor_container(name: &str) -> anyhow::Result<()> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    timed(Command::new("docker").args([
        "run",
        "-d",
        "--name",
        name,
        "-p",
        &format!("127.0.0.1:{port}:5000"),
        FLOOR_IMAGE,
    ]))?;
    poll(&format!("{name} to answer"), || {
        http::get(&format!("127.0.0.1:{port}"), "localhost", "/")
            .ok()
            .filter(|answer| answer.status == 200)
    })?;
    Ok(())
}

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

//! Push → live: from the start of `git push` to the first 200 with the new body through
//! Traefik, beside the floor of the same work done by hand (push to a bare repository over
//! OpenSSH, `docker build` of the same tree, `docker run`, first 200 from the container).

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::bench::{Bench, POLL_LIMIT, commit, container_events, copy_tree, git, poll, run, timed};
use crate::stats::{fmt_secs, median, row, secs, verdict};
use crate::{figures, http};

/// The app every HTTP scenario deploys: a copy of examples/hello.
pub const HELLO: &str = "bench-hello";
const CGI: &str = "www/cgi-bin/index.cgi";

/// The checkout of [`HELLO`], created and deployed on first use.
pub fn hello_checkout(bench: &Bench) -> anyhow::Result<PathBuf> {
    let dir = bench.dir.join("hello");
    if dir.join(".git").exists() {
        return Ok(dir);
    }
    fresh_checkout(bench, &dir)?;
    run(Command::new("paas")
        .args(["apps:create", HELLO])
        .current_dir(&dir))?;
    let trace = traced_push(&dir, &bench.gitd_url(HELLO), Instant::now())?;
    if !trace.success {
        bail!(
            "the first deploy of {HELLO} failed:\n{}",
            trace.transcript()
        );
    }
    bench.wait_for_body(HELLO, "Hello")?;
    Ok(dir)
}

fn fresh_checkout(bench: &Bench, dir: &Path) -> anyhow::Result<()> {
    copy_tree(&bench.repo_root.join("examples/hello"), dir)?;
    git(dir, &["init", "-q", "-b", "main"])?;
    commit(dir, "hello")
}

/// Makes the app answer `<tag> from …` and commits it.
fn set_greeting(dir: &Path, tag: &str) -> anyhow::Result<()> {
    let path = dir.join(CGI);
    let script = std::fs::read_to_string(&path)?;
    let start = script
        .find("${GREETING:-")
        .context("no greeting in the CGI script")?;
    let end = start + script[start..].find('}').context("unterminated greeting")? + 1;
    let replaced = format!("{}${{GREETING:-{tag}}}{}", &script[..start], &script[end..]);
    std::fs::write(&path, replaced)?;
    commit(dir, tag)
}

/// A `git push` whose progress lines are timestamped as they arrive.
pub struct PushTrace {
    pub success: bool,
    pub total: Duration,
    pub lines: Vec<(Duration, String)>,
}

impl PushTrace {
    /// When the first line containing `needle` arrived.
    pub fn at(&self, needle: &str) -> Option<Duration> {
        self.lines
            .iter()
            .find(|(_, line)| line.contains(needle))
            .map(|(at, _)| *at)
    }

    pub fn transcript(&self) -> String {
        self.lines
            .iter()
            .map(|(at, line)| format!("{:8.3} {line}\n", secs(*at)))
            .collect()
    }
}

/// `git push URL HEAD:main` from `dir`, timed from `start`.
pub fn traced_push(dir: &Path, url: &str, start: Instant) -> anyhow::Result<PushTrace> {
    push_refspec(dir, url, "HEAD:main", start)
}

pub fn push_refspec(
    dir: &Path,
    url: &str,
    refspec: &str,
    start: Instant,
) -> anyhow::Result<PushTrace> {
    let mut child = Command::new("git")
        .args(["push", "--progress", url, refspec])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run git push")?;
    let mut stderr = child.stderr.take().context("no stderr")?;
    let mut lines = Vec::new();
    let mut pending = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        let read = stderr.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        let now = start.elapsed();
        for &byte in &buffer[..read] {
            if byte == b'\n' || byte == b'\r' {
                if !pending.is_empty() {
                    lines.push((now, String::from_utf8_lossy(&pending).into_owned()));
                    pending.clear();
                }
            } else {
                pending.push(byte);
            }
        }
    }
    let status = child.wait()?;
    let total = start.elapsed();
    if !pending.is_empty() {
        lines.push((total, String::from_utf8_lossy(&pending).into_owned()));
    }
    Ok(PushTrace {
        success: status.success(),
        total,
        lines,
    })
}

/// Polls `addr` (with `host`) from another thread until `/` answers 200 containing `needle`;
/// the join handle gives the time since `start`.
fn watch_for_body(
    addr: String,
    host: String,
    needle: String,
    start: Instant,
) -> std::thread::JoinHandle<Option<Duration>> {
    std::thread::spawn(move || {
        while start.elapsed() < POLL_LIMIT {
            if let Ok(answer) = http::get(&addr, &host, "/")
                && answer.status == 200
                && answer.body.contains(&needle)
            {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    })
}

struct PaasRun {
    live: f64,
    receive: f64,
    build: f64,
    start: f64,
    healthy_routed: f64,
    push_returned: f64,
}

/// When Docker started the first container of `app` after `since` (from `docker events`).
fn container_started(bench: &Bench, app: &str, since: SystemTime) -> anyhow::Result<SystemTime> {
    container_events(bench, app, since, SystemTime::now())?
        .into_iter()
        .find(|event| event.action == "start")
        .map(|event| event.at)
        .context("no container start in docker events")
}

/// One deploy of [`HELLO`] greeting with `tag`, through the bench's gitd and router: the push's
/// progress lines and when the new body first answered, both timed from `start` (`wall_start`
/// on the system clock, for Docker's events).
pub struct Deploy {
    pub wall_start: SystemTime,
    pub trace: PushTrace,
    pub live: Duration,
}

impl Deploy {
    /// When the push output's first line containing `needle` arrived.
    pub fn mark(&self, needle: &str) -> anyhow::Result<Duration> {
        self.trace.at(needle).with_context(|| {
            format!(
                "no {needle:?} in the push output:\n{}",
                self.trace.transcript()
            )
        })
    }
}

pub fn deploy(bench: &Bench, dir: &Path, tag: &str) -> anyhow::Result<Deploy> {
    set_greeting(dir, tag)?;
    let wall_start = SystemTime::now();
    let start = Instant::now();
    let watcher = watch_for_body(
        bench.router.clone(),
        bench.host(HELLO),
        tag.to_owned(),
        start,
    );
    let trace = traced_push(dir, &bench.gitd_url(HELLO), start)?;
    let live = watcher.join().expect("watcher thread");
    if !trace.success {
        bail!("deploy {tag} failed:\n{}", trace.transcript());
    }
    let live = live.with_context(|| format!("{tag} never answered through Traefik"))?;
    Ok(Deploy {
        wall_start,
        trace,
        live,
    })
}

fn paas_run(bench: &Bench, dir: &Path, tag: &str) -> anyhow::Result<PaasRun> {
    let deployed = deploy(bench, dir, tag)?;
    let building = deployed.mark("-----> Building")?;
    let launching = deployed.mark("-----> Launching")?;
    let started = container_started(bench, HELLO, deployed.wall_start)?
        .duration_since(deployed.wall_start)?;
    let live = deployed.live;
    eprintln!(
        "paas {tag}:\n{}       container started at {:.3}, live at {:.3}",
        deployed.trace.transcript(),
        secs(started),
        secs(live)
    );
    Ok(PaasRun {
        live: secs(live),
        receive: secs(building),
        build: secs(launching - building),
        start: secs(started.saturating_sub(launching)),
        healthy_routed: secs(live.saturating_sub(started)),
        push_returned: secs(deployed.trace.total),
    })
}

struct FloorRun {
    total: f64,
    push: f64,
    build: f64,
    run: f64,
    first_200: f64,
}

fn floor_run(bench: &Bench, dir: &Path, bare: &Path, tag: &str) -> anyhow::Result<FloorRun> {
    set_greeting(dir, tag)?;
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let name = format!("paas-bench-floor-{tag}");
    let start = Instant::now();
    let trace = traced_push(dir, &bench.sshd_url(bare), start)?;
    if !trace.success {
        bail!("push to sshd failed:\n{}", trace.transcript());
    }
    let build = timed(Command::new("sh").arg("-c").arg(format!(
        "git --git-dir='{}' archive --format=tar main | \
         docker build -q -t paas-bench-floor:{tag} -t paas-bench-floor:latest -",
        bare.display()
    )))?;
    let started = (|| -> anyhow::Result<(Duration, Duration)> {
        let run_time = timed(Command::new("docker").args([
            "run",
            "-d",
            "--name",
            &name,
            "-p",
            &format!("127.0.0.1:{port}:5000"),
            "-e",
            "PAAS_RELEASE=floor",
            "paas-bench-floor:latest",
        ]))?;
        let first = Instant::now();
        poll(&format!("the floor container {name}"), || {
            http::get(&format!("127.0.0.1:{port}"), "localhost", "/")
                .ok()
                .filter(|answer| answer.status == 200 && answer.body.contains(tag))
        })?;
        Ok((run_time, first.elapsed()))
    })();
    let total = start.elapsed();
    let _ = Command::new("docker")
        .args(["rm", "-f", &name])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let (run_time, first_200) = started?;
    Ok(FloorRun {
        total: secs(total),
        push: secs(trace.total),
        build: secs(build),
        run: secs(run_time),
        first_200: secs(first_200),
    })
}

pub fn push_live(bench: &Bench, runs: usize) -> anyhow::Result<Vec<String>> {
    let dir = hello_checkout(bench)?;
    let floor_dir = bench.dir.join("hello-floor");
    let bare = bench.dir.join("floor.git");
    if !floor_dir.join(".git").exists() {
        fresh_checkout(bench, &floor_dir)?;
        run(Command::new("git")
            .args(["init", "-q", "--bare", "-b", "main"])
            .arg(&bare))?;
    }
    // Greetings never seen before, so no build cache from an earlier bench run serves them.
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // One untimed round each, so both sides start from a warm build cache and a running app.
    paas_run(bench, &dir, &format!("warm-paas-{nonce}"))?;
    floor_run(bench, &floor_dir, &bare, &format!("warm-floor-{nonce}"))?;
    let (mut paas, mut floor) = (Vec::new(), Vec::new());
    for i in 1..=runs {
        paas.push(paas_run(bench, &dir, &format!("paas-run-{i}-{nonce}"))?);
        floor.push(floor_run(
            bench,
            &floor_dir,
            &bare,
            &format!("floor-run-{i}-{nonce}"),
        )?);
    }
    let m = |values: Vec<f64>| median(&values);
    let live = m(paas.iter().map(|r| r.live).collect());
    figures::save(&bench.figures, figures::PUSH_LIVE, live)?;
    let floor_total = m(floor.iter().map(|r| r.total).collect());
    let ratio = live / floor_total;
    let target = 1.3;
    let returned = m(paas.iter().map(|r| r.push_returned).collect());
    let returned_ratio = returned / floor_total;
    let returned_target = 1.5;
    let notes = format!(
        "paas: receive {} (push start → build starts), build {} (→ launch), container start {} \
         (→ Docker's start event), healthy + routed {} (→ first new body), then retiring v(n-1), \
         push returned {}; \
         floor: push {}, build {}, run {}, first 200 {}; all runs paas [{}] floor [{}]",
        fmt_secs(m(paas.iter().map(|r| r.receive).collect())),
        fmt_secs(m(paas.iter().map(|r| r.build).collect())),
        fmt_secs(m(paas.iter().map(|r| r.start).collect())),
        fmt_secs(m(paas.iter().map(|r| r.healthy_routed).collect())),
        fmt_secs(m(paas.iter().map(|r| r.push_returned).collect())),
        fmt_secs(m(floor.iter().map(|r| r.push).collect())),
        fmt_secs(m(floor.iter().map(|r| r.build).collect())),
        fmt_secs(m(floor.iter().map(|r| r.run).collect())),
        fmt_secs(m(floor.iter().map(|r| r.first_200).collect())),
        list(paas.iter().map(|r| r.live)),
        list(floor.iter().map(|r| r.total)),
    );
    let floor_cell = format!(
        "{} (push to sshd + docker build + run + first 200)",
        fmt_secs(floor_total)
    );
    Ok(vec![
        row([
            &format!("1. push → live, examples/hello (median of {runs})"),
            &fmt_secs(live),
            &floor_cell,
            &format!("{ratio:.2}×"),
            "≤ 1.3× floor",
            &verdict(ratio <= target, || {
                format!("missed by {:.1} %", (ratio / target - 1.0) * 100.0)
            }),
            &notes,
        ]),
        row([
            &format!("1b. `git push` returned, examples/hello (median of {runs})"),
            &fmt_secs(returned),
            &floor_cell,
            &format!("{returned_ratio:.2}×"),
            "≤ 1.5× floor",
            &verdict(returned_ratio <= returned_target, || {
                format!(
                    "missed by {:.1} %",
                    (returned_ratio / returned_target - 1.0) * 100.0
                )
            }),
            &format!(
                "from the start of `git push` until the git client exits (the same pushes as \
                 row 1); runs [{}]",
                list(paas.iter().map(|r| r.push_returned))
            ),
        ]),
    ])
}

pub fn list(values: impl Iterator<Item = f64>) -> String {
    values
        .map(|v| format!("{v:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

//! Logs: how many lines/s reach `paas logs -f` from a process writing as fast as it can, and
//! how long one line takes from being written to being printed, each beside `docker logs -f`
//! of the same container in the same run.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{Bench, commit, docker_lines, git, poll, run};
use crate::http;
use crate::push::{list, traced_push};
use crate::stats::{fmt_ms, median, ms, row};

const APP: &str = "bench-logs";
const LATENCY_PROBES: usize = 7;
const BURST_LIMIT: Duration = Duration::from_secs(90);

/// A command whose stdout lines are kept with the instant each arrived.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Follower {
    fn spawn(command: &mut Command) -> anyhow::Result<Follower> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start a log follower")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                sink.lock().unwrap().push((Instant::now(), text));
                line.clear();
            }
        });
        Ok(Follower { child, lines })
    }

    fn paas(app: &str) -> anyhow::Result<Follower> {
        Follower::spawn(
            Command::new("paas").args(["logs", "-f", "-a", app, "-s", "app", "-n", "1"]),
        )
    }

    fn docker(container: &str, tail: &str) -> anyhow::Result<Follower> {
        Follower::spawn(Command::new("sh").arg("-c").arg(format!(
            "exec docker logs -f --tail {tail} {container} 2>&1"
        )))
    }

    fn find(&self, needle: &str) -> Option<Instant> {
        let lines = self.lines.lock().unwrap();
        lines
            .iter()
            .find(|(_, l)| l.contains(needle))
            .map(|(at, _)| *at)
    }

    /// Received burst lines: how many, and when the first and the last arrived.
    fn burst(&self) -> (usize, Option<Instant>, Option<Instant>) {
        let lines = self.lines.lock().unwrap();
        let mut seen = lines.iter().filter(|(_, line)| {
            line.rsplit_once("burst ")
                .is_some_and(|(_, n)| n.parse::<u64>().is_ok())
        });
        let first = seen.next().map(|(at, _)| *at);
        let (count, last) = seen.fold((usize::from(first.is_some()), first), |(n, _), (at, _)| {
            (n + 1, Some(*at))
        });
        (count, first, last)
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_app(dir: &Path, lines: usize) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir.join("www/cgi-bin"))?;
    std::fs::write(
        dir.join("Dockerfile"),
        "FROM paas/busybox:latest\nCOPY . /app\nRUN chmod 755 /app/burst.sh /app/www/cgi-bin/mark\n\
         ENV PORT=5000\nCMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p \\\"${PORT:-5000}\\\" -h /app/www\"]\n",
    )?;
    std::fs::write(
        dir.join("Procfile"),
        "web: httpd -f -p ${PORT:-5000} -h /app/www\nburst: /app/burst.sh\n",
    )?;
    std::fs::write(dir.join("www/index.html"), "logs bench\n")?;
    // busybox httpd leaves a CGI's stderr on its own, which is the container's log.
    std::fs::write(
        dir.join("www/cgi-bin/mark"),
        "#!/bin/sh\necho \"mark $QUERY_STRING\" >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nok\\n'\n",
    )?;
    std::fs::write(
        dir.join("burst.sh"),
        format!(
            "#!/bin/sh\nawk 'BEGIN {{ for (i = 0; i < {lines}; i++) print \"burst \" i; print \"burst done\" }}'\n\
             exec sleep 2147483647\n"
        ),
    )?;
    Ok(())
}

fn container(process: &str) -> anyhow::Result<String> {
    poll(&format!("a running {process} container"), || {
        docker_lines(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=paas.app={APP}"),
            "--filter",
            &format!("label=paas.process={process}"),
        ])
        .ok()?
        .into_iter()
        .next()
    })
}

/// Asks the web process to log `mark ID`; returns when the request was sent.
fn mark(bench: &Bench, id: &str) -> anyhow::Result<Instant> {
    let sent = Instant::now();
    let answer = http::get(
        &bench.router,
        &bench.host(APP),
        &format!("/cgi-bin/mark?{id}"),
    )?;
    if answer.status != 200 {
        bail!("/cgi-bin/mark answered {}", answer.status);
    }
    Ok(sent)
}

pub fn logs(bench: &Bench, runs: usize, lines: usize) -> anyhow::Result<Vec<String>> {
    let dir = bench.dir.join("logsapp");
    if !dir.join(".git").exists() {
        write_app(&dir, lines)?;
        git(&dir, &["init", "-q", "-b", "main"])?;
        commit(&dir, "logs bench")?;
        run(Command::new("paas")
            .args(["apps:create", APP])
            .current_dir(&dir))?;
        let trace = traced_push(&dir, &bench.gitd_url(APP), Instant::now())?;
        if !trace.success {
            bail!("deploying {APP} failed:\n{}", trace.transcript());
        }
        bench.wait_for_body(APP, "logs bench")?;
    }

    // Latency of one line, written by the web process on request.
    let follower = Follower::paas(APP)?;
    poll("paas logs -f to show a first line", || {
        mark(bench, "ready").ok()?;
        follower.find("mark ready")
    })?;
    let docker = Follower::docker(&container("web")?, "0")?;
    poll("docker logs -f to show a first line", || {
        mark(bench, "docker-ready").ok()?;
        docker.find("mark docker-ready")
    })?;
    let (mut paas_latency, mut docker_latency) = (Vec::new(), Vec::new());
    for probe in 0..LATENCY_PROBES.max(runs) {
        let id = format!("probe-{probe}");
        let sent = mark(bench, &id)?;
        let needle = format!("mark {id}");
        let seen = poll(&format!("{needle} in both streams"), || {
            Some((follower.find(&needle)?, docker.find(&needle)?))
        })?;
        paas_latency.push(ms(seen.0 - sent));
        docker_latency.push(ms(seen.1 - sent));
    }
    drop(docker);

    // Throughput: a fresh burst process per run, followed from before it starts.
    let (mut paas_rates, mut docker_rates, mut received) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        let scaled = Command::new("paas")
            .args(["scale", "burst=1", "-a", APP])
            .output()?;
        if !scaled.status.success() {
            bail!("scale burst=1: {}", String::from_utf8_lossy(&scaled.stderr));
        }
        let docker = Follower::docker(&container("burst")?, "all")?;
        let deadline = Instant::now() + BURST_LIMIT;
        while Instant::now() < deadline
            && (follower.find("burst done").is_none() || docker.find("burst done").is_none())
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let rate =
            |(count, first, last): (usize, Option<Instant>, Option<Instant>)| match (first, last) {
                (Some(first), Some(last)) if last > first => {
                    (count - 1) as f64 / (last - first).as_secs_f64()
                }
                _ => 0.0,
            };
        let ours = follower.burst();
        received.push(ours.0);
        paas_rates.push(rate(ours));
        docker_rates.push(rate(docker.burst()));
        follower.lines.lock().unwrap().clear();
        drop(docker);
        bench.paas(&["scale", "burst=0", "-a", APP])?;
    }
    drop(follower);

    let (ours, theirs) = (median(&paas_rates), median(&docker_rates));
    let (lat, dlat) = (median(&paas_latency), median(&docker_latency));
    Ok(vec![
        row([
            &format!(
                "7. logs: lines/s through `paas logs -f`, {lines} lines written at once (median of {runs})"
            ),
            &format!("{ours:.0} lines/s"),
            &format!("{theirs:.0} lines/s (`docker logs -f` of the same container)"),
            &format!("{:.2}×", ours / theirs),
            "—",
            "—",
            &format!(
                "first to last line received; lines received per run [{}] of {lines}; paas lines/s per run [{}]",
                received
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                list(paas_rates.iter().copied()),
            ),
        ]),
        row([
            &format!(
                "7b. logs: latency of one line (median of {} probes)",
                paas_latency.len()
            ),
            &fmt_ms(lat),
            &format!("{} (`docker logs -f`, same line)", fmt_ms(dlat)),
            &format!("{:.2}×", lat / dlat),
            "—",
            "—",
            "from sending the HTTP request whose CGI writes the line to the line being printed; \
             includes the request through Traefik",
        ]),
    ])
}

//! Scale: `paas scale web=10` and back to `web=1`, beside a floor of nine `docker run` started
//! in parallel, and where the time goes, read from Docker's own event stream (its timestamps
//! of each new container's `create`, `start`, first `health_status: healthy` and the `update`
//! that gives it its restart policy once it is healthy; on the way down, the drain marker's exec,
//! `health_status: unhealthy`, `kill` and `destroy`).

use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};

use crate::bench::{Bench, ContainerRecording, DockerEvent, docker_lines, poll, timed};
use crate::push::{HELLO, hello_checkout, list};
use crate::stats::{fmt_secs, median, row, secs, verdict};
use crate::{figures, http};

const FLOOR_IMAGE: &str = "paas-bench-floor:latest";

/// How many web containers of `app` run, over every engine of the bench.
pub fn running_web(bench: &Bench, app: &str) -> anyhow::Result<usize> {
    let filters = [
        "ps",
        "-q",
        "--filter",
        &format!("label=paas.app={app}"),
        "--filter",
        "label=paas.process=web",
    ];
    let mut running = 0;
    for engine in &bench.engines {
        running += engine.lines(&filters)?.len();
    }
    Ok(running)
}

/// One `paas scale` run: when it started, its wall time and the app's container events
/// meanwhile, in seconds since the command started.
pub struct Timeline {
    pub wall: SystemTime,
    pub total: f64,
    pub events: Vec<(f64, DockerEvent)>,
}

impl Timeline {
    pub fn take(bench: &Bench, scale: &str) -> anyhow::Result<Timeline> {
        let recording = ContainerRecording::start(bench, HELLO)?;
        let wall = SystemTime::now();
        let total = secs(timed(
            Command::new("paas").args(["scale", scale, "-a", HELLO]),
        )?);
        let events = recording
            .stop()?
            .into_iter()
            .map(|event| {
                let at = event.at.duration_since(wall).map(secs).unwrap_or(0.0);
                (at, event)
            })
            .collect();
        Ok(Timeline {
            wall,
            total,
            events,
        })
    }

    fn times<'a>(&'a self, action: &'a str) -> impl Iterator<Item = f64> + 'a {
        self.events
            .iter()
            .filter(move |(_, event)| event.action.starts_with(action))
            .map(|(at, _)| *at)
    }

    pub fn first(&self, action: &str) -> anyhow::Result<f64> {
        self.times(action)
            .reduce(f64::min)
            .with_context(|| format!("no `{action}` in Docker's events:\n{}", self.transcript()))
    }

    pub fn last(&self, action: &str) -> anyhow::Result<f64> {
        self.times(action)
            .reduce(f64::max)
            .with_context(|| format!("no `{action}` in Docker's events:\n{}", self.transcript()))
    }

    /// For every container that has both: the time from its first `from` to its first `to`.
    pub fn per_container(&self, from: &str, to: &str) -> Vec<f64> {
        let first = |name: &str, action: &str| {
            self.events
                .iter()
                .find(|(_, e)| e.name == name && e.action.starts_with(action))
                .map(|(at, _)| *at)
        };
        let mut names: Vec<&str> = self.events.iter().map(|(_, e)| e.name.as_str()).collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter_map(|name| Some(first(name, to)? - first(name, from)?))
            .collect()
    }

    pub fn transcript(&self) -> String {
        self.events
            .iter()
            .filter(|(_, e)| !e.action.starts_with("exec_"))
            .map(|(at, e)| format!("{at:8.3} {} {}\n", e.name, e.action))
            .collect()
    }
}

/// Consecutive phases of one run, each ending at an event (a phase whose event came before
/// the previous one's is empty); the last ends at `total`.
pub fn phases(ends: &[f64], total: f64) -> Vec<f64> {
    let mut previous = 0.0;
    ends.iter()
        .copied()
        .chain([total])
        .map(|end| {
            let end = f64::max(end, previous);
            let phase = end - previous;
            previous = end;
            phase
        })
        .collect()
}

const UP_PHASES: [&str; 5] = [
    "request (CLI, gitd, the agent's plan → first create)",
    "create + start (→ last start)",
    "first probe passes (→ last healthy)",
    "restart policy (→ last update)",
    "routed by Traefik, checks, answer (→ `paas` exits)",
];

fn up_phases(timeline: &Timeline) -> anyhow::Result<Vec<f64>> {
    let healthy = timeline.last("health_status: healthy")?;
    Ok(phases(
        &[
            timeline.first("create")?,
            timeline.last("start")?,
            healthy,
            timeline.last("update").unwrap_or(healthy),
        ],
        timeline.total,
    ))
}

const DOWN_PHASES: [&str; 5] = [
    "request (→ first drain marker)",
    "probes fail (→ last unhealthy)",
    "Traefik lets go, requests end (→ last kill)",
    "stop + remove (→ last destroy)",
    "answer (→ `paas` exits)",
];

fn down_phases(timeline: &Timeline) -> anyhow::Result<Vec<f64>> {
    Ok(phases(
        &[
            // Docker's stream does not always carry the exec's event; then the request's
            // share is counted with the probes'.
            timeline
                .first("exec_start: /.paas/busybox sh -c /.paas/busybox mkdir")
                .unwrap_or(0.0),
            timeline.last("health_status: unhealthy")?,
            timeline.last("kill")?,
            timeline.last("destroy")?,
        ],
        timeline.total,
    ))
}

/// `name value` pairs of the medians over the runs, phase by phase.
pub fn breakdown(names: &[&str], runs: &[Vec<f64>]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let values: Vec<f64> = runs.iter().map(|run| run[i]).collect();
            format!("{name} {}", fmt_secs(median(&values)))
        })
        .collect::<Vec<_>>()
        .join(", ")
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
    let (mut up_split, mut down_split) = (vec![], vec![]);
    let (mut start_to_healthy, mut healthy_to_update) = (vec![], vec![]);
    for run in 0..runs {
        let scaled = Timeline::take(bench, "web=10")?;
        eprintln!("scale web=10, run {run}:\n{}", scaled.transcript());
        let running = running_web(bench, HELLO)?;
        if running != 10 {
            bail!("scale web=10 returned with {running} web containers running");
        }
        up.push(scaled.total);
        up_split.push(up_phases(&scaled)?);
        start_to_healthy.extend(scaled.per_container("start", "health_status: healthy"));
        healthy_to_update.extend(scaled.per_container("health_status: healthy", "update"));
        let back = Timeline::take(bench, "web=1")?;
        eprintln!("scale web=1, run {run}:\n{}", back.transcript());
        poll("web=1 to leave one container", || {
            running_web(bench, HELLO).ok().filter(|&n| n == 1)
        })?;
        down.push(back.total);
        down_split.push(down_phases(&back)?);
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
    figures::save(&bench.figures, figures::SCALE_UP, u)?;
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
                "until `paas scale` returns with 10 web containers running; from Docker's \
                 events: {}; per new container (median of all runs) start → healthy {}, \
                 healthy → update {}; runs [{}], floor runs [{}]",
                breakdown(&UP_PHASES, &up_split),
                fmt_secs(median(&start_to_healthy)),
                fmt_secs(median(&healthy_to_update)),
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
                "paas drains and stops containers gracefully (health check fails, Traefik lets \
                 go, SIGTERM); from Docker's events: {}; runs [{}]",
                breakdown(&DOWN_PHASES, &down_split),
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

#[cfg(test)]
mod tests {
    use super::phases;

    #[test]
    fn phases_run_from_one_event_to_the_next_and_never_back() {
        assert_eq!(phases(&[1.0, 3.0], 4.5), vec![1.0, 2.0, 1.5]);
        // Traefik listed every task before `paas` exited: its phase is empty.
        assert_eq!(phases(&[2.0, 5.0], 4.0), vec![2.0, 3.0, 0.0]);
    }
}

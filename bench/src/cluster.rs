//! The cluster rows: push → live and `scale web=1 → web=10` of examples/hello on a local Swarm
//! cluster (`scripts/cluster`), taken by the same code as rows 1 and 4 (`push::deploy`,
//! `scale::Timeline`) against the cluster's platform — its gitd, an agent with the swarm engine
//! on node 1, the cluster's Traefik as the router — beside the single-host figures of the same
//! run. Where the time goes is read from the push's progress lines, the nodes' own Docker
//! events (the manager's service updates, each node's image pulls, the tasks' containers) and
//! Traefik's API (when it lists every task).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::bench::{Bench, DockerEvent, POLL_LIMIT, container_events, poll};
use crate::push::{HELLO, deploy, hello_checkout, list};
use crate::scale::{Timeline, breakdown, phases, running_web};
use crate::stats::{fmt_secs, median, row, secs};
use crate::{figures, http};

const SCALED: usize = 10;

/// Traefik's API on the cluster (`10.231.5.1:8080`) and the service it makes of the app's
/// web tasks.
#[derive(Clone)]
struct Router {
    api: String,
    service: String,
}

impl Router {
    /// How many servers Traefik's load balancer of the app has now.
    fn servers(&self) -> anyhow::Result<usize> {
        let path = format!("/api/http/services/{}", self.service);
        let answer = http::get(&self.api, &self.api, &path)?;
        if answer.status == 404 {
            return Ok(0);
        }
        if answer.status != 200 {
            bail!("Traefik's API {path}: {} {}", answer.status, answer.body);
        }
        let service: serde_json::Value = serde_json::from_str(&answer.body)?;
        Ok(service["loadBalancer"]["servers"]
            .as_array()
            .map_or(0, Vec::len))
    }

    /// From another thread, polls until Traefik lists `count` servers; the join handle gives
    /// when (on the system clock).
    fn watch_for(&self, count: usize) -> std::thread::JoinHandle<Option<SystemTime>> {
        let router = self.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            while start.elapsed() < POLL_LIMIT {
                if router.servers().is_ok_and(|servers| servers == count) {
                    return Some(SystemTime::now());
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            None
        })
    }
}

fn manager(bench: &Bench) -> anyhow::Result<&crate::bench::Engine> {
    bench
        .engines
        .first()
        .context("BENCH_ENGINES names no engine")
}

/// Seconds from `since` to `at` (0 when `at` is earlier).
fn offset(since: SystemTime, at: SystemTime) -> f64 {
    at.duration_since(since).map(secs).unwrap_or(0.0)
}

/// The manager's `update` events of the app's web service, and every node's pulls of the app's
/// image, between `since` and now, in seconds since `since`.
struct SwarmEvents {
    service_updates: Vec<f64>,
    pulls: Vec<f64>,
}

/// The filters of the manager's web service events and of a node's pulls of the app's image.
fn service_filters() -> Vec<String> {
    vec!["type=service".to_owned()]
}

fn pull_filters() -> Vec<String> {
    vec!["type=image".to_owned(), "event=pull".to_owned()]
}

impl SwarmEvents {
    /// Sorts the manager's service events and the nodes' pulls, in seconds since `since`.
    fn of(since: SystemTime, services: Vec<DockerEvent>, pulls: Vec<DockerEvent>) -> SwarmEvents {
        let web_service = format!("paas-{HELLO}-web-");
        let image = format!("/paas/{HELLO}");
        let times = |events: Vec<DockerEvent>, keep: &dyn Fn(&DockerEvent) -> bool| {
            let mut times: Vec<f64> = events
                .iter()
                .filter(|event| keep(event))
                .map(|event| offset(since, event.at))
                .collect();
            times.sort_by(f64::total_cmp);
            times
        };
        SwarmEvents {
            service_updates: times(services, &|event| {
                event.action == "update" && event.name.starts_with(&web_service)
            }),
            pulls: times(pulls, &|event| event.name.contains(&image)),
        }
    }

    /// From the engines' replay of past events (enough for one deploy's few events).
    fn take(bench: &Bench, since: SystemTime) -> anyhow::Result<SwarmEvents> {
        let until = SystemTime::now();
        let services = manager(bench)?.events(&service_filters(), since, until)?;
        let mut pulls = Vec::new();
        for engine in &bench.engines {
            pulls.extend(engine.events(&pull_filters(), since, until)?);
        }
        Ok(SwarmEvents::of(since, services, pulls))
    }

    fn first_update_after(&self, after: f64) -> Option<f64> {
        self.service_updates.iter().copied().find(|&at| at >= after)
    }
}

const DEPLOY_PHASES: [&str; 9] = [
    "receive (→ build starts)",
    "build on node 1 (→ registry push starts)",
    "registry push (→ pushed)",
    "release (→ launch)",
    "the agent's service update (→ Swarm's update event)",
    "Swarm schedules, the node pulls (→ the node's pull event)",
    "create + start (→ the new task's start)",
    "first probe passes (→ healthy)",
    "Traefik picks it up (→ first new body)",
];

struct ClusterDeploy {
    live: f64,
    phases: Vec<f64>,
    pulled: bool,
}

fn cluster_deploy(
    bench: &Bench,
    dir: &std::path::Path,
    tag: &str,
) -> anyhow::Result<ClusterDeploy> {
    let deployed = deploy(bench, dir, tag)?;
    let mark = |needle: &str| deployed.mark(needle).map(secs);
    let (building, pushing, pushed, launching) = (
        mark("-----> Building")?,
        mark("Pushing ")?,
        mark("Pushed ")?,
        mark("-----> Launching")?,
    );
    let swarm = SwarmEvents::take(bench, deployed.wall_start)?;
    let containers: Vec<(f64, DockerEvent)> =
        container_events(bench, HELLO, deployed.wall_start, SystemTime::now())?
            .into_iter()
            .map(|event| (offset(deployed.wall_start, event.at), event))
            .filter(|(at, _)| *at >= launching)
            .collect();
    let transcript: String = containers
        .iter()
        .filter(|(_, e)| !e.action.starts_with("exec_"))
        .map(|(at, e)| format!("{at:8.3} {} {}\n", e.name, e.action))
        .collect();
    let new_task = containers
        .iter()
        .find(|(_, event)| event.action == "create")
        .map(|(_, event)| event.name.clone())
        .with_context(|| format!("no new task container in the nodes' events:\n{transcript}"))?;
    let of_new_task = |action: &str| {
        containers
            .iter()
            .find(|(_, event)| event.name == new_task && event.action.starts_with(action))
            .map(|(at, _)| *at)
            .with_context(|| format!("no `{action}` of {new_task}:\n{transcript}"))
    };
    let started = of_new_task("start")?;
    let healthy = of_new_task("health_status: healthy")?;
    let update = swarm.first_update_after(launching).unwrap_or(launching);
    let pull = swarm.pulls.iter().copied().find(|&at| at >= update);
    let live = secs(deployed.live);
    eprintln!(
        "cluster {tag}:\n{}{transcript}       service update at {update:.3}, pull at {pull:?}, live at {live:.3}",
        deployed.trace.transcript(),
    );
    Ok(ClusterDeploy {
        live,
        phases: phases(
            &[
                building,
                pushing,
                pushed,
                launching,
                update,
                pull.unwrap_or(update),
                started,
                healthy,
            ],
            live,
        ),
        pulled: pull.is_some(),
    })
}

const SCALE_PHASES: [&str; 6] = [
    "request (CLI, gitd, the agent → Swarm's service update)",
    "Swarm schedules, nodes pull (→ first task's create)",
    "create + start (→ last start)",
    "first probes pass (→ last healthy)",
    "Swarm reports them running, the agent sees it, answer (→ `paas` exits)",
    "Traefik lists all 10 (→ routed)",
];

struct ClusterScale {
    total: f64,
    phases: Vec<f64>,
    returned: f64,
    routed: f64,
    pulls: usize,
    per_node: String,
}

fn cluster_scale_up(bench: &Bench, router: &Router) -> anyhow::Result<ClusterScale> {
    let services = manager(bench)?.record(&service_filters())?;
    let pulls: Vec<_> = bench
        .engines
        .iter()
        .map(|engine| engine.record(&pull_filters()))
        .collect::<anyhow::Result<_>>()?;
    let watcher = router.watch_for(SCALED);
    let scaled = Timeline::take(bench, &format!("web={SCALED}"))?;
    let mut pulled = Vec::new();
    for recording in pulls {
        pulled.extend(recording.stop()?);
    }
    let swarm = SwarmEvents::of(scaled.wall, services.stop()?, pulled);
    let routed = watcher
        .join()
        .expect("Traefik watcher thread")
        .map(|at| offset(scaled.wall, at))
        .with_context(|| format!("Traefik never listed {SCALED} servers of {HELLO}"))?;
    eprintln!("cluster scale web={SCALED}:\n{}", scaled.transcript());
    let running = running_web(bench, HELLO)?;
    if running != SCALED {
        bail!("scale web={SCALED} returned with {running} web tasks running");
    }
    let mut per_node = Vec::new();
    for engine in &bench.engines {
        let filter = format!("label=paas.app={HELLO}");
        per_node.push(
            engine
                .lines(&["ps", "-q", "--filter", &filter])?
                .len()
                .to_string(),
        );
    }
    let total = f64::max(scaled.total, routed);
    let update = swarm.first_update_after(0.0).unwrap_or(0.0);
    Ok(ClusterScale {
        total,
        phases: phases(
            &[
                update,
                scaled.first("create")?,
                scaled.last("start")?,
                scaled.last("health_status: healthy")?,
                scaled.total,
            ],
            total,
        ),
        returned: scaled.total,
        routed,
        pulls: swarm.pulls.len(),
        per_node: per_node.join("/"),
    })
}

/// Back to one web task, and Traefik down to one server, so the next run starts as the first.
fn scale_back(bench: &Bench, router: &Router) -> anyhow::Result<()> {
    Timeline::take(bench, "web=1")?;
    poll("web=1 to leave one task", || {
        running_web(bench, HELLO).ok().filter(|&n| n == 1)
    })?;
    poll("Traefik to list one server", || {
        router.servers().ok().filter(|&n| n == 1)
    })
    .map(drop)
}

pub fn cluster(bench: &Bench, runs: usize, traefik_api: &str) -> anyhow::Result<Vec<String>> {
    let single_live = figures::load(&bench.figures, figures::PUSH_LIVE, "push-live")?;
    let single_scale = figures::load(&bench.figures, figures::SCALE_UP, "scale")?;
    let nodes = bench.engines.len();
    let dir = hello_checkout(bench)?;
    let nonce = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    // One untimed deploy, so the build cache on node 1 and the base layers on the node are warm.
    cluster_deploy(bench, &dir, &format!("warm-cluster-{nonce}"))?;
    let mut deploys = Vec::new();
    for i in 1..=runs {
        deploys.push(cluster_deploy(
            bench,
            &dir,
            &format!("cluster-run-{i}-{nonce}"),
        )?);
    }
    let router = Router {
        api: traefik_api.to_owned(),
        service: format!("paas-{HELLO}@swarm"),
    };
    let mut scales = Vec::new();
    for _ in 0..runs {
        scales.push(cluster_scale_up(bench, &router)?);
        scale_back(bench, &router)?;
    }
    let live = median(&deploys.iter().map(|d| d.live).collect::<Vec<_>>());
    let scale = median(&scales.iter().map(|s| s.total).collect::<Vec<_>>());
    let deploy_phases: Vec<Vec<f64>> = deploys.iter().map(|d| d.phases.clone()).collect();
    let scale_phases: Vec<Vec<f64>> = scales.iter().map(|s| s.phases.clone()).collect();
    Ok(vec![
        row([
            &format!("C1. push → live on {nodes} Swarm nodes, examples/hello (median of {runs})"),
            &fmt_secs(live),
            &format!("{} (row 1, one host, same run)", fmt_secs(single_live)),
            &format!("{:.2}× one host", live / single_live),
            "—",
            "—",
            &format!(
                "from the push's lines and the nodes' Docker events: {}; the node pulled the new \
                 image in {} of {runs} runs (else its pull is counted with create + start); \
                 runs [{}]",
                breakdown(&DEPLOY_PHASES, &deploy_phases),
                deploys.iter().filter(|d| d.pulled).count(),
                list(deploys.iter().map(|d| d.live)),
            ),
        ]),
        row([
            &format!(
                "C4. scale web=1 → web={SCALED} on {nodes} Swarm nodes, all running and routed \
                 (median of {runs})"
            ),
            &fmt_secs(scale),
            &format!("{} (row 4, one host, same run)", fmt_secs(single_scale)),
            &format!("{:.2}× one host", scale / single_scale),
            "—",
            "—",
            &format!(
                "until `paas scale` has returned and Traefik's API lists all {SCALED} tasks; from \
                 the nodes' Docker events: {}; `paas scale` returned at {}, Traefik listed all \
                 {SCALED} at {} (medians); image pulls per run [{}]; tasks per node [{}]; runs [{}]",
                breakdown(&SCALE_PHASES, &scale_phases),
                fmt_secs(median(
                    &scales.iter().map(|s| s.returned).collect::<Vec<_>>()
                )),
                fmt_secs(median(&scales.iter().map(|s| s.routed).collect::<Vec<_>>())),
                scales
                    .iter()
                    .map(|s| s.pulls.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                scales
                    .iter()
                    .map(|s| s.per_node.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                list(scales.iter().map(|s| s.total)),
            ),
        ]),
    ])
}

//! The platform `scripts/bench` started, as described by its `BENCH_*` variables, and the
//! commands every scenario runs against it (`paas`, `git`, `docker`) with bounded waits.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};

use crate::http;

/// Longest any single readiness poll may take before the scenario gives up.
pub const POLL_LIMIT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(10);

pub struct Bench {
    /// Scratch space for checkouts and bare repositories; removed by the script.
    pub dir: PathBuf,
    pub repo_root: PathBuf,
    /// gitd's HTTP API, `127.0.0.1:PORT`.
    pub api: String,
    /// Traefik's `web` entrypoint, `127.0.0.1:PORT`.
    pub router: String,
    pub domain: String,
    pub gitd_ssh_port: u16,
    pub sshd_port: u16,
    pub gitd_pid: u32,
    pub agent_pid: u32,
    pub traefik_pid: u32,
    pub admin_password: String,
    /// paas-agent's API, `127.0.0.1:PORT`, and its token (for setting up many apps cheaply).
    pub agent: String,
    pub agent_token: String,
    /// The engines the apps' containers run on: this machine's, or each node's of a cluster.
    pub engines: Vec<Engine>,
    /// Where scenarios leave the figures a later scenario of the same run is compared with.
    pub figures: PathBuf,
}

/// A Docker engine the bench apps run on: this machine's (`BENCH_ENGINES` unset) or one named
/// by its `DOCKER_HOST` (`unix:///run/paasbench-1.sock`, a cluster's node).
pub struct Engine {
    host: Option<String>,
}

impl Engine {
    /// This machine's engine (`DOCKER_HOST` as the bench was started with, as a rule unset).
    pub fn local() -> Engine {
        Engine { host: None }
    }

    /// `docker` talking to this engine.
    pub fn docker(&self) -> Command {
        let mut command = Command::new("docker");
        if let Some(host) = &self.host {
            command.arg("-H").arg(host);
        }
        command
    }

    /// `docker ARGS` on this engine, stdout as non-empty lines.
    pub fn lines(&self, args: &[&str]) -> anyhow::Result<Vec<String>> {
        Ok(run(self.docker().args(args))?
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_owned)
            .collect())
    }

    /// This engine's events matching `filters` (`type=container`, `label=…`) between `since`
    /// and `until` (both past), in Docker's order, with Docker's own timestamps.
    pub fn events(
        &self,
        filters: &[String],
        since: SystemTime,
        until: SystemTime,
    ) -> anyhow::Result<Vec<DockerEvent>> {
        let unix = |at: SystemTime| -> anyhow::Result<String> {
            Ok(format!(
                "{:.6}",
                at.duration_since(UNIX_EPOCH)?.as_secs_f64()
            ))
        };
        let mut command = self.docker();
        command.args(["events", "--since", &unix(since)?, "--until", &unix(until)?]);
        for filter in filters {
            command.arg("--filter").arg(filter);
        }
        command.args(["--format", EVENT_FORMAT]);
        parse_events(&run(&mut command)?)
    }

    /// Starts following this engine's events matching `filters` as they happen: an engine
    /// replays only its last 256 events, fewer than a busy scale makes with its probes.
    pub fn record(&self, filters: &[String]) -> anyhow::Result<Recording> {
        let since = format!(
            "{:.6}",
            SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64()
        );
        let mut command = self.docker();
        command.args(["events", "--since", &since]);
        for filter in filters {
            command.arg("--filter").arg(filter);
        }
        let mut child = command
            .args(["--format", EVENT_FORMAT])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot run docker events")?;
        let mut stdout = child.stdout.take().context("no stdout")?;
        let reader = std::thread::spawn(move || {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut stdout, &mut text).map(|_| text)
        });
        Ok(Recording { child, reader })
    }
}

const EVENT_FORMAT: &str = "{{.TimeNano}}\t{{.Action}}\t{{.Actor.Attributes.name}}";

fn parse_events(listing: &str) -> anyhow::Result<Vec<DockerEvent>> {
    listing
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let mut fields = line.splitn(3, '\t');
            let nanos: u64 = fields
                .next()
                .and_then(|n| n.parse().ok())
                .with_context(|| format!("no timestamp in docker event {line:?}"))?;
            Ok(DockerEvent {
                at: UNIX_EPOCH + Duration::from_nanos(nanos),
                action: fields.next().unwrap_or_default().to_owned(),
                name: fields.next().unwrap_or_default().to_owned(),
            })
        })
        .collect()
}

/// A `docker events` that follows one engine from [`Engine::record`] until [`Recording::stop`].
pub struct Recording {
    child: std::process::Child,
    reader: std::thread::JoinHandle<std::io::Result<String>>,
}

/// How long the last events get to reach a recording before it stops.
const RECORDING_GRACE: Duration = Duration::from_millis(300);

impl Recording {
    pub fn stop(mut self) -> anyhow::Result<Vec<DockerEvent>> {
        std::thread::sleep(RECORDING_GRACE);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let text = self.reader.join().expect("docker events reader")?;
        parse_events(&text)
    }
}

/// Container events of `app` on every engine of the bench, recorded from [`start`] until
/// [`stop`], in time order.
///
/// [`start`]: ContainerRecording::start
/// [`stop`]: ContainerRecording::stop
pub struct ContainerRecording(Vec<Recording>);

impl ContainerRecording {
    pub fn start(bench: &Bench, app: &str) -> anyhow::Result<ContainerRecording> {
        let filters = ["type=container".to_owned(), format!("label=paas.app={app}")];
        bench
            .engines
            .iter()
            .map(|engine| engine.record(&filters))
            .collect::<anyhow::Result<_>>()
            .map(ContainerRecording)
    }

    pub fn stop(self) -> anyhow::Result<Vec<DockerEvent>> {
        let mut events = Vec::new();
        for recording in self.0 {
            events.extend(recording.stop()?);
        }
        events.sort_by_key(|event| event.at);
        Ok(events)
    }
}

impl Bench {
    pub fn from_env() -> anyhow::Result<Bench> {
        let var = |name: &str| {
            std::env::var(name).with_context(|| format!("{name} is not set; run scripts/bench"))
        };
        let number = |name: &str| -> anyhow::Result<u32> {
            var(name)?
                .parse()
                .with_context(|| format!("{name} is not a number"))
        };
        let port = |name: &str| -> anyhow::Result<u16> {
            var(name)?
                .parse()
                .with_context(|| format!("{name} is not a port"))
        };
        let password_file = var("BENCH_ADMIN_PASSWORD_FILE")?;
        let agent_token_file = var("BENCH_AGENT_TOKEN_FILE")?;
        Ok(Bench {
            dir: var("BENCH_DIR")?.into(),
            repo_root: var("BENCH_REPO_ROOT")?.into(),
            api: var("BENCH_API")?,
            router: var("BENCH_ROUTER")?,
            domain: var("BENCH_DOMAIN")?,
            gitd_ssh_port: port("BENCH_GITD_SSH_PORT")?,
            sshd_port: port("BENCH_SSHD_PORT")?,
            gitd_pid: number("BENCH_GITD_PID")?,
            agent_pid: number("BENCH_AGENT_PID")?,
            traefik_pid: number("BENCH_TRAEFIK_PID")?,
            admin_password: std::fs::read_to_string(&password_file)
                .with_context(|| format!("reading {password_file}"))?
                .trim()
                .to_owned(),
            agent: var("BENCH_AGENT")?,
            agent_token: std::fs::read_to_string(&agent_token_file)
                .with_context(|| format!("reading {agent_token_file}"))?
                .trim()
                .to_owned(),
            engines: match std::env::var("BENCH_ENGINES") {
                Ok(hosts) => hosts
                    .split_whitespace()
                    .map(|host| Engine {
                        host: Some(host.to_owned()),
                    })
                    .collect(),
                Err(_) => vec![Engine::local()],
            },
            figures: var("BENCH_FIGURES")?.into(),
        })
    }

    pub fn gitd_url(&self, app: &str) -> String {
        format!("ssh://git@127.0.0.1:{}/{app}.git", self.gitd_ssh_port)
    }

    pub fn sshd_url(&self, bare: &Path) -> String {
        format!("ssh://root@127.0.0.1:{}{}", self.sshd_port, bare.display())
    }

    pub fn host(&self, app: &str) -> String {
        format!("{app}.{}", self.domain)
    }

    /// `paas ARGS`, which must succeed.
    pub fn paas(&self, args: &[&str]) -> anyhow::Result<String> {
        run(Command::new("paas").args(args).current_dir(&self.dir))
    }

    /// Creates `app` and remembers nothing: the script destroys every `bench-*` app at the end.
    pub fn create_app(&self, app: &str) -> anyhow::Result<()> {
        self.paas(&["apps:create", app]).map(drop)
    }

    pub fn destroy_app(&self, app: &str) -> anyhow::Result<()> {
        self.paas(&["apps:destroy", app, "--confirm", app])
            .map(drop)
    }

    /// Polls `/` of `app` through Traefik until it answers 200 with `needle` in the body.
    pub fn wait_for_body(&self, app: &str, needle: &str) -> anyhow::Result<Duration> {
        let start = Instant::now();
        let host = self.host(app);
        poll(&format!("{app} to answer with {needle:?}"), || {
            http::get(&self.router, &host, "/")
                .ok()
                .filter(|answer| answer.status == 200 && answer.body.contains(needle))
        })?;
        Ok(start.elapsed())
    }

    /// A bearer token for the admin, from `POST /v1/login`.
    pub fn token(&self) -> anyhow::Result<String> {
        let body = serde_json::json!({"username": "admin", "password": self.admin_password});
        let answer = http::request(
            &self.api,
            "POST",
            "/v1/login",
            None,
            Some(&body.to_string()),
        )?;
        if answer.status != 200 {
            bail!("login failed: {} {}", answer.status, answer.body);
        }
        let json: serde_json::Value = serde_json::from_str(&answer.body)?;
        json["token"]
            .as_str()
            .map(str::to_owned)
            .context("no token in the login answer")
    }
}

/// Runs a command that must succeed; returns its stdout.
pub fn run(command: &mut Command) -> anyhow::Result<String> {
    let output = output(command)?;
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a command that must succeed; returns its whole output.
pub fn output(command: &mut Command) -> anyhow::Result<Output> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {shown}"))?;
    if !output.status.success() {
        bail!(
            "{shown} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

/// Times one successful run of a command.
pub fn timed(command: &mut Command) -> anyhow::Result<Duration> {
    let start = Instant::now();
    output(command)?;
    Ok(start.elapsed())
}

pub fn git(dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    run(Command::new("git").args(args).current_dir(dir))
}

/// Commits everything in `dir` with a fixed identity.
pub fn commit(dir: &Path, message: &str) -> anyhow::Result<()> {
    git(dir, &["add", "-A"])?;
    git(
        dir,
        &[
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            message,
        ],
    )
    .map(drop)
}

/// `docker ARGS` stdout as non-empty lines.
pub fn docker_lines(args: &[&str]) -> anyhow::Result<Vec<String>> {
    Engine::local().lines(args)
}

/// One event from Docker's event stream.
pub struct DockerEvent {
    pub at: SystemTime,
    /// `create`, `start`, `health_status: healthy`, `exec_start: CMD`, `kill`, `destroy`, `pull`,
    /// `update`, …
    pub action: String,
    /// The container's, image's or service's name.
    pub name: String,
}

/// The container events of `app`'s containers on every engine of the bench between `since`
/// and `until` (both past), in time order, with Docker's own timestamps.
pub fn container_events(
    bench: &Bench,
    app: &str,
    since: SystemTime,
    until: SystemTime,
) -> anyhow::Result<Vec<DockerEvent>> {
    let filters = ["type=container".to_owned(), format!("label=paas.app={app}")];
    let mut events = Vec::new();
    for engine in &bench.engines {
        events.extend(engine.events(&filters, since, until)?);
    }
    events.sort_by_key(|event| event.at);
    Ok(events)
}

/// Calls `probe` every 10 ms until it gives a value, for at most [`POLL_LIMIT`].
pub fn poll<T>(what: &str, mut probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    let deadline = Instant::now() + POLL_LIMIT;
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        if Instant::now() > deadline {
            bail!(
                "gave up waiting for {what} after {} s",
                POLL_LIMIT.as_secs()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A line of `/proc/PID/status` such as `VmRSS`, in MiB.
pub fn proc_status_mib(pid: u32, field: &str) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("process {pid} is gone"))?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))?;
    Ok(kib / 1024.0)
}

/// Copies a directory tree (regular files and directories only).
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

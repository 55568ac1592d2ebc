//! The platform's moving parts as tests start them, isolated per test: a real Traefik (its own
//! static config on free loopback ports), a real `paas-agent` (optionally routing through that
//! Traefik, optionally finding the stand-in `pack` first on its PATH), and [`Platform`]: a real
//! `paas-gitd` wired to them, the real `paas` CLI logged in as the admin and an SSH key
//! registered through it. [`Platform::push`] is a real `git push` over SSH; [`Platform::get`]
//! asks Traefik for an app by its `Host`.
//!
//! Every fixture that names apps removes exactly what those apps left in Docker when dropped,
//! also when the test panicked ([`remove_from_docker`]): their containers, their networks and
//! their `paas/<app>:*` images, the latter without pruning parents, which are build-cache layers
//! a concurrent build may be using. App names carry the test process's id, so parallel tests
//! never share one.

use std::ffi::OsString;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use paas_agent_client::AgentClient;
use tempfile::TempDir;

use crate::local_cluster::LocalCluster;
use crate::util::{
    ADMIN_PASSWORD, ADMIN_USER, Cli, Gitd, GitdInit, HttpAnswer, HttpResponse, Output, bin,
    git_command, http_get, new_key, ssh_command, wait_for, workspace_root,
};

/// Apps answer at `<app>.paas.test` through the test's Traefik.
pub const DOMAIN: &str = "paas.test";

/// Runs `script` (bash, from the workspace root, with the `scripts/lib` functions `scripts/up`
/// and `scripts/test` use) once per test process; panics with its stderr if it failed.
fn prepare_once(cell: &'static OnceLock<Result<(), String>>, script: &str) {
    let ready = cell.get_or_init(|| {
        let output = Command::new("bash")
            .arg("-c")
            .arg(format!("set -e; {script}"))
            .current_dir(workspace_root())
            .output()
            .map_err(|err| format!("cannot run bash: {err}"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    });
    if let Err(err) = ready {
        panic!("the platform's prerequisites are missing: {err}");
    }
}

/// Docker running and the busybox base image present.
pub fn ensure_docker() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    prepare_once(
        &READY,
        "source scripts/lib/docker.sh; ensure_docker; ensure_base_image",
    );
}

/// The local add-on images every test agent runs ([`POSTGRES_IMAGE`], [`REDIS_IMAGE`]), built
/// by `scripts/lib/images.sh` when missing (no registry here).
pub fn ensure_addon_images() {
    ensure_docker();
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    prepare_once(
        &READY,
        &format!(
            "docker image inspect {POSTGRES_IMAGE} {REDIS_IMAGE} >/dev/null 2>&1 || {{ source scripts/lib/docker.sh; source scripts/lib/images.sh; ensure_addon_images; }}"
        ),
    );
}

/// The add-on images of the test agents' `[addons]`.
pub const POSTGRES_IMAGE: &str = "paas/postgres:15";
pub const REDIS_IMAGE: &str = "paas/redis:7";
/// `[addons] backups_keep` of the test agents: low, so retention shows after a few captures.
pub const BACKUPS_KEEP: usize = 2;

/// Docker as [`ensure_docker`] and `traefik` on PATH.
pub fn ensure_prerequisites() {
    ensure_docker();
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    prepare_once(&READY, "source scripts/lib/traefik.sh; ensure_traefik");
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the stand-in `pack` script lives.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures")
}

// ---------------------------------------------------------------------------------------------
// Docker

/// `docker ARGS`, stdout as lines (nothing when it fails).
pub fn docker_lines(args: &[&str]) -> Vec<String> {
    let out = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .filter(|line| !line.is_empty())
        .collect()
}

/// `docker ARGS`, asserting success; stdout trimmed.
#[track_caller]
pub fn docker(args: &[&str]) -> String {
    let output = Command::new("docker")
        .args(args)
        .output()
        .expect("docker runs");
    assert!(
        output.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// `docker image inspect` of one field, `None` when there is no such image.
pub fn image_field(image: &str, format: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "--format", format, image])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Removes what `app` left in Docker and nothing else: its containers (label `paas.app`), its
/// volumes, its networks (that label or the name `paas-app-<app>`) and its images (the `paas/<app>` tags and
/// images labelled with the app). Images go with `--no-prune`: their untagged parents are
/// build-cache layers that another app's build may be using right now.
pub fn remove_from_docker(app: &str) {
    let label = format!("label=paas.app={app}");
    let containers = docker_lines(&["ps", "-aq", "--filter", &label]);
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(containers.iter().map(String::as_str));
        docker_lines(&args);
    }
    let mut networks = docker_lines(&["network", "ls", "-q", "--filter", &label]);
    let by_name = format!("paas-app-{app}");
    networks.extend(
        docker_lines(&["network", "ls", "--format", "{{.ID}} {{.Name}}"])
            .iter()
            .filter_map(|line| line.split_once(' '))
            .filter(|(_, name)| *name == by_name)
            .map(|(id, _)| id.to_owned()),
    );
    networks.sort();
    networks.dedup();
    if !networks.is_empty() {
        let mut args = vec!["network", "rm"];
        args.extend(networks.iter().map(String::as_str));
        docker_lines(&args);
    }
    // Its volumes (`paas storage`), named `paas-vol-<app>.<volume>`, once no container holds them.
    let prefix = format!("paas-vol-{app}.");
    let volumes: Vec<String> = docker_lines(&["volume", "ls", "-q", "--filter", &label])
        .into_iter()
        .filter(|name| name.starts_with(&prefix))
        .collect();
    if !volumes.is_empty() {
        let mut args = vec!["volume", "rm", "-f"];
        args.extend(volumes.iter().map(String::as_str));
        docker_lines(&args);
    }
    let own_layers = own_build_layers(app, &label);
    let repository = format!("paas/{app}");
    let images: Vec<String> = docker_lines(&[
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &repository,
    ])
    .into_iter()
    .filter(|tag| tag.starts_with(&format!("{repository}:")))
    .collect();
    if !images.is_empty() {
        let mut args = vec!["image", "rm", "--no-prune"];
        args.extend(images.iter().map(String::as_str));
        docker_lines(&args);
    }
    // What is left with the app's label is the app's alone (no other build's cache can match
    // it): untagged release images and the labelled steps under them. A parent listed before
    // its child cannot go yet, so repeat while that makes progress.
    let mut left = usize::MAX;
    loop {
        let images = docker_lines(&["image", "ls", "-aq", "--no-trunc", "--filter", &label]);
        if images.is_empty() || images.len() >= left {
            break;
        }
        left = images.len();
        let mut args = vec!["image", "rm", "--no-prune"];
        args.extend(images.iter().map(String::as_str));
        docker_lines(&args);
    }
    for layer in own_layers {
        docker_lines(&["image", "rm", "--no-prune", &layer]);
    }
}

/// The unlabelled build steps under the app's images whose step names the app (a build
/// argument carrying the app's name, say), nearest first: no other build's cache can match
/// them, so they are the app's alone.
fn own_build_layers(app: &str, label: &str) -> Vec<String> {
    let mut layers = Vec::new();
    for image in docker_lines(&["image", "ls", "-aq", "--no-trunc", "--filter", label]) {
        let mut current = image;
        loop {
            let parent = docker_lines(&["image", "inspect", "--format", "{{.Parent}}", &current]);
            let Some(parent) = parent.into_iter().next() else {
                break;
            };
            let step = docker_lines(&[
                "image",
                "inspect",
                "--format",
                "{{json .ContainerConfig.Cmd}} {{json .Config.Labels}}",
                &parent,
            ]);
            let step = step.join(" ");
            let labelled = step.contains(&format!("\"paas.app\":\"{app}\""));
            if labelled || !step.contains(app) {
                break;
            }
            layers.push(parent.clone());
            current = parent;
        }
    }
    layers.dedup();
    layers
}

/// Names of per-process apps, removed from Docker (or from the cluster's Swarm) when dropped.
#[derive(Default)]
pub struct DockerApps {
    apps: Mutex<Vec<String>>,
    swarm: Option<LocalCluster>,
}

impl DockerApps {
    /// Tracks `name` (already unique per test process) for removal; returns it.
    pub fn track(&self, name: String) -> String {
        self.apps.lock().unwrap().push(name.clone());
        name
    }
}

impl Drop for DockerApps {
    fn drop(&mut self) {
        for app in self.apps.lock().unwrap().iter() {
            match &self.swarm {
                Some(cluster) => cluster.remove_app(app),
                None => remove_from_docker(app),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Traefik

/// `traefik` with its own static config: the Docker provider exposing only labelled
/// containers of one agent's (constrained to an instance key made by `paas-agent init`, in the
/// config `paas-agent traefik-config` prints, as `scripts/up` and `scripts/bench` run it;
/// [`Agent::start`] with this Traefik uses that key), the HTTP entrypoint `web` and the
/// read-only API on their own loopback ports.
pub struct Traefik {
    child: Child,
    dir: TempDir,
    /// The `instance_key` the agents routed through this Traefik must have.
    pub instance_key: String,
    /// The `web` entrypoint, `127.0.0.1:PORT`.
    pub web: String,
    /// The API (`api.insecure`), `127.0.0.1:PORT`.
    pub api: String,
    /// The directory its file provider watches, where agents write maintenance routes.
    pub routes_dir: PathBuf,
    /// Its JSON access log, which the agent reads the router lines from (`traefik-config`'s;
    /// none for a static config of the test's own).
    pub access_log: Option<PathBuf>,
}

impl Traefik {
    pub fn start() -> Traefik {
        Traefik::start_with(&[])
    }

    /// [`Traefik::start`] with `extra` flags for `paas-agent traefik-config` (e.g. a shorter
    /// `--response-timeout`).
    pub fn start_with(extra: &[&str]) -> Traefik {
        ensure_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-traefik")
            .tempdir()
            .unwrap();
        let (web_port, api_port) = (free_port(), free_port());
        let (instance_key, config) =
            instance_key_and_traefik_config(dir.path(), web_port, api_port, extra);
        // Where `traefik-config` of the key's agent config (state dir `state`) points it.
        let routes_dir = dir.path().join("state").join("traefik");
        let access_log = dir.path().join("state").join("router").join("access.log");
        let mut traefik = Traefik::run(
            dir,
            &config,
            instance_key,
            format!("127.0.0.1:{web_port}"),
            format!("127.0.0.1:{api_port}"),
            routes_dir,
        );
        traefik.access_log = Some(access_log);
        traefik
    }

    /// Traefik on a static config of the test's own (in `dir`, which it keeps), whose Docker
    /// provider is constrained to `instance_key`, serving apps on `web` (whatever its scheme),
    /// its API on `api`, and watching `routes_dir` (the agents' `traefik_routes_dir`).
    pub fn run(
        dir: TempDir,
        config: &Path,
        instance_key: String,
        web: String,
        api: String,
        routes_dir: PathBuf,
    ) -> Traefik {
        let log = std::fs::File::create(dir.path().join("traefik.log")).unwrap();
        let child = Command::new("traefik")
            .arg(format!("--configFile={}", config.display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("traefik on PATH (scripts/lib/traefik.sh: ensure_traefik)");
        let mut traefik = Traefik {
            child,
            dir,
            instance_key,
            web,
            api,
            routes_dir,
            access_log: None,
        };
        let api = traefik.api.clone();
        wait_for("Traefik's API to answer", || {
            if let Some(status) = traefik.child.try_wait().unwrap() {
                panic!("traefik exited with {status}:\n{}", traefik.log());
            }
            http_get(&api, "localhost", "/api/version")
                .ok()
                .filter(|r| r.status == 200)
        });
        traefik
    }

    pub fn web_port(&self) -> u16 {
        self.web.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("traefik.log")).unwrap_or_default()
    }

    /// `GET path` with `Host: <app_host>` (an app name means `<app>.<DOMAIN>`).
    pub fn get(&self, app_host: &str, path: &str) -> std::io::Result<HttpAnswer> {
        http_get(&self.web, &host_of(app_host), path)
    }
}

/// A fresh instance key from `paas-agent init`, which writes `agent_config` for only this.
pub fn new_instance_key(agent_config: &Path) -> String {
    let init = Command::new(bin("paas-agent"))
        .args(["init", "--config"])
        .arg(agent_config)
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "paas-agent init: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    let table: toml::Table = std::fs::read_to_string(agent_config)
        .unwrap()
        .parse()
        .unwrap();
    table["instance_key"].as_str().unwrap().to_owned()
}

/// A fresh instance key ([`new_instance_key`]), and the static config `paas-agent traefik-config` makes of it (as `scripts/up` runs Traefik with),
/// its entrypoints on the given loopback ports and `extra` flags, written to `dir/traefik.yml`.
fn instance_key_and_traefik_config(
    dir: &Path,
    web_port: u16,
    api_port: u16,
    extra: &[&str],
) -> (String, PathBuf) {
    let agent_config = dir.join("agent-for-key.toml");
    let key = new_instance_key(&agent_config);
    let printed = Command::new(bin("paas-agent"))
        .args(["traefik-config", "--log-level", "info", "--config"])
        .arg(&agent_config)
        .arg("--web")
        .arg(format!("127.0.0.1:{web_port}"))
        .arg("--api")
        .arg(format!("127.0.0.1:{api_port}"))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "paas-agent traefik-config: {}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let config = dir.join("traefik.yml");
    std::fs::write(&config, printed.stdout).unwrap();
    (key, config)
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- traefik log ----\n{}", self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// paas-agent

/// How a test's [`Agent`] is set up.
#[derive(Default)]
pub struct AgentOptions<'a> {
    /// Route web containers through this Traefik.
    pub traefik: Option<&'a Traefik>,
    /// Put the stand-in `pack` first on PATH, recording into the agent's dir
    /// ([`Agent::pack_argv`], [`Agent::pack_env`]).
    pub pack_standin: bool,
    /// Replace the agent's whole PATH (where it looks for `pack`).
    pub path: Option<OsString>,
    /// Added to the agent's environment, and so to pack's.
    pub env: Vec<(&'static str, PathBuf)>,
    /// `[runtime]` settings on top of the tests' own.
    pub runtime: Vec<(&'static str, toml::Value)>,
    /// Other keys and sections of agent.toml (`engine`, `[registry]`…), set as given.
    pub config: Vec<(&'static str, toml::Value)>,
}

/// What the stand-in `pack` reads from its environment (`fixtures/pack`).
const PACK_STANDIN_VARS: [&str; 4] = [
    "PACK_STANDIN_ARGV",
    "PACK_STANDIN_ENV",
    "PACK_STANDIN_ENV_FILE",
    "PACK_STANDIN_GO_AHEAD",
];

/// `paas-agent init` + `serve` on a free loopback port; killed on drop (its log is printed if
/// the test failed).
pub struct Agent {
    child: Child,
    dir: TempDir,
    env: Vec<(OsString, OsString)>,
    pub url: String,
    pub token: String,
}

impl Agent {
    /// An agent routing through `traefik`.
    pub fn start(traefik: &Traefik) -> Agent {
        Agent::with(AgentOptions {
            traefik: Some(traefik),
            ..AgentOptions::default()
        })
    }

    pub fn with(options: AgentOptions) -> Agent {
        ensure_docker();
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-agent")
            .tempdir()
            .unwrap();
        let config = dir.path().join("agent.toml");
        let token_file = dir.path().join("token");
        let init = Command::new(bin("paas-agent"))
            .args(["init", "--config"])
            .arg(&config)
            .arg("--token-file")
            .arg(&token_file)
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "paas-agent init: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let mut table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        let mut runtime = toml::Table::new();
        if let Some(traefik) = options.traefik {
            table.insert("instance_key".into(), traefik.instance_key.clone().into());
            runtime.insert("domain".into(), DOMAIN.into());
            runtime.insert("traefik_entrypoint".into(), "web".into());
            runtime.insert(
                "traefik_api".into(),
                format!("http://{}", traefik.api).into(),
            );
            runtime.insert(
                "traefik_routes_dir".into(),
                traefik.routes_dir.to_str().unwrap().into(),
            );
            if let Some(access_log) = &traefik.access_log {
                runtime.insert(
                    "traefik_access_log".into(),
                    access_log.to_str().unwrap().into(),
                );
            }
        }
        runtime.insert("ready_timeout_secs".into(), 30.into());
        runtime.insert("stop_timeout_secs".into(), 5.into());
        runtime.extend(
            options
                .runtime
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value)),
        );
        table.insert("runtime".into(), runtime.into());
        let mut addons = toml::Table::new();
        addons.insert("postgres_image".into(), POSTGRES_IMAGE.into());
        addons.insert("redis_image".into(), REDIS_IMAGE.into());
        addons.insert("backups_keep".into(), (BACKUPS_KEEP as i64).into());
        table.insert("addons".into(), addons.into());
        if options.pack_standin {
            // The agent gives pack only what pack needs; the stand-in also needs these.
            let mut pack = toml::Table::new();
            pack.insert("pass_env".into(), PACK_STANDIN_VARS.to_vec().into());
            table.insert("pack".into(), pack.into());
        }
        table.extend(
            options
                .config
                .into_iter()
                .map(|(key, value)| (key.to_owned(), value)),
        );
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
        let token = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_owned();

        let mut env: Vec<(OsString, OsString)> = Vec::new();
        let system_path = std::env::var_os("PATH").unwrap_or_default();
        if options.pack_standin {
            let mut path = fixtures_dir().into_os_string();
            path.push(":");
            path.push(&system_path);
            env.push(("PATH".into(), path));
            env.push((
                "PACK_STANDIN_ARGV".into(),
                dir.path().join("pack-argv").into(),
            ));
            env.push((
                "PACK_STANDIN_ENV".into(),
                dir.path().join("pack-env").into(),
            ));
            env.push((
                "PACK_STANDIN_ENV_FILE".into(),
                dir.path().join("pack-env-file").into(),
            ));
        }
        if let Some(path) = options.path {
            env.push(("PATH".into(), path));
        }
        env.extend(
            options
                .env
                .into_iter()
                .map(|(key, value)| (key.into(), value.into())),
        );
        let mut agent = Agent {
            child: Agent::spawn(dir.path(), "127.0.0.1:0", &env),
            dir,
            env,
            url: String::new(),
            token,
        };
        agent.url = agent.wait_for_address();
        agent
    }

    fn spawn(dir: &Path, listen: &str, env: &[(OsString, OsString)]) -> Child {
        let _ = std::fs::remove_file(dir.join("addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .unwrap();
        Command::new(bin("paas-agent"))
            .args(["serve", "--listen", listen, "--config"])
            .arg(dir.join("agent.toml"))
            .arg("--addr-file")
            .arg(dir.join("addr"))
            .envs(env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    fn wait_for_address(&mut self) -> String {
        let addr_file = self.dir.path().join("addr");
        let addr = wait_for("paas-agent to listen", || {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("paas-agent exited with {status}:\n{}", self.log());
            }
            std::fs::read_to_string(&addr_file).ok()
        });
        format!("http://{}", addr.trim())
    }

    /// Kills the agent (as a crash would) and starts it again on the same config and port, so
    /// gitd keeps reaching it.
    pub fn restart(&mut self) {
        self.stop();
        self.resume();
    }

    /// Kills the agent; gitd's calls fail until [`Agent::resume`].
    pub fn stop(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Starts a stopped agent again on its config, environment and port.
    pub fn resume(&mut self) {
        let listen = self.url.trim_start_matches("http://").to_owned();
        self.child = Agent::spawn(self.dir.path(), &listen, &self.env);
        let url = self.wait_for_address();
        assert_eq!(url, self.url, "the agent came back on its port");
    }

    /// The agent's process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the agent to exit on its own.
    pub fn wait(&mut self) -> ExitStatus {
        self.child.wait().unwrap()
    }

    /// The client gitd uses to talk to this agent.
    pub fn client(&self) -> AgentClient {
        AgentClient::new(self.url.clone(), self.token.clone())
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// The stand-in pack's last argv, one argument per entry.
    pub fn pack_argv(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.path().join("pack-argv"))
            .expect("the stand-in pack ran")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// A copy of the env file the stand-in pack's last run got (`None`: no `--env-file`).
    pub fn pack_env_file(&self) -> Option<String> {
        std::fs::read_to_string(self.dir.path().join("pack-env-file")).ok()
    }

    /// Stops the agent, sets `[section]` of its config to `settings`, and starts it again on
    /// its port.
    pub fn reconfigure(&mut self, section: &str, settings: toml::Table) {
        self.stop();
        let config = self.dir.path().join("agent.toml");
        let mut table: toml::Table = std::fs::read_to_string(&config).unwrap().parse().unwrap();
        table.insert(section.into(), settings.into());
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
        self.resume();
    }

    /// The stand-in pack's last environment, `KEY=VALUE` entries.
    pub fn pack_env(&self) -> Vec<String> {
        std::fs::read(self.dir.path().join("pack-env"))
            .expect("the stand-in pack ran")
            .split(|&b| b == 0)
            .map(|entry| String::from_utf8_lossy(entry).into_owned())
            .collect()
    }

    /// Where the agent keeps the desired state of its apps (`state` beside its config).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- paas-agent log ----\n{}", self.log());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The platform

/// Which agent gitd is wired to.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AgentSetup {
    /// A real agent of the platform's own.
    Running,
    /// No `[agent]` in gitd.toml.
    Absent,
    /// `[agent]` pointing at a loopback port nothing listens on.
    Unreachable,
}

/// Which engine runs a platform's apps: the agent's `engine` setting. The suite's tests that
/// run on both ([`crate::on_each_engine`]) start their platform with [`Platform::start_on`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Containers on this machine's dockerd, routed by the test's own Traefik.
    Docker,
    /// Services on the suite's shared local Swarm cluster ([`LocalCluster::shared`]), routed
    /// by its Traefik.
    Swarm,
}

/// gitd, an agent and (optionally) Traefik, wired together, with the admin logged in through
/// the CLI and an SSH key registered; tears down every app it created when dropped.
pub struct Platform {
    traefik: Option<Traefik>,
    agent: Option<Agent>,
    pub gitd: Gitd,
    /// The `paas` CLI logged in as the admin, whose key is [`Platform::key`].
    pub cli: Cli,
    pub key: PathBuf,
    admin_token: String,
    _key_dir: TempDir,
    apps: DockerApps,
    /// The cluster whose Swarm runs the apps (the agent's `engine = "swarm"`), if one does.
    swarm: Option<LocalCluster>,
}

/// A non-admin user with an API token and a registered ed25519 key.
pub struct User {
    pub token: String,
    pub key: PathBuf,
    _dir: TempDir,
}

impl Platform {
    /// The whole platform: Traefik, an agent routing through it, gitd serving `<app>.paas.test`.
    pub fn start() -> Platform {
        Platform::with(true, AgentSetup::Running)
    }

    /// The whole platform on `engine`: [`Platform::start`], or [`Platform::on_swarm`] of the
    /// suite's shared cluster.
    pub fn start_on(engine: Engine) -> Platform {
        match engine {
            Engine::Docker => Platform::start(),
            Engine::Swarm => Platform::on_swarm(&LocalCluster::shared()),
        }
    }

    /// gitd and an agent that finds the stand-in `pack` first on PATH, without Traefik (apps
    /// roll out but nothing routes to them): what the push and SSH tests need, for less.
    pub fn for_pushes() -> Platform {
        Platform::with(false, AgentSetup::Running)
    }

    /// gitd alone, its `[agent]` absent or unreachable.
    pub fn without_agent(agent: AgentSetup) -> Platform {
        assert_ne!(agent, AgentSetup::Running);
        Platform::with(false, agent)
    }

    /// As [`Platform::for_pushes`], with these top-level keys set in gitd.toml.
    pub fn for_pushes_with_gitd_config(gitd_config: toml::Table) -> Platform {
        Platform::configured(false, AgentSetup::Running, |init| {
            gitd_config
                .into_iter()
                .fold(init, |init, (key, value)| init.set_config(&key, value))
        })
    }

    fn with(routed: bool, agent_setup: AgentSetup) -> Platform {
        Platform::configured(routed, agent_setup, |init| init)
    }

    /// A platform as [`Platform::start`] (`routed`) or [`Platform::for_pushes`] would make it,
    /// with `configure` adjusting gitd's data dir (e.g. its `gitd.toml`) before it is served.
    pub fn configured(
        routed: bool,
        agent_setup: AgentSetup,
        configure: impl FnOnce(GitdInit) -> GitdInit,
    ) -> Platform {
        let traefik = routed.then(|| {
            ensure_prerequisites();
            Traefik::start()
        });
        Platform::assemble(traefik, agent_setup, Vec::new(), configure)
    }

    /// The whole platform routed through `traefik` (one of the test's own, [`Traefik::run`]),
    /// the agent's `[runtime]` adjusted by `runtime` (e.g. the entrypoint its routers name).
    pub fn behind(traefik: Traefik, runtime: Vec<(&'static str, toml::Value)>) -> Platform {
        Platform::assemble(Some(traefik), AgentSetup::Running, runtime, |init| init)
    }

    /// gitd and an agent whose engine is the Swarm of `cluster`, on node 1 (its manager):
    /// images go through the cluster's registry and its Traefik routes the apps, on port 80
    /// of node 1's address ([`LocalCluster::router`]).
    pub fn on_swarm(cluster: &LocalCluster) -> Platform {
        let registry = toml::Table::from_iter([("url".to_owned(), cluster.registry_url().into())]);
        let agent = Agent::with(AgentOptions {
            env: vec![("DOCKER_HOST", cluster.docker_host(1))],
            runtime: vec![
                ("domain", DOMAIN.into()),
                ("traefik_api", cluster.traefik_api().into()),
            ],
            config: vec![("engine", "swarm".into()), ("registry", registry.into())],
            ..AgentOptions::default()
        });
        let mut platform = Platform::wire(None, Some(agent), AgentSetup::Running, |init| {
            init.set_config("domain", DOMAIN).set_config("web_port", 80)
        });
        platform.swarm = Some(cluster.handle());
        platform.apps.swarm = Some(cluster.handle());
        platform
    }

    fn assemble(
        traefik: Option<Traefik>,
        agent_setup: AgentSetup,
        runtime: Vec<(&'static str, toml::Value)>,
        configure: impl FnOnce(GitdInit) -> GitdInit,
    ) -> Platform {
        let agent = (agent_setup == AgentSetup::Running).then(|| {
            Agent::with(AgentOptions {
                traefik: traefik.as_ref(),
                pack_standin: traefik.is_none(),
                runtime,
                ..AgentOptions::default()
            })
        });
        Platform::wire(traefik, agent, agent_setup, configure)
    }

    /// gitd wired to `agent` (or as `agent_setup` says without one) and routed by `traefik`,
    /// the admin logged in with a key.
    fn wire(
        traefik: Option<Traefik>,
        agent: Option<Agent>,
        agent_setup: AgentSetup,
        configure: impl FnOnce(GitdInit) -> GitdInit,
    ) -> Platform {
        let mut init = GitdInit::new();
        let wiring = match (&agent, agent_setup) {
            (Some(agent), _) => Some((agent.url.clone(), agent.token.clone())),
            (None, AgentSetup::Unreachable) => {
                Some((format!("http://127.0.0.1:{}", free_port()), "token".into()))
            }
            (None, _) => None,
        };
        if let Some((url, token)) = wiring {
            let mut settings = toml::Table::new();
            settings.insert("url".into(), url.into());
            settings.insert("token".into(), token.into());
            init = init.set_config("agent", settings);
        }
        if let Some(traefik) = &traefik {
            init = init
                .set_config("domain", DOMAIN)
                .set_config("web_port", i64::from(traefik.web_port()));
        }
        let gitd = configure(init).serve();
        let admin_token = gitd.token(ADMIN_USER, ADMIN_PASSWORD);
        let cli = gitd.admin();
        let key_dir = tempfile::Builder::new()
            .prefix("paas-e2e-key")
            .tempdir()
            .unwrap();
        let key = new_key(key_dir.path());
        cli.run(&["keys:add", &key.with_extension("pub").display().to_string()])
            .success();
        Platform {
            traefik,
            agent,
            gitd,
            cli,
            key,
            admin_token,
            _key_dir: key_dir,
            apps: DockerApps::default(),
            swarm: None,
        }
    }

    /// The address the apps are served on: the test's Traefik, or the cluster's.
    pub fn router(&self) -> String {
        match &self.swarm {
            Some(cluster) => cluster.router(),
            None => self.traefik().web.clone(),
        }
    }

    /// The app's URL as gitd states it (`web_url`).
    pub fn web_url(&self, app: &str) -> String {
        let port = match &self.swarm {
            Some(_) => 80,
            None => self.traefik().web_port(),
        };
        format!("http://{app}.{DOMAIN}:{port}")
    }

    pub fn traefik(&self) -> &Traefik {
        self.traefik.as_ref().expect("this platform runs Traefik")
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().expect("this platform has an agent")
    }

    pub fn agent_mut(&mut self) -> &mut Agent {
        self.agent.as_mut().expect("this platform has an agent")
    }

    /// Restarts the agent sampling metrics every second, so that a test need not wait for the
    /// default 10 s rounds.
    pub fn sample_metrics_every_second(&mut self) {
        self.agent_mut().reconfigure(
            "metrics",
            toml::Table::from_iter([("interval_secs".to_owned(), 1.into())]),
        );
    }

    /// `paas ARGS` as the admin.
    pub fn paas(&self, args: &[&str]) -> Output {
        self.cli.run(args)
    }

    /// `paas apps:create` of `<label>-<pid>` as the admin; returns the name.
    pub fn create_app(&self, label: &str) -> String {
        let name = self.apps.track(format!("{label}-{}", std::process::id()));
        self.paas(&["apps:create", &name]).success();
        name
    }

    /// A raw API request with `token`; a non-empty body is sent as JSON.
    pub fn api(&self, method: &str, path: &str, token: &str, body: &str) -> HttpResponse {
        let body = (!body.is_empty()).then_some(body.as_bytes());
        self.gitd.request(method, path, Some(token), body)
    }

    /// A new user with a freshly generated, registered key.
    pub fn user(&self, name: &str) -> User {
        let password = format!("{name}-password-1");
        let created = self.api(
            "POST",
            "/v1/users",
            &self.admin_token,
            &serde_json::json!({"username": name, "password": password}).to_string(),
        );
        assert!(created.status / 100 == 2, "{}", created.text());
        let token = self.gitd.token(name, &password);
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-key")
            .tempdir()
            .unwrap();
        let key = new_key(dir.path());
        let added = self.gitd.add_key(&token, &key);
        assert!(added.status / 100 == 2, "{}", added.text());
        User {
            token,
            key,
            _dir: dir,
        }
    }

    /// Creates an app `p<pid>-<label>` owned by `user`; returns the name.
    pub fn app(&self, user: &User, label: &str) -> String {
        let name = self.apps.track(format!("p{}-{label}", std::process::id()));
        let created = self.api(
            "POST",
            "/v1/apps",
            &user.token,
            &serde_json::json!({ "name": name }).to_string(),
        );
        assert!(created.status / 100 == 2, "{}", created.text());
        name
    }

    pub fn git_url(&self, app: &str) -> String {
        format!(
            "ssh://git@127.0.0.1:{}/{app}.git",
            self.gitd.ssh_addr.port()
        )
    }

    /// `git push <app> HEAD:main` from `dir` over SSH with the admin's key.
    pub fn push(&self, app: &str, dir: &Path) -> Output {
        let out = git_command(dir, &self.key, self.gitd.ssh_addr.port())
            .args(["push", &self.git_url(app), "HEAD:main"])
            .output()
            .unwrap();
        Output {
            command: format!("git push {app}"),
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// [`Platform::push`], asserting that the push went live.
    #[track_caller]
    pub fn deploy(&self, app: &str, dir: &Path) {
        let pushed = self.push(app, dir);
        assert_eq!(
            pushed.code,
            Some(0),
            "push failed:\n{pushed}\n{}",
            self.logs()
        );
    }

    /// `git push <app's url> <refspec>` from `repo` with `key`.
    pub fn push_ref(&self, repo: &Path, key: &Path, app: &str, refspec: &str) -> Pushed {
        let out = git_command(repo, key, self.gitd.ssh_addr.port())
            .args(["push", &self.git_url(app), refspec])
            .output()
            .unwrap();
        Pushed {
            success: out.status.success(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// `ssh git@gitd <command>` with `key`: its exit code and stderr.
    pub fn ssh(&self, key: &Path, args: &[&str]) -> (Option<i32>, String) {
        let out = ssh_command(key, self.gitd.ssh_addr.port())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The app's releases, oldest first.
    pub fn releases(&self, user: &User, app: &str) -> Vec<serde_json::Value> {
        let listed = self.api("GET", &format!("/v1/apps/{app}/releases"), &user.token, "");
        assert_eq!(listed.status, 200, "{}", listed.text());
        let mut releases = listed.json().as_array().cloned().unwrap_or_default();
        releases.reverse();
        releases
    }

    /// The app's builds, oldest first.
    pub fn builds(&self, user: &User, app: &str) -> Vec<serde_json::Value> {
        let listed = self.api("GET", &format!("/v1/apps/{app}/builds"), &user.token, "");
        assert_eq!(listed.status, 200, "{}", listed.text());
        let mut builds = listed.json().as_array().cloned().unwrap_or_default();
        builds.reverse();
        builds
    }

    /// Holds `app`'s deploy lock by starting a push that sends nothing yet.
    pub fn hold_push(&self, user: &User, app: &str) -> HeldPush {
        let mut child = self.hold_receive_pack(&user.key, app);
        HeldPush {
            stdin: child.stdin.take(),
            child,
        }
    }

    /// `git-receive-pack` of `app` over SSH with `key`, held open after the first pkt-line of
    /// the ref advertisement (receive-pack runs, so the app's lock is held, as during a long
    /// build); stdin, stdout and stderr stay piped.
    pub fn hold_receive_pack(&self, key: &Path, app: &str) -> Child {
        let mut child = ssh_command(key, self.gitd.ssh_addr.port())
            .arg(format!("git-receive-pack '{app}.git'"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut length = [0u8; 4];
        child
            .stdout
            .as_mut()
            .unwrap()
            .read_exact(&mut length)
            .expect("receive-pack advertised its refs");
        child
    }

    /// `GET path` through Traefik with `Host: <app_host>` (an app name means
    /// `<app>.<DOMAIN>`).
    pub fn get(&self, app_host: &str, path: &str) -> std::io::Result<HttpAnswer> {
        http_get(&self.router(), &host_of(app_host), path)
    }

    /// Polls until `/` of `app` answers 200 with a body containing `needle`; returns the body.
    pub fn wait_for_body(&self, app: &str, needle: &str) -> String {
        wait_for(&format!("{app} to answer with {needle:?}"), || {
            self.get(app, "/")
                .ok()
                .filter(|answer| answer.status == 200 && answer.body.contains(needle))
                .map(|answer| answer.body)
        })
    }

    /// Ids of the app's running containers of `process`, from Docker's labels (on Swarm, on
    /// every node).
    pub fn containers(&self, app: &str, process: &str) -> Vec<String> {
        self.docker_everywhere(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=paas.app={app}"),
            "--filter",
            &format!("label=paas.process={process}"),
        ])
    }

    /// `docker ARGS`' lines from this machine's dockerd, or from every node of the cluster.
    fn docker_everywhere(&self, args: &[&str]) -> Vec<String> {
        match &self.swarm {
            Some(cluster) => cluster.docker_lines_on_every_node(args),
            None => docker_lines(args),
        }
    }

    /// The platform's logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "---- gitd ----\n{}\n---- agent ----\n{}\n---- traefik ----\n{}",
            self.gitd.log(),
            self.agent.as_ref().map(Agent::log).unwrap_or_default(),
            self.traefik.as_ref().map(Traefik::log).unwrap_or_default()
        )
    }

    /// `git push <app> HEAD:main` from `dir` over SSH with the admin's key, left running with
    /// its stderr piped, for a test that acts at a given point of the push.
    pub fn spawn_push(&self, app: &str, dir: &Path) -> Child {
        git_command(dir, &self.key, self.gitd.ssh_addr.port())
            .args(["push", "--progress", &self.git_url(app), "HEAD:main"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Kills gitd with SIGKILL, as a crash would, and serves its data dir again; the CLI and
    /// the admin's token follow it to its new ports.
    pub fn kill_and_restart_gitd(&mut self) {
        self.gitd.restart();
        self.admin_token = self.gitd.token(ADMIN_USER, ADMIN_PASSWORD);
        self.cli = self.gitd.admin();
    }

    /// The admin's API token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Ids of the app's containers of release `version` (running or not), from Docker's
    /// labels.
    pub fn containers_of_release(&self, app: &str, version: u32) -> Vec<String> {
        self.docker_everywhere(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=paas.app={app}"),
            "--filter",
            &format!("label=paas.release=v{version}"),
        ])
    }
}

// ---------------------------------------------------------------------------------------------
// Load through Traefik

/// One request after another through Traefik from a second thread until stopped (and at least
/// `min_requests` were made, at most a bound that only catches a runaway loop); every answer
/// must be a 200 whose body `is_app` accepts.
pub struct LoadLoop {
    stop: Arc<AtomicBool>,
    min_requests: usize,
    worker: JoinHandle<(usize, Vec<String>)>,
}

impl LoadLoop {
    const MAX_REQUESTS: usize = 200_000;

    pub fn start(web: &str, host: &str, min_requests: usize, is_app: fn(&str) -> bool) -> LoadLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let (web, host, flag) = (web.to_owned(), host.to_owned(), stop.clone());
        let worker = std::thread::spawn(move || {
            let mut failures = Vec::new();
            let mut total = 0;
            while total < LoadLoop::MAX_REQUESTS
                && (total < min_requests || !flag.load(Ordering::SeqCst))
            {
                total += 1;
                match http_get(&web, &host, "/") {
                    Ok(answer) if answer.status == 200 && is_app(&answer.body) => {}
                    Ok(answer) => {
                        failures.push(format!("#{total}: {} {:?}", answer.status, answer.body))
                    }
                    Err(err) => failures.push(format!("#{total}: {err}")),
                }
            }
            (total, failures)
        });
        LoadLoop {
            stop,
            min_requests,
            worker,
        }
    }

    /// Stops the loop; how many requests it made and the failed ones.
    pub fn stop(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.worker.join().unwrap()
    }

    /// Stops the loop and asserts that no request failed.
    #[track_caller]
    pub fn finish(self, what: &str) {
        let min_requests = self.min_requests;
        let (total, failures) = self.stop();
        eprintln!(
            "load loop across {what}: {total} requests, {} failed",
            failures.len()
        );
        assert!(total >= min_requests, "{total}");
        assert!(
            failures.is_empty(),
            "{} of {total} requests failed across {what}: {:?}",
            failures.len(),
            &failures[..failures.len().min(20)]
        );
    }
}

/// A receive-pack session holding an app's lock until [`HeldPush::release`].
pub struct HeldPush {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl HeldPush {
    /// Sends the flush packet of a push with no updates; receive-pack ends, the lock is freed.
    pub fn release(mut self) {
        let mut stdin = self.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"0000").unwrap();
        drop(stdin);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the empty push ended with {status}");
    }
}

/// How a `git push` ended.
pub struct Pushed {
    pub success: bool,
    pub stderr: String,
}

impl Pushed {
    #[track_caller]
    pub fn ok(self) -> Pushed {
        assert!(self.success, "push failed:\n{}", self.stderr);
        self
    }

    #[track_caller]
    pub fn rejected(self, needle: &str) -> Pushed {
        assert!(!self.success, "push should have failed:\n{}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "push output lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// The host name (container) in examples/hello's `Hello from <app> <release> on <host>`.
pub fn served_by(body: &str) -> String {
    body.trim()
        .rsplit(' ')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn host_of(app_host: &str) -> String {
    if app_host.contains('.') {
        app_host.to_owned()
    } else {
        format!("{app_host}.{DOMAIN}")
    }
}

//! The whole platform as a user runs it, isolated per test: a real Traefik (its own static
//! config on free loopback ports), a real `paas-agent` pointing at it, a real `paas-gitd` wired
//! to the agent, the real `paas` CLI logged in as the admin, and an SSH key registered through
//! it. [`Platform::push`] is a real `git push` over SSH; [`Platform::get`] asks Traefik for an
//! app by its `Host`. Everything an app left in Docker is removed when the platform is dropped.
//!
//! Shared by the deploy tests and by whatever needs the full stack next (logs, rollback,
//! domains, benchmarks).

// Each user of the fixture uses its own subset.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tempfile::TempDir;

use crate::git_push::{git_command, new_key};
use crate::util::{Cli, Gitd, GitdInit, Output, bin, wait_for, workspace_root};

/// Apps answer at `<app>.paas.test` through the test's Traefik.
pub const DOMAIN: &str = "paas.test";

/// Docker running, the busybox base image present and `traefik` on PATH (the same script
/// functions `scripts/up` and `scripts/test` use), once per test process.
pub fn ensure_prerequisites() {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let ready = READY.get_or_init(|| {
        let output = Command::new("bash")
            .arg("-c")
            .arg(
                "set -e; source scripts/lib/docker.sh; source scripts/lib/traefik.sh; \
                 ensure_docker; ensure_base_image; ensure_traefik",
            )
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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------
// Traefik

/// `traefik` with its own static config: the Docker provider exposing only labelled
/// containers, the HTTP entrypoint `web` and the read-only API on their own loopback ports.
pub struct Traefik {
    child: Child,
    dir: TempDir,
    /// The `web` entrypoint, `127.0.0.1:PORT`.
    pub web: String,
    /// The API (`api.insecure`), `127.0.0.1:PORT`.
    pub api: String,
}

impl Traefik {
    pub fn start() -> Traefik {
        ensure_prerequisites();
        let dir = tempfile::Builder::new()
            .prefix("paas-e2e-traefik")
            .tempdir()
            .unwrap();
        let (web_port, api_port) = (free_port(), free_port());
        let config = dir.path().join("traefik.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  checkNewVersion: false\n  sendAnonymousUsage: false\n\
                 providers:\n  providersThrottleDuration: 50ms\n  docker:\n    exposedByDefault: false\n\
                 entryPoints:\n  web:\n    address: \"127.0.0.1:{web_port}\"\n  traefik:\n    address: \"127.0.0.1:{api_port}\"\n\
                 api:\n  insecure: true\n\
                 log:\n  level: INFO\n"
            ),
        )
        .unwrap();
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
            web: format!("127.0.0.1:{web_port}"),
            api: format!("127.0.0.1:{api_port}"),
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
}

impl Drop for Traefik {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// paas-agent

/// `paas-agent init` + `serve` on a free loopback port, routing apps through a [`Traefik`].
pub struct Agent {
    child: Child,
    dir: TempDir,
    pub url: String,
    pub token: String,
}

impl Agent {
    pub fn start(traefik: &Traefik) -> Agent {
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
        runtime.insert("domain".into(), DOMAIN.into());
        runtime.insert("traefik_entrypoint".into(), "web".into());
        runtime.insert(
            "traefik_api".into(),
            format!("http://{}", traefik.api).into(),
        );
        runtime.insert("ready_timeout_secs".into(), 30.into());
        runtime.insert("stop_timeout_secs".into(), 5.into());
        table.insert("runtime".into(), runtime.into());
        std::fs::write(&config, toml::to_string(&table).unwrap()).unwrap();
        let token = std::fs::read_to_string(&token_file)
            .unwrap()
            .trim()
            .to_owned();
        let mut agent = Agent {
            child: Agent::spawn(dir.path()),
            dir,
            url: String::new(),
            token,
        };
        agent.url = agent.wait_for_address();
        agent
    }

    fn spawn(dir: &Path) -> Child {
        let _ = std::fs::remove_file(dir.join("addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("agent.log"))
            .unwrap();
        Command::new(bin("paas-agent"))
            .args(["serve", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.join("agent.toml"))
            .arg("--addr-file")
            .arg(dir.join("addr"))
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

    /// Starts a stopped agent again on its config and port.
    pub fn resume(&mut self) {
        let listen = self.url.trim_start_matches("http://").to_owned();
        let _ = std::fs::remove_file(self.dir.path().join("addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        self.child = Command::new(bin("paas-agent"))
            .args(["serve", "--listen", &listen, "--config"])
            .arg(self.dir.path().join("agent.toml"))
            .arg("--addr-file")
            .arg(self.dir.path().join("addr"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let url = self.wait_for_address();
        assert_eq!(url, self.url, "the agent came back on its port");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// The platform

pub struct Platform {
    pub traefik: Traefik,
    pub agent: Agent,
    pub gitd: Gitd,
    /// The `paas` CLI logged in as the admin, whose key is [`Platform::key`].
    pub cli: Cli,
    pub key: PathBuf,
    _key_dir: TempDir,
    apps: Mutex<Vec<String>>,
}

impl Platform {
    pub fn start() -> Platform {
        let traefik = Traefik::start();
        let agent = Agent::start(&traefik);
        let mut settings = toml::Table::new();
        settings.insert("url".into(), agent.url.clone().into());
        settings.insert("token".into(), agent.token.clone().into());
        let gitd = GitdInit::new()
            .set_config("agent", settings)
            .set_config("domain", DOMAIN)
            .set_config("web_port", i64::from(traefik.web_port()))
            .serve();
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
            _key_dir: key_dir,
            apps: Mutex::new(Vec::new()),
        }
    }

    /// `paas ARGS` as the admin.
    pub fn paas(&self, args: &[&str]) -> Output {
        self.cli.run(args)
    }

    /// `paas apps:create` of `<label>-<pid>` (unique per test process, since Docker names are
    /// host-wide); returns the name.
    pub fn create_app(&self, label: &str) -> String {
        let name = format!("{label}-{}", std::process::id());
        self.paas(&["apps:create", &name]).success();
        self.apps.lock().unwrap().push(name.clone());
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

    /// `GET path` through Traefik with `Host: <app_host>` (an app name means
    /// `<app>.<DOMAIN>`).
    pub fn get(&self, app_host: &str, path: &str) -> std::io::Result<HttpAnswer> {
        http_get(&self.traefik.web, &host_of(app_host), path)
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

    /// Ids of the app's running containers of `process`, from Docker's labels.
    pub fn containers(&self, app: &str, process: &str) -> Vec<String> {
        docker_lines(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=paas.app={app}"),
            "--filter",
            &format!("label=paas.process={process}"),
        ])
    }

    /// The platform's logs, for failure messages.
    pub fn logs(&self) -> String {
        format!(
            "---- gitd ----\n{}\n---- agent ----\n{}\n---- traefik ----\n{}",
            self.gitd.log(),
            self.agent.log(),
            self.traefik.log()
        )
    }
}

impl Drop for Platform {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- paas-agent log ----\n{}\n---- traefik log ----\n{}",
                self.agent.log(),
                self.traefik.log()
            );
        }
        for app in self.apps.lock().unwrap().iter() {
            remove_from_docker(app);
        }
    }
}

fn host_of(app_host: &str) -> String {
    if app_host.contains('.') {
        app_host.to_owned()
    } else {
        format!("{app_host}.{DOMAIN}")
    }
}

/// Removes whatever the app left in Docker: containers, its network, its images.
pub fn remove_from_docker(app: &str) {
    let containers = docker_lines(&["ps", "-aq", "--filter", &format!("label=paas.app={app}")]);
    if !containers.is_empty() {
        let mut args = vec!["rm", "-f"];
        args.extend(containers.iter().map(String::as_str));
        docker_lines(&args);
    }
    let _ = Command::new("docker")
        .args(["network", "rm", &format!("paas-app-{app}")])
        .output();
    let images = docker_lines(&[
        "image",
        "ls",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        &format!("paas/{app}"),
    ]);
    for image in images {
        let _ = Command::new("docker")
            .args(["image", "rm", "-f", &image])
            .output();
    }
}

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

// ---------------------------------------------------------------------------------------------
// HTTP through Traefik

#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: String,
}

/// One HTTP/1.0 `GET` on a fresh connection; the server closes it after the answer. The
/// request side stays open until then: a proxy may take a half-closed connection for a client
/// that went away and cut the answer short.
pub fn http_get(addr: &str, host: &str, path: &str) -> std::io::Result<HttpAnswer> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no header end in {text:?}")))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    Ok(HttpAnswer {
        status,
        body: body.to_owned(),
    })
}

//! A local Swarm cluster made by `scripts/cluster` under a name and /24 no developer's cluster
//! uses: a test's own ([`LocalCluster::up`], taken down however the test ends), or the one the
//! engine-parametrised suite shares ([`LocalCluster::shared`], left up for the next test;
//! `scripts/test` takes it down at the end). Its nodes' engines ([`LocalCluster::docker`]),
//! addresses, registry and Traefik.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::util::workspace_root;

/// Bounds `scripts/cluster` (a first `up` copies about 500 MB of images into the registry).
const SCRIPT_TIMEOUT_SECS: u32 = 900;

pub struct LocalCluster {
    pub name: &'static str,
    /// The first three octets of its /24: node i is `<subnet>.i`.
    pub subnet: &'static str,
    /// Taken down when dropped (a test's own cluster, not the shared one).
    owned: bool,
}

/// The cluster the suite's swarm runs share (`scripts/test` takes it down by these names).
pub const SHARED_NAME: &str = "paassuite";
pub const SHARED_SUBNET: &str = "10.231.6";
/// Nodes of the shared cluster.
const SHARED_NODES: u32 = 3;

/// An output's status, stdout and stderr, for an assertion's message.
pub fn output_text(output: &Output) -> String {
    format!(
        "status {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

impl LocalCluster {
    /// `scripts/cluster up <nodes>` under `name` and `subnet`, asserting that it worked.
    pub fn up(name: &'static str, subnet: &'static str, nodes: u32) -> LocalCluster {
        let cluster = LocalCluster {
            name,
            subnet,
            owned: true,
        };
        cluster.bring_up(nodes);
        cluster
    }

    /// The suite's shared cluster of three nodes, made by the first test that asks for it and
    /// reused as it is by the others (each with its own agent, gitd and apps).
    pub fn shared() -> LocalCluster {
        let cluster = LocalCluster {
            name: SHARED_NAME,
            subnet: SHARED_SUBNET,
            owned: false,
        };
        if !cluster.script(&["status"]).status.success() {
            cluster.bring_up(SHARED_NODES);
        }
        cluster
    }

    /// The same cluster, not taken down when this handle is dropped.
    pub fn handle(&self) -> LocalCluster {
        LocalCluster {
            name: self.name,
            subnet: self.subnet,
            owned: false,
        }
    }

    fn bring_up(&self, nodes: u32) {
        let up = self.script(&["up", &nodes.to_string()]);
        assert!(
            up.status.success(),
            "scripts/cluster up {nodes}: {}",
            output_text(&up)
        );
    }

    /// `scripts/cluster ARGS` for this cluster.
    pub fn script(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg(SCRIPT_TIMEOUT_SECS.to_string())
            .arg(workspace_root().join("scripts/cluster"))
            .args(args)
            .env("PAAS_CLUSTER_NAME", self.name)
            .env("PAAS_CLUSTER_SUBNET", self.subnet)
            .output()
            .unwrap()
    }

    /// Node `node`'s engine socket.
    pub fn socket(&self, node: u32) -> String {
        format!("/run/{}-{node}.sock", self.name)
    }

    /// `DOCKER_HOST` of node `node`'s engine.
    pub fn docker_host(&self, node: u32) -> PathBuf {
        PathBuf::from(format!("unix://{}", self.socket(node)))
    }

    pub fn address(&self, node: u32) -> String {
        format!("{}.{node}", self.subnet)
    }

    /// The registry on node 1, as the agent's `[registry] url`.
    pub fn registry_url(&self) -> String {
        format!("http://{}:5000", self.address(1))
    }

    /// Where Traefik (the container `paas-traefik` on node 1) serves the apps.
    pub fn router(&self) -> String {
        format!("{}:80", self.address(1))
    }

    /// Traefik's API (and `/ping`), as the agent's `traefik_api`.
    pub fn traefik_api(&self) -> String {
        format!("http://{}:8080", self.address(1))
    }

    /// `docker ARGS` against node `node`'s engine.
    pub fn docker(&self, node: u32, args: &[&str]) -> Output {
        Command::new("docker")
            .arg("-H")
            .arg(format!("unix://{}", self.socket(node)))
            .args(args)
            .output()
            .unwrap()
    }

    /// [`LocalCluster::docker`], asserting success; its stdout, trimmed.
    pub fn docker_ok(&self, node: u32, args: &[&str]) -> String {
        let output = self.docker(node, args);
        assert!(
            output.status.success(),
            "docker {args:?} on node {node}: {}",
            output_text(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// How many nodes the cluster was made with.
    pub fn nodes(&self) -> u32 {
        let size = format!("/var/lib/{}/size", self.name);
        let size = std::fs::read_to_string(&size).unwrap_or_else(|err| panic!("{size}: {err}"));
        size.trim().parse().unwrap()
    }

    /// `docker ARGS`' stdout lines from every node that answers (a lost node has none).
    pub fn docker_lines_on_every_node(&self, args: &[&str]) -> Vec<String> {
        (1..=self.nodes())
            .map(|node| self.docker(node, args))
            .filter(|output| output.status.success())
            .flat_map(|output| {
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// Removes what `app` left in the cluster and nothing else: its services (label
    /// `paas.app`), then its overlay network once their tasks are gone (Traefik let go of it
    /// first), its images and its volumes on every node.
    pub fn remove_app(&self, app: &str) {
        let label = format!("label=paas.app={app}");
        let services =
            self.docker_lines_on_every_node(&["service", "ls", "-q", "--filter", &label]);
        if !services.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(services.iter().map(String::as_str));
            self.docker(1, &args);
        }
        let network = format!("paas-app-{app}");
        self.docker(
            1,
            &["network", "disconnect", "-f", &network, "paas-traefik"],
        );
        for _ in 0..100 {
            let gone = !self
                .docker(1, &["network", "inspect", &network])
                .status
                .success();
            if gone
                || self
                    .docker(1, &["network", "rm", &network])
                    .status
                    .success()
            {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // Tagged `paas/<app>` where it was built, `<registry>/paas/<app>` wherever it ran.
        let pushed = format!("{}:5000/paas/{app}", self.address(1));
        for node in 1..=self.nodes() {
            for repository in [format!("paas/{app}"), pushed.clone()] {
                let listed = self.docker(node, &["image", "ls", "-q", "--no-trunc", &repository]);
                let images = String::from_utf8_lossy(&listed.stdout).into_owned();
                if !images.trim().is_empty() {
                    let mut args = vec!["image", "rm", "-f"];
                    args.extend(images.lines());
                    self.docker(node, &args);
                }
            }
        }
        for node in 1..=self.nodes() {
            let volumes = self.docker(node, &["volume", "ls", "-q", "--filter", &label]);
            let volumes = String::from_utf8_lossy(&volumes.stdout).into_owned();
            if !volumes.trim().is_empty() {
                let mut args = vec!["volume", "rm", "-f"];
                args.extend(volumes.lines());
                self.docker(node, &args);
            }
        }
    }

    /// Node `node` goes away as a crashed host would: its dockerd is killed (its containers
    /// stay, unreachable) and its network link cut.
    pub fn lose_node(&self, node: u32) {
        let pid_file = format!("/run/{}/{node}/dockerd.pid", self.name);
        let pid =
            std::fs::read_to_string(&pid_file).unwrap_or_else(|err| panic!("{pid_file}: {err}"));
        let killed = Command::new("kill")
            .args(["-9", pid.trim()])
            .status()
            .unwrap();
        assert!(killed.success(), "kill -9 {pid}");
        let cut = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}-{node}", self.name))
            .args(["ip", "link", "set", "eth0", "down"])
            .status()
            .unwrap();
        assert!(cut.success(), "cutting node {node}'s network");
    }

    /// Node `node` back after [`LocalCluster::lose_node`], as a host that reboots
    /// (`scripts/cluster start-node`), asserting that it is Ready again.
    pub fn start_node(&self, node: u32) {
        let started = self.script(&["start-node", &node.to_string()]);
        assert!(
            started.status.success(),
            "scripts/cluster start-node {node}: {}",
            output_text(&started)
        );
    }

    /// What of a cluster named `name` is on this machine: namespaces, the host link, state
    /// dirs, sockets and processes.
    pub fn leftovers(name: &str) -> Vec<String> {
        let mut found = Vec::new();
        let namespaces = Command::new("ip").args(["netns", "list"]).output().unwrap();
        found.extend(
            String::from_utf8_lossy(&namespaces.stdout)
                .lines()
                .filter(|line| line.starts_with(&format!("{name}-")))
                .map(|line| format!("namespace {line}")),
        );
        let link = Command::new("ip")
            .args(["link", "show", &format!("{name}-h")])
            .output()
            .unwrap();
        if link.status.success() {
            found.push(format!("link {name}-h"));
        }
        for path in [
            PathBuf::from(format!("/var/lib/{name}")),
            PathBuf::from(format!("/run/{name}")),
            PathBuf::from(format!("/run/{name}-1.sock")),
        ] {
            if path.exists() {
                found.push(path.display().to_string());
            }
        }
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = [
                format!("/run/{name}-"),
                format!("/run/{name}/"),
                format!("/var/lib/{name}/"),
            ];
            if ours.iter().any(|path| cmdline.contains(path)) {
                found.push(format!("process {cmdline}"));
            }
        }
        found
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        let down = self.script(&["down"]);
        if !down.status.success() {
            eprintln!("scripts/cluster down: {}", output_text(&down));
        }
    }
}

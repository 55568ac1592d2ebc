//! A local Swarm cluster of the test's own, made by `scripts/cluster` under a name and /24 no
//! other test and no developer's cluster uses, and taken down however the test ends: its
//! nodes' engines ([`LocalCluster::docker`]), addresses, registry and Traefik.

use std::path::PathBuf;
use std::process::{Command, Output};

use crate::util::workspace_root;

/// Bounds `scripts/cluster` (a first `up` copies about 500 MB of images into the registry).
const SCRIPT_TIMEOUT_SECS: u32 = 900;

pub struct LocalCluster {
    pub name: &'static str,
    /// The first three octets of its /24: node i is `<subnet>.i`.
    pub subnet: &'static str,
}

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
        let cluster = LocalCluster { name, subnet };
        let up = cluster.script(&["up", &nodes.to_string()]);
        assert!(
            up.status.success(),
            "scripts/cluster up {nodes}: {}",
            output_text(&up)
        );
        cluster
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
        let down = self.script(&["down"]);
        if !down.status.success() {
            eprintln!("scripts/cluster down: {}", output_text(&down));
        }
    }
}

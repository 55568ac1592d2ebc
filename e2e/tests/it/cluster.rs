//! The local Swarm cluster (`scripts/cluster`) and the infrastructure map on it: `up 3` makes
//! three ready nodes; node 3 pulls from the registry on node 1; containers on two nodes talk
//! over an overlay network; an agent on node 1's engine maps the 3 nodes and drains and
//! activates one; `down` leaves no namespace, bridge, socket or dockerd behind. The cluster
//! has a name and /24 of its own (not `scripts/cluster`'s default), so a developer's cluster
//! is left alone, and it is taken down however the test ends.
//!
//! And on the single-host platform: `paas nodes` shows the one host to an admin, a non-admin
//! is refused, and draining is a one-line error that changes nothing.

use paas_api::nodes::{Availability, NodeMap, NodeRole, NodeState, Topology};

use crate::local_cluster::{LocalCluster, output_text};
use crate::platform::{Agent, AgentOptions, Platform};
use crate::util::wait_for;

const NAME: &str = "paase2e";
const SUBNET: &str = "10.231.1";

fn node_map(agent: &Agent) -> NodeMap {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(agent.client().nodes()).unwrap()
}

#[test]
fn a_local_swarm_cluster_pulls_talks_maps_drains_and_goes_away() {
    let cluster = LocalCluster::up(NAME, SUBNET, 3);
    let status = cluster.script(&["status"]);
    assert!(status.status.success(), "{}", output_text(&status));
    let stdout = String::from_utf8_lossy(&status.stdout);
    let ready: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains(" ready "))
        .collect();
    assert_eq!(ready.len(), 3, "{stdout}");
    for node in 1..=3 {
        assert!(
            stdout.contains(&format!("{NAME}-{node} "))
                && stdout.contains(&format!("{SUBNET}.{node} ")),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains("registry: ") && stdout.contains("(up)"),
        "{stdout}"
    );

    // Node 3 pulls what node 1 pushed.
    let image = format!("{SUBNET}.1:5000/paas/busybox:latest");
    cluster.docker_ok(3, &["pull", "-q", &image]);

    // A server on node 2, a client on node 3, one overlay network.
    cluster.docker_ok(
        1,
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "--attachable",
            "e2e-overlay",
        ],
    );
    cluster.docker_ok(2, &["pull", "-q", &image]);
    cluster.docker_ok(
        2,
        &[
            "run",
            "-d",
            "--name",
            "e2e-server",
            "--network",
            "e2e-overlay",
            &image,
            "sh",
            "-c",
            "echo overlay-says-hello > /tmp/index.html && exec httpd -f -p 8000 -h /tmp",
        ],
    );
    let answer = wait_for("node 3 to reach node 2 over the overlay", || {
        let output = cluster.docker(
            3,
            &[
                "run",
                "--rm",
                "--network",
                "e2e-overlay",
                &image,
                "sh",
                "-c",
                "printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 e2e-server 8000",
            ],
        );
        let body = String::from_utf8_lossy(&output.stdout).into_owned();
        body.contains("overlay-says-hello").then_some(body)
    });
    assert!(answer.starts_with("HTTP/1."), "{answer}");

    // An agent on node 1's engine, a Swarm manager, maps the three nodes.
    let agent = Agent::with(AgentOptions {
        env: vec![("DOCKER_HOST", cluster.docker_host(1))],
        ..AgentOptions::default()
    });
    let map = node_map(&agent);
    assert_eq!(map.topology, Topology::Swarm);
    assert_eq!(map.nodes.len(), 3, "{map:?}");
    let manager = &map.nodes[0];
    assert_eq!(
        (manager.name.as_str(), manager.role),
        (&*format!("{NAME}-1"), NodeRole::Manager)
    );
    assert!(manager.leader, "{manager:?}");
    for node in &map.nodes {
        assert_eq!(node.state, NodeState::Ready, "{node:?}");
        assert_eq!(node.availability, Availability::Active, "{node:?}");
        assert!(node.cpus > 0 && node.memory_bytes > 0, "{node:?}");
        assert!(
            node.address
                .as_deref()
                .is_some_and(|a| a.starts_with(SUBNET)),
            "{node:?}"
        );
    }

    // Draining node 2 through the agent: Swarm says so; activating brings it back; an unknown
    // node changes nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = agent.client();
    let node2 = format!("{NAME}-2").parse().unwrap();
    let drained = runtime
        .block_on(client.set_node_availability(&node2, Availability::Drain))
        .unwrap();
    assert_eq!(drained.availability, Availability::Drain);
    let swarm_says = cluster.docker_ok(
        1,
        &[
            "node",
            "inspect",
            "-f",
            "{{.Spec.Availability}}",
            &format!("{NAME}-2"),
        ],
    );
    assert_eq!(swarm_says, "drain");
    let active = runtime
        .block_on(client.set_node_availability(&node2, Availability::Active))
        .unwrap();
    assert_eq!(active.availability, Availability::Active);
    let unknown = runtime
        .block_on(client.set_node_availability(&"nowhere".parse().unwrap(), Availability::Drain))
        .unwrap_err();
    assert!(
        unknown.to_string().contains("No node named nowhere"),
        "{unknown}"
    );
    assert!(
        node_map(&agent)
            .nodes
            .iter()
            .all(|node| node.availability == Availability::Active),
        "nothing else changed"
    );
    drop(agent);

    drop(cluster);
    let left = LocalCluster::leftovers(NAME);
    assert!(left.is_empty(), "scripts/cluster down left {left:?}");
}

#[test]
fn nodes_on_a_single_host_are_one_host_for_admins_only_and_cannot_drain() {
    let platform = Platform::for_pushes();
    let listed = platform.paas(&["nodes", "--json"]).success().json();
    let map: NodeMap = serde_json::from_value(listed).unwrap();
    assert_eq!(map.topology, Topology::SingleHost);
    assert_eq!(map.nodes.len(), 1, "{map:?}");
    assert_eq!(map.nodes[0].role, NodeRole::Host);
    let table = platform.paas(&["nodes"]).success();
    assert!(
        table.stdout.starts_with("=== Nodes (single host)\n"),
        "{table}"
    );

    platform
        .paas(&["nodes:drain", &map.nodes[0].name])
        .error("Draining needs the swarm engine: this platform runs on a single Docker host.");
    platform
        .paas(&["nodes:activate", "../etc"])
        .error("invalid node name");
    let after: NodeMap =
        serde_json::from_value(platform.paas(&["nodes", "--json"]).success().json()).unwrap();
    assert_eq!(after, map, "nothing changed");

    let user = platform.user("nodeless");
    let refused = platform
        .gitd
        .request("GET", "/v1/nodes", Some(&user.token), None);
    assert_eq!(refused.status, 403, "{}", refused.text());
    assert!(refused.text().contains("Only admins"), "{}", refused.text());
    let refused = platform.gitd.request(
        "PUT",
        &format!("/v1/nodes/{}/availability", map.nodes[0].name),
        Some(&user.token),
        Some(br#"{"availability":"drain"}"#),
    );
    assert_eq!(refused.status, 403, "{}", refused.text());
}

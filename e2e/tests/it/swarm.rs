//! The swarm engine (`engine = "swarm"`) on a local cluster of three nodes, through the same
//! CLI and `git push` as on one host: the agent on node 1 (the manager) builds there, pushes
//! to the cluster's registry and runs each process type as a Swarm service of the pushed
//! digest on the app's overlay network, which Traefik (on node 1) reaches. A push goes live,
//! `scale web=6` spreads over the three nodes and `paas ps` and `paas nodes` name them,
//! `nodes:drain` moves a node's instances to the others, a config change, a rollback and a push roll
//! out, and a load loop through Traefik sees no failed request across all of that; a release that crashes is rejected while the old one keeps serving; a custom domain
//! routes; destroying the app removes its services and network. With `web=3`, a node lost under
//! load leaves the app serving and its instance runs again elsewhere; once the node is back, the
//! next deploy places instances on it again.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::local_cluster::LocalCluster;
use crate::platform::{DOMAIN, LoadLoop, Platform};
use crate::util::{commit_files, hello_repo, http_get, wait_for};

const NAME: &str = "paasswarm";
const SUBNET: &str = "10.231.2";

/// Requests the load loop makes at least.
const MIN_LOAD_REQUESTS: usize = 300;

/// `docker service ls` of the app on node 1: each service's name and image.
fn services(cluster: &LocalCluster, app: &str) -> Vec<String> {
    let listed = cluster.docker_ok(
        1,
        &[
            "service",
            "ls",
            "--filter",
            &format!("label=paas.app={app}"),
            "--format",
            "{{.Name}} {{.Image}}",
        ],
    );
    listed.lines().map(str::to_owned).collect()
}

/// The body Traefik answers `/` of `host` with, once it is a 200 containing `needle`.
fn wait_for_answer(cluster: &LocalCluster, host: &str, needle: &str) -> String {
    wait_for(&format!("{host} to answer with {needle:?}"), || {
        http_get(&cluster.router(), host, "/")
            .ok()
            .filter(|answer| answer.status == 200 && answer.body.contains(needle))
            .map(|answer| answer.body)
    })
}

#[test]
fn on_swarm_a_push_goes_live_scales_over_the_nodes_reconfigures_rolls_back_and_routes_domains() {
    let cluster = LocalCluster::up(NAME, SUBNET, 3);
    let platform = Platform::on_swarm(&cluster);
    let app = platform.create_app("swarm");
    let host = format!("{app}.{DOMAIN}");
    let repo = hello_repo();

    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    assert!(
        pushed
            .stderr
            .contains("Creating the web service: 1 task(s)"),
        "{pushed}"
    );
    wait_for_answer(&cluster, &host, &format!("Hello from {app} v1 on "));
    let listed = services(&cluster, &app);
    assert_eq!(listed.len(), 1, "one service per process type: {listed:?}");
    assert!(
        listed[0].contains(&format!(" {SUBNET}.1:5000/paas/{app}@sha256:")),
        "the service runs the pushed digest: {listed:?}"
    );

    let load = LoadLoop::start(&cluster.router(), &host, MIN_LOAD_REQUESTS, |body| {
        body.contains(" from ")
    });

    // Six instances over the three nodes, each named in `paas ps`.
    platform.paas(&["scale", "web=6", "-a", &app]).success();
    let instances = platform
        .paas(&["ps", "-a", &app, "--json"])
        .success()
        .json();
    let instances = instances.as_array().unwrap();
    assert_eq!(instances.len(), 6, "{instances:?}");
    let nodes: BTreeSet<&str> = instances
        .iter()
        .map(|instance| instance["node"].as_str().unwrap_or_default())
        .collect();
    let expected: BTreeSet<String> = (1..=3).map(|node| format!("{NAME}-{node}")).collect();
    assert_eq!(
        nodes,
        expected.iter().map(String::as_str).collect(),
        "Swarm spreads the instances over every node: {instances:?}"
    );
    assert!(
        instances.iter().all(|instance| instance["state"] == "up"),
        "{instances:?}"
    );
    let ps = platform.paas(&["ps", "-a", &app]).success();
    for node in &expected {
        assert!(ps.stdout.contains(node.as_str()), "{node} in {ps}");
    }
    // The infrastructure map puts each instance on its node.
    let map = platform.paas(&["nodes", "--json"]).success().json();
    let placed: usize = map["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|node| {
            node["instances"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|instance| instance["app"] == app.as_str())
                .count()
        })
        .sum();
    assert_eq!(placed, 6, "{map}");

    // Draining node 2 moves its instances to the others, and activating it takes it back.
    let drained = format!("{NAME}-2");
    platform.paas(&["nodes:drain", &drained]).success();
    wait_for(&format!("no instance of {app} on {drained}"), || {
        let instances = platform
            .paas(&["ps", "-a", &app, "--json"])
            .success()
            .json();
        let instances = instances.as_array().unwrap().clone();
        (instances.len() == 6
            && instances
                .iter()
                .all(|i| i["state"] == "up" && i["node"] != drained.as_str()))
        .then_some(())
    });
    platform.paas(&["nodes:activate", &drained]).success();

    // A config change and a rollback, each a start-first update of the service.
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();
    wait_for_answer(&cluster, &host, &format!("Howdy from {app} v2 on "));
    platform.paas(&["rollback", "v1", "-a", &app]).success();
    wait_for_answer(&cluster, &host, &format!("Hello from {app} v3 on "));
    // A third redeploy: a push of new code.
    commit_files(repo.path(), &[("www/pushed.txt", "third\n")], "third");
    platform.deploy(&app, repo.path());
    wait_for_answer(&cluster, &host, &format!("Hello from {app} v4 on "));
    platform.paas(&["scale", "web=1", "-a", &app]).success();
    load.finish(
        "a scale 1 → 6 → 1, a drain and three redeploys (a config change, a rollback, a push) on Swarm",
    );

    // A release whose web crashes at once: Swarm rolls its update back, the push is
    // rejected (v5 is recorded as failed), and v4 keeps serving.
    commit_files(
        repo.path(),
        &[("Procfile", "web: echo crashing on purpose; exit 3\n")],
        "crash",
    );
    let crashed = platform.push(&app, repo.path());
    assert_ne!(crashed.code, Some(0), "{crashed}");
    assert!(crashed.stderr.contains("non-zero exit (3)"), "{crashed}");
    wait_for_answer(&cluster, &host, &format!("Hello from {app} v4 on "));
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        (&releases[0]["version"], &releases[0]["status"]),
        (&5.into(), &"failed".into()),
        "{releases}"
    );
    let info = platform
        .paas(&["apps:info", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(info["current_release"], 4, "{info}");

    // A custom domain routes through the same Traefik.
    platform
        .paas(&["domains:add", "www.swarm-e2e.test", "-a", &app])
        .success();
    wait_for_answer(&cluster, "www.swarm-e2e.test", &format!("from {app} v"));

    // Destroyed: no service and no network of the app is left.
    platform
        .paas(&["apps:destroy", &app, "--confirm", &app])
        .success();
    assert_eq!(services(&cluster, &app), Vec::<String>::new());
    let networks = cluster.docker_ok(
        1,
        &[
            "network",
            "ls",
            "--filter",
            &format!("name=paas-app-{app}"),
            "-q",
        ],
    );
    assert_eq!(networks, "", "the app's overlay network is gone");

    node_loss(&cluster, &platform);
}

/// `web=3` over the three nodes, then node 3 goes away under load.
fn node_loss(cluster: &LocalCluster, platform: &Platform) {
    let app = platform.create_app("lost");
    let host = format!("{app}.{DOMAIN}");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    let lost = format!("{NAME}-3");
    let on_lost = |instances: &serde_json::Value| {
        instances
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["node"] == lost.as_str())
            .count()
    };
    let before = platform
        .paas(&["ps", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(on_lost(&before), 1, "one instance per node: {before}");
    wait_for_answer(cluster, &host, &format!("Hello from {app} v1 on "));

    let load = LoadLoop::start(&cluster.router(), &host, MIN_LOAD_REQUESTS, |body| {
        body.contains(" from ")
    });
    let killed = Instant::now();
    cluster.lose_node(3);
    wait_for(
        &format!("{app}'s instances to run again off {lost}"),
        || {
            let instances = platform
                .paas(&["ps", "-a", &app, "--json"])
                .success()
                .json();
            let up = instances
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["state"] == "up" && i["node"] != lost.as_str())
                .count();
            (up == 3).then_some(())
        },
    );
    let back_after = killed.elapsed();
    // Serving on: a stretch of answers after the instances came back.
    let after = http_get(&cluster.router(), &host, "/").unwrap();
    assert_eq!(after.status, 200, "{after:?}");
    let (total, failures) = load.stop();
    eprintln!(
        "node loss: {} of {total} requests failed; the lost instance ran again on another node \
         {:.1} s after the node went away; failures: {:?}",
        failures.len(),
        back_after.as_secs_f64(),
        &failures[..failures.len().min(10)]
    );
    assert!(
        failures.len() * 20 < total,
        "most requests were served while a node was lost: {} of {total} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );

    // The node comes back: nothing moves by itself (Swarm does not reschedule running tasks),
    // and the next deploy places instances on it again.
    cluster.start_node(3);
    commit_files(repo.path(), &[("www/back.txt", "back\n")], "back");
    platform.deploy(&app, repo.path());
    wait_for_answer(cluster, &host, &format!("Hello from {app} v2 on "));
    let instances = platform
        .paas(&["ps", "-a", &app, "--json"])
        .success()
        .json();
    assert!(
        on_lost(&instances) >= 1,
        "the deploy after the node came back uses it again: {instances}"
    );
}

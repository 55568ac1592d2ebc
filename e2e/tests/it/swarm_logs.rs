//! `paas logs` on the swarm engine reads every node: on the suite's shared cluster of three nodes with
//! `web=3` spread over them, each instance's boot line shows with its `app[web.N]` prefix,
//! those of instances on the nodes other than the manager (where the agent runs) too;
//! `-p web.N` keeps one instance's lines; `--tail` gets a line the app writes on request live
//! from whichever node served it, and the router line of that request naming its dyno, and
//! the tasks of a redeploy join the stream; after the redeploy the retired release's lines
//! are still there, and `--release` tells the two apart.

use std::collections::BTreeSet;

use crate::local_cluster::LocalCluster;
use crate::logs::Follower;
use crate::platform::{DOMAIN, Platform};
use crate::util::{commit_files, hello_repo, http_get, wait_for};

/// The Swarm manager, where the agent runs.
const MANAGER: &str = "paaswlogs-1";

/// Each web instance says its release and container (its host name) as it starts.
const PROCFILE: &str = "web: echo \"booting $PAAS_RELEASE on $(hostname)\" && exec httpd -f -p ${PORT:-5000} -h /www\n";
/// Writes `said <query> on <host>` to the instance's stderr for each request.
const SAY_CGI: &str = "#!/bin/sh\necho \"said $QUERY_STRING on $(hostname)\" >&2\nprintf 'Content-Type: text/plain\\r\\n\\r\\nsaid\\n'\n";
const DOCKERFILE: &str = "FROM paas/busybox:latest\nCOPY www /www\nRUN chmod 755 /www/cgi-bin/*.cgi\nENV PORT=5000\nEXPOSE 5000\nCMD [\"/bin/sh\", \"-c\", \"exec httpd -f -p \\\"${PORT:-5000}\\\" -h /www\"]\n";

/// One web instance as `paas ps --json` has it, and its container's host name.
#[derive(Debug, Clone)]
struct Placed {
    index: u64,
    node: String,
    /// The host name of its container: the container id's first 12 characters, read from the
    /// node's engine by Swarm's task name (`<service>.<slot>.<task id>`).
    host: String,
}

/// The app's web instances of `release` that are up, once each one's container is found on
/// its node.
fn web_instances(
    cluster: &LocalCluster,
    platform: &Platform,
    app: &str,
    release: u64,
) -> Option<Vec<Placed>> {
    let listed = platform.paas(&["ps", "-a", app, "--json"]).success().json();
    let mut placed = Vec::new();
    for instance in listed.as_array().unwrap() {
        if instance["process"] != "web"
            || instance["state"] != "up"
            || instance["release"] != release
        {
            continue;
        }
        let index = instance["index"].as_u64().unwrap();
        let node = instance["node"].as_str().unwrap_or_default().to_owned();
        let number: u32 = node
            .strip_prefix(&format!("{}-", cluster.name))?
            .parse()
            .ok()?;
        let containers = cluster.docker_ok(
            number,
            &[
                "ps",
                "--filter",
                &format!("label=paas.app={app}"),
                "--filter",
                &format!("label=paas.release=v{release}"),
                "--format",
                "{{.ID}} {{.Label \"com.docker.swarm.task.name\"}}",
            ],
        );
        let host = containers.lines().find_map(|line| {
            let (id, task) = line.split_once(' ')?;
            let slot = task.split('.').nth(1)?;
            (slot == index.to_string()).then(|| id[..12].to_owned())
        })?;
        placed.push(Placed { index, node, host });
    }
    Some(placed)
}

/// `paas logs ARGS` of the app, once its output contains every one of `needles`.
fn logs_with(platform: &Platform, args: &[&str], needles: &[String]) -> String {
    wait_for(&format!("`paas logs {args:?}` with {needles:?}"), || {
        let out = platform.paas(&[&["logs"], args].concat()).success().stdout;
        needles
            .iter()
            .all(|needle| out.contains(needle.as_str()))
            .then_some(out)
    })
}

#[test]
fn on_swarm_logs_read_every_node_follow_new_tasks_and_keep_a_retired_release() {
    let cluster = LocalCluster::shared();
    let platform = Platform::on_swarm(&cluster);
    let app = platform.create_app("wlogs");
    let host = format!("{app}.{DOMAIN}");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[
            ("Procfile", PROCFILE),
            ("Dockerfile", DOCKERFILE),
            ("www/cgi-bin/say.cgi", SAY_CGI),
        ],
        "say who serves",
    );
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    let v1 = wait_for("three web instances of v1 up", || {
        web_instances(&cluster, &platform, &app, 1).filter(|instances| instances.len() == 3)
    });
    let nodes: BTreeSet<&str> = v1.iter().map(|instance| instance.node.as_str()).collect();
    assert!(nodes.len() >= 2, "web=3 uses two nodes or more: {v1:?}");
    let remote = v1
        .iter()
        .find(|instance| instance.node != MANAGER)
        .unwrap_or_else(|| panic!("an instance off the manager: {v1:?}"))
        .clone();

    // Every instance's boot line, those of the other nodes' too, under its own prefix.
    let boot = |instance: &Placed, release: u32| {
        format!(
            "app[web.{}]: booting v{release} on {}",
            instance.index, instance.host
        )
    };
    let needles: Vec<String> = v1.iter().map(|instance| boot(instance, 1)).collect();
    logs_with(&platform, &["-a", &app, "-n", "200"], &needles);

    // One instance: its lines only.
    let filter = format!("web.{}", remote.index);
    let one = logs_with(
        &platform,
        &["-a", &app, "-p", &filter, "-n", "200"],
        &[boot(&remote, 1)],
    );
    for line in one.lines() {
        assert!(
            line.contains(&format!(" app[{filter}]: "))
                || line.contains(&format!(" paas[{filter}]: ")),
            "only {filter}'s lines: {line:?} in\n{one}"
        );
    }
    for other in v1.iter().filter(|instance| instance.index != remote.index) {
        assert!(!one.contains(&other.host), "{filter} alone:\n{one}");
    }

    // Followed: a line written on request, from whichever node served it, and its router line.
    let mut follower = Follower::start(&platform, &["logs", "--tail", "-a", &app]);
    follower.wait_for_text("the backlog", &boot(&remote, 1));
    let live: Vec<String> = (1..=6).map(|n| format!("live{n}")).collect();
    for token in &live {
        let answer = http_get(
            &cluster.router(),
            &host,
            &format!("/cgi-bin/say.cgi?{token}"),
        )
        .unwrap();
        assert_eq!(answer.status, 200, "{answer:?}");
    }
    for token in &live {
        follower.wait_for_text("a line written on request", &format!("said {token} on "));
    }
    let followed = follower.wait_for_text(
        "the router line of a request",
        "paas[router]: at=info method=GET path=\"/cgi-bin/say.cgi",
    );
    let routed = followed
        .lines()
        .find(|line| line.contains("path=\"/cgi-bin/say.cgi"))
        .unwrap();
    assert!(
        routed.contains(&format!("host={host} status=200 ")),
        "{routed}"
    );
    assert!(
        routed.contains(" dyno=web."),
        "the dyno that served it: {routed}"
    );
    let served_remotely = v1
        .iter()
        .filter(|instance| instance.node != MANAGER)
        .any(|instance| {
            followed.lines().any(|line| {
                line.contains(&format!("app[web.{}]: said live", instance.index))
                    && line.contains(&instance.host)
            })
        });
    assert!(
        served_remotely,
        "a request served off the manager is in the stream:\n{followed}"
    );

    // A redeploy's new tasks join the stream.
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();
    let v2 = wait_for("three web instances of v2 up", || {
        web_instances(&cluster, &platform, &app, 2).filter(|instances| instances.len() == 3)
    });
    for instance in &v2 {
        follower.wait_for_text("a new task's boot line", &boot(instance, 2));
    }
    drop(follower);

    // The retired release's lines are still shown, and `--release` keeps one release's.
    let mut both: Vec<String> = v1.iter().map(|instance| boot(instance, 1)).collect();
    both.extend(v2.iter().map(|instance| boot(instance, 2)));
    logs_with(&platform, &["-a", &app, "-n", "500"], &both);
    let first = logs_with(
        &platform,
        &["-a", &app, "--release", "v1", "-n", "500"],
        &[boot(&remote, 1)],
    );
    assert!(
        !first.contains("booting v2 on "),
        "v1's lines only:\n{first}"
    );
}

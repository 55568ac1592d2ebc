//! One-off containers users start: `paas run:detached` runs a command in a container of the
//! current release with the app's config and the run's own vars, prints `run.N`, and its output
//! shows in `paas logs` as `run.N`; the container is removed when it ends, or with the app.
//! Another user gets the same answer as for an app that does not exist. Running one-offs show
//! in `paas ps` with their command and size (`--size`, as `docker inspect` shows it), count
//! against `instances_per_app` (a run past it starts nothing), and `ps:stop run.1` ends one.

use crate::platform::{AgentSetup, Platform, docker, docker_lines};
use crate::util::{hello_repo, wait_for};

#[test]
fn run_detached_output_is_in_the_logs_and_others_get_404() {
    let platform = Platform::start();
    let app = platform.create_app("runs");
    platform.deploy(&app, hello_repo().path());
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();

    let started = platform
        .paas(&[
            "run:detached",
            "-a",
            &app,
            "-e",
            "WHO=e2e",
            "--",
            "echo",
            "\"$GREETING from run $WHO on $PAAS_RELEASE\"",
        ])
        .success();
    assert_eq!(started.stdout.trim(), "run.1", "{started}");
    assert!(started.stderr.contains("up, run.1"), "{started}");
    let logs = wait_for("the run's output in the logs", || {
        let logs = platform.paas(&["logs", "-a", &app, "-n", "1000"]).success();
        logs.stdout
            .contains("paas[run.1]: Process exited with status 0")
            .then_some(logs.stdout)
    });
    assert!(
        logs.contains("paas[run.1]: Howdy from run e2e on v2"),
        "{logs}"
    );
    let left = run_containers(&app);
    assert!(left.is_empty(), "removed once it ended: {left:?}");

    let other = platform.user("runner");
    let refused = platform.api(
        "POST",
        &format!("/v1/apps/{app}/run/detached"),
        &other.token,
        r#"{"command":["id"]}"#,
    );
    assert_eq!(refused.status, 404, "{}", refused.text());

    // A one-off still running when the app is destroyed goes with it, network and all.
    platform
        .paas(&["run:detached", "-a", &app, "--", "sleep", "600"])
        .success();
    platform
        .paas(&["apps:destroy", &app, "--confirm", &app])
        .success();
    let label = format!("label=paas.app={app}");
    let left = docker_lines(&["ps", "-aq", "--filter", &label]);
    assert!(left.is_empty(), "the running one-off was removed: {left:?}");
    let networks = docker_lines(&["network", "ls", "-q", "--filter", &label]);
    assert!(
        networks.is_empty(),
        "the app's network was removed: {networks:?}"
    );
}

/// The app's `run` one-off containers, stopped ones too.
pub fn run_containers(app: &str) -> Vec<String> {
    let label = format!("label=paas.app={app}");
    docker_lines(&[
        "ps",
        "-aq",
        "--filter",
        &label,
        "--filter",
        "label=paas.process=run",
    ])
}

#[test]
fn one_offs_show_in_ps_take_a_size_and_count_against_the_quota() {
    let quotas: toml::Table = toml::from_str("instances_per_app = 2").unwrap();
    let platform = Platform::configured(true, AgentSetup::Running, move |init| {
        init.set_config("quotas", quotas)
    });
    let app = platform.create_app("oneps");
    platform.deploy(&app, hello_repo().path());

    let bad = platform.paas(&["run:detached", "-a", &app, "--size", "big", "--", "true"]);
    assert_ne!(bad.code, Some(0), "{bad}");
    assert!(bad.stderr.contains("invalid size \"big\""), "{bad}");
    platform
        .paas(&["run:detached", "-a", &app, "--size", "64G", "--", "true"])
        .error("run: memory 64G is above this host's maximum of 4G");
    assert!(
        run_containers(&app).is_empty(),
        "refused runs start nothing"
    );

    let started = platform
        .paas(&[
            "run:detached",
            "-a",
            &app,
            "--size",
            "256M,0.5",
            "--",
            "sleep",
            "600",
        ])
        .success();
    assert_eq!(started.stdout.trim(), "run.1", "{started}");
    let running = run_containers(&app);
    assert_eq!(running.len(), 1, "{running:?}");
    let limits = docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        &running[0],
    ]);
    assert_eq!(limits.trim(), "268435456 500000000");
    let listed = platform.paas(&["ps", "-a", &app]).success().stdout;
    assert!(
        listed.starts_with("=== run: one-off processes (1)\nrun.1 (256M, 0.5 CPU): up "),
        "{listed}"
    );
    assert!(listed.contains(": sleep 600\n"), "{listed}");
    assert!(listed.contains("=== web"), "{listed}");

    let quota = "The app runs 1 instances and 1 one-offs; another would pass the quota of 2 per app (instances_per_app).";
    platform
        .paas(&["run:detached", "-a", &app, "--", "sleep", "600"])
        .error(quota);
    platform
        .paas(&["run", "-a", &app, "--", "true"])
        .error(quota);
    assert_eq!(run_containers(&app), running, "nothing more started");

    platform.paas(&["ps:stop", "run.1", "-a", &app]).success();
    assert!(run_containers(&app).is_empty(), "stopped and removed");
    let listed = platform.paas(&["ps", "-a", &app]).success().stdout;
    assert!(!listed.contains("one-off"), "{listed}");
    platform.paas(&["run", "-a", &app, "--", "true"]).success();

    // A one-off that ends by itself leaves `paas ps` with no request to the app in between:
    // the agent's listing follows the one-offs' own Docker events.
    platform
        .paas(&["run:detached", "-a", &app, "--", "sleep", "2"])
        .success();
    let listed = platform.paas(&["ps", "-a", &app]).success().stdout;
    assert!(listed.contains(": sleep 2\n"), "{listed}");
    wait_for("the ended one-off to leave `paas ps`", || {
        let listed = platform.paas(&["ps", "-a", &app]).success().stdout;
        (!listed.contains("one-off")).then_some(())
    });
}

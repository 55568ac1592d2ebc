//! One-off containers users start: `paas run:detached` runs a command in a container of the
//! current release with the app's config and the run's own vars, prints `run.N`, and its output
//! shows in `paas logs` as `run.N`; the container is removed when it ends, or with the app.
//! Another user gets the same answer as for an app that does not exist.

use crate::platform::{Platform, docker_lines};
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
    let label = format!("label=paas.app={app}");
    let left = docker_lines(&[
        "ps",
        "-aq",
        "--filter",
        &label,
        "--filter",
        "label=paas.process=run",
    ]);
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
    let left = docker_lines(&["ps", "-aq", "--filter", &label]);
    assert!(left.is_empty(), "the running one-off was removed: {left:?}");
    let networks = docker_lines(&["network", "ls", "-q", "--filter", &label]);
    assert!(
        networks.is_empty(),
        "the app's network was removed: {networks:?}"
    );
}

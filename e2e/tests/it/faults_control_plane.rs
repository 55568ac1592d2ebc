//! Faults of the control plane, through the real platform: with gitd and the agent both
//! killed, Traefik keeps routing to the app's running containers (its Docker provider reads the
//! labels from Docker, not from paas), and the platform picks up where it was when they come
//! back; what happened to an app's containers while gitd was down is recorded, once, when it is
//! back (the agent keeps its numbered events, gitd asks from the last one it recorded).

use crate::platform::{Platform, docker_lines};
use crate::util::{hello_repo, wait_for};

/// Requests made through Traefik while the control plane is down.
const REQUESTS_WHILE_DOWN: usize = 300;

#[test]
fn traefik_keeps_routing_while_gitd_and_the_agent_are_down() {
    let mut platform = Platform::start();
    let app = platform.create_app("headless");
    let pushed = platform.push(&app, hello_repo().path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    let greeting = format!("Hello from {app} v1");
    platform.wait_for_body(&app, &greeting);
    let running = platform.containers(&app, "web");

    platform.gitd.kill();
    platform.agent_mut().stop();
    let mut failures = Vec::new();
    for attempt in 1..=REQUESTS_WHILE_DOWN {
        match platform.get(&app, "/") {
            Ok(answer) if answer.status == 200 && answer.body.contains(&greeting) => {}
            Ok(answer) => failures.push(format!("#{attempt}: {} {:?}", answer.status, answer.body)),
            Err(err) => failures.push(format!("#{attempt}: {err}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {REQUESTS_WHILE_DOWN} requests failed with the control plane down: {:?}\n{}",
        failures.len(),
        &failures[..failures.len().min(20)],
        platform.logs()
    );
    assert_eq!(platform.containers(&app, "web"), running);

    platform.agent_mut().resume();
    platform.gitd.restart();
    let admin = platform.gitd.admin();
    let ps = admin.run(&["ps", "-a", &app]).success();
    assert!(ps.stdout.contains("web.1: up "), "{ps}");
    platform.wait_for_body(&app, &greeting);
    assert_eq!(platform.containers(&app, "web"), running);
}

#[test]
fn a_crash_while_gitd_is_down_is_recorded_once_when_it_is_back() {
    let mut platform = Platform::start();
    let app = platform.create_app("unwatched");
    let pushed = platform.push(&app, hello_repo().path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    wait_for("gitd to record web.1 coming up", || {
        let out = platform
            .paas(&["logs", "-n", "50", "-s", "paas", "-a", &app])
            .success();
        out.stdout
            .contains("paas[web.1]: State changed from starting to up\n")
            .then_some(())
    });

    platform.gitd.kill();
    let web = platform.containers(&app, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    let started_at = |id: &str| docker_lines(&["inspect", "--format", "{{.State.StartedAt}}", id]);
    let first_start = started_at(&web[0]);
    docker_lines(&["kill", &web[0]]);
    wait_for("the killed container to run again", || {
        let running = docker_lines(&["inspect", "--format", "{{.State.Running}}", &web[0]]);
        (started_at(&web[0]) != first_start && running == ["true"]).then_some(())
    });

    platform.gitd.restart();
    let admin = platform.gitd.admin();
    let crash_then_restart = [
        "paas[web.1]: Process exited with status 137",
        "paas[web.1]: State changed from up to crashed",
        "paas[web.1]: Starting process (v1, restart 1)",
        "paas[web.1]: State changed from crashed to starting",
    ];
    let logs = wait_for("the crash in `paas logs` once gitd is back", || {
        let out = admin
            .run(&["logs", "-n", "100", "-s", "paas", "-a", &app])
            .success();
        let mut lines = out.stdout.lines();
        crash_then_restart
            .iter()
            .all(|needle| lines.any(|line| line.ends_with(needle)))
            .then_some(out)
    });
    assert_eq!(
        logs.stdout
            .matches("Process exited with status 137")
            .count(),
        1,
        "the crash is told once:\n{logs}"
    );
    assert_eq!(
        logs.stdout.matches("paas[web.1]: Starting process").count(),
        2,
        "the first start is not recorded again:\n{logs}"
    );
}

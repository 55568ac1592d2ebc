//! Faults of the control plane as the router sees them, through the real platform: with gitd
//! and the agent both killed, Traefik keeps routing to the app's running containers (its Docker
//! provider reads the labels from Docker, not from paas), and the platform picks up where it
//! was when they come back.

use crate::platform::Platform;
use crate::util::hello_repo;

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

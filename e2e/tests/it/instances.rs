//! One instance at a time (`paas ps:restart web.1`): only that instance is replaced (a fresh
//! container, start-first) while the app's other instances keep their containers and every
//! request of a load loop is answered; a bad or unknown instance is refused with one line.
//! `paas ps:stop web.1` stops one and `paas ps` says `stopped`; the agent's convergence (set
//! off by another instance dying, or by the agent starting again) leaves it down; `ps:restart web.1` brings it back, and
//! `ps:stop web` then a scale stops and brings back every instance of the type.

use crate::platform::{DOMAIN, Platform, docker};
use crate::rollback::load_on;
use crate::util::{hello_repo, wait_for};

/// The id of the app's running web container of `index`.
fn web_instance(platform: &Platform, app: &str, index: u32) -> String {
    let mut found: Vec<String> = platform
        .containers(app, "web")
        .into_iter()
        .filter(|id| {
            docker(&[
                "inspect",
                "-f",
                "{{index .Config.Labels \"paas.index\"}}",
                id,
            ])
            .trim()
                == index.to_string()
        })
        .collect();
    assert_eq!(found.len(), 1, "web.{index}: {found:?}");
    found.remove(0)
}

#[test]
fn restarting_one_instance_replaces_only_that_one() {
    let platform = Platform::start();
    let app = platform.create_app("inst");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    let before: Vec<String> = (1..=3).map(|i| web_instance(&platform, &app, i)).collect();

    let load = load_on(&platform, &format!("{app}.{DOMAIN}"));
    let restarted = platform
        .paas(&["ps:restart", "web.1", "-a", &app])
        .success();
    load.finish("a restart of one instance");
    assert!(
        restarted
            .stderr
            .contains(&format!("Restarting web.1 of ⬢ {app}... done")),
        "{restarted}"
    );
    let after: Vec<String> = (1..=3).map(|i| web_instance(&platform, &app, i)).collect();
    assert_ne!(after[0], before[0], "web.1 is a new container");
    assert_eq!(after[1..], before[1..], "web.2 and web.3 kept theirs");

    platform
        .paas(&["ps:restart", "web.4", "-a", &app])
        .error("has no web.4: it runs 3 web instance(s)");
    platform
        .paas(&["ps:restart", "web.x", "-a", &app])
        .error("invalid instance \"web.x\"");
    assert_eq!(
        (1..=3)
            .map(|i| web_instance(&platform, &app, i))
            .collect::<Vec<_>>(),
        after,
        "refused restarts change nothing"
    );
}

/// `running` of the app's `web.N` container, stopped ones too.
fn web_running(app: &str, index: u32) -> bool {
    let label = format!("label=paas.app={app}");
    let index_label = format!("label=paas.index={index}");
    let ids = crate::platform::docker_lines(&[
        "ps",
        "-aq",
        "--filter",
        &label,
        "--filter",
        "label=paas.process=web",
        "--filter",
        &index_label,
    ]);
    assert_eq!(ids.len(), 1, "web.{index}: {ids:?}");
    docker(&["inspect", "-f", "{{.State.Running}}", &ids[0]]).trim() == "true"
}

fn ps(platform: &Platform, app: &str) -> String {
    platform.paas(&["ps", "-a", app]).success().stdout
}

#[test]
fn a_stopped_instance_stays_down_until_it_is_restarted() {
    let mut platform = Platform::start();
    let app = platform.create_app("stops");
    platform.deploy(&app, hello_repo().path());
    platform.paas(&["scale", "web=2", "-a", &app]).success();

    let stopped = platform.paas(&["ps:stop", "web.1", "-a", &app]).success();
    assert!(
        stopped
            .stderr
            .contains(&format!("Stopping web.1 of ⬢ {app}... done")),
        "{stopped}"
    );
    assert!(!web_running(&app, 1));
    let listed = ps(&platform, &app);
    assert!(listed.contains("web.1: stopped"), "{listed}");
    assert!(listed.contains("web.2: up"), "{listed}");
    assert!(
        platform.get(&app, "/").unwrap().status == 200,
        "web.2 serves"
    );

    // web.2 killed outside the platform: the agent converges the app, brings web.2 back and
    // leaves web.1 down.
    let web2 = web_instance(&platform, &app, 2);
    docker(&["kill", &web2]);
    wait_for("web.2 started again", || web_running(&app, 2).then_some(()));
    assert!(!web_running(&app, 1), "a stopped instance is not revived");
    assert!(ps(&platform, &app).contains("web.1: stopped"));
    // Nor by the convergence of an agent that starts again.
    platform.agent_mut().stop();
    docker(&["kill", &web_instance(&platform, &app, 2)]);
    platform.agent_mut().resume();
    wait_for("web.2 started again by the agent", || {
        web_running(&app, 2).then_some(())
    });
    assert!(!web_running(&app, 1), "still down after an agent restart");

    platform
        .paas(&["ps:restart", "web.1", "-a", &app])
        .success();
    assert!(web_running(&app, 1));
    assert!(ps(&platform, &app).contains("web.1: up"));

    platform
        .paas(&["ps:stop", "web.9", "-a", &app])
        .error(&format!("{app} has no web.9."));
    platform.paas(&["ps:stop", "web", "-a", &app]).success();
    let listed = ps(&platform, &app);
    assert!(
        listed.contains("web.1: stopped") && listed.contains("web.2: stopped"),
        "{listed}"
    );
    platform.paas(&["scale", "web=2", "-a", &app]).success();
    let listed = ps(&platform, &app);
    assert!(
        listed.contains("web.1: up") && listed.contains("web.2: up"),
        "a scale starts them again: {listed}"
    );
}

//! One instance at a time (`paas ps:restart web.1`): only that instance is replaced (a fresh
//! container, start-first) while the app's other instances keep their containers and every
//! request of a load loop is answered; a bad or unknown instance is refused with one line.

use crate::platform::{DOMAIN, Platform, docker};
use crate::rollback::load_on;
use crate::util::hello_repo;

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

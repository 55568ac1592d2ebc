//! Config and releases on an app that runs (issue 13's newcomer bugs 6 and 9): unsetting a key
//! that is not set makes no release and restarts nothing, in one line; when the newest release
//! failed, `releases` still names the older current one, `-n 0` is refused and `releases:info`
//! without a version shows the newest one, as Heroku's does.

use crate::platform::{Platform, docker_lines};
use crate::util::{commit_files, hello_repo};

/// The app's running containers, sorted.
fn containers(app: &str) -> Vec<String> {
    let mut ids = docker_lines(&["ps", "-q", "--filter", &format!("label=paas.app={app}")]);
    ids.sort();
    ids
}

/// The app's releases, as `releases --json` lists them.
fn releases(platform: &Platform, app: &str) -> serde_json::Value {
    platform
        .paas(&["releases", "-a", app, "--json"])
        .success()
        .json()
}

#[test]
fn unsetting_a_key_that_is_not_set_changes_and_restarts_nothing() {
    let platform = Platform::for_pushes();
    let app = platform.create_app("unsetnope");
    platform.deploy(&app, hello_repo().path());
    let before = containers(&app);
    assert_eq!(before.len(), 1, "{before:?}");
    let before_releases = releases(&platform, &app);

    let out = platform
        .paas(&["config:unset", "NOPE", "-a", &app])
        .success();
    assert_eq!(
        out.stderr,
        format!("Unsetting NOPE on ⬢ {app}... done, no change\n"),
        "{out}"
    );
    assert_eq!(releases(&platform, &app), before_releases, "no release");
    assert_eq!(containers(&app), before, "nothing restarted");
}

#[test]
fn releases_name_the_current_one_when_the_newest_failed() {
    let platform = Platform::for_pushes();
    let app = platform.create_app("newestfailed");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    let failing = "web: exec httpd -f -p ${PORT:-5000} -h /www\nrelease: exit 3\n";
    commit_files(repo.path(), &[("Procfile", failing)], "failing migration");
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");

    let newest = platform
        .paas(&["releases", "-a", &app, "-n", "1"])
        .success();
    let lines: Vec<&str> = newest.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{newest}");
    assert_eq!(
        lines[0],
        format!("=== {app} Releases - Current: v1"),
        "{newest}"
    );
    assert!(
        lines[1].starts_with("v2  Deploy ") && lines[1].contains(" (failed)  admin  "),
        "{newest}"
    );

    let none = platform.paas(&["releases", "-a", &app, "-n", "0"]);
    assert_eq!(none.code, Some(2), "{none}");
    assert!(none.stdout.is_empty(), "no row: {none}");
    assert!(none.stderr.contains("0 is not in 1.."), "{none}");

    let info = platform.paas(&["releases:info", "-a", &app]).success();
    assert!(info.stdout.starts_with("=== Release v2\n"), "{info}");
    assert!(info.stdout.contains("\nStatus:    failed\n"), "{info}");
    let current = platform
        .paas(&["releases:info", "v1", "-a", &app])
        .success();
    assert!(
        current.stdout.contains("\nStatus:    succeeded\n"),
        "{current}"
    );
}

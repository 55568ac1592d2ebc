//! The release phase end to end: a Procfile's `release` command runs in a one-off container
//! of the new release, once per release (a push, a config change, a rollback), before the
//! release takes traffic, its output in the push and in `paas logs` as `release.1`, and the
//! container gone afterwards; `release` is never a process type. A failing release command
//! rejects the push with its output while the old release keeps serving every request of a
//! load loop.

use chrono::DateTime;

use crate::platform::{DOMAIN, Platform, docker_lines};
use crate::rollback::load_on;
use crate::util::{commit_files, hello_repo};

/// Web says which release booted; the release command which release it migrates.
const PROCFILE: &str = "web: echo \"booting $PAAS_RELEASE\" && exec httpd -f -p ${PORT:-5000} -h /www\nrelease: echo \"migrating $PAAS_RELEASE with ${GREETING:-no greeting}\"\n";

/// The app's log lines (`paas logs -n 1000`), as the CLI prints them.
fn log_lines(platform: &Platform, app: &str) -> Vec<String> {
    let logs = platform.paas(&["logs", "-a", app, "-n", "1000"]).success();
    logs.stdout.lines().map(str::to_owned).collect()
}

/// The time of the one log line ending in `suffix`; panics unless there is exactly one.
fn time_of_only(lines: &[String], suffix: &str) -> DateTime<chrono::FixedOffset> {
    let matching: Vec<&String> = lines.iter().filter(|l| l.ends_with(suffix)).collect();
    assert_eq!(
        matching.len(),
        1,
        "{suffix:?} once in:\n{}",
        lines.join("\n")
    );
    let timestamp = matching[0].split(' ').next().unwrap();
    DateTime::parse_from_rfc3339(timestamp).unwrap()
}

fn oneoff_containers(app: &str) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=paas.app={app}"),
        "--filter",
        "label=paas.process=release",
    ])
}

#[test]
fn the_release_command_runs_once_per_release_before_it_takes_traffic() {
    let platform = Platform::start();
    let app = platform.create_app("migr");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", PROCFILE)], "release phase");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    let migrated = pushed
        .stderr
        .find("migrating v1 with no greeting")
        .unwrap_or_else(|| panic!("{pushed}"));
    let launched = pushed.stderr.find("Launching v1").unwrap();
    assert!(
        migrated < launched,
        "the release command runs first:\n{pushed}"
    );
    assert!(oneoff_containers(&app).is_empty(), "removed once it ended");

    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();
    platform.paas(&["rollback", "v1", "-a", &app]).success();
    let answer = platform.get(&app, "/").unwrap();
    assert!(answer.body.starts_with("Hello from"), "{answer:?}");

    let lines = log_lines(&platform, &app);
    time_of_only(&lines, "paas[release.1]: migrating v1 with no greeting");
    time_of_only(&lines, "paas[release.1]: migrating v2 with Howdy");
    let migrated_v3 = time_of_only(&lines, "paas[release.1]: migrating v3 with no greeting");
    let migrations = lines
        .iter()
        .filter(|l| l.contains("paas[release.1]: migrating"))
        .count();
    assert_eq!(migrations, 3, "once per release:\n{}", lines.join("\n"));
    // v3's web instance booted after its release command had run.
    let booted_v3 = time_of_only(&lines, "app[web.1]: booting v3");
    assert!(migrated_v3 < booted_v3, "{}", lines.join("\n"));
    assert!(oneoff_containers(&app).is_empty());

    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(!ps.stdout.contains("release"), "{ps}");
    platform
        .paas(&["scale", "release=1", "-a", &app])
        .error("cannot be scaled");
}

#[test]
fn a_failing_release_command_rejects_the_push_and_the_old_release_keeps_serving() {
    let platform = Platform::start();
    let app = platform.create_app("nomigr");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());

    let load = load_on(&platform, &format!("{app}.{DOMAIN}"));
    let failing = "web: exec httpd -f -p ${PORT:-5000} -h /www\nrelease: echo 'ERROR: relation users does not exist' >&2; exit 3\n";
    commit_files(repo.path(), &[("Procfile", failing)], "failing migration");
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    for expected in [
        "ERROR: relation users does not exist",
        "the release command exited with status 3",
        "was not deployed",
    ] {
        assert!(pushed.stderr.contains(expected), "{expected:?}:\n{pushed}");
    }
    load.finish("a failed release phase");
    let answer = platform.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{answer:?}"
    );
    let info = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(info[0]["status"], "failed", "{info}");
    assert!(oneoff_containers(&app).is_empty());
}

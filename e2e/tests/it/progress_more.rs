//! The rest of the waits show their progress, end to end, as `config:set` does: on an app
//! whose web takes a few seconds to listen, `features:enable|disable`, `ps:sticky`,
//! `storage:mount|unmount`, `scale`, `restart`, `domains:add`, `rollback` and `addons:create`
//! (its release) say what they wait for and relay what the new instance prints before their
//! `... done`; `addons:create postgres` also says that it waits for the database to accept
//! connections. `maintenance:on|off` rolls nothing out: it prints its action line alone.

use crate::addons::{Cleanup, addon_container};
use crate::platform::{Platform, ensure_addon_images};
use crate::util::{ADMIN_USER, Output, commit_files, hello_repo};

const SLOW_WEB: &str =
    "web: echo booting the slow web; sleep 3; exec httpd -f -p ${PORT:-5000} -h /www\n";
const BOOTING: &str = ": booting the slow web";

/// A new web's wait: `Waiting for web.2 to answer on $PORT (3 s of 120 s)`.
fn is_answer_wait(line: &str) -> bool {
    line.starts_with("Waiting for web.") && line.contains(" to answer on $PORT (")
}

/// `out` showed a new web's wait and its first line (`web.1: booting the slow web`), then
/// ended with `done`.
#[track_caller]
fn assert_rollout_shown(out: &Output, done: &str) {
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert!(lines.iter().copied().any(is_answer_wait), "{out}");
    assert!(
        lines
            .iter()
            .any(|line| line.starts_with("web.") && line.ends_with(BOOTING)),
        "{out}"
    );
    assert_eq!(lines.last().copied(), Some(done), "{out}");
}

#[test]
fn every_change_that_rolls_out_shows_what_it_waits_for() {
    ensure_addon_images();
    let platform = Platform::start();
    let app = platform.create_app("waits");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", SLOW_WEB)], "a slow web");
    platform.deploy(&app, repo.path());
    let run = |args: &[&str]| platform.paas(&[args, &["-a", &app]].concat()).success();

    let enabled = run(&["features:enable", "read-only-fs"]);
    assert_rollout_shown(
        &enabled,
        &format!("Enabling read-only-fs for ⬢ {app}... done"),
    );
    let disabled = run(&["features:disable", "read-only-fs"]);
    assert_rollout_shown(
        &disabled,
        &format!("Disabling read-only-fs for ⬢ {app}... done"),
    );
    let sticky = run(&["ps:sticky", "on"]);
    assert_rollout_shown(
        &sticky,
        &format!("Turning sticky sessions on for ⬢ {app}... done"),
    );
    let mounted = run(&["storage:mount", "data:/data"]);
    assert_rollout_shown(
        &mounted,
        &format!("Mounting data at /data in ⬢ {app}... done, v2"),
    );
    let unmounted = run(&["storage:unmount", "data:/data"]);
    assert_rollout_shown(
        &unmounted,
        &format!("Unmounting data from /data in ⬢ {app} (its files stay)... done, v3"),
    );

    let scaled = run(&["scale", "web=2"]);
    assert_rollout_shown(
        &scaled,
        &format!("Scaling processes of ⬢ {app}... done, now running web at 2"),
    );
    let restarted = run(&["restart"]);
    assert_rollout_shown(
        &restarted,
        &format!("Restarting all processes of ⬢ {app}... done"),
    );
    run(&["scale", "web=1"]);
    let added = run(&["domains:add", "www.waits.test"]);
    assert_rollout_shown(&added, &format!("Adding www.waits.test to ⬢ {app}... done"));
    let rolled = run(&["rollback", "v1"]);
    assert_rollout_shown(&rolled, &format!("Rolling back ⬢ {app} to v1... done, v4"));

    for (args, verb) in [
        ("maintenance:on", "Enabling"),
        ("maintenance:off", "Disabling"),
    ] {
        let toggled = run(&[args]);
        assert_eq!(
            toggled.stderr.trim_end(),
            format!("{verb} maintenance mode for ⬢ {app}... done"),
            "nothing is waited for: {toggled}"
        );
    }

    let name = format!("waitdb-{}", std::process::id());
    let _cleanup = Cleanup(vec![addon_container(ADMIN_USER, &name)]);
    let created = run(&["addons:create", "postgres", "--name", &name]);
    let connections = format!("Waiting for {name} to accept connections (");
    assert!(
        created
            .stderr
            .lines()
            .any(|line| line.starts_with(&connections)),
        "{created}"
    );
    assert!(
        created.stderr.lines().any(is_answer_wait),
        "the release with DATABASE_URL rolled out: {created}"
    );
    assert!(
        created
            .stderr
            .contains(&format!("Creating postgres on ⬢ {app}... done")),
        "{created}"
    );
}

//! The rest of the waits show their progress, end to end, as `config:set` does: on an app
//! whose web takes a few seconds to listen, `features:enable|disable`, `ps:sticky`,
//! `storage:mount|unmount`, `scale`, `restart`, `domains:add|remove`, `rollback`, `ps:resize`
//! and `addons:create` (its release) say what they wait for and relay what the new instance
//! prints before their `... done`; `addons:create postgres` also says that it waits for the
//! database to accept connections. `maintenance:on|off` rolls nothing out: it prints its
//! action line alone. A request still open when `restart` retires its instance holds the
//! retirement in a `Draining web.1` wait until it is answered.

use crate::addons::{Cleanup, addon_container};
use crate::platform::{DOMAIN, Platform, Traefik, docker_lines, ensure_addon_images};
use crate::util::{ADMIN_USER, Output, commit_files, hello_repo, http_get, wait_for};

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

    // Each change, then how its action line ends.
    let changes: [(&[&str], String); 12] = [
        (
            &["features:enable", "read-only-fs"],
            format!("Enabling read-only-fs for ⬢ {app}... done"),
        ),
        (
            &["features:disable", "read-only-fs"],
            format!("Disabling read-only-fs for ⬢ {app}... done"),
        ),
        (
            &["ps:sticky", "on"],
            format!("Turning sticky sessions on for ⬢ {app}... done"),
        ),
        (
            &["storage:mount", "data:/data"],
            format!("Mounting data at /data in ⬢ {app}... done, v2"),
        ),
        (
            &["storage:unmount", "data:/data"],
            format!("Unmounting data from /data in ⬢ {app} (its files stay)... done, v3"),
        ),
        (
            &["scale", "web=2"],
            format!("Scaling processes of ⬢ {app}... done, now running web at 2"),
        ),
        (
            &["restart"],
            format!("Restarting all processes of ⬢ {app}... done"),
        ),
        (
            &["domains:add", "www.waits.test"],
            format!("Adding www.waits.test to ⬢ {app}... done"),
        ),
        (
            &["domains:remove", "www.waits.test"],
            format!("Removing www.waits.test from ⬢ {app}... done"),
        ),
        (
            &["rollback", "v1"],
            format!("Rolling back ⬢ {app} to v1... done, v4"),
        ),
        (
            &["ps:resize", "web", "--memory", "128M"],
            format!("Resizing web of ⬢ {app} to 128M... done, v5"),
        ),
        (
            &["ps:sticky", "off"],
            format!("Turning sticky sessions off for ⬢ {app}... done"),
        ),
    ];
    for (args, done) in &changes {
        assert_rollout_shown(&run(args), done);
    }

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

/// The hello app's page, except that `?drain` says it has begun (a file), then answers only a
/// few seconds after its instance started draining (the agent's marker,
/// `agent/src/runtime/container.rs`'s `DRAIN_MARKER`), or after a minute without one.
const DRAIN_CGI: &str = "#!/bin/sh
if [ \"$QUERY_STRING\" = drain ]; then
  touch /tmp/slow-request-begun
  n=0
  while [ ! -e /tmp/.paas-drain ] && [ $n -lt 600 ]; do sleep 0.1; n=$((n+1)); done
  sleep 6
fi
printf 'Content-Type: text/plain\\r\\n\\r\\nanswered\\n'
";

#[test]
fn a_restart_waits_for_an_open_request_and_says_so() {
    // A drain longer than the default 5 s, so the request decides when it ends.
    let platform = Platform::behind(Traefik::start(), vec![("drain_timeout_secs", 30.into())]);
    let app = platform.create_app("drains");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[("www/cgi-bin/index.cgi", DRAIN_CGI)],
        "a page that outlasts the drain",
    );
    platform.deploy(&app, repo.path());
    let old = docker_lines(&["ps", "-q", "--filter", &format!("label=paas.app={app}")]);
    assert_eq!(old.len(), 1, "{old:?}");

    let web = platform.traefik().web.clone();
    let host = format!("{app}.{DOMAIN}");
    let slow = std::thread::spawn(move || http_get(&web, &host, "/cgi-bin/index.cgi?drain"));
    wait_for("the slow request to reach the app", || {
        let begun = std::process::Command::new("docker")
            .args(["exec", &old[0], "ls", "/tmp/slow-request-begun"])
            .output()
            .unwrap();
        begun.status.success().then_some(())
    });

    let restarted = platform.paas(&["restart", "-a", &app]).success();
    assert!(
        restarted
            .stderr
            .lines()
            .any(|line| line.starts_with("Draining web.1 (") && line.ends_with(" s of 30 s)")),
        "{restarted}"
    );
    assert_eq!(
        restarted.stderr.lines().last(),
        Some(format!("Restarting all processes of ⬢ {app}... done").as_str()),
        "{restarted}"
    );
    let answer = slow.join().unwrap().unwrap();
    assert_eq!(
        (answer.status, answer.body.as_str()),
        (200, "answered\n"),
        "{answer:?}"
    );
}

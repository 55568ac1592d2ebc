//! `kill -9` of the real gitd at each step of a change, then a restart on the same data dir:
//! during a push's build, during its rollout before the new release serves, after it serves
//! while the old one drains; during a config change's rollout and a rollback's. After the
//! restart no release is left `building`, the app serves its last good release, the next push
//! works, and a push that was cut off failed on the client.

use std::io::{BufRead, BufReader};
use std::process::Child;

use crate::platform::Platform;
use crate::util::{commit_files, hello_repo, wait_for};

/// The hello app, with a start that waits `START_DELAY` seconds before serving: a rollout of a
/// release with a delay is "before serving" for that long.
const SLOW_PROCFILE: &str =
    "web: sleep ${START_DELAY:-0}; exec httpd -f -p ${PORT:-5000} -h /www\n";

fn statuses(platform: &Platform, app: &str) -> Vec<(u64, String)> {
    let listed = platform.api(
        "GET",
        &format!("/v1/apps/{app}/releases"),
        platform.admin_token(),
        "",
    );
    assert_eq!(listed.status, 200, "{}", listed.text());
    let mut statuses: Vec<(u64, String)> = listed
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    statuses.reverse();
    statuses
}

/// Reads the push's stderr until a line contains `needle`; panics if the push ends first.
fn read_until(push: &mut Child, needle: &str) -> Vec<String> {
    let stderr = push.stderr.as_mut().unwrap();
    let mut reader = BufReader::new(stderr);
    let mut seen = Vec::new();
    loop {
        let mut line = String::new();
        let read = reader.read_line(&mut line).unwrap();
        assert!(
            read > 0,
            "the push ended before {needle:?}:\n{}",
            seen.join("")
        );
        let found = line.contains(needle);
        seen.push(line);
        if found {
            return seen;
        }
    }
}

/// Waits for the cut-off push to end and asserts it failed, with git's one-line reason.
fn assert_cut_off(mut push: Child) {
    let mut rest = String::new();
    std::io::Read::read_to_string(push.stderr.as_mut().unwrap(), &mut rest).unwrap();
    let status = push.wait().unwrap();
    assert!(!status.success(), "the cut-off push succeeded:\n{rest}");
    assert!(
        rest.lines()
            .any(|line| line.starts_with("fatal: ") || line.starts_with("error: ")),
        "no reason given:\n{rest}"
    );
}

/// No release is left building, `current` is the current release and serves, and the next
/// push deploys.
fn assert_recovered(platform: &Platform, app: &str, repo: &std::path::Path, current: u64) {
    let statuses = statuses(platform, app);
    assert!(
        statuses.iter().all(|(_, status)| status != "building"),
        "{statuses:?}"
    );
    let newest_good = statuses
        .iter()
        .rev()
        .find(|(_, status)| status == "succeeded")
        .map(|(version, _)| *version);
    assert_eq!(newest_good, Some(current), "{statuses:?}");
    platform.wait_for_body(app, &format!("from {app} v{current} on "));

    let round = statuses.len() + 1;
    commit_files(
        repo,
        &[("www/round.txt", &format!("{round}\n"))],
        "after the restart",
    );
    platform.deploy(app, repo);
    let next = statuses.last().unwrap().0 + 1;
    platform.wait_for_body(app, &format!("from {app} v{next} on "));
}

#[test]
fn a_push_killed_during_build_rollout_or_drain_leaves_the_last_good_release_serving() {
    let mut platform = Platform::start();
    let app = platform.create_app("crashpush");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", SLOW_PROCFILE)], "slow start");
    platform.deploy(&app, repo.path());

    // During the build: build 2 is pending, no release was made, nothing was rolled out.
    let dockerfile = std::fs::read_to_string(repo.path().join("Dockerfile")).unwrap();
    commit_files(
        repo.path(),
        &[(
            "Dockerfile",
            &format!("{dockerfile}RUN echo building-slowly && sleep 30\n"),
        )],
        "slow build",
    );
    let mut push = platform.spawn_push(&app, repo.path());
    read_until(&mut push, "building-slowly");
    platform.kill_and_restart_gitd();
    assert_cut_off(push);
    let after_build = statuses(&platform, &app);
    assert_eq!(after_build, [(1, "succeeded".to_owned())]);
    let builds = platform.api(
        "GET",
        &format!("/v1/apps/{app}/builds"),
        platform.admin_token(),
        "",
    );
    assert_eq!(builds.json()[0]["id"], 2, "{}", builds.text());
    assert_eq!(builds.json()[0]["status"], "failed", "{}", builds.text());
    git_reset_last(repo.path());
    assert_recovered(&platform, &app, repo.path(), 1);

    // During the rollout, before the new release serves (it takes 20 s to start).
    let cut = statuses(&platform, &app).len() as u64 + 1;
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: sleep 20; exec httpd -f -p ${PORT:-5000} -h /www\n",
        )],
        "slow rollout",
    );
    let mut push = platform.spawn_push(&app, repo.path());
    read_until(&mut push, &format!("Launching v{cut}"));
    platform.kill_and_restart_gitd();
    assert_cut_off(push);
    assert_eq!(
        statuses(&platform, &app).last().unwrap(),
        &(cut, "failed".to_owned())
    );
    git_reset_last(repo.path());
    assert_recovered(&platform, &app, repo.path(), cut - 1);

    // After it serves, while the old release drains: the push returned, the new release
    // stays current.
    commit_files(repo.path(), &[("www/round.txt", "drain\n")], "drained");
    platform.deploy(&app, repo.path());
    platform.kill_and_restart_gitd();
    let served = statuses(&platform, &app).last().unwrap().clone();
    assert_eq!(served.1, "succeeded");
    assert_recovered(&platform, &app, repo.path(), served.0);
}

/// Drops the newest commit of `repo` (the cut-off push never landed).
fn git_reset_last(repo: &std::path::Path) {
    crate::util::git(repo, &["reset", "-q", "--hard", "HEAD~1"]);
}

#[test]
fn a_config_change_or_rollback_killed_mid_rollout_leaves_the_last_good_release_serving() {
    let mut platform = Platform::start();
    let app = platform.create_app("crashconf");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", SLOW_PROCFILE)], "slow start");
    platform.deploy(&app, repo.path());

    // A config change whose release takes 10 s to start, cut off mid-rollout (v2).
    let change = platform
        .cli
        .cmd(&["config:set", "START_DELAY=10", "-a", &app])
        .spawn_in_terminal();
    wait_for("v2's container to start", || {
        (!platform.containers_of_release(&app, 2).is_empty()).then_some(())
    });
    platform.kill_and_restart_gitd();
    let cut_off = change.finish();
    assert_ne!(cut_off.code, Some(0), "{cut_off}");
    assert_eq!(
        statuses(&platform, &app),
        [(1, "succeeded".to_owned()), (2, "failed".to_owned())]
    );
    let config = platform
        .paas(&["config", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(config, serde_json::json!({}), "the change did not stick");
    platform.wait_for_body(&app, &format!("from {app} v1 on "));

    // A rollback to a release that takes 10 s to start (v3 set the delay, v4 unset it).
    platform
        .paas(&["config:set", "START_DELAY=10", "-a", &app])
        .success();
    platform
        .paas(&["config:unset", "START_DELAY", "-a", &app])
        .success();
    let rollback = platform
        .cli
        .cmd(&["rollback", "v3", "-a", &app])
        .spawn_in_terminal();
    wait_for("v5's container to start", || {
        (!platform.containers_of_release(&app, 5).is_empty()).then_some(())
    });
    platform.kill_and_restart_gitd();
    let cut_off = rollback.finish();
    assert_ne!(cut_off.code, Some(0), "{cut_off}");
    assert_eq!(
        statuses(&platform, &app).last().unwrap(),
        &(5, "failed".to_owned())
    );
    assert_recovered(&platform, &app, repo.path(), 4);
}

//! `paas builds` end to end: pushes whose Dockerfile fails make builds, not releases, so the
//! good push after them is the next release; `builds:output` shows a failed build's error and
//! a good build's whole push; `releases:output` of a deploy is its build's; `rollback` goes
//! back to releases as before.

use crate::platform::Platform;
use crate::util::{commit_files, hello_repo, wait_for};

#[test]
fn failed_builds_take_no_release_number_and_are_listed_with_their_output() {
    let platform = Platform::for_pushes();
    let app = platform.create_app("buildlist");
    let repo = hello_repo();
    let dockerfile = std::fs::read_to_string(repo.path().join("Dockerfile")).unwrap();
    platform.deploy(&app, repo.path());

    for build in [2, 3] {
        let broken = format!("FROM paas/busybox:latest\nRUN echo broken build {build} && exit 3\n");
        commit_files(repo.path(), &[("Dockerfile", &broken)], "break the build");
        let pushed = platform.push(&app, repo.path());
        assert_ne!(pushed.code, Some(0), "{pushed}");
        assert!(
            pushed
                .stderr
                .contains(&format!("remote:  !     Build {build} failed: ")),
            "{pushed}"
        );
    }
    let good = commit_files(repo.path(), &[("Dockerfile", &dockerfile)], "fix the build");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed.stderr.contains("remote: -----> Release v2 created"),
        "{pushed}"
    );

    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    let versions: Vec<(u64, &str)> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(versions, [(2, "succeeded"), (1, "succeeded")]);

    let listed = platform.paas(&["builds", "-a", &app]).success();
    let lines: Vec<&str> = listed.stdout.lines().collect();
    assert_eq!(lines[0], format!("=== {app} Builds"), "{listed}");
    let rows: Vec<Vec<&str>> = lines[1..]
        .iter()
        .map(|line| line.split_whitespace().collect())
        .collect();
    let summary: Vec<(&str, &str, &str, Option<&str>)> = rows
        .iter()
        .map(|row| (row[0], row[1], row[3], row.get(10).copied()))
        .collect();
    assert_eq!(
        summary,
        [
            ("4", "succeeded", "admin", Some("v2")),
            ("3", "failed", "admin", None),
            ("2", "failed", "admin", None),
            ("1", "succeeded", "admin", Some("v1")),
        ],
        "{listed}"
    );
    assert_eq!(rows[0][2], &good[..7], "{listed}");
    assert!(listed.stdout.contains(" UTC (~ "), "{listed}");
    let json = platform
        .paas(&["builds", "-a", &app, "-n", "2", "--json"])
        .success()
        .json();
    assert_eq!(json.as_array().unwrap().len(), 2, "{json}");
    assert_eq!(json[0]["commit"], good.as_str());
    assert_eq!(json[1]["status"], "failed");
    assert_eq!(json[1]["release"], serde_json::Value::Null);

    let failed = platform.paas(&["builds:output", "3", "-a", &app]).success();
    assert!(failed.stdout.contains("broken build 3"), "{failed}");
    assert!(
        failed.stdout.contains(" !     Build 3 failed: "),
        "{failed}"
    );
    assert!(!failed.stdout.contains('\x1b'), "{failed}");
    // The whole push's output is kept once the old release has drained, after the push.
    let newest = wait_for("the newest build's whole output", || {
        let newest = platform.paas(&["builds:output", "-a", &app]).success();
        newest
            .stdout
            .contains("Release v2 created")
            .then_some(newest)
    });
    let release = platform
        .paas(&["releases:output", "v2", "-a", &app])
        .success();
    assert_eq!(release.stdout, newest.stdout);
    platform
        .paas(&["builds:output", "9", "-a", &app])
        .error("No build 9.");

    let rolled = platform.paas(&["rollback", "-a", &app]).success();
    assert!(rolled.stderr.contains("to v1... done, v3"), "{rolled}");
    let builds = platform
        .paas(&["builds", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        builds.as_array().unwrap().len(),
        4,
        "a rollback builds nothing"
    );
}

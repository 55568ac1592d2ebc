//! `paas logs --release vN` with gitd's stored platform events: after two deploys, v1's own
//! events (its deploy, its release, what happened to its instance, the retirement included)
//! show under `--release v1`, and none of v2's nor the app-wide ones (a domain); the retired
//! instance is `stopped`, never crashed nor killed (status 137). What a retired release printed outlives
//! its container: the newest 1,500 of 2,000 lines, in order.

use crate::platform::Platform;
use crate::util::{commit_files, hello_repo, wait_for};

#[test]
fn logs_of_one_release_show_its_events_and_no_others() {
    let platform = Platform::start();
    let app = platform.create_app("relevents");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    platform
        .paas(&["domains:add", "www.relevents.test", "-a", &app])
        .success();
    commit_files(repo.path(), &[("www/v2.txt", "two\n")], "v2");
    platform.deploy(&app, repo.path());

    let logs = |args: &[&str]| {
        let args = [&["logs", "-a", app.as_str(), "-n", "1000"], args].concat();
        platform.paas(&args).success().stdout
    };
    // Once `needle` is among the release's platform events (a release's own events are
    // recorded once its rollout is over, which may be after the push returned).
    let events_of = |release: &str, needle: &str| {
        wait_for(&format!("{release}'s event {needle:?}"), || {
            let out = logs(&["-s", "paas", "--release", release]);
            out.contains(needle).then_some(out)
        })
    };
    // v1's instance is retired by the second deploy: that event is v1's too.
    let first = events_of("v1", "paas[web.1]: State changed from up to stopped");
    for expected in [
        "paas[deploy]: Release v1 created by user admin",
        "paas[web.1]: Starting process (v1)",
        "paas[web.1]: State changed from starting to up",
    ] {
        assert!(first.contains(expected), "{expected:?} in\n{first}");
    }
    // The platform stopped it: no crash, and no SIGKILL's status (SIGTERM's 143 is Heroku's
    // line too).
    for unexpected in [
        "Release v2",
        "(v2)",
        "Added domain",
        "paas[router]",
        "app[",
        "crashed",
        "exited with status 137",
    ] {
        assert!(!first.contains(unexpected), "{unexpected:?} in\n{first}");
    }

    let second = events_of("v2", "paas[deploy]: Release v2 created by user admin");
    assert!(
        second.contains("paas[web.1]: Starting process (v2)"),
        "{second}"
    );
    assert!(!second.contains("Release v1"), "{second}");
    assert!(!second.contains("(v1)"), "{second}");

    // `-p web` under a release keeps that release's instance events, not its deploy events.
    let web = logs(&["-p", "web", "--release", "v1"]);
    assert!(web.contains("paas[web.1]: Starting process (v1)"), "{web}");
    assert!(!web.contains("paas[deploy]"), "{web}");

    // Without a filter, every event is there, the app-wide ones too.
    let all = logs(&["-s", "paas"]);
    for expected in ["Release v1 created", "Release v2 created", "Added domain"] {
        assert!(all.contains(expected), "{expected:?} in\n{all}");
    }
}

/// v1's web prints `v1 line 1` to `v1 line 2000` before it serves.
const COUNTING_PROCFILE: &str = "web: i=1; while [ $i -le 2000 ]; do echo \"v1 line $i\"; i=$((i+1)); done; exec httpd -f -p ${PORT:-5000} -h /www\n";

#[test]
fn a_retired_releases_last_1500_lines_outlive_its_container_in_order() {
    let platform = Platform::for_pushes();
    let app = platform.create_app("counted");
    let repo = hello_repo();
    let original = std::fs::read_to_string(repo.path().join("Procfile")).unwrap();
    commit_files(repo.path(), &[("Procfile", COUNTING_PROCFILE)], "count");
    platform.deploy(&app, repo.path());
    let v1 = || platform.containers_of_release(&app, 1);
    assert!(!v1().is_empty(), "v1 runs");
    commit_files(repo.path(), &[("Procfile", &original)], "quiet again");
    platform.deploy(&app, repo.path());
    wait_for("v1's container to be removed", || {
        v1().is_empty().then_some(())
    });

    let out = platform
        .paas(&["logs", "-a", &app, "-n", "2000", "-s", "app"])
        .success();
    let numbers: Vec<u32> = out
        .stdout
        .lines()
        .filter_map(|line| line.split_once(" app[web.1]: v1 line ")?.1.parse().ok())
        .collect();
    assert!(
        numbers.len() >= 1500,
        "{} of v1's lines:\n{out}",
        numbers.len()
    );
    let first = 2000 - u32::try_from(numbers.len()).unwrap() + 1;
    assert_eq!(
        numbers,
        (first..=2000).collect::<Vec<_>>(),
        "v1's newest lines, in order"
    );
}

//! Cron jobs from `app.json` end to end: a job due every minute runs once per minute across
//! two deploys in its window, each run a `cron.N` one-off whose output is in `paas logs`, none
//! cut off by a deploy and none run twice; `paas cron` lists it with its last run. A push
//! whose `app.json` has a bad schedule is rejected with one line naming the key, and the old
//! release keeps serving.

use std::collections::BTreeMap;

use crate::platform::Platform;
use crate::util::{commit_files, hello_repo, wait_for};

/// Runs long enough that the pushes below happen while a run is in progress.
const APP_JSON: &str = r#"{"name":"ticker","cron":[{"command":"echo \"tick from $PAAS_RELEASE\"; sleep 15; echo tock","schedule":"* * * * *"}]}"#;

/// The minute (`14:05 UTC`) each run was due in, from the `Starting process` lines, in order.
fn due_minutes(logs: &str) -> Vec<String> {
    logs.lines()
        .filter(|line| line.contains("Starting process with command `echo"))
        .map(|line| {
            let due = line
                .split(", due ")
                .nth(1)
                .unwrap_or_else(|| panic!("{line}"));
            due.trim_end_matches(')').to_owned()
        })
        .collect()
}

fn logs(platform: &Platform, app: &str) -> String {
    platform
        .paas(&["logs", "-a", app, "-n", "1000"])
        .success()
        .stdout
}

/// Waits until `count` runs have started; their due minutes.
fn wait_for_runs(platform: &Platform, app: &str, count: usize) -> Vec<String> {
    wait_for(&format!("{count} cron runs"), || {
        let due = due_minutes(&logs(platform, app));
        (due.len() >= count).then_some(due)
    })
}

fn minutes_since_midnight(due: &str) -> u32 {
    let (hour, minute) = due.trim_end_matches(" UTC").split_once(':').unwrap();
    hour.parse::<u32>().unwrap() * 60 + minute.parse::<u32>().unwrap()
}

#[test]
fn a_job_every_minute_runs_once_per_minute_across_two_deploys() {
    let platform = Platform::start();
    let app = platform.create_app("ticker");
    let repo = hello_repo();
    commit_files(repo.path(), &[("app.json", APP_JSON)], "cron");
    platform.deploy(&app, repo.path());

    // Each push lands while a run sleeps: the deploy must neither stop it nor start the
    // minute's run again.
    wait_for_runs(&platform, &app, 1);
    commit_files(repo.path(), &[("www/v2", "2")], "second");
    platform.deploy(&app, repo.path());
    wait_for_runs(&platform, &app, 2);
    commit_files(repo.path(), &[("www/v3", "3")], "third");
    platform.deploy(&app, repo.path());
    wait_for_runs(&platform, &app, 3);

    let logs = wait_for("the third run's end", || {
        let logs = logs(&platform, &app);
        (logs.matches("Process exited with status 0").count() >= 3).then_some(logs)
    });
    let due = due_minutes(&logs);
    let mut per_minute: BTreeMap<&str, usize> = BTreeMap::new();
    for minute in &due {
        *per_minute.entry(minute).or_default() += 1;
    }
    assert!(
        per_minute.values().all(|&runs| runs == 1),
        "one run per scheduled minute: {per_minute:?}\n{logs}"
    );
    let minutes: Vec<u32> = due.iter().map(|d| minutes_since_midnight(d)).collect();
    for pair in minutes.windows(2) {
        assert_eq!(
            (pair[1] + 1440 - pair[0]) % 1440,
            1,
            "no minute missed: {due:?}"
        );
    }
    // Every run ran to its end, output and all, though two deploys happened meanwhile.
    for expected in ["tick from v", "tock"] {
        let runs = logs
            .lines()
            .filter(|line| line.contains("[cron.") && line.contains(expected))
            .count();
        assert!(runs >= 3, "{expected:?} from every run:\n{logs}");
    }
    assert!(!logs.contains("Lost track"), "{logs}");
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(releases[0]["version"], 3, "{releases}");

    let listed = platform.paas(&["cron", "-a", &app]).success();
    assert!(listed.stdout.contains("* * * * *"), "{listed}");
    assert!(listed.stdout.contains("UTC"), "{listed}");
    let jobs = platform
        .paas(&["cron", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(jobs.as_array().unwrap().len(), 1, "{jobs}");
    assert!(jobs[0]["next_run"].is_string(), "{jobs}");
    assert!(jobs[0]["last_run"]["status"].is_string(), "{jobs}");
}

#[test]
fn a_bad_schedule_rejects_the_push_and_the_old_release_keeps_serving() {
    let platform = Platform::start();
    let app = platform.create_app("badcron");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    let bad = r#"{"cron":[{"command":"echo hi","schedule":"61 * * * *"}]}"#;
    commit_files(repo.path(), &[("app.json", bad)], "bad cron");
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    let line = pushed
        .stderr
        .lines()
        .find(|line| line.contains("app.json: cron[0].schedule"))
        .unwrap_or_else(|| panic!("{pushed}"));
    assert!(line.contains("minute 61 is outside 0-59"), "{line}");
    assert!(pushed.stderr.contains("was not deployed"), "{pushed}");
    let answer = platform.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{answer:?}"
    );
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        releases.as_array().unwrap().len(),
        1,
        "no release was made: {releases}"
    );
    let listed = platform.paas(&["cron", "-a", &app]).success();
    assert!(listed.stdout.contains("No cron jobs"), "{listed}");
}

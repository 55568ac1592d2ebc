//! The release phase against the fake agent: a Procfile's `release` command runs once per
//! release (push, config change, rollback), with the release's image and config, before the
//! release is handed to the agent; it is never a process type; a failing, timed-out or
//! cancelled command fails the release and nothing switches.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::util::{Call, OneOff, TestGitd, eventually};

const PROCFILE: &str = "web: httpd\nrelease: ./migrate --all\n";

/// The index of the first call matching `wanted`.
fn position(calls: &[Call], wanted: impl Fn(&Call) -> bool) -> usize {
    calls
        .iter()
        .position(wanted)
        .unwrap_or_else(|| panic!("no such call in {calls:?}"))
}

/// That the one-off of `release` came before its rollout.
fn ran_before_rollout(gitd: &TestGitd, app: &str, release: u32) {
    let calls = gitd.agent.calls();
    let oneoff = position(
        &calls,
        |call| matches!(call, Call::OneOff(name, spec) if name == app && spec.release == release),
    );
    let rollout = position(
        &calls,
        |call| matches!(call, Call::PutApp(name, spec) if name == app && spec.release == release),
    );
    assert!(oneoff < rollout, "{calls:?}");
}

#[tokio::test]
async fn the_release_command_runs_once_per_release_before_it_goes_live() {
    let gitd = TestGitd::deployed("migr").await;
    assert!(gitd.agent.oneoff_specs("migr").is_empty(), "v1 has none");
    gitd.agent.script_oneoff(OneOff::Exit {
        lines: vec!["Migrating to 42".to_owned()],
        status: 0,
    });
    let pushed = gitd.push("migr", &[("Procfile", PROCFILE)]).await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    let text = pushed.lines.join("\n");
    for expected in [
        "-----> Running release command: ./migrate --all",
        "       Migrating to 42",
        "-----> Release command succeeded",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    ran_before_rollout(&gitd, "migr", 2);
    let v2 = gitd.agent.oneoff_specs("migr").pop().unwrap();
    assert_eq!(v2.command, "./migrate --all");
    assert_eq!(v2.image, "paas/migr:v2");
    assert_eq!(v2.timeout_secs, 300);
    let spec = gitd.agent.put_specs("migr").pop().unwrap();
    assert!(
        !spec.processes.contains_key("release"),
        "release is no process type: {spec:?}"
    );

    // A config change runs it again, with the new config and the same image.
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/migr/config",
            Some(json!({"vars": {"DATABASE_URL": "postgres://db"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ran_before_rollout(&gitd, "migr", 3);
    let v3 = gitd.agent.oneoff_specs("migr").pop().unwrap();
    assert_eq!(
        (v3.image.as_str(), v3.env["DATABASE_URL"].as_str()),
        ("paas/migr:v2", "postgres://db")
    );

    // So does a rollback, with the rolled-back-to release's image and config.
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/migr/rollback",
            Some(json!({"version": 2})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    ran_before_rollout(&gitd, "migr", 4);
    let specs = gitd.agent.oneoff_specs("migr");
    let releases: Vec<u32> = specs.iter().map(|spec| spec.release).collect();
    assert_eq!(releases, [2, 3, 4], "exactly once per release");
    assert!(!specs[2].env.contains_key("DATABASE_URL"));

    // Never in the formation, and not scalable.
    let (status, formation) = gitd.api(Method::GET, "/v1/apps/migr/formation", None).await;
    assert_eq!(status, 200, "{formation}");
    let types: Vec<&str> = formation
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["process"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["web"]);
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/migr/formation",
            Some(json!({"changes": ["release=1"]})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("cannot be scaled"), "{message}");

    let events = gitd.events("migr").await;
    for expected in [
        "release.1: Migrating to 42",
        "release.1: Process exited with status 0",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected:?}: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_release_command_rejects_the_push_and_nothing_switches() {
    let gitd = TestGitd::deployed("fails").await;
    gitd.agent.script_oneoff(OneOff::Exit {
        lines: vec!["ERROR: relation \"users\" does not exist".to_owned()],
        status: 3,
    });
    let pushed = gitd.push("fails", &[("Procfile", PROCFILE)]).await;
    assert!(!pushed.accepted, "{:?}", pushed.lines);
    let text = pushed.lines.join("\n");
    for expected in [
        "       ERROR: relation \"users\" does not exist",
        " !     Release v2 failed in the release phase: the release command exited with status 3",
        " !     Push rejected: fails was not deployed and its branch was not updated",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert!(
        gitd.agent.put_specs("fails").iter().all(|s| s.release == 1),
        "v2 was never handed to the agent"
    );
    assert_eq!(
        gitd.statuses("fails").await,
        [(1, "succeeded".to_owned()), (2, "failed".to_owned())]
    );
    let (_, info) = gitd.api(Method::GET, "/v1/apps/fails", None).await;
    assert_eq!(info["current_release"], 1, "{info}");
    assert!(gitd.output("fails", 2).await.contains("does not exist"));

    // A config change whose release command fails leaves the config as it was, and says why
    // with the command's last lines.
    assert!(gitd.push("fails", &[("Procfile", PROCFILE)]).await.accepted);
    gitd.agent.script_oneoff(OneOff::Exit {
        lines: vec!["cannot connect".to_owned()],
        status: 1,
    });
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/fails/config",
            Some(json!({"vars": {"DATABASE_URL": "postgres://wrong"}})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("the config vars were not changed") && message.contains("cannot connect"),
        "{message}"
    );
    assert!(gitd.config("fails").await.is_empty());
}

#[tokio::test]
async fn a_release_command_past_its_timeout_fails_the_release() {
    let gitd = TestGitd::deployed("slow").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/slow/config",
            Some(json!({"vars": {"PAAS_RELEASE_TIMEOUT": "1"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    gitd.agent.script_oneoff(OneOff::RunPastTimeout);
    let pushed = gitd.push("slow", &[("Procfile", PROCFILE)]).await;
    assert!(!pushed.accepted, "{:?}", pushed.lines);
    let text = pushed.lines.join("\n");
    assert!(
        text.contains("the release command ran longer than 1 s and was stopped"),
        "{text}"
    );
    assert_eq!(
        gitd.agent.oneoff_specs("slow").pop().unwrap().timeout_secs,
        1
    );
    let (_, info) = gitd.api(Method::GET, "/v1/apps/slow", None).await;
    assert_eq!(info["current_release"], 2, "{info}");

    // A timeout that is not a number of seconds is refused, and changes nothing.
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/slow/config",
            Some(json!({"vars": {"PAAS_RELEASE_TIMEOUT": "forever"}})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(gitd.config("slow").await["PAAS_RELEASE_TIMEOUT"], "1");
}

#[tokio::test]
async fn a_pusher_who_leaves_during_the_release_phase_stops_it_and_nothing_switches() {
    let gitd = TestGitd::deployed("left").await;
    gitd.agent.script_oneoff(OneOff::Hang);
    let pushing = gitd.push("left", &[("Procfile", PROCFILE)]);
    // The pusher leaves once the release command is running.
    let left = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::select! {
            pushed = pushing => panic!("the push ended: {:?}", pushed.lines),
            () = eventually("the release command to run", || async {
                (gitd.agent.oneoff_specs("left").len() == 1).then_some(())
            }) => {}
        }
    });
    left.await.unwrap();
    eventually("the agent to be hung up on", || async {
        (gitd.agent.oneoffs_abandoned() == 1).then_some(())
    })
    .await;
    let statuses = eventually("v2 to fail", || async {
        let statuses = gitd.statuses("left").await;
        (statuses.last().is_some_and(|(_, s)| s == "failed")).then_some(statuses)
    })
    .await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    assert!(gitd.agent.put_specs("left").iter().all(|s| s.release == 1));
    assert!(
        gitd.output("left", 2)
            .await
            .contains("the push was cancelled during the release phase"),
    );
}

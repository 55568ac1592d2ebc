//! Each lifecycle path of `ops/` against the fake agent: a push, config set/unset, rollback,
//! scale, restart and domains; a requester that goes away mid-rollout; an agent that refuses
//! or fails the rollout; and a second change waiting for the first one's drain.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;

use crate::util::{Call, Gate, Rollout, TestGitd, eventually};

fn ok(status: u16, body: &serde_json::Value) {
    assert!((200..300).contains(&status), "{status} {body}");
}

/// Release statuses as [`TestGitd::statuses`] lists them.
fn statuses(pairs: &[(u64, &str)]) -> Vec<(u64, String)> {
    pairs
        .iter()
        .map(|(version, status)| (*version, (*status).to_owned()))
        .collect()
}

#[tokio::test]
async fn a_push_builds_rolls_out_records_and_prunes() {
    let gitd = TestGitd::deployed("hello").await;
    let pushed = gitd
        .push("hello", &[("Procfile", "web: httpd\nworker: work\n")])
        .await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    let last = &pushed.lines[pushed.lines.len() - 2..];
    assert_eq!(last[0], "-----> Release v2 created", "{:?}", pushed.lines);
    assert!(
        last[1].starts_with("=====> Application deployed: http"),
        "{last:?}"
    );
    assert_eq!(
        gitd.statuses("hello").await,
        statuses(&[(1, "succeeded"), (2, "succeeded")])
    );

    let v2 = gitd.agent.last_spec("hello");
    assert_eq!((v2.release, v2.image.as_str()), (2, "paas/hello:v2"));
    assert_eq!(v2.processes["web"].quantity, 1);
    assert_eq!(v2.processes["worker"].quantity, 0);
    let calls = gitd.agent.calls();
    assert!(
        calls.iter().any(
            |call| matches!(call, Call::Build(spec) if spec.app == "hello" && spec.release == 2)
        ),
        "{calls:?}"
    );
    assert!(
        calls.iter().any(|call| matches!(call, Call::Prune(app, keep) if app == "hello" && keep.contains(&"paas/hello:v2".to_owned()))),
        "{calls:?}"
    );
    // The output and events are recorded after the drain, which goes on after the answer.
    let output = eventually("v2's output", || async {
        let (status, body) = gitd
            .api(Method::GET, "/v1/apps/hello/releases/v2/output", None)
            .await;
        (status == 200 && body["output"].as_str()?.contains("Stopped web.1")).then_some(body)
    })
    .await;
    let output = output["output"].as_str().unwrap();
    assert!(output.contains("Release v2 created"), "{output}");
    let events = eventually("the deploy events", || async {
        let events = gitd.events("hello").await;
        events
            .iter()
            .any(|e| e == "deploy: Release v2 created by user admin")
            .then_some(events)
    })
    .await;
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("deploy: Deploy ") && e.ends_with(" by user admin")),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_push_the_agent_fails_is_rejected_and_the_old_release_stays_current() {
    let gitd = TestGitd::deployed("broken").await;
    gitd.agent
        .fail_next("web.1 exited with code 3", &["fatal: no database"]);
    let pushed = gitd.push("broken", &[("Procfile", "web: exit 3\n")]).await;
    assert!(!pushed.accepted, "{:?}", pushed.lines);
    let text = pushed.lines.join("\n");
    for expected in [
        "       fatal: no database",
        " !     Release v2 failed to start: web.1 exited with code 3",
        " !     Push rejected: broken was not deployed and its branch was not updated",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert_eq!(
        gitd.statuses("broken").await,
        statuses(&[(1, "succeeded"), (2, "failed")])
    );
    assert_eq!(gitd.info("broken").await["current_release"], 1);
    assert!(
        gitd.output("broken", 2)
            .await
            .contains("fatal: no database")
    );
}

#[tokio::test]
async fn config_set_and_unset_make_releases_that_go_live() {
    let gitd = TestGitd::deployed("conf").await;
    let (status, body) = gitd
        .set_config("conf", json!({"GREETING": "hi", "OTHER": "x"}))
        .await;
    ok(status, &body);
    assert_eq!(body["release"]["version"], 2);
    assert_eq!(body["release"]["status"], "succeeded");
    let v2 = gitd.agent.last_spec("conf");
    assert_eq!((v2.release, v2.image.as_str()), (2, "paas/conf:v1"));
    assert_eq!(v2.env["GREETING"], "hi");

    let (status, body) = gitd.set_config("conf", json!({"OTHER": null})).await;
    ok(status, &body);
    let config = gitd.config("conf").await;
    assert_eq!(
        config,
        [("GREETING".parse().unwrap(), "hi".to_owned())].into()
    );
    let v3 = gitd.agent.last_spec("conf");
    assert!(!v3.env.contains_key("OTHER"), "{v3:?}");
    // Answered after the drain: output and events are there already; config changes prune.
    assert!(gitd.output("conf", 3).await.contains("Stopped web.1"));
    gitd.assert_events(
        "conf",
        &[
            "config: Set GREETING, OTHER config vars by user admin: release v2",
            "config: Unset OTHER config vars by user admin: release v3",
        ],
    )
    .await;
    let prunes = gitd
        .agent
        .calls()
        .into_iter()
        .filter(|call| matches!(call, Call::Prune(..)))
        .count();
    assert_eq!(prunes, 3, "one per live release");
}

#[tokio::test]
async fn a_config_change_that_changes_nothing_makes_no_release() {
    let gitd = TestGitd::deployed("same").await;
    let (status, body) = gitd.set_config("same", json!({"GREETING": "hi"})).await;
    ok(status, &body);
    let specs = gitd.agent.put_specs("same").len();

    for unchanged in [
        json!({"NOPE": null}),
        json!({"GREETING": "hi", "NOPE": null}),
    ] {
        let (status, body) = gitd.set_config("same", unchanged.clone()).await;
        ok(status, &body);
        assert!(body["release"].is_null(), "{unchanged}: {body}");
        assert_eq!(body["vars"], json!({"GREETING": "hi"}));
    }
    assert_eq!(
        gitd.agent.put_specs("same").len(),
        specs,
        "nothing rolled out"
    );
    assert_eq!(gitd.releases("same").await.len(), 2, "v1 and v2 only");
    // A bad value is still refused, even beside keys that change nothing.
    let (status, _) = gitd
        .set_config("same", json!({"GREETING": "hi", "BAD": "a\u{0}b"}))
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_config_change_the_agent_fails_changes_nothing() {
    let gitd = TestGitd::deployed("stays").await;
    gitd.agent.fail_next("web.1 did not become healthy", &[]);
    let (status, body) = gitd.set_config("stays", json!({"GREETING": "hi"})).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "deploy_failed", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Release v2 failed to start; the config vars were not changed: web.1 did not become healthy"
    );
    assert!(gitd.config("stays").await.is_empty());
    assert_eq!(
        gitd.statuses("stays").await,
        statuses(&[(1, "succeeded"), (2, "failed")])
    );
    let info = gitd.info("stays").await;
    assert_eq!(info["current_release"], 1, "{info}");
    assert_eq!(info["formation"]["web"], 1, "{info}");
}

#[tokio::test]
async fn rollback_goes_live_with_the_old_image_and_config_or_changes_nothing() {
    let gitd = TestGitd::deployed("undo").await;
    let (status, body) = gitd.set_config("undo", json!({"GREETING": "hi"})).await;
    ok(status, &body);
    assert!(gitd.push("undo", &[("x", "2")]).await.accepted);

    // Refused by the agent: a failed release, v3 still current, config as it was.
    gitd.agent
        .script(Rollout::Refuse("no such image".to_owned()));
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/undo/rollback",
            Some(json!({"version": 1})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("Rollback to v1 failed (release v4); the app keeps running as before"),
        "{message}"
    );
    assert_eq!(gitd.info("undo").await["current_release"], 3);
    assert_eq!(gitd.config("undo").await["GREETING"], "hi");

    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/undo/rollback",
            Some(json!({"version": 1})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body["version"], 5);
    assert_eq!(body["description"], "Rollback to v1");
    let v5 = gitd.agent.last_spec("undo");
    assert_eq!((v5.release, v5.image.as_str()), (5, "paas/undo:v1"));
    assert!(gitd.config("undo").await.is_empty(), "v1's config is back");
    assert!(gitd.output("undo", 5).await.contains("Starting web.1"));
    gitd.assert_events(
        "undo",
        &[
            "rollback: Rollback to v1 failed: Rollback to v1 failed (release v4); the app keeps running as before: the agent refused the request: no such image",
            "rollback: Rollback to v1 by user admin: release v5",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_requester_that_goes_away_mid_rollout_does_not_stop_the_release() {
    let gitd = TestGitd::deployed("gone").await;
    let gate = Arc::new(Gate::default());
    gitd.agent.script(Rollout::HoldBeforeServing(gate.clone()));
    let request = gitd.send_in_background(
        Method::PATCH,
        "/v1/apps/gone/config",
        json!({"vars": {"GREETING": "hi"}}),
    );
    gate.reached().await;
    request.abort();
    let _ = request.await;
    gate.open();
    eventually("v2 to go live without its requester", || async {
        let statuses = gitd.statuses("gone").await;
        (statuses.last() == Some(&(2, "succeeded".to_owned()))).then_some(())
    })
    .await;
    assert_eq!(gitd.config("gone").await["GREETING"], "hi");
    assert_eq!(gitd.agent.serving("gone").unwrap().release, 2);
    eventually("v2's output", || async {
        let (status, _) = gitd
            .api(Method::GET, "/v1/apps/gone/releases/v2/output", None)
            .await;
        (status == 200).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_push_answers_at_serving_and_the_next_change_waits_for_its_drain() {
    let gitd = TestGitd::deployed("drain").await;
    let gate = Arc::new(Gate::default());
    gitd.agent.script(Rollout::HoldAfterServing(gate.clone()));
    let pushed = gitd.push("drain", &[("x", "2")]).await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    gate.reached().await;
    // Answered while the old release drains: v2 is current, the app's lock still held.
    assert_eq!(gitd.info("drain").await["current_release"], 2);
    assert!(gitd.server.state().app_locks.try_acquire("drain").is_none());

    let scale = gitd.send_in_background(
        Method::PATCH,
        "/v1/apps/drain/formation",
        json!({"changes": ["web=2"]}),
    );
    gate.open();
    assert_eq!(scale.await.unwrap().unwrap().status(), 200);
    let specs = gitd.agent.put_specs("drain");
    let releases: Vec<(u32, u32)> = specs
        .iter()
        .map(|spec| (spec.release, spec.processes["web"].quantity))
        .collect();
    assert_eq!(
        releases,
        [(1, 1), (2, 1), (2, 2)],
        "the scale came after the drain"
    );
    assert!(gitd.output("drain", 2).await.contains("Stopped web.1"));
}

#[tokio::test]
async fn scale_and_restart_go_through_the_agent_and_are_recorded() {
    let gitd = TestGitd::deployed("procs").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/procs/formation",
            Some(json!({"changes": ["web=3"]})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body[0]["quantity"], 3, "{body}");
    assert_eq!(gitd.agent.last_spec("procs").processes["web"].quantity, 3);

    gitd.agent.fail_next("web.4 exited", &[]);
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/procs/formation",
            Some(json!({"changes": ["web+1"]})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["message"], "Scaling failed: web.4 exited");
    let (_, formation) = gitd
        .api(Method::GET, "/v1/apps/procs/formation", None)
        .await;
    assert_eq!(formation[0]["quantity"], 3, "unchanged: {formation}");

    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/procs/restart",
            Some(json!({"process": "web"})),
        )
        .await;
    ok(status, &body);
    assert!(
        gitd.agent.calls().iter().any(|call| matches!(call, Call::Restart(app, r) if app == "procs" && r.process.as_deref() == Some("web"))),
    );
    gitd.assert_events(
        "procs",
        &[
            "scale: Scaled to web@3 by user admin",
            "restart: Restarted web by user admin",
        ],
    )
    .await;
    assert_eq!(gitd.statuses("procs").await.len(), 1, "no release was made");
}

#[tokio::test]
async fn domains_are_routed_through_the_agent_or_undone() {
    let gitd = TestGitd::deployed("named").await;
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/named/domains",
            Some(json!({"hostname": "www.example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(gitd.agent.last_spec("named").domains, ["www.example.com"]);

    gitd.agent.fail_next("Traefik did not route", &[]);
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/named/domains",
            Some(json!({"hostname": "api.example.com"})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let (_, listed) = gitd.api(Method::GET, "/v1/apps/named/domains", None).await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hostname"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["www.example.com"], "the failed one was undone");

    let (status, body) = gitd
        .api(
            Method::DELETE,
            "/v1/apps/named/domains/www.example.com",
            None,
        )
        .await;
    assert_eq!(status, 204, "{body}");
    assert!(gitd.agent.last_spec("named").domains.is_empty());
    gitd.assert_events(
        "named",
        &[
            "domains: Added domain www.example.com by user admin",
            "domains: Removed domain www.example.com by user admin",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_resize_is_a_release_that_later_deploys_keep_and_a_rollback_undoes() {
    let gitd = TestGitd::deployed("sized").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/sized/resources",
            Some(json!({"process": "web", "memory": "256M", "cpus": "0.5"})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body["version"], 2);
    assert_eq!(body["description"], "Resize web to 256M, 0.5 CPU");
    let v2 = gitd.agent.put_specs("sized").pop().unwrap();
    let web = &v2.processes["web"].resources;
    assert_eq!(
        (web.memory.unwrap().mb(), web.cpus.unwrap().millis()),
        (256, 500)
    );
    let (_, ps) = gitd.api(Method::GET, "/v1/apps/sized/ps", None).await;
    assert_eq!(
        (ps[0]["memory"].as_str(), ps[0]["cpus"].as_str()),
        (Some("256M"), Some("0.5"))
    );

    // Only the memory: the CPUs stay; a push keeps both.
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/sized/resources",
            Some(json!({"process": "web", "memory": "1G"})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body["description"], "Resize web to 1G, 0.5 CPU");
    assert!(gitd.push("sized", &[("x", "2")]).await.accepted);
    let v4 = gitd.agent.put_specs("sized").pop().unwrap();
    assert_eq!(v4.release, 4);
    assert_eq!(v4.processes["web"].resources.memory.unwrap().mb(), 1024);
    let (_, sizes) = gitd
        .api(Method::GET, "/v1/apps/sized/resources", None)
        .await;
    assert_eq!(
        sizes,
        json!([{"process": "web", "memory": "1G", "cpus": "0.5"}])
    );

    // A rollback to v2 brings v2's sizes back.
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/sized/rollback",
            Some(json!({"version": 2})),
        )
        .await;
    ok(status, &body);
    let v5 = gitd.agent.put_specs("sized").pop().unwrap();
    assert_eq!(v5.processes["web"].resources.memory.unwrap().mb(), 256);

    // Refused before anything: an unknown type, no sizes, a bad size. The agent's refusal
    // (above its maximum) is a failed release, and v5 stays current.
    let puts = gitd.agent.put_specs("sized").len();
    for (request, expected) in [
        (
            json!({"process": "worker", "memory": "256M"}),
            "unknown process type \"worker\"; this app has: web",
        ),
        (json!({"process": "web"}), "nothing to resize"),
        (
            json!({"process": "web", "memory": "5M"}),
            "invalid memory size \"5M\"",
        ),
    ] {
        let (status, body) = gitd
            .api(Method::PATCH, "/v1/apps/sized/resources", Some(request))
            .await;
        assert_eq!(status, 400, "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    assert_eq!(gitd.agent.put_specs("sized").len(), puts);
    gitd.agent.script(Rollout::Refuse(
        "web: memory 8G is above this host's maximum of 4G".to_owned(),
    ));
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/sized/resources",
            Some(json!({"process": "web", "memory": "8G"})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.ends_with("the app keeps running with its old sizes: the agent refused the request: web: memory 8G is above this host's maximum of 4G"),
        "{message}"
    );
    let (_, info) = gitd.api(Method::GET, "/v1/apps/sized", None).await;
    assert_eq!(info["current_release"], 5, "{info}");
}

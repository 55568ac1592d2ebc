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

/// An app with v1 deployed.
async fn deployed(name: &str) -> TestGitd {
    let gitd = TestGitd::start().await;
    gitd.create_app(name).await;
    let pushed = gitd.push(name, &[]).await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    gitd
}

#[tokio::test]
async fn a_push_builds_rolls_out_records_and_prunes() {
    let gitd = deployed("hello").await;
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
        [(1, "succeeded".to_owned()), (2, "succeeded".to_owned())]
    );

    let specs = gitd.agent.put_specs("hello");
    let v2 = specs.last().unwrap();
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
    let gitd = deployed("broken").await;
    gitd.agent.script(Rollout::Fail {
        reason: "web.1 exited with code 3".to_owned(),
        logs: vec!["fatal: no database".to_owned()],
    });
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
        [(1, "succeeded".to_owned()), (2, "failed".to_owned())]
    );
    let (_, info) = gitd.api(Method::GET, "/v1/apps/broken", None).await;
    assert_eq!(info["current_release"], 1, "{info}");
    assert!(
        gitd.output("broken", 2)
            .await
            .contains("fatal: no database")
    );
}

#[tokio::test]
async fn config_set_and_unset_make_releases_that_go_live() {
    let gitd = deployed("conf").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/conf/config",
            Some(json!({"vars": {"GREETING": "hi", "OTHER": "x"}})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body["release"]["version"], 2);
    assert_eq!(body["release"]["status"], "succeeded");
    let v2 = gitd.agent.put_specs("conf").pop().unwrap();
    assert_eq!((v2.release, v2.image.as_str()), (2, "paas/conf:v1"));
    assert_eq!(v2.env["GREETING"], "hi");

    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/conf/config",
            Some(json!({"vars": {"OTHER": null}})),
        )
        .await;
    ok(status, &body);
    let config = gitd.config("conf").await;
    assert_eq!(config, [("GREETING".to_owned(), "hi".to_owned())].into());
    let v3 = gitd.agent.put_specs("conf").pop().unwrap();
    assert!(!v3.env.contains_key("OTHER"), "{v3:?}");
    // Answered after the drain: output and events are there already; config changes prune.
    assert!(gitd.output("conf", 3).await.contains("Stopped web.1"));
    let events = gitd.events("conf").await;
    for expected in [
        "config: Set GREETING, OTHER config vars by user admin: release v2",
        "config: Unset OTHER config vars by user admin: release v3",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected:?}: {events:?}"
        );
    }
    let prunes = gitd
        .agent
        .calls()
        .into_iter()
        .filter(|call| matches!(call, Call::Prune(..)))
        .count();
    assert_eq!(prunes, 3, "one per live release");
}

#[tokio::test]
async fn a_config_change_the_agent_fails_changes_nothing() {
    let gitd = deployed("stays").await;
    gitd.agent.script(Rollout::Fail {
        reason: "web.1 did not become healthy".to_owned(),
        logs: vec![],
    });
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/stays/config",
            Some(json!({"vars": {"GREETING": "hi"}})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "deploy_failed", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Release v2 failed to start; the config vars were not changed: web.1 did not become healthy"
    );
    assert!(gitd.config("stays").await.is_empty());
    assert_eq!(
        gitd.statuses("stays").await,
        [(1, "succeeded".to_owned()), (2, "failed".to_owned())]
    );
    let (_, info) = gitd.api(Method::GET, "/v1/apps/stays", None).await;
    assert_eq!(info["current_release"], 1, "{info}");
    assert_eq!(info["formation"]["web"], 1, "{info}");
}

#[tokio::test]
async fn rollback_goes_live_with_the_old_image_and_config_or_changes_nothing() {
    let gitd = deployed("undo").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/undo/config",
            Some(json!({"vars": {"GREETING": "hi"}})),
        )
        .await;
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
    let (_, info) = gitd.api(Method::GET, "/v1/apps/undo", None).await;
    assert_eq!(info["current_release"], 3, "{info}");
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
    let v5 = gitd.agent.put_specs("undo").pop().unwrap();
    assert_eq!((v5.release, v5.image.as_str()), (5, "paas/undo:v1"));
    assert!(gitd.config("undo").await.is_empty(), "v1's config is back");
    assert!(gitd.output("undo", 5).await.contains("Starting web.1"));
    let events = gitd.events("undo").await;
    for expected in [
        "rollback: Rollback to v1 failed: Rollback to v1 failed (release v4); the app keeps running as before: the agent refused the request: no such image",
        "rollback: Rollback to v1 by user admin: release v5",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected:?}: {events:?}"
        );
    }
}

#[tokio::test]
async fn a_requester_that_goes_away_mid_rollout_does_not_stop_the_release() {
    let gitd = deployed("gone").await;
    let gate = Arc::new(Gate::default());
    gitd.agent.script(Rollout::HoldBeforeServing(gate.clone()));
    let request = {
        let (url, token) = (gitd.url.clone(), gitd.token.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .patch(format!("{url}/v1/apps/gone/config"))
                .bearer_auth(token)
                .json(&json!({"vars": {"GREETING": "hi"}}))
                .send()
                .await
        })
    };
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
    let gitd = deployed("drain").await;
    let gate = Arc::new(Gate::default());
    gitd.agent.script(Rollout::HoldAfterServing(gate.clone()));
    let pushed = gitd.push("drain", &[("x", "2")]).await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    gate.reached().await;
    // Answered while the old release drains: v2 is current, the app's lock still held.
    let (_, info) = gitd.api(Method::GET, "/v1/apps/drain", None).await;
    assert_eq!(info["current_release"], 2, "{info}");
    assert!(gitd.server.state().app_locks.try_acquire("drain").is_none());

    let scale = {
        let (url, token) = (gitd.url.clone(), gitd.token.clone());
        tokio::spawn(async move {
            reqwest::Client::new()
                .patch(format!("{url}/v1/apps/drain/formation"))
                .bearer_auth(token)
                .json(&json!({"changes": ["web=2"]}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    gate.open();
    assert_eq!(scale.await.unwrap(), 200);
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
    let gitd = deployed("procs").await;
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/procs/formation",
            Some(json!({"changes": ["web=3"]})),
        )
        .await;
    ok(status, &body);
    assert_eq!(body[0]["quantity"], 3, "{body}");
    assert_eq!(
        gitd.agent.put_specs("procs").pop().unwrap().processes["web"].quantity,
        3
    );

    gitd.agent.script(Rollout::Fail {
        reason: "web.4 exited".to_owned(),
        logs: vec![],
    });
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
    let events = gitd.events("procs").await;
    for expected in [
        "scale: Scaled to web@3 by user admin",
        "restart: Restarted web by user admin",
    ] {
        assert!(
            events.iter().any(|e| e == expected),
            "{expected:?}: {events:?}"
        );
    }
    assert_eq!(gitd.statuses("procs").await.len(), 1, "no release was made");
}

#[tokio::test]
async fn domains_are_routed_through_the_agent_or_undone() {
    let gitd = deployed("named").await;
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/named/domains",
            Some(json!({"hostname": "www.example.com"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        gitd.agent.put_specs("named").pop().unwrap().domains,
        ["www.example.com"]
    );

    gitd.agent.script(Rollout::Fail {
        reason: "Traefik did not route".to_owned(),
        logs: vec![],
    });
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
    assert!(
        gitd.agent
            .put_specs("named")
            .pop()
            .unwrap()
            .domains
            .is_empty()
    );
    let events = gitd.events("named").await;
    assert!(
        events
            .iter()
            .any(|e| e == "domains: Added domain www.example.com by user admin"),
        "{events:?}"
    );
    assert!(
        events
            .iter()
            .any(|e| e == "domains: Removed domain www.example.com by user admin"),
        "{events:?}"
    );
}

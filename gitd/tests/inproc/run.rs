//! `run:detached` against the fake agent: a one-off of the current release with the run's own
//! vars, answered `run.N` once it runs, its output and exit status in the app's logs; refused
//! with no command or before the first deploy.

use paas_api::oneoff::OneOffKind;
use reqwest::Method;
use serde_json::json;

use crate::util::{TestGitd, eventually};

#[tokio::test]
async fn a_detached_run_starts_in_the_current_release_and_logs_as_run_n() {
    let gitd = TestGitd::start().await;
    gitd.create_app("runs").await;
    let run = json!({"command": ["echo", "hi", "$WHO"], "env": {"WHO": "me"}});
    let (status, body) = gitd
        .api(
            Method::POST,
            "/v1/apps/runs/run/detached",
            Some(run.clone()),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deploy it first"),
        "{body}"
    );

    assert!(gitd.push("runs", &[]).await.accepted);
    let (status, body) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/runs/config",
            Some(json!({"vars": {"DATABASE_URL": "postgres://db"}})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = gitd
        .api(Method::POST, "/v1/apps/runs/run/detached", Some(run))
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body, json!({"name": "run.1", "release": 2}));
    let spec = gitd.agent.oneoff_specs("runs").pop().unwrap();
    assert_eq!(spec.kind, OneOffKind::Run);
    assert_eq!(spec.command, "echo hi $WHO");
    assert_eq!(spec.image, "paas/runs:v1");
    assert_eq!(spec.env["WHO"], "me");
    assert_eq!(spec.env["DATABASE_URL"], "postgres://db");
    let events = eventually("the run's output and end", || async {
        let events = gitd.events("runs").await;
        events
            .iter()
            .any(|e| e == "run.1: Process exited with status 0")
            .then_some(events)
    })
    .await;
    assert!(
        events.iter().any(|e| e == "run.1: echo hi $WHO done"),
        "{events:?}"
    );

    for bad in [json!({"command": []}), json!({"command": ["  "]})] {
        let (status, body) = gitd
            .api(Method::POST, "/v1/apps/runs/run/detached", Some(bad))
            .await;
        assert_eq!(status, 400, "{body}");
    }
    assert_eq!(gitd.agent.oneoff_specs("runs").len(), 1);
}

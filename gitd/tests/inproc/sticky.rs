//! `ps:sticky` through gitd's ops: the setting reaches the agent in a rollout of the running
//! release (no new release), is stored once that succeeded, and is put back when it fails.

use reqwest::Method;
use serde_json::json;

use crate::util::TestGitd;

#[tokio::test]
async fn sticky_sessions_roll_the_current_release_out_and_are_kept_only_if_it_serves() {
    let gitd = TestGitd::deployed("sticky").await;
    let shown = gitd.api(Method::GET, "/v1/apps/sticky/sticky", None).await;
    assert_eq!(shown, (200, json!({"enabled": false})));
    assert!(!gitd.agent.last_spec("sticky").sticky_sessions);

    let on = gitd
        .api(
            Method::PUT,
            "/v1/apps/sticky/sticky",
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(on, (200, json!({"enabled": true})));
    let spec = gitd.agent.last_spec("sticky");
    assert!(spec.sticky_sessions);
    assert_eq!(spec.release, 1, "no new release");
    assert_eq!(gitd.releases("sticky").await.len(), 1);

    gitd.agent.fail_next("web.1 did not become healthy", &[]);
    let (status, body) = gitd
        .api(
            Method::PUT,
            "/v1/apps/sticky/sticky",
            Some(json!({"enabled": false})),
        )
        .await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Turning sticky sessions off failed; nothing was changed: web.1 did not become healthy"
    );
    let shown = gitd.api(Method::GET, "/v1/apps/sticky/sticky", None).await;
    assert_eq!(shown, (200, json!({"enabled": true})));
    // Later rollouts keep what is stored.
    let (status, _) = gitd.set_config("sticky", json!({"GREETING": "hi"})).await;
    assert_eq!(status, 200);
    assert!(gitd.agent.last_spec("sticky").sticky_sessions);
}

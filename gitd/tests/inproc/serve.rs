//! gitd as a library: served in-process, it answers its API and reaches its agent.

use reqwest::Method;

use crate::util::{Call, TestGitd};

#[tokio::test]
async fn serve_answers_the_api_and_reaches_the_agent() {
    let gitd = TestGitd::start().await;
    let (status, whoami) = gitd.api(Method::GET, "/v1/whoami", None).await;
    assert_eq!(status, 200, "{whoami}");
    assert_eq!(whoami["username"], "admin");

    gitd.create_app("first").await;
    let (status, ps) = gitd.api(Method::GET, "/v1/apps/first/ps", None).await;
    assert_eq!(status, 200, "{ps}");
    assert_eq!(ps, serde_json::json!([]));

    // Before the first deploy a config change is only recorded: nothing reaches the agent.
    let (status, set) = gitd
        .api(
            Method::PATCH,
            "/v1/apps/first/config",
            Some(serde_json::json!({"vars": {"GREETING": "hi"}})),
        )
        .await;
    assert_eq!(status, 200, "{set}");
    assert_eq!(gitd.statuses("first").await, [(1, "succeeded".to_owned())]);
    assert!(
        !gitd
            .agent
            .calls()
            .iter()
            .any(|call| matches!(call, Call::PutApp(..))),
        "{:?}",
        gitd.agent.calls()
    );
}

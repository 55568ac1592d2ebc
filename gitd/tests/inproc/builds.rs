//! Builds apart from releases: a failed build is listed with its output and takes no release
//! number, so the next good push is the next release.

use reqwest::Method;

use crate::util::{Call, TestGitd, eventually};

/// `(id, status, release)` of each build, oldest first.
async fn builds(gitd: &TestGitd, app: &str) -> Vec<(u64, String, Option<u64>)> {
    let mut builds: Vec<_> = gitd
        .builds(app)
        .await
        .iter()
        .map(|b| {
            (
                b["id"].as_u64().unwrap(),
                b["status"].as_str().unwrap().to_owned(),
                b["release"].as_u64(),
            )
        })
        .collect();
    builds.reverse();
    builds
}

#[tokio::test]
async fn a_failed_build_then_a_good_one_makes_the_next_release_only() {
    let gitd = TestGitd::deployed("flaky").await;
    gitd.agent.fail_next_build("RUN exit 3 returned 3");
    let pushed = gitd.push("flaky", &[("Procfile", "web: httpd\n")]).await;
    assert!(!pushed.accepted, "{:?}", pushed.lines);
    let text = pushed.lines.join("\n");
    for expected in [
        " !     Build 2 failed: RUN exit 3 returned 3",
        " !     Push rejected: flaky was not deployed and its branch was not updated",
    ] {
        assert!(text.contains(expected), "{expected:?} missing:\n{text}");
    }
    assert_eq!(gitd.statuses("flaky").await, [(1, "succeeded".to_owned())]);

    let pushed = gitd.push("flaky", &[("Procfile", "web: httpd\n")]).await;
    assert!(pushed.accepted, "{:?}", pushed.lines);
    assert!(
        pushed
            .lines
            .contains(&"-----> Release v2 created".to_owned()),
        "{:?}",
        pushed.lines
    );
    assert_eq!(
        gitd.statuses("flaky").await,
        [(1, "succeeded".to_owned()), (2, "succeeded".to_owned())]
    );
    // The failed build was built for v2 too; the image that runs is the good build's.
    let built: Vec<u32> = gitd
        .agent
        .calls()
        .iter()
        .filter_map(|call| match call {
            Call::Build(spec) => Some(spec.release),
            _ => None,
        })
        .collect();
    assert_eq!(built, [1, 2, 2]);
    assert_eq!(gitd.agent.last_spec("flaky").image, "paas/flaky:v2");
    assert_eq!(
        builds(&gitd, "flaky").await,
        [
            (1, "succeeded".to_owned(), Some(1)),
            (2, "failed".to_owned(), None),
            (3, "succeeded".to_owned(), Some(2)),
        ]
    );

    let (status, failed) = gitd
        .api(Method::GET, "/v1/apps/flaky/builds/2/output", None)
        .await;
    assert_eq!(status, 200, "{failed}");
    let failed = failed["output"].as_str().unwrap();
    assert!(failed.contains("Step 1/1 : FROM paas/busybox"), "{failed}");
    assert!(
        failed.ends_with(" !     Build 2 failed: RUN exit 3 returned 3"),
        "{failed}"
    );
    // A release's output is its build's, once the drain is recorded.
    let output = eventually("v2's output", || async {
        let output = gitd.output("flaky", 2).await;
        output.contains("Release v2 created").then_some(output)
    })
    .await;
    let (_, build) = gitd
        .api(Method::GET, "/v1/apps/flaky/builds/3/output", None)
        .await;
    assert_eq!(build["output"], output.as_str());

    let events = gitd.events("flaky").await;
    assert!(
        events.iter().any(|e| e.starts_with("deploy: Build 2 of ")
            && e.ends_with(" by user admin failed: RUN exit 3 returned 3")),
        "{events:?}"
    );
}

#[tokio::test]
async fn build_outputs_of_unknown_or_malformed_builds_are_refused() {
    let gitd = TestGitd::deployed("quiet").await;
    for (path, status, message) in [
        ("/v1/apps/quiet/builds/9/output", 404, "No build 9."),
        (
            "/v1/apps/quiet/builds/v1/output",
            400,
            "Invalid build \"v1\": use 1, 2, …",
        ),
        (
            "/v1/apps/quiet/builds/0/output",
            400,
            "Invalid build \"0\": use 1, 2, …",
        ),
    ] {
        let (got, body) = gitd.api(Method::GET, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["message"], message, "{path}");
    }
}

#[tokio::test]
async fn a_build_cut_off_by_a_restart_is_marked_failed() {
    let mut gitd = TestGitd::deployed("cut").await;
    let (app, user) = gitd.rows("cut").await;
    gitd.server
        .state()
        .store
        .create_build(app.id, user.username, "0".repeat(40))
        .await
        .unwrap();
    assert_eq!(builds(&gitd, "cut").await[1].1, "pending");
    gitd.restart().await;
    assert_eq!(
        builds(&gitd, "cut").await,
        [
            (1, "succeeded".to_owned(), Some(1)),
            (2, "failed".to_owned(), None)
        ]
    );
    let (status, body) = gitd
        .api(Method::GET, "/v1/apps/cut/builds/2/output", None)
        .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        body["error"]["message"],
        "Build 2 has no output: it was cut off by a restart."
    );
    assert_eq!(gitd.statuses("cut").await, [(1, "succeeded".to_owned())]);
}

//! Start-up recovery: a change cut off by a restart leaves no release `building`, and the
//! last good release is handed to the agent again.

use paas_gitd::store::{NewRelease, ReleaseKind};

use crate::util::{TestGitd, eventually};

#[tokio::test]
async fn a_release_left_building_is_failed_and_the_last_good_one_put_back() {
    let mut gitd = TestGitd::start().await;
    gitd.create_app("cut").await;
    assert!(gitd.push("cut", &[]).await.accepted);
    let (app, _) = gitd.rows("cut").await;
    // What a daemon killed mid-rollout leaves: v2 recorded, handed to the agent, never done.
    let store = &gitd.server.state().store;
    store
        .create_release(NewRelease {
            app_id: app.id,
            kind: ReleaseKind::Config,
            description: "Set A config vars".to_owned(),
            username: "admin".parse().unwrap(),
            image: Some("paas/cut:v1".to_owned()),
            commit: None,
            processes: [("web".parse().unwrap(), None)].into(),
            config: [("A".parse().unwrap(), "1".to_owned())].into(),
            resources: Default::default(),
            app_json: Default::default(),
        })
        .await
        .unwrap();
    let before = gitd.agent.put_specs("cut").len();

    gitd.restart().await;
    assert_eq!(
        gitd.statuses("cut").await,
        [(1, "succeeded".to_owned()), (2, "failed".to_owned())]
    );
    let restored = eventually("v1 to be put back", || async {
        let specs = gitd.agent.put_specs("cut");
        (specs.len() > before).then(|| specs.last().cloned().unwrap())
    })
    .await;
    assert_eq!(
        (restored.release, restored.image.as_str()),
        (1, "paas/cut:v1")
    );
    assert!(restored.env.is_empty(), "{restored:?}");
    eventually("the restore event", || async {
        let events = gitd.events("cut").await;
        events
            .iter()
            .any(|e| e.starts_with("deploy: Release v1 restored"))
            .then_some(())
    })
    .await;
}

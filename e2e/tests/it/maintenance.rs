//! Maintenance mode end to end, through the real Traefik: `maintenance:on` makes every host of
//! the app (its own and a custom domain) answer 503 with the maintenance page while its
//! containers keep running untouched and another app keeps answering; a wildcard app in
//! maintenance never takes another app's exact host; the state survives a deploy and an agent
//! restart; `maintenance:off` brings the app back without restarting it.

use std::collections::BTreeSet;

use crate::platform::{DOMAIN, Platform};
use crate::util::{git, hello_repo, wait_for};

const PAGE: &str = "Offline for maintenance";

fn ids(platform: &Platform, app: &str) -> BTreeSet<String> {
    platform.containers(app, "web").into_iter().collect()
}

#[track_caller]
fn assert_page(platform: &Platform, host: &str) {
    let answer = platform.get(host, "/").unwrap();
    assert_eq!(answer.status, 503, "{host}: {answer:?}");
    assert!(answer.body.contains(PAGE), "{host}: {answer:?}");
}

#[track_caller]
fn assert_app(platform: &Platform, host: &str, app: &str) {
    let answer = platform.get(host, "/").unwrap();
    assert_eq!(answer.status, 200, "{host}: {answer:?}");
    assert!(
        answer.body.contains(&format!(" from {app} v")),
        "{host}: {answer:?}"
    );
}

#[test]
fn maintenance_serves_the_page_on_the_apps_hosts_only_and_survives_deploys() {
    let mut platform = Platform::start();
    let app = platform.create_app("maint");
    let other = platform.create_app("maint2");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    platform.deploy(&other, repo.path());
    platform
        .paas(&["domains:add", "www.maint.test", "-a", &app])
        .success();
    platform
        .paas(&["domains:add", "*.maint.test", "-a", &other])
        .success();
    let own = format!("{app}.{DOMAIN}");
    assert_app(&platform, &own, &app);
    assert_app(&platform, "www.maint.test", &app);
    let before = ids(&platform, &app);
    assert_eq!(before.len(), 1);
    assert_eq!(
        platform.paas(&["maintenance", "-a", &app]).success().stdout,
        "off\n"
    );

    let on = platform.paas(&["maintenance:on", "-a", &app]).success();
    assert!(
        on.stderr
            .contains(&format!("Enabling maintenance mode for ⬢ {app}... done")),
        "{on}"
    );
    // Done means routed: no wait.
    assert_page(&platform, &own);
    assert_page(&platform, "www.maint.test");
    assert_app(&platform, &other, &other);
    assert_app(&platform, "any.maint.test", &other);
    assert_eq!(ids(&platform, &app), before, "nothing was restarted");
    assert_eq!(
        platform.paas(&["maintenance", "-a", &app]).success().stdout,
        "on\n"
    );
    let json = platform
        .paas(&["maintenance", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(json, serde_json::json!({"enabled": true}));

    // A deploy while in maintenance stays in maintenance, and so does an agent restart (which
    // serves the page on a new port).
    git(repo.path(), &["commit", "-q", "--allow-empty", "-m", "two"]);
    platform.deploy(&app, repo.path());
    assert_page(&platform, &own);
    assert_page(&platform, "www.maint.test");
    // The push returns at serving; the old instance retires after it.
    let deployed = wait_for("v1 to retire", || {
        let now = ids(&platform, &app);
        (now.len() == 1).then_some(now)
    });
    assert_ne!(deployed, before, "the deploy ran new containers");
    platform.agent_mut().restart();
    assert_page(&platform, &own);
    assert_page(&platform, "www.maint.test");

    platform.paas(&["maintenance:off", "-a", &app]).success();
    assert_app(&platform, &own, &app);
    assert_app(&platform, "www.maint.test", &app);
    assert!(platform.get(&own, "/").unwrap().body.contains(" v2 on "));
    assert_eq!(ids(&platform, &app), deployed, "nothing was restarted");
    assert_eq!(
        platform.paas(&["maintenance", "-a", &app]).success().stdout,
        "off\n"
    );

    // The wildcard app in maintenance: its wildcard answers the page, the other app's exact
    // host under it still reaches that app.
    platform.paas(&["maintenance:on", "-a", &other]).success();
    assert_page(&platform, "any.maint.test");
    assert_page(&platform, &other);
    assert_app(&platform, "www.maint.test", &app);
    assert_app(&platform, &own, &app);
}

#[test]
fn maintenance_of_an_app_someone_cannot_see_is_not_found_and_changes_nothing() {
    let platform = Platform::start();
    let app = platform.create_app("mainthide");
    platform.deploy(&app, hello_repo().path());
    let mallory = platform.user("mallory");
    let body = r#"{"enabled":true}"#;
    let answer = platform.api(
        "PUT",
        &format!("/v1/apps/{app}/maintenance"),
        &mallory.token,
        body,
    );
    assert_eq!(answer.status, 404, "{}", answer.text());
    assert_app(&platform, &app, &app);
    let own = platform.app(&mallory, "maintbad");
    let bad = platform.api(
        "PUT",
        &format!("/v1/apps/{own}/maintenance"),
        &mallory.token,
        r#"{"enabled":"yes"}"#,
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    let shown = platform.api(
        "GET",
        &format!("/v1/apps/{own}/maintenance"),
        &mallory.token,
        "",
    );
    assert_eq!(shown.json(), serde_json::json!({"enabled": false}));
    assert_app(&platform, &app, &app);
}

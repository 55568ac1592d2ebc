//! The web dashboard end to end, in Debian's Chromium (headless) against the whole platform:
//! logging in, the apps list, scaling `web` to 2 and rolling back from the app's page (checked
//! with the CLI), a line the app writes appearing in the live log view, the admin's views, and
//! logging out ending the session; the request graph rising under a bounded load loop and a
//! redeploy's marker appearing on the open metrics page, without reloading it. A form posted without the session's secret, with a wrong
//! one, or from another origin changes nothing; a second user sees no trace of the first
//! user's app, not in the list, not at its URL, not in its log stream. The screenshots in
//! docs/dashboard/ are taken here: they go there when `PAAS_SCREENSHOT_DIR=docs/dashboard`,
//! else under target/, so a test run leaves the checkout as it was.

mod browser;

use std::path::PathBuf;

use browser::Browser;
use reqwest::StatusCode;
use reqwest::blocking::Client;

use crate::platform::Platform;
use crate::util::{ADMIN_PASSWORD, ADMIN_USER, commit_files, hello_repo, wait_for, workspace_root};

/// The app writes a numbered line every second while it serves.
const TICKING_PROCFILE: &str = "web: (n=0; while true; do n=$((n+1)); echo \"tick $n\"; sleep 1; done) & exec httpd -f -p ${PORT:-5000} -h /www\n";

fn screenshot(browser: &Browser, name: &str) {
    let dir = std::env::var_os("PAAS_SCREENSHOT_DIR").map_or_else(
        || PathBuf::from("target/dashboard-screenshots"),
        PathBuf::from,
    );
    let path = workspace_root().join(dir).join(format!("{name}.png"));
    browser.screenshot(&path);
}

fn log_in(browser: &Browser, base: &str, username: &str, password: &str) {
    browser.goto(&format!("{base}/login"));
    browser.fill("#username", username);
    browser.fill("#password", password);
    browser.click("form[action='/login'] button");
    wait_for("the apps list after logging in", || {
        browser.text().contains("Apps").then_some(())
    });
    assert_eq!(browser.url(), format!("{base}/"));
}

/// The `web` instances `paas ps --json` lists as up.
fn web_up(platform: &Platform, app: &str) -> usize {
    let listed = platform.paas(&["ps", "-a", app, "--json"]).success().json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|instance| instance["process"] == "web" && instance["state"] == "up")
        .count()
}

/// How many `web` instances the formation asks for, as `paas apps:info --json` says.
fn web_quantity(platform: &Platform, app: &str) -> u64 {
    let info = platform
        .paas(&["apps:info", "-a", app, "--json"])
        .success()
        .json();
    info["formation"]["web"]
        .as_u64()
        .unwrap_or_else(|| panic!("{info}"))
}

/// The versions `paas releases --json` lists, newest first.
fn release_versions(platform: &Platform, app: &str) -> Vec<u64> {
    let releases = platform
        .paas(&["releases", "-a", app, "--json"])
        .success()
        .json();
    releases
        .as_array()
        .unwrap()
        .iter()
        .map(|release| release["version"].as_u64().unwrap())
        .collect()
}

/// The session's secret, from a form on the open page.
fn page_csrf(browser: &Browser) -> String {
    browser
        .script(
            "return document.querySelector('input[name=csrf]').value;",
            serde_json::json!([]),
        )
        .as_str()
        .unwrap()
        .to_owned()
}

fn no_redirects() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

#[test]
fn dashboard_logs_in_scales_rolls_back_follows_logs_and_refuses_forged_posts() {
    let platform = Platform::start();
    let base = platform.gitd.url();
    let app = platform.create_app("dash");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", TICKING_PROCFILE)], "tick");
    platform.deploy(&app, repo.path());
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();

    let browser = Browser::start();
    browser.goto(&format!("{base}/"));
    assert_eq!(
        browser.url(),
        format!("{base}/login"),
        "logged out: the login form"
    );
    log_in(&browser, &base, ADMIN_USER, ADMIN_PASSWORD);
    let list = browser.text();
    assert!(list.contains(&app) && list.contains("v2"), "{list}");
    screenshot(&browser, "apps");

    // Scale web to 2 from the app's page.
    browser.goto(&format!("{base}/apps/{app}"));
    browser.fill("#scale-web", "2");
    browser.click("form[action$='/scale'] button");
    wait_for("both web instances up on the page", || {
        browser.goto(&format!("{base}/apps/{app}"));
        let page = browser.text();
        (page.contains("web.1 up") && page.contains("web.2 up")).then_some(())
    });
    assert_eq!(web_up(&platform, &app), 2);
    screenshot(&browser, "app");
    browser.resize(390, 844);
    screenshot(&browser, "app-phone");
    browser.resize(1280, 800);

    // Roll back to v1 from the releases.
    browser.click("form[action$='/rollback']:has(input[name='version'][value='1']) button");
    wait_for("the rollback's release on the page", || {
        browser.text().contains("Rollback to v1").then_some(())
    });
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    let newest = &releases.as_array().unwrap()[0];
    assert_eq!(newest["version"], 3, "{releases}");
    assert!(
        newest["description"]
            .as_str()
            .unwrap()
            .contains("Rollback to v1"),
        "{newest}"
    );

    // The live log view: a line the app writes after the view opened shows up.
    browser.goto(&format!("{base}/apps/{app}/logs"));
    wait_for("the log stream to go live", || {
        browser.text().contains("Live").then_some(())
    });
    let count = |browser: &Browser| {
        browser
            .script(
                "return document.querySelectorAll('#log li').length;",
                serde_json::json!([]),
            )
            .as_u64()
            .unwrap()
    };
    let before = count(&browser);
    wait_for("a new tick line in the live view", || {
        let last = browser.script(
            "const items = document.querySelectorAll('#log li'); \
             return items.length ? items[items.length - 1].textContent : '';",
            serde_json::json!([]),
        );
        (count(&browser) > before && last.as_str().unwrap().contains(": tick ")).then_some(())
    });
    screenshot(&browser, "logs");

    // The admin's views: this host's instances, and the users.
    browser.goto(&format!("{base}/admin"));
    let admin = browser.text();
    assert!(
        admin.contains(&app) && admin.contains("web.2 up"),
        "{admin}"
    );
    assert!(admin.contains(ADMIN_USER), "{admin}");
    screenshot(&browser, "admin");

    // Forged posts: the session's own cookie, but no secret, a wrong one, a foreign origin,
    // or no origin at all. None scales anything or makes a release.
    browser.goto(&format!("{base}/apps/{app}"));
    let cookie = format!("paas_session={}", browser.cookie("paas_session"));
    let csrf = page_csrf(&browser);
    let client = no_redirects();
    let post =
        |action: &str, fields: &[(&str, &str)], origin: Option<&str>, secret: Option<&str>| {
            let mut form = fields.to_vec();
            if let Some(secret) = secret {
                form.push(("csrf", secret));
            }
            let mut request = client
                .post(format!("{base}/apps/{app}/{action}"))
                .header("Cookie", &cookie)
                .form(&form);
            if let Some(origin) = origin {
                request = request.header("Origin", origin);
            }
            request.send().unwrap().status()
        };
    let scale_to = |quantity| [("process", "web"), ("quantity", quantity)];
    let back_to_v2 = [("version", "2")];
    let own = Some(base.as_str());
    for (origin, secret, what) in [
        (own, None, "without the secret"),
        (own, Some("0123"), "with a wrong secret"),
        (
            Some("http://evil.example"),
            Some(csrf.as_str()),
            "from another origin",
        ),
        (None, Some(csrf.as_str()), "from nowhere"),
    ] {
        assert_eq!(
            post("scale", &scale_to("0"), origin, secret),
            StatusCode::FORBIDDEN,
            "a scale {what}"
        );
        assert_eq!(
            post("rollback", &back_to_v2, origin, secret),
            StatusCode::FORBIDDEN,
            "a rollback {what}"
        );
    }
    assert_eq!(
        web_quantity(&platform, &app),
        2,
        "forged scales changed nothing"
    );
    assert_eq!(
        release_versions(&platform, &app),
        [3, 2, 1],
        "forged rollbacks made no release"
    );
    assert_eq!(
        post("scale", &scale_to("1"), own, Some(csrf.as_str())),
        StatusCode::SEE_OTHER,
        "the same post from the page's own form goes through"
    );
    assert_eq!(web_quantity(&platform, &app), 1);

    // Logging out ends the session: the cookie it had is worth nothing afterwards.
    browser.click("form[action='/logout'] button");
    wait_for("the login form after logging out", || {
        browser.url().ends_with("/login").then_some(())
    });
    browser.goto(&format!("{base}/apps/{app}"));
    assert_eq!(browser.url(), format!("{base}/login"));
    let replayed = client
        .get(format!("{base}/apps/{app}"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(replayed.status(), StatusCode::SEE_OTHER);
    assert_eq!(replayed.headers()["location"], "/login");
}

#[test]
fn dashboard_shows_a_second_user_no_trace_of_the_first_users_app() {
    let platform = Platform::start();
    let base = platform.gitd.url();
    let alice = platform.user("alice");
    let secret = platform.app(&alice, "secret");
    platform.deploy(&secret, hello_repo().path());
    let _bob = platform.user("bob");

    let browser = Browser::start();
    log_in(&browser, &base, "bob", "bob-password-1");
    let list = browser.text();
    assert!(!list.contains(&secret), "{list}");
    assert!(list.contains("No apps yet"), "{list}");

    let cookie = format!("paas_session={}", browser.cookie("paas_session"));
    let client = no_redirects();
    let get = |path: &str| {
        let answer = client
            .get(format!("{base}{path}"))
            .header("Cookie", &cookie)
            .send()
            .unwrap();
        (answer.status(), answer.text().unwrap())
    };
    let missing = "p0-no-such-app";
    for page in [
        "",
        "/logs",
        "/logs/stream?tail=true",
        "/metrics",
        "/metrics/graphs?period=24h",
    ] {
        let (status, body) = get(&format!("/apps/{secret}{page}"));
        let (missing_status, missing_body) = get(&format!("/apps/{missing}{page}"));
        assert_eq!(status, StatusCode::NOT_FOUND, "{page}: {body}");
        assert_eq!(
            (status, body.replace(&secret, "NAME")),
            (missing_status, missing_body.replace(missing, "NAME")),
            "{page}: the same answer as for an app that does not exist"
        );
        assert!(!body.contains(&secret), "{page}: {body}");
    }

    // Bob's own session, its secret and the dashboard's origin: everything a real form sends,
    // to alice's app. The answer is an app that does not exist, and alice's web stays at 1.
    let csrf = page_csrf(&browser);
    let scale = |app: &str| {
        let answer = client
            .post(format!("{base}/apps/{app}/scale"))
            .header("Cookie", &cookie)
            .header("Origin", &base)
            .form(&[("process", "web"), ("quantity", "3"), ("csrf", &csrf)])
            .send()
            .unwrap();
        (answer.status(), answer.text().unwrap())
    };
    let (status, body) = scale(&secret);
    let (missing_status, missing_body) = scale(missing);
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(
        (status, body.replace(&secret, "NAME")),
        (missing_status, missing_body.replace(missing, "NAME")),
        "a scale of alice's app is answered as one of an app that does not exist"
    );
    assert_eq!(
        web_quantity(&platform, &secret),
        1,
        "bob's scale changed nothing"
    );
    assert_eq!(web_up(&platform, &secret), 1);

    let (status, _) = get("/admin");
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "the admin's views are the admin's"
    );
    browser.goto(&format!("{base}/apps/{secret}"));
    assert!(
        browser.text().contains("Couldn't find that app."),
        "{}",
        browser.text()
    );
}

/// Requests sent before waiting for the graph, and a few more per look while waiting (the
/// wait itself is bounded by `wait_for`).
const LOAD: usize = 30;
const MORE_PER_LOOK: usize = 2;

/// A chart on the open page: its peak and the kinds of its markers, as the chart states them.
fn chart(browser: &Browser, id: &str) -> (f64, Vec<String>) {
    let chart = browser.script(
        "const chart = document.getElementById(arguments[0]); \
         return chart ? [Number(chart.dataset.peak), chart.dataset.markers] : null;",
        serde_json::json!([id]),
    );
    let [peak, markers] = chart
        .as_array()
        .unwrap_or_else(|| panic!("no chart {id}"))
        .as_slice()
    else {
        panic!("{chart}");
    };
    let markers = markers
        .as_str()
        .unwrap()
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    (peak.as_f64().unwrap(), markers)
}

fn deploy_markers(browser: &Browser) -> usize {
    chart(browser, "requests")
        .1
        .iter()
        .filter(|kind| *kind == "deploy")
        .count()
}

#[test]
fn dashboard_graphs_rise_under_load_and_mark_a_redeploy_while_the_page_stays_open() {
    let mut platform = Platform::start();
    platform.sample_metrics_every_second();
    let base = platform.gitd.url();
    let app = platform.create_app("graphs");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());

    let browser = Browser::start();
    log_in(&browser, &base, ADMIN_USER, ADMIN_PASSWORD);
    browser.goto(&format!("{base}/apps/{app}/metrics"));
    let page = browser.text();
    assert!(
        page.contains("Requests") && page.contains("Latency"),
        "{page}"
    );
    // Set on this very page: it is still there only if the page was never reloaded.
    browser.script("window.paasOpenedOnce = true;", serde_json::json!([]));
    let deploys_before = deploy_markers(&browser);
    assert!(deploys_before >= 1, "the first deploy is marked");
    let (peak_before, _) = chart(&browser, "requests");

    for _ in 0..LOAD {
        assert_eq!(platform.get(&app, "/").unwrap().status, 200);
    }
    wait_for(
        "the request graph to rise above its peak before the load",
        || {
            for _ in 0..MORE_PER_LOOK {
                platform.get(&app, "/").unwrap();
            }
            (chart(&browser, "requests").0 > peak_before).then_some(())
        },
    );
    assert!(
        chart(&browser, "status").0 > 0.0,
        "2xx responses are graphed"
    );
    wait_for("web's memory on the open page", || {
        (chart(&browser, "memory-web").0 > 0.0).then_some(())
    });
    screenshot(&browser, "metrics");

    commit_files(
        repo.path(),
        &[("www/graphs.txt", "second deploy\n")],
        "redeploy",
    );
    platform.deploy(&app, repo.path());
    wait_for("the redeploy's marker on the open page", || {
        (deploy_markers(&browser) > deploys_before).then_some(())
    });
    let never_reloaded = browser.script(
        "return window.paasOpenedOnce === true;",
        serde_json::json!([]),
    );
    assert_eq!(
        never_reloaded,
        serde_json::json!(true),
        "the graphs were swapped in live"
    );
    assert_eq!(browser.url(), format!("{base}/apps/{app}/metrics"));
}

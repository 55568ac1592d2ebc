//! Custom domains end to end: `domains:add` routes a host name (and a `*.` wildcard) to the
//! app through Traefik without dropping a request and without a new release, `domains:remove`
//! takes it away (404), a domain another app holds is refused, bad host names are refused
//! before anything is sent, and `paas open` / `apps:info` show the URL and domains.

use crate::platform::{DOMAIN, Engine, Platform};
use crate::rollback::load_on;
use crate::util::hello_repo;
use crate::util::wait_for;

fn domains_route_to_the_app_and_are_unique_across_apps(engine: Engine) {
    let platform = Platform::start_on(engine);
    let app = platform.create_app("dom");
    let other = platform.create_app("dom2");
    let pushed = platform.push(&app, hello_repo().path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    let releases = |app: &str| {
        let listed = platform
            .paas(&["releases", "-a", app, "--json"])
            .success()
            .json();
        listed.as_array().unwrap().len()
    };

    let unknown = platform.get("www.example.test", "/").unwrap();
    assert_eq!(unknown.status, 404, "{unknown:?}");
    let load = load_on(&platform, &format!("{app}.{DOMAIN}"));
    let added = platform
        .paas(&["domains:add", "www.example.test", "-a", &app])
        .success();
    assert!(
        added
            .stderr
            .contains(&format!("Adding www.example.test to ⬢ {app}... done")),
        "{added}"
    );
    // Added means routed.
    let answer = platform.get("www.example.test", "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{answer:?}"
    );
    platform
        .paas(&["domains:add", "*.wild.test", "-a", &app])
        .success();
    let wild = platform.get("anything.wild.test", "/").unwrap();
    assert_eq!(wild.status, 200, "{wild:?}");
    assert_eq!(
        platform.get("a.b.wild.test", "/").unwrap().status,
        404,
        "one label only"
    );

    let listed = platform.paas(&["domains", "-a", &app]).success();
    assert!(
        listed
            .stdout
            .starts_with(&format!("=== {app} Custom Domains\n")),
        "{listed}"
    );
    assert!(listed.stdout.contains("\n*.wild.test  "), "{listed}");
    assert!(listed.stdout.contains("\nwww.example.test  "), "{listed}");
    let info = platform
        .paas(&["apps:info", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        info["domains"],
        serde_json::json!(["*.wild.test", "www.example.test"])
    );
    assert_eq!(info["last_deploy"]["version"], 1);
    // `apps --json` says what `apps:info --json` says about what runs and the last deploy.
    let listed = platform.paas(&["apps", "--json"]).success().json();
    let entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["name"] == app.as_str())
        .unwrap();
    assert_eq!(entry["formation"], info["formation"]);
    assert_eq!(entry["formation"], serde_json::json!({"web": 1}));
    assert_eq!(entry["last_deploy"], info["last_deploy"]);
    let text = platform.paas(&["apps:info", "-a", &app]).success();
    assert!(
        text.stdout.contains("Domains:       *.wild.test\n"),
        "{text}"
    );
    assert!(text.stdout.contains("Last Deploy:   v1 Deploy "), "{text}");

    // Taken by another app, invalid, or the platform's own: refused, nothing changes.
    platform
        .paas(&["domains:add", "www.example.test", "-a", &other])
        .error("www.example.test is already in use by another app");
    platform
        .paas(&["domains:add", "www.example.test", "-a", &app])
        .error("already a domain of this app");
    platform
        .paas(&["domains:add", "WWW.example.test", "-a", &app])
        .error("use lowercase letters");
    platform
        .paas(&["domains:add", "www.example.test:8080", "-a", &app])
        .error("without a port");
    platform
        .paas(&["domains:add", &format!("x.{DOMAIN}"), "-a", &app])
        .error("the platform's own domain");
    platform
        .paas(&["domains:remove", "nope.example.test", "-a", &app])
        .error("has no domain nope.example.test");
    let answer = platform.get("www.example.test", "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} ")),
        "{answer:?}"
    );

    let removed = platform
        .paas(&["domains:remove", "www.example.test", "-a", &app])
        .success();
    assert!(
        removed
            .stderr
            .contains(&format!("Removing www.example.test from ⬢ {app}... done")),
        "{removed}"
    );
    let gone = platform.get("www.example.test", "/").unwrap();
    assert_eq!(gone.status, 404, "{gone:?}");
    load.finish("adding and removing domains");
    assert_eq!(releases(&app), 1, "domains make no release");

    // Free again: another app may take it.
    platform
        .paas(&["domains:add", "www.example.test", "-a", &other])
        .success();
    let events = platform.paas(&["logs", "-s", "paas", "-a", &app]).success();
    assert!(
        events
            .stdout
            .contains("paas[domains]: Removed domain www.example.test by user admin"),
        "{events}"
    );

    let opened = platform.paas(&["open", "-a", &app]).success();
    assert_eq!(opened.stdout, format!("{}\n", platform.web_url(&app)));
    wait_for("the app to keep answering at its own host", || {
        let answer = platform.get(&app, "/").ok()?;
        (answer.status == 200).then_some(())
    });
}
on_each_engine!(domains_route_to_the_app_and_are_unique_across_apps);

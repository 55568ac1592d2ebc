//! Router lines and the H14 page end to end, through the real Traefik and its access log:
//! requests to an app show in its `paas logs` as `paas[router]` lines with their status and the
//! dyno that served them, never in another app's; a hostile path is escaped; `--no-router` hides
//! them and `--release` keeps one release's lines (and events) only. An app scaled to `web=0` answers 503
//! with the "No web processes running" page on its own host and its domains, logged as H14,
//! maintenance mode wins over it, and `web=1` brings the app back. A request the app does not
//! start answering within the router's timeout (`traefik-config --response-timeout`, Heroku's
//! 30 s by default) gets a 504 and an H12 line.

use crate::platform::{DOMAIN, Platform, Traefik, docker_lines};
use crate::util::{commit_files, hello_repo, wait_for};

/// Says which release it runs as it starts, then serves.
const BOOTING_PROCFILE: &str =
    "web: echo \"booting $PAAS_RELEASE\" && exec httpd -f -p ${PORT:-5000} -h /www\n";

const NO_WEB: &str = "No web processes running";

/// The app's router lines (`paas logs -p router`), once one contains `needle`.
fn router_lines_with(platform: &Platform, app: &str, needle: &str) -> Vec<String> {
    wait_for(&format!("a router line of {app} with {needle:?}"), || {
        let out = platform
            .paas(&["logs", "-a", app, "-p", "router", "-n", "1000"])
            .success();
        let lines: Vec<String> = out.stdout.lines().map(str::to_owned).collect();
        lines
            .iter()
            .any(|line| line.contains(needle))
            .then_some(lines)
    })
}

fn logs(platform: &Platform, args: &[&str]) -> String {
    platform.paas(&[&["logs"], args].concat()).success().stdout
}

#[test]
fn router_lines_show_each_request_in_its_own_apps_logs() {
    let platform = Platform::start();
    let app = platform.create_app("routed");
    let other = platform.create_app("routed2");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[("Procfile", BOOTING_PROCFILE)],
        "say the release",
    );
    platform.deploy(&app, repo.path());
    platform.deploy(&other, repo.path());
    let host = format!("{app}.{DOMAIN}");

    assert_eq!(platform.get(&app, "/").unwrap().status, 200);
    // A raw quote, and a quote and a line break as the client encoded them (the unit tests of
    // `agent/src/logs/router.rs` feed the escaping raw ones).
    platform.get(&app, "/q\"x%22y%0Az").unwrap();
    platform.get(&other, "/only-the-other").unwrap();

    let lines = router_lines_with(&platform, &app, "path=\"/q");
    let served = lines
        .iter()
        .find(|line| line.contains("path=\"/\" "))
        .unwrap_or_else(|| panic!("the request to / in {lines:#?}"));
    assert!(
        served.contains(&format!(
            " paas[router]: at=info method=GET path=\"/\" host={host} status=200 connect="
        )),
        "{served}"
    );
    assert!(served.contains(" dyno=web.1 bytes="), "{served}");
    let hostile = lines
        .iter()
        .find(|line| line.contains("path=\"/q"))
        .unwrap();
    // Traefik encodes the raw quote; no quote or line break of the request reaches the line.
    assert!(
        hostile.contains(r#" path="/q%22x%22y%0Az" host="#),
        "{hostile}"
    );
    let other_lines = router_lines_with(&platform, &other, "/only-the-other");
    assert!(
        other_lines.iter().all(|line| !line.contains("path=\"/q")),
        "{other_lines:#?}"
    );
    let all = logs(&platform, &["-a", &app, "-n", "1000"]);
    assert!(!all.contains("only-the-other"), "{all}");
    assert!(all.contains("paas[router]: at=info"), "{all}");
    assert!(all.contains("app[web.1]: booting v1"), "{all}");
    let without = logs(&platform, &["-a", &app, "-n", "1000", "--no-router"]);
    assert!(!without.contains("paas[router]"), "{without}");
    assert!(without.contains("app[web.1]: booting v1"), "{without}");
    let own = logs(&platform, &["-a", &app, "-n", "1000", "-s", "app"]);
    assert!(!own.contains("paas[router]"), "{own}");
    // `-n` counts the lines that pass the filters.
    let one = logs(&platform, &["-a", &app, "-n", "1", "-p", "router"]);
    assert_eq!(one.lines().count(), 1, "{one}");
    assert!(one.contains("paas[router]"), "{one}");

    // A second release: each release's lines apart.
    commit_files(repo.path(), &[("www/v2.txt", "two\n")], "v2");
    platform.deploy(&app, repo.path());
    platform.wait_for_body(&app, " v2");
    // Until v1's instance has drained, a request may still be its own.
    wait_for("only v2's web to run", || {
        let releases = docker_lines(&[
            "ps",
            "--filter",
            &format!("label=paas.app={app}"),
            "--format",
            "{{.Label \"paas.release\"}}",
        ]);
        (!releases.is_empty() && releases.iter().all(|release| release == "v2")).then_some(())
    });
    platform.get(&app, "/after-v2").unwrap();
    router_lines_with(&platform, &app, "/after-v2");
    let first = logs(&platform, &["-a", &app, "-n", "1000", "--release", "v1"]);
    assert!(first.contains("app[web.1]: booting v1"), "{first}");
    assert!(first.contains("path=\"/\" "), "{first}");
    assert!(!first.contains("booting v2"), "{first}");
    assert!(!first.contains("/after-v2"), "{first}");
    assert!(
        first.contains("paas[deploy]: Release v1 created"),
        "{first}"
    );
    assert!(!first.contains("Release v2"), "{first}");
    let second = logs(&platform, &["-a", &app, "-n", "1000", "--release", "2"]);
    assert!(second.contains("app[web.1]: booting v2"), "{second}");
    assert!(second.contains("/after-v2"), "{second}");
    assert!(!second.contains("booting v1"), "{second}");
    assert!(!second.contains("path=\"/q"), "{second}");
    let last = logs(&platform, &["-a", &app, "-n", "1", "--release", "v1"]);
    assert_eq!(last.lines().count(), 1, "{last}");
    let bad = platform.paas(&["logs", "-a", &app, "--release", "vx"]);
    assert_eq!(bad.code, Some(1), "{bad}");
    assert!(bad.stderr.contains("Invalid release \"vx\""), "{bad}");
}

#[test]
fn an_app_scaled_to_zero_answers_h14_until_web_runs_again() {
    let platform = Platform::start();
    let app = platform.create_app("idle");
    platform.deploy(&app, hello_repo().path());
    platform
        .paas(&["domains:add", "www.idle.test", "-a", &app])
        .success();
    platform.wait_for_body(&app, &format!(" from {app} v"));

    platform.paas(&["scale", "web=0", "-a", &app]).success();
    for host in [app.as_str(), "www.idle.test"] {
        let page = wait_for(&format!("{host} to answer 503"), || {
            platform
                .get(host, "/")
                .ok()
                .filter(|page| page.status == 503)
        });
        assert!(page.body.contains(NO_WEB), "{host}: {page:?}");
        assert!(page.body.contains("paas scale web=1"), "{host}: {page:?}");
        assert!(!page.body.contains(host), "nothing reflected: {page:?}");
    }
    let lines = router_lines_with(&platform, &app, "code=H14");
    let h14 = lines.iter().find(|line| line.contains("code=H14")).unwrap();
    assert!(
        h14.contains(&format!(
            "paas[router]: at=error code=H14 desc=\"{NO_WEB}\" method=GET path=\"/\" host="
        )),
        "{h14}"
    );
    assert!(h14.contains(" status=503 "), "{h14}");

    // Maintenance wins over it, and leaves it in place when off again.
    platform.paas(&["maintenance:on", "-a", &app]).success();
    let page = platform.get(&app, "/").unwrap();
    assert_eq!(page.status, 503, "{page:?}");
    assert!(page.body.contains("Offline for maintenance"), "{page:?}");
    platform.paas(&["maintenance:off", "-a", &app]).success();
    let page = platform.get(&app, "/").unwrap();
    assert!(page.body.contains(NO_WEB), "{page:?}");

    platform.paas(&["scale", "web=1", "-a", &app]).success();
    for host in [app.as_str(), "www.idle.test"] {
        wait_for(&format!("{host} to answer 200 again"), || {
            platform
                .get(host, "/")
                .ok()
                .filter(|page| page.status == 200)
        });
    }
}

/// The hello app's page, except that `?sleep=N` first sleeps N seconds.
const SLEEPY_CGI: &str = "#!/bin/sh\ncase \"$QUERY_STRING\" in sleep=*) sleep \"${QUERY_STRING#sleep=}\" ;; esac\nprintf 'Content-Type: text/plain\\r\\n\\r\\nawake\\n'\n";

/// The whole platform behind a Traefik whose router timeout is `secs` (`paas-agent
/// traefik-config --response-timeout SECS`), so that an H12 takes seconds rather than
/// Heroku's 30.
fn platform_with_router_timeout(secs: u64) -> Platform {
    let traefik = Traefik::start_with(&["--response-timeout", &secs.to_string()]);
    Platform::behind(traefik, Vec::new())
}

#[test]
fn a_request_past_the_router_timeout_gets_a_504_logged_as_h12() {
    let platform = platform_with_router_timeout(2);
    let app = platform.create_app("sleepy");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[("www/cgi-bin/index.cgi", SLEEPY_CGI)],
        "a page that can sleep",
    );
    platform.deploy(&app, repo.path());
    let quick = platform.get(&app, "/cgi-bin/index.cgi?sleep=0").unwrap();
    assert_eq!(
        (quick.status, quick.body.as_str()),
        (200, "awake\n"),
        "{quick:?}"
    );

    let late = platform.get(&app, "/cgi-bin/index.cgi?sleep=6").unwrap();
    assert_eq!(late.status, 504, "{late:?}");
    let lines = router_lines_with(&platform, &app, "code=H12");
    let h12 = lines.iter().find(|line| line.contains("code=H12")).unwrap();
    assert!(
        h12.contains(&format!(
            " paas[router]: at=error code=H12 desc=\"Request timeout\" method=GET path=\"/cgi-bin/index.cgi?sleep=6\" host={app}.{DOMAIN} status=504 "
        )),
        "{h12}"
    );
    // The quick request is an ordinary line.
    assert!(
        lines.iter().any(|line| line
            .contains("at=info method=GET path=\"/cgi-bin/index.cgi?sleep=0\"")
            && line.contains(" status=200 ")),
        "{lines:#?}"
    );
}

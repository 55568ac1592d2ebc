//! Releases and rollback end to end: after v1 (deploy), v2 (deploy of new code) and v3 (a
//! config change), `paas rollback v1` serves v1's code with v1's config while a load loop sees
//! no failed request; a plain `paas rollback` goes back to the successful release before the
//! current one; rolling back to an unknown or failed release, or one whose image is gone, is a
//! clear error that changes nothing. `releases`, `releases:info` and `releases:output` show it.

use crate::platform::{DOMAIN, Engine, LoadLoop, Platform, docker_lines};
use crate::util::{commit_files, hello_repo};

/// Requests a load loop makes at least.
const MIN_REQUESTS: usize = 500;

/// Load on `host` through the platform's Traefik; any greeting from the app counts.
pub fn load_on(platform: &Platform, host: &str) -> LoadLoop {
    LoadLoop::start(&platform.router(), host, MIN_REQUESTS, |body| {
        body.contains(" from ")
    })
}

fn body(platform: &Platform, app: &str) -> String {
    let answer = platform.get(app, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

fn release_count(platform: &Platform, app: &str) -> usize {
    let releases = platform
        .paas(&["releases", "-a", app, "--json"])
        .success()
        .json();
    releases.as_array().unwrap().len()
}

fn rollback_serves_the_old_code_and_config_without_dropping_requests(engine: Engine) {
    let platform = Platform::start_on(engine);
    let app = platform.create_app("undo");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    assert!(body(&platform, &app).starts_with(&format!("Hello from {app} v1 on ")));

    // v2: new code; v3: new config.
    let cgi = std::fs::read_to_string(repo.path().join("www/cgi-bin/index.cgi")).unwrap();
    let cgi_two = cgi.replace("on %s\\n", "on %s (code two)\\n");
    assert_ne!(cgi, cgi_two);
    commit_files(
        repo.path(),
        &[("www/cgi-bin/index.cgi", &cgi_two)],
        "code two",
    );
    platform.deploy(&app, repo.path());
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();
    let v3 = body(&platform, &app);
    assert!(
        v3.starts_with(&format!("Howdy from {app} v3 on ")) && v3.contains("(code two)"),
        "{v3}"
    );

    let load = load_on(&platform, &format!("{app}.{DOMAIN}"));
    let rolled = platform.paas(&["rollback", "v1", "-a", &app]).success();
    assert!(
        rolled
            .stderr
            .contains(&format!("Rolling back ⬢ {app} to v1... done, v4")),
        "{rolled}"
    );
    // Rolled back means routed: v1's code (no "code two") with v1's config (no GREETING).
    let v4 = body(&platform, &app);
    assert!(v4.starts_with(&format!("Hello from {app} v4 on ")), "{v4}");
    assert!(!v4.contains("code two"), "{v4}");
    load.finish("a rollback");
    let config = platform
        .paas(&["config", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(config, serde_json::json!({}), "v1's config is back");

    let releases = platform.paas(&["releases", "-a", &app]).success();
    let newest = releases.stdout.lines().nth(1).unwrap();
    let columns: Vec<&str> = newest
        .split("  ")
        .map(str::trim)
        .filter(|column| !column.is_empty())
        .collect();
    assert_eq!(
        columns[..3],
        ["v4", "Rollback to v1", "admin"],
        "{releases}"
    );
    assert!(columns[3].ends_with(" ago)"), "{releases}");
    let info = platform
        .paas(&["releases:info", "v4", "-a", &app])
        .success();
    assert!(info.stdout.contains("Change:    Rollback to v1"), "{info}");
    // v1's very image: its tag on one host, the digest pushed to the registry on Swarm.
    let image = |info: &str| {
        info.lines()
            .find_map(|line| line.strip_prefix("Image:     "))
            .map(str::to_owned)
    };
    let v1 = platform
        .paas(&["releases:info", "v1", "-a", &app])
        .success();
    assert_eq!(image(&info.stdout), image(&v1.stdout), "{info}\n{v1}");
    let expected = match engine {
        Engine::Docker => format!("paas/{app}:v1"),
        Engine::Swarm => format!("/paas/{app}@sha256:"),
    };
    assert!(
        image(&info.stdout).is_some_and(|image| image.contains(&expected)),
        "{info}"
    );
    let output = platform
        .paas(&["releases:output", "v2", "-a", &app])
        .success();
    let started = match engine {
        Engine::Docker => "healthy",
        Engine::Swarm => "web: 1 of 1 task(s) running",
    };
    for expected in ["Building with Dockerfile", "Release v2 created", started] {
        assert!(
            output.stdout.contains(expected),
            "{expected:?} missing:\n{output}"
        );
    }
    // The load loop's router lines would crowd the events out of the last 100 lines.
    let logs = platform
        .paas(&["logs", "-s", "paas", "--no-router", "-a", &app])
        .success();
    for expected in [
        "paas[config]: Set GREETING config vars by user admin: release v3",
        "paas[rollback]: Rollback to v1 by user admin: release v4",
    ] {
        assert!(
            logs.stdout.contains(expected),
            "{expected:?} missing:\n{logs}"
        );
    }

    // Without a version: the successful release before the current one (v3).
    let rolled = platform.paas(&["rollback", "-a", &app]).success();
    assert!(rolled.stderr.contains("to v3... done, v5"), "{rolled}");
    let v5 = body(&platform, &app);
    assert!(
        v5.starts_with(&format!("Howdy from {app} v5 on ")) && v5.contains("(code two)"),
        "{v5}"
    );
}
on_each_engine!(rollback_serves_the_old_code_and_config_without_dropping_requests);

#[test]
fn old_images_are_pruned_and_rollback_to_a_failed_unknown_or_pruned_release_is_refused() {
    let platform = Platform::start();
    let app = platform.create_app("refuse");
    let repo = hello_repo();
    platform
        .paas(&["rollback", "-a", &app])
        .error("has no successful release before the current one");
    platform.deploy(&app, repo.path());
    for round in 2..=6 {
        commit_files(
            repo.path(),
            &[("www/round.txt", &format!("{round}\n"))],
            &format!("round {round}"),
        );
        platform.deploy(&app, repo.path());
    }
    // The images of the last five successful releases stay; v1's was pruned.
    let mut tags = docker_lines(&[
        "image",
        "ls",
        "--format",
        "{{.Tag}}",
        &format!("paas/{app}"),
    ]);
    tags.sort();
    assert_eq!(tags, ["v2", "v3", "v4", "v5", "v6"]);

    commit_files(
        repo.path(),
        &[("Procfile", "web: echo 'fatal: no database' && exit 3\n")],
        "break it",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    let output = platform
        .paas(&["releases:output", "v7", "-a", &app])
        .success();
    assert!(output.stdout.contains("fatal: no database"), "{output}");

    let before = release_count(&platform, &app);
    platform
        .paas(&["rollback", "v7", "-a", &app])
        .error("v7 failed; only a release that succeeded can be rolled back to");
    platform
        .paas(&["rollback", "v99", "-a", &app])
        .error("No release v99.");
    platform
        .paas(&["rollback", "version-one", "-a", &app])
        .error("Invalid release");
    platform
        .paas(&["rollback", "v1", "-a", &app])
        .error("The image of v1 (paas/");
    assert_eq!(
        release_count(&platform, &app),
        before,
        "no release was made"
    );
    assert!(body(&platform, &app).starts_with(&format!("Hello from {app} v6 on ")));
}

//! Health checks from `app.json` end to end: a custom check path is what decides a new web
//! instance is ready (the app answers 500 on `/` and 200 only on its check path, and deploys);
//! a check on a path that answers 500 fails the push naming the check while the old release
//! keeps serving; a web process that never listens fails with Heroku's R10 words about
//! `$PORT`. `paas checks` shows the current release's checks. Dokku's liveness and readiness
//! checks, which paas does not run, are refused at push naming the check.

use crate::platform::Platform;
use crate::util::{commit_files, hello_repo};

/// `/` answers 500 (busybox httpd passes a CGI's own status line through); the check path is
/// a static file.
const BROKEN_ROOT: &str = "#!/bin/sh\nprintf 'HTTP/1.0 500 Internal Server Error\\r\\nContent-Type: text/plain\\r\\n\\r\\nbroken\\n'\n";

fn app_json(name: &str, path: &str) -> String {
    format!(
        r#"{{"healthchecks":{{"web":[{{"type":"startup","name":"{name}","path":"{path}","attempts":2,"timeout":2,"wait":1}}]}}}}"#
    )
}

#[test]
fn a_custom_check_path_decides_readiness_and_failures_name_the_check() {
    let platform = Platform::start();
    let app = platform.create_app("checked");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[
            ("www/cgi-bin/index.cgi", BROKEN_ROOT),
            ("www/custom-health", "ok\n"),
            ("app.json", &app_json("custom", "/custom-health")),
        ],
        "custom check",
    );
    platform.deploy(&app, repo.path());
    let health = platform.get(&app, "/custom-health").unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    let root = platform.get(&app, "/").unwrap();
    assert_eq!(root.status, 500, "the app really fails on /: {root:?}");
    let shown = platform.paas(&["checks", "-a", &app]).success();
    assert!(shown.stdout.contains("/custom-health"), "{shown}");
    assert!(shown.stdout.contains("custom"), "{shown}");

    commit_files(
        repo.path(),
        &[("app.json", &app_json("root page", "/"))],
        "check on a failing path",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("failed health check \"root page\" (GET /)"),
        "{pushed}"
    );
    assert!(pushed.stderr.contains("was not deployed"), "{pushed}");
    let health = platform.get(&app, "/custom-health").unwrap();
    assert_eq!(
        health.status, 200,
        "the old release keeps serving: {health:?}"
    );

    commit_files(
        repo.path(),
        &[
            ("app.json", &app_json("custom", "/custom-health")),
            ("Procfile", "web: exec sleep 3600\n"),
        ],
        "never listens",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("Web process failed to bind to $PORT within"),
        "{pushed}"
    );
    assert!(pushed.stderr.contains("must listen on $PORT"), "{pushed}");
    let health = platform.get(&app, "/custom-health").unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(releases[0]["status"], "failed", "{releases}");
    assert_eq!(releases[2]["status"], "succeeded", "{releases}");
}

#[test]
fn checks_paas_does_not_run_are_refused_at_push_naming_them() {
    let platform = Platform::start();
    let app = platform.create_app("alive");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "app.json",
            r#"{"healthchecks":{"web":[{"type":"liveness","name":"still alive","path":"/"}]}}"#,
        )],
        "a liveness check",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed.stderr.contains(
            "healthchecks.web[0] (\"still alive\"): type \"liveness\" is not supported: paas runs startup checks only"
        ),
        "{pushed}"
    );
    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(ps.stdout.contains("has no running processes"), "{ps}");
}

//! Bad input, through the CLI and as raw HTTP: every case gets a clear error (one line from
//! the CLI, the API's error envelope with a fitting status from the server) and the database
//! dump is the same before and after. Asking for help is not a usage error: bare `paas`,
//! `paas help` and `paas help logs` exit 0 with the usage and the command's examples.

use crate::util::{ADMIN_PASSWORD, ADMIN_USER, Cli, Gitd};

const BAD_APP_NAMES: [&str; 5] = ["../x", "A", "a;b", "abcdefghijklmnopqrstuvwxyz01234", ""];

fn repos(gitd: &Gitd) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(gitd.data_dir().join("repos"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// A server with one app, `web`, owned by the admin; the admin's CLI and raw token.
fn server_with_an_app() -> (Gitd, Cli, String) {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    cli.run(&["apps:create", "web"]).success();
    cli.run(&["config:set", "KEEP=1", "-a", "web"]).success();
    let token = gitd.token(ADMIN_USER, ADMIN_PASSWORD);
    (gitd, cli, token)
}

#[test]
fn the_database_dump_sees_every_change() {
    let (gitd, cli, _token) = server_with_an_app();
    let before = gitd.db_dump();
    assert_eq!(gitd.db_dump(), before, "dumps of unchanged data differ");
    assert!(before.contains("\"KEEP\""), "{before}");
    cli.run(&["config:set", "KEEP=2", "-a", "web"]).success();
    assert_ne!(gitd.db_dump(), before);
}

#[test]
fn bad_app_names_are_refused_and_change_nothing() {
    let (gitd, cli, token) = server_with_an_app();
    assert_eq!(BAD_APP_NAMES[3].len(), 31);
    let before = gitd.db_dump();
    let repos_before = repos(&gitd);

    for name in BAD_APP_NAMES {
        cli.run(&["apps:create", name]).error("invalid app name");
        cli.run(&["apps:info", "-a", name])
            .error("invalid app name");

        let body = serde_json::json!({ "name": name }).to_string();
        let response = gitd.request("POST", "/v1/apps", Some(&token), Some(body.as_bytes()));
        assert_eq!(response.status, 400, "{name:?}: {}", response.text());
        assert_eq!(response.error_code(), "invalid_input");
        assert!(
            response.text().contains("invalid app name"),
            "{}",
            response.text()
        );
    }
    // A name smuggled into a path is simply not an app.
    for path in ["/v1/apps/..%2Fx", "/v1/apps/a%3Bb/config", "/v1/apps/A"] {
        let response = gitd.request("GET", path, Some(&token), None);
        assert_eq!(response.status, 404, "{path}: {}", response.text());
        assert_eq!(response.error_code(), "not_found");
    }

    assert_eq!(gitd.db_dump(), before);
    assert_eq!(repos(&gitd), repos_before);
}

#[test]
fn bad_config_keys_and_values_are_refused_and_change_nothing() {
    let (gitd, cli, token) = server_with_an_app();
    let before = gitd.db_dump();

    for pair in ["1A=x", "A-B=x", "=x", "A B=x", "É=x"] {
        cli.run(&["config:set", pair, "-a", "web"])
            .error("invalid config key");
    }
    cli.run(&["config:set", "NOEQUALS", "-a", "web"])
        .error("expected KEY=VALUE");
    cli.run(&["config:unset", "A-B", "-a", "web"])
        .error("invalid config key");
    cli.run(&["config:get", "1A", "-a", "web"])
        .error("invalid config key");
    let huge = format!("BIG={}", "x".repeat(32 * 1024 + 1));
    cli.run(&["config:set", &huge, "-a", "web"])
        .error("the limit is 32768 bytes");

    let path = "/v1/apps/web/config";
    let too_long = "x".repeat(32 * 1024 + 1);
    for body in [
        serde_json::json!({"vars": {"1A": "x"}}),
        serde_json::json!({"vars": {"A-B": null}}),
        serde_json::json!({"vars": {"": "x"}}),
        serde_json::json!({"vars": {"OK": "1", "NOT OK": "2"}}),
        serde_json::json!({"vars": {"BIG": too_long}}),
        serde_json::json!({"vars": {}}),
    ] {
        let response = gitd.request(
            "PATCH",
            path,
            Some(&token),
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(response.status, 400, "{body}: {}", response.text());
        assert_eq!(response.error_code(), "invalid_input");
    }

    assert_eq!(gitd.db_dump(), before);
    assert_eq!(
        cli.run(&["releases", "-a", "web", "--json"])
            .success()
            .json()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn oversized_bodies_are_refused_and_change_nothing() {
    let (gitd, _cli, token) = server_with_an_app();
    let before = gitd.db_dump();
    let over_a_mebibyte = |prefix: &str, suffix: &str| {
        let padding = 1024 * 1024 + 1 - prefix.len() - suffix.len();
        format!("{prefix}{}{suffix}", "x".repeat(padding)).into_bytes()
    };

    for (method, path, body) in [
        ("POST", "/v1/apps", over_a_mebibyte(r#"{"name":""#, r#""}"#)),
        (
            "PATCH",
            "/v1/apps/web/config",
            over_a_mebibyte(r#"{"vars":{"A":""#, r#""}}"#),
        ),
        (
            "POST",
            "/v1/keys",
            over_a_mebibyte(r#"{"public_key":""#, r#""}"#),
        ),
    ] {
        let response = gitd.request(method, path, Some(&token), Some(&body));
        assert_eq!(response.status, 413, "{method} {path}: {}", response.text());
        assert_eq!(response.error_code(), "payload_too_large");
    }
    let login = over_a_mebibyte(r#"{"username":"admin","password":""#, r#""}"#);
    let response = gitd.request("POST", "/v1/login", None, Some(&login));
    assert_eq!(response.status, 413, "{}", response.text());

    assert_eq!(gitd.db_dump(), before);
}

#[test]
fn malformed_json_is_refused_and_changes_nothing() {
    let (gitd, _cli, token) = server_with_an_app();
    let before = gitd.db_dump();

    for (method, path, body) in [
        ("POST", "/v1/apps", r#"{"name":"#),
        ("POST", "/v1/apps", r#"{"name": 5}"#),
        ("POST", "/v1/apps", r#""web""#),
        ("POST", "/v1/apps", "not json"),
        ("PATCH", "/v1/apps/web/config", r#"{"vars": {"A": 5}}"#),
        ("PATCH", "/v1/apps/web/config", r#"{"vars": ["A"]}"#),
        ("POST", "/v1/keys", r#"{"key": "ssh-ed25519 AAAA"}"#),
        ("POST", "/v1/apps/web/collaborators", "{}"),
        ("POST", "/v1/users", r#"{"username": "x"}"#),
        ("POST", "/v1/login", r#"{"username": "admin"#),
    ] {
        let response = gitd.request(method, path, Some(&token), Some(body.as_bytes()));
        assert_eq!(
            response.status,
            400,
            "{method} {path} {body}: {}",
            response.text()
        );
        assert_eq!(response.error_code(), "invalid_input");
        assert!(
            response.text().contains("Malformed request body"),
            "{}",
            response.text()
        );
    }
    // JSON without saying so is refused too.
    let response = crate::util::http_request(
        gitd.http_addr,
        "POST",
        "/v1/apps",
        &[("Authorization", &format!("Bearer {token}"))],
        br#"{"name":"sneaky"}"#,
    );
    assert_eq!(response.status, 400, "{}", response.text());
    assert_eq!(response.error_code(), "invalid_input");

    assert_eq!(gitd.db_dump(), before);
}

#[test]
fn missing_or_forged_tokens_are_refused_and_change_nothing() {
    let (gitd, _cli, token) = server_with_an_app();
    let before = gitd.db_dump();
    let forged = format!("paas_{}", "0".repeat(64));
    let almost = format!("{}x", &token[..token.len() - 1]);

    let requests: [(&str, &str, Option<&str>); 8] = [
        ("GET", "/v1/whoami", None),
        ("GET", "/v1/apps", None),
        ("POST", "/v1/apps", Some(r#"{"name":"stolen"}"#)),
        ("DELETE", "/v1/apps/web?confirm=web", None),
        (
            "PATCH",
            "/v1/apps/web/config",
            Some(r#"{"vars":{"A":"1"}}"#),
        ),
        (
            "POST",
            "/v1/keys",
            Some(r#"{"public_key":"ssh-ed25519 AAAA"}"#),
        ),
        (
            "POST",
            "/v1/users",
            Some(r#"{"username":"eve","password":"eve-password"}"#),
        ),
        ("POST", "/v1/logout", None),
    ];
    for (method, path, body) in requests {
        let body = body.map(str::as_bytes);
        for authorization in [
            None,
            Some(format!("Bearer {forged}")),
            Some(format!("Bearer {almost}")),
            Some("Bearer ".to_owned()),
            Some(format!("Basic {token}")),
            Some(token.clone()),
        ] {
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(value) = &authorization {
                headers.push(("Authorization", value));
            }
            let response = crate::util::http_request(
                gitd.http_addr,
                method,
                path,
                &headers,
                body.unwrap_or_default(),
            );
            assert_eq!(
                response.status,
                401,
                "{method} {path} with {authorization:?}: {}",
                response.text()
            );
            assert_eq!(response.error_code(), "unauthorized");
        }
    }

    let cli = Cli::new();
    for bad in [forged.as_str(), almost.as_str()] {
        cli.cmd(&["apps:create", "stolen"])
            .env("PAAS_SERVER", gitd.url())
            .env("PAAS_TOKEN", bad)
            .run()
            .error("Invalid or expired token");
    }
    cli.cmd(&["apps"])
        .env("PAAS_SERVER", gitd.url())
        .run()
        .error("Not logged in");

    assert_eq!(gitd.db_dump(), before);
    // The real token still works: nothing above disturbed it.
    assert_eq!(
        gitd.request("GET", "/v1/whoami", Some(&token), None).status,
        200
    );
}

#[test]
fn unconfirmed_destroys_and_bad_usernames_are_refused_and_change_nothing() {
    let (gitd, cli, token) = server_with_an_app();
    let before = gitd.db_dump();

    for path in [
        "/v1/apps/web",
        "/v1/apps/web?confirm=",
        "/v1/apps/web?confirm=other",
    ] {
        let response = gitd.request("DELETE", path, Some(&token), None);
        assert_eq!(response.status, 400, "{path}: {}", response.text());
        assert_eq!(response.error_code(), "invalid_input");
    }
    for username in ["../x", "Eve", "a b", ""] {
        let body = serde_json::json!({"username": username, "password": "long-enough-1"});
        let response = gitd.request(
            "POST",
            "/v1/users",
            Some(&token),
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(response.status, 400, "{username:?}: {}", response.text());
        assert_eq!(response.error_code(), "invalid_input");
        cli.cmd(&["users:add", username, "--password-stdin"])
            .stdin("long-enough-1\n")
            .run()
            .error("invalid username");
        let body = serde_json::json!({ "username": username });
        let response = gitd.request(
            "POST",
            "/v1/apps/web/collaborators",
            Some(&token),
            Some(body.to_string().as_bytes()),
        );
        assert!(
            matches!(response.status, 400 | 404),
            "{username:?}: {}",
            response.text()
        );
        response.error_code();
    }

    assert_eq!(gitd.db_dump(), before);
    assert!(gitd.data_dir().join("repos/web.git").is_dir());
}

#[test]
fn usage_errors_exit_with_2() {
    let cli = Cli::new();
    for args in [
        &["config:set", "-a", "web"][..],
        &["no-such-command"],
        &["apps:create", "a", "b"],
        &["releases", "-n", "many"],
        &["completions", "tcsh"],
    ] {
        let out = cli.run(args);
        assert_eq!(out.code, Some(2), "{args:?}:\n{out}");
        assert!(out.stderr.starts_with("error: "), "{args:?}:\n{out}");
    }
    let out = cli.run(&["completions", "bash"]).success();
    assert!(out.stdout.contains("config:set"), "{out}");
}

#[test]
fn help_and_bare_paas_exit_0_with_usage_and_examples() {
    let cli = Cli::new();
    for args in [&[][..], &["help"]] {
        let out = cli.run(args).success();
        assert!(
            out.stdout
                .starts_with("Deploy and manage apps on a paas server\n\nUsage: paas [COMMAND]\n"),
            "{args:?}:\n{out}"
        );
        assert!(out.stdout.contains("\n  logs "), "{args:?}:\n{out}");
    }
    let logs = cli.run(&["help", "logs"]).success();
    assert!(logs.stdout.contains("\nUsage: paas logs "), "{logs}");
    let examples = logs
        .stdout
        .split_once("\nExamples:\n")
        .unwrap_or_else(|| panic!("an Examples section:\n{logs}"))
        .1;
    assert!(
        examples.starts_with("  $ paas logs -a myapp\n"),
        "{examples}"
    );
    assert!(
        examples.contains("  $ paas logs -a myapp -p web.2\n"),
        "{examples}"
    );
}

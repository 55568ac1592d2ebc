//! Where the CLI keeps its token: without a keyring backend it falls back to a 0600
//! `credentials.toml` and warns once; `PAAS_TOKEN` and `PAAS_SERVER` override what is stored.

use std::os::unix::fs::PermissionsExt;

use crate::util::{ADMIN_PASSWORD, ADMIN_USER, Cli, Gitd, Output};

fn login(
    gitd: &Gitd,
    cli: &Cli,
    configure: impl FnOnce(crate::util::Invocation<'_>) -> crate::util::Invocation<'_>,
) -> Output {
    configure(cli.cmd(&[
        "login",
        "--server",
        &gitd.url(),
        "--username",
        ADMIN_USER,
        "--password-stdin",
    ]))
    .stdin(format!("{ADMIN_PASSWORD}\n"))
    .run()
}

/// The fallback as the user meets it: a token in a private file, one warning, a working CLI.
fn assert_file_fallback(gitd: &Gitd, cli: &Cli, out: &Output, reason: &str) {
    assert_eq!(out.stdout, "Logged in as admin\n");
    let warnings: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(warnings.len(), 1, "want exactly one warning:\n{out}");
    assert!(
        warnings[0].starts_with("warning: no system keyring available")
            && warnings[0].contains(reason)
            && warnings[0].contains(&cli.credentials_file().display().to_string())
            && warnings[0].contains("0600"),
        "{out}"
    );

    let mode = std::fs::metadata(cli.credentials_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "credentials.toml mode {mode:o}");
    let dir_mode = std::fs::metadata(cli.config_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0, "config dir mode {dir_mode:o}");

    let token = cli
        .stored_token(&gitd.url())
        .expect("token in credentials.toml");
    assert_eq!(
        gitd.request("GET", "/v1/whoami", Some(&token), None).status,
        200
    );
    let config = std::fs::read_to_string(cli.config_dir().join("config.toml")).unwrap();
    assert!(!config.contains(&token), "token in config.toml:\n{config}");

    // Reading the stored token later is silent.
    let out = cli.run(&["whoami"]).success();
    assert_eq!((out.stdout.as_str(), out.stderr.as_str()), ("admin\n", ""));
}

#[test]
fn keyring_switched_off_falls_back_to_a_private_file_with_one_warning() {
    let gitd = Gitd::start();
    let cli = Cli::new();
    let out = login(&gitd, &cli, |cmd| cmd.env("PAAS_KEYRING", "off")).success();
    assert_file_fallback(&gitd, &cli, &out, "PAAS_KEYRING=off");
}

#[test]
fn no_keyring_backend_falls_back_to_a_private_file_with_one_warning() {
    let gitd = Gitd::start();
    let cli = Cli::new();
    // No D-Bus session: no bus address and an empty runtime dir, so the Secret Service
    // backend cannot be reached, as on a headless server.
    let runtime_dir = tempfile::tempdir().unwrap();
    let out = login(&gitd, &cli, |cmd| {
        cmd.env_remove("PAAS_KEYRING")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
    })
    .success();
    assert_file_fallback(&gitd, &cli, &out, "(");
    assert!(!out.stderr.contains("PAAS_KEYRING=off"), "{out}");
}

#[test]
fn logging_in_again_replaces_the_stored_token() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    let first = cli.stored_token(&gitd.url()).unwrap();
    let out = login(&gitd, &cli, |cmd| cmd).success();
    assert_eq!(out.stderr.lines().count(), 1, "{out}");
    let second = cli.stored_token(&gitd.url()).unwrap();
    assert_ne!(first, second);
    let mode = std::fs::metadata(cli.credentials_file())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn paas_token_and_paas_server_override_what_is_stored() {
    let gitd = Gitd::start();
    let other = Gitd::start();
    let cli = gitd.admin();
    let other_token = other.token(ADMIN_USER, ADMIN_PASSWORD);
    cli.run(&["apps:create", "here"]).success();
    other.admin().run(&["apps:create", "there"]).success();

    let names = |out: Output| -> Vec<String> {
        out.success()
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(cli.run(&["apps", "--json"])), ["here"]);
    let overridden = cli
        .cmd(&["apps", "--json"])
        .env("PAAS_SERVER", other.url())
        .env("PAAS_TOKEN", &other_token)
        .run();
    assert_eq!(names(overridden), ["there"]);

    // PAAS_SERVER alone: no token is stored for that server.
    cli.cmd(&["apps"])
        .env("PAAS_SERVER", other.url())
        .run()
        .error("Not logged in");
    cli.cmd(&["apps"])
        .env("PAAS_SERVER", "not a url")
        .run()
        .error("invalid server URL");
    // A server that is not there is reported as such.
    let gone = format!("http://{}", gitd.http_addr);
    drop(gitd);
    cli.cmd(&["apps"])
        .env("PAAS_SERVER", &gone)
        .env("PAAS_TOKEN", &other_token)
        .run()
        .error("could not reach the paas server");
}

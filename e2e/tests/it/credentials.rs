//! Where the CLI keeps its token: without a keyring backend it falls back to a 0600
//! `credentials.toml` and warns once; `PAAS_TOKEN` and `PAAS_SERVER` override what is stored.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::util::{ADMIN_PASSWORD, ADMIN_USER, Cli, Gitd, Invocation, Output, wait_for};

fn login(
    gitd: &Gitd,
    cli: &Cli,
    configure: impl FnOnce(Invocation<'_>) -> Invocation<'_>,
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

/// A private D-Bus session bus (`dbus-daemon --session`), stopped on drop.
struct SessionBus {
    address: String,
    pid: String,
}

impl SessionBus {
    fn start() -> SessionBus {
        let out = Command::new("dbus-daemon")
            .args(["--session", "--fork", "--print-address=1", "--print-pid=1"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .expect("dbus-daemon (apt-get install dbus-daemon)");
        assert!(out.status.success(), "dbus-daemon failed");
        let printed = String::from_utf8(out.stdout).unwrap();
        let mut lines = printed.lines();
        SessionBus {
            address: lines.next().expect("bus address").to_owned(),
            pid: lines.next().expect("bus pid").to_owned(),
        }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

/// The real keyring of a Linux desktop: gnome-keyring-daemon serving the Secret Service API
/// on a private session bus, unlocked. Stopped on drop.
struct SecretService {
    runtime_dir: tempfile::TempDir,
    keyring: Child,
    bus: SessionBus,
}

impl SecretService {
    fn start(home: &Path) -> SecretService {
        let bus = SessionBus::start();
        let runtime_dir = tempfile::tempdir().unwrap();
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon (apt-get install gnome-keyring)");
        // The password of the login keyring, read until end of input.
        let mut stdin = keyring.stdin.take().unwrap();
        stdin.write_all(b"keyring-password").unwrap();
        drop(stdin);

        wait_for("gnome-keyring to own org.freedesktop.secrets", || {
            let out = Command::new("dbus-send")
                .arg(format!("--bus={}", bus.address))
                .args([
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .expect("dbus-send (apt-get install dbus-bin)");
            String::from_utf8_lossy(&out.stdout)
                .contains("boolean true")
                .then_some(())
        });
        SecretService {
            runtime_dir,
            keyring,
            bus,
        }
    }

    /// `paas ARGS` using this keyring (and not `PAAS_KEYRING=off`).
    fn cmd<'a>(&self, cli: &'a Cli, args: &[&str]) -> Invocation<'a> {
        cli.cmd(args)
            .env_remove("PAAS_KEYRING")
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus.address)
            .env("XDG_RUNTIME_DIR", self.runtime_dir.path())
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        let _ = self.keyring.kill();
        let _ = self.keyring.wait();
    }
}

#[test]
fn a_session_bus_without_a_usable_secret_service_falls_back_to_the_file() {
    let gitd = Gitd::start();
    let cli = Cli::new();
    let bus = SessionBus::start();
    let runtime_dir = tempfile::tempdir().unwrap();
    let out = login(&gitd, &cli, |cmd| {
        cmd.env_remove("PAAS_KEYRING")
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .env("XDG_RUNTIME_DIR", runtime_dir.path())
    })
    .success();
    // The reason depends on what the bus offers (no service, or one that cannot be used).
    assert_file_fallback(&gitd, &cli, &out, "");
    assert!(!out.stderr.contains("PAAS_KEYRING=off"), "{out}");
}

#[test]
fn a_real_keyring_keeps_the_token_and_logout_removes_it() {
    let gitd = Gitd::start();
    let cli = Cli::new();
    let keyring = SecretService::start(cli.home());

    let out = keyring
        .cmd(
            &cli,
            &[
                "login",
                "--server",
                &gitd.url(),
                "--username",
                ADMIN_USER,
                "--password-stdin",
            ],
        )
        .stdin(format!("{ADMIN_PASSWORD}\n"))
        .run()
        .success();
    assert_eq!(
        (out.stdout.as_str(), out.stderr.as_str()),
        ("Logged in as admin\n", "")
    );
    assert!(!cli.credentials_file().exists(), "the token went to a file");

    let out = keyring.cmd(&cli, &["whoami"]).run().success();
    assert_eq!(out.stdout, "admin\n");
    // Without the keyring the CLI finds no token: it is in the keyring and nowhere else.
    cli.run(&["whoami"]).error("Not logged in");

    keyring.cmd(&cli, &["logout"]).run().success();
    keyring.cmd(&cli, &["whoami"]).run().error("Not logged in");
}

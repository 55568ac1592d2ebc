//! The SSH edge under attack, through the real platform: a flood of idle unauthenticated
//! connections, a client that wants compression (the zlib bomb), an ssh-audit of the offered
//! algorithms, sessions that outlive their rights, a squatted public key, and forged ref
//! updates on the deploy socket.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use crate::git_push::ls_remote;
use crate::platform::{Platform, User};
use crate::util::{
    commit_files, git_command, hello_repo, new_key, sign_key_challenge, ssh_command, wait_for,
};

/// The auth timeout the flood test sets in gitd.toml.
const AUTH_TIMEOUT_SECONDS: i64 = 5;
/// How long a socket read may wait for gitd to close a connection it should close.
const CLOSE_GUARD: Duration = Duration::from_secs(60);

fn platform_with_ssh(settings: &[(&str, i64)]) -> Platform {
    let mut ssh = toml::Table::new();
    for (key, value) in settings {
        ssh.insert((*key).to_owned(), (*value).into());
    }
    let mut config = toml::Table::new();
    config.insert("ssh".into(), ssh.into());
    Platform::for_pushes_with_gitd_config(config)
}

/// Reads `stream` to its end: true once gitd closed it, false if it stayed open `CLOSE_GUARD`.
fn closed_by_the_server(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(CLOSE_GUARD)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn idle_connections_neither_lock_out_a_push_nor_outlive_the_auth_timeout() {
    let platform = platform_with_ssh(&[("auth_timeout_seconds", AUTH_TIMEOUT_SECONDS)]);
    let alice = platform.user("alice");
    let app = platform.app(&alice, "flood");
    let address = platform.gitd.ssh_addr;

    // Plain TCP connections from the pusher's own address that never say a word.
    let mut flood: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(address).expect("connect"))
        .collect();
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    assert!(!ls_remote(&platform, &alice, &app).is_empty());

    for (index, stream) in flood.iter_mut().enumerate() {
        assert!(
            closed_by_the_server(stream),
            "idle connection {index} is still open"
        );
    }
    assert!(
        platform.gitd.log().contains("closed to make room"),
        "the flood never hit a cap"
    );
    // One that speaks SSH but never authenticates is closed too.
    let mut talker = TcpStream::connect(address).unwrap();
    talker.write_all(b"SSH-2.0-OpenSSH_9.6\r\n").unwrap();
    assert!(closed_by_the_server(&mut talker));
}

/// The peak resident set of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

struct AcceptAnyHostKey;

impl russh::client::Handler for AcceptAnyHostKey {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        _key: &russh::keys::ssh_key::PublicKey,
    ) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

/// Whether a russh client offering only `compression` gets as far as an auth exchange.
fn russh_client_gets_in(port: u16, compression: &'static [russh::compression::Name]) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let config = russh::client::Config {
            preferred: russh::Preferred {
                compression: std::borrow::Cow::Borrowed(compression),
                ..russh::Preferred::default()
            },
            ..Default::default()
        };
        let attempt = async {
            let mut handle =
                russh::client::connect(Arc::new(config), ("127.0.0.1", port), AcceptAnyHostKey)
                    .await?;
            handle.authenticate_none("git").await
        };
        tokio::time::timeout(CLOSE_GUARD, attempt)
            .await
            .expect("the SSH handshake hung")
            .is_ok()
    })
}

#[test]
fn compression_cannot_be_enabled_so_a_compressible_push_stays_small() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "zlib");
    let port = platform.gitd.ssh_addr.port();

    use russh::compression::{NONE, ZLIB, ZLIB_LEGACY};
    assert!(
        russh_client_gets_in(port, &[NONE]),
        "the control client failed"
    );
    assert!(!russh_client_gets_in(port, &[ZLIB]));
    assert!(!russh_client_gets_in(port, &[ZLIB_LEGACY, ZLIB]));

    // OpenSSH asking for compression gets none, both ways.
    let out = ssh_command(&alice.key, port)
        .args(["-vv", "-o", "Compression=yes"])
        .arg(format!("git-upload-pack '{app}.git'"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let debug = String::from_utf8_lossy(&out.stderr);
    for direction in ["server->client", "client->server"] {
        let line = debug
            .lines()
            .find(|l| l.contains(&format!("kex: {direction} cipher")))
            .unwrap_or_else(|| panic!("no {direction} kex line in:\n{debug}"));
        assert!(line.ends_with("compression: none"), "{line}");
    }

    // Megabytes of zeros, stored uncompressed in the pack, pushed with compression asked for.
    let repo = hello_repo();
    let zeros = "0".repeat(256 * 1024);
    let files: Vec<(String, String)> = (0..16)
        .map(|i| (format!("www/zeros-{i}.txt"), format!("{i}{zeros}")))
        .collect();
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, contents)| (path.as_str(), contents.as_str()))
        .collect();
    commit_files(repo.path(), &files, "compressible");
    let ssh_with_compression = format!(
        "{} -o Compression=yes",
        git_command(repo.path(), &alice.key, port)
            .get_envs()
            .find(|(name, _)| *name == "GIT_SSH_COMMAND")
            .and_then(|(_, value)| value)
            .unwrap()
            .to_string_lossy()
    );
    let pushed = git_command(repo.path(), &alice.key, port)
        .env("GIT_SSH_COMMAND", ssh_with_compression)
        .args(["-c", "pack.compression=0", "push", "-q"])
        .arg(platform.git_url(&app))
        .arg("main")
        .output()
        .unwrap();
    assert!(
        pushed.status.success(),
        "{}",
        String::from_utf8_lossy(&pushed.stderr)
    );
    let peak = peak_rss_kib(platform.gitd.pid());
    assert!(peak < 100 * 1024, "paas-gitd peaked at {peak} KiB");
}

#[test]
fn ssh_audit_finds_no_failures() {
    let platform = Platform::for_pushes();
    let out = Command::new("ssh-audit")
        .args(["-j", "-p"])
        .arg(platform.gitd.ssh_addr.port().to_string())
        .arg("127.0.0.1")
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run ssh-audit ({err}): install it with `pip install ssh-audit` (scripts/test does)")
        });
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "ssh-audit printed no JSON ({err}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    // ssh-audit's exit codes: 0 good, 2 warnings only, 3 failures.
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "ssh-audit exited with {:?}:\n{report:#}",
        out.status.code()
    );
    let mut failures = Vec::new();
    for section in ["kex", "key", "enc", "mac"] {
        for algorithm in report[section].as_array().unwrap() {
            if let Some(fail) = algorithm["notes"].get("fail") {
                failures.push(format!("{section} {}: {fail}", algorithm["algorithm"]));
            }
        }
    }
    assert!(failures.is_empty(), "ssh-audit failures: {failures:#?}");
    assert_eq!(report["cves"], serde_json::json!([]));
    assert_eq!(report["compression"], serde_json::json!(["none"]));
    let names = |section: &str| -> Vec<String> {
        report[section]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["algorithm"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        names("kex")
            .iter()
            .all(|k| !k.starts_with("diffie-hellman")),
        "{:?}",
        names("kex")
    );
    assert!(
        names("mac").iter().all(|m| !m.contains("sha1")),
        "{:?}",
        names("mac")
    );
}

/// Waits for the held push to be ended by gitd; returns its stderr.
#[track_caller]
fn ended_by_gitd(mut child: Child) -> String {
    let status = wait_for("gitd to end the held push", || child.try_wait().unwrap());
    assert!(!status.success(), "the held push ended with {status}");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(stderr.contains("revoked"), "{stderr}");
    stderr
}

fn fingerprint(key: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned()
}

fn add_collaborator(platform: &Platform, owner: &User, app: &str, username: &str) {
    let added = platform.api(
        "POST",
        &format!("/v1/apps/{app}/collaborators"),
        &owner.token,
        &serde_json::json!({ "username": username }).to_string(),
    );
    assert!(added.status / 100 == 2, "{}", added.text());
}

#[test]
fn removing_the_key_ends_a_live_push() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "keygone");
    let held = platform.hold_receive_pack(&alice.key, &app);

    let removed = platform.api(
        "DELETE",
        // A SHA-256 fingerprint is base64: a `/` in it must be escaped to stay one segment.
        &format!("/v1/keys/{}", fingerprint(&alice.key).replace('/', "%2F")),
        &alice.token,
        "",
    );
    assert_eq!(removed.status, 204, "{}", removed.text());
    ended_by_gitd(held);

    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("Permission denied (publickey)");
    // The lock the held push had is free: the app's next push (with a new key) deploys.
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path());
    let added = platform.gitd.add_key(&alice.token, &key);
    assert_eq!(added.status, 201, "{}", added.text());
    platform.push_ref(repo.path(), &key, &app, "main").ok();
}

#[test]
fn removing_a_collaborator_or_a_user_ends_their_live_push() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let bob = platform.user("bob");
    let app = platform.app(&alice, "shared");

    add_collaborator(&platform, &alice, &app, "bob");
    let held = platform.hold_receive_pack(&bob.key, &app);
    platform
        .paas(&["access:remove", "--app", &app, "bob"])
        .success();
    let stderr = ended_by_gitd(held);
    assert!(
        stderr.contains(&format!("paas: your access to {app} was revoked")),
        "{stderr}"
    );
    // Bob's login still works, for what he may still use.
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &bob.key, &app, "main")
        .rejected(&format!("Couldn't find that app: {app}"));

    add_collaborator(&platform, &alice, &app, "bob");
    let held = platform.hold_receive_pack(&bob.key, &app);
    platform.paas(&["users:remove", "bob"]).success();
    ended_by_gitd(held);
    platform
        .push_ref(repo.path(), &bob.key, &app, "main")
        .rejected("Permission denied (publickey)");
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
}

#[test]
fn a_public_key_cannot_be_squatted() {
    let platform = Platform::for_pushes();
    let victim = platform.user("victim");
    let mallory = platform.user("mallory");
    let victim_dir = tempfile::tempdir().unwrap();
    let victim_key = new_key(victim_dir.path());
    let victim_public = std::fs::read_to_string(victim_key.with_extension("pub")).unwrap();
    let carol = platform.gitd.user("carol");
    let before = platform.gitd.db_dump();

    // Mallory has the victim's public key and her own private key.
    let asked = serde_json::json!({ "public_key": victim_public.trim() }).to_string();
    let junk = platform.api(
        "POST",
        "/v1/keys/challenge",
        &mallory.token,
        r#"{"public_key": "ssh-ed25519 junk"}"#,
    );
    assert_eq!(junk.status, 400, "{}", junk.text());
    let issue = || {
        let issued = platform.api("POST", "/v1/keys/challenge", &mallory.token, &asked);
        assert_eq!(issued.status, 200, "{}", issued.text());
        issued.json()["challenge"].as_str().unwrap().to_owned()
    };
    let attempt = |challenge: &str, signature: &str| {
        platform.api(
            "POST",
            "/v1/keys",
            &mallory.token,
            &serde_json::json!({
                "public_key": victim_public.trim(),
                "challenge": challenge,
                "signature": signature,
            })
            .to_string(),
        )
    };
    let challenge = issue();
    let refused = attempt(&challenge, &sign_key_challenge(&mallory.key, &challenge));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("does not prove possession"),
        "{}",
        refused.text()
    );
    let refused = attempt(&issue(), "");
    assert_eq!(refused.status, 400, "{}", refused.text());
    // A signature by the victim over a challenge issued to someone else does not carry over.
    let victims = platform.api("POST", "/v1/keys/challenge", &victim.token, &asked);
    let victims = victims.json()["challenge"].as_str().unwrap().to_owned();
    let refused = attempt(&victims, &sign_key_challenge(&victim_key, &victims));
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("unknown or expired"),
        "{}",
        refused.text()
    );
    let no_proof = platform.api(
        "POST",
        "/v1/keys",
        &mallory.token,
        &serde_json::json!({ "public_key": victim_public.trim() }).to_string(),
    );
    assert_eq!(no_proof.status, 400, "{}", no_proof.text());

    // Through the CLI, holding only the .pub file.
    let only_public = tempfile::tempdir().unwrap();
    let copied = only_public.path().join("id_ed25519.pub");
    std::fs::copy(victim_key.with_extension("pub"), &copied).unwrap();
    carol
        .cmd(&["keys:add", copied.to_str().unwrap()])
        .env_remove("SSH_AUTH_SOCK")
        .run()
        .error("cannot prove you hold the private key");
    assert_eq!(platform.gitd.db_dump(), before);

    // The owner adds it; a later holder of the same key learns nothing about who has it.
    let added = platform.gitd.add_key(&victim.token, &victim_key);
    assert_eq!(added.status, 201, "{}", added.text());
    let again = platform.gitd.add_key(&mallory.token, &victim_key);
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(!again.text().contains("victim"), "{}", again.text());
}

/// Sends one request line to gitd's deploy socket; returns what it answered, line by line.
fn deploy_socket_exchange(platform: &Platform, request: &serde_json::Value) -> Vec<String> {
    let socket = platform.gitd.data_dir().join("run/deploy.sock");
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(CLOSE_GUARD))
        .expect("read timeout");
    writeln!(stream, "{request}").unwrap();
    BufReader::new(stream)
        .lines()
        .map(|line| line.expect("gitd answers and closes"))
        .collect()
}

#[test]
fn bad_ref_updates_on_the_deploy_socket_are_refused() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "socket");
    let before = platform.gitd.db_dump();
    let zero = "0".repeat(40);
    let request = |old: &str, new: &str, name: &str| {
        serde_json::json!({
            "token": "0".repeat(64),
            "app": app,
            "updates": [{ "old": old, "new": new, "name": name }],
            "object_directory": null,
            "alternate_object_directories": null,
            "quarantine_path": null,
        })
    };
    for (old, new, name, reason) in [
        (zero.as_str(), "abc", "refs/heads/main", "invalid object id"),
        (zero.as_str(), "é", "refs/heads/main", "invalid object id"),
        (zero.as_str(), "", "refs/heads/main", "invalid object id"),
        ("x", &"a".repeat(40), "refs/heads/main", "invalid object id"),
        (
            zero.as_str(),
            &"a".repeat(40),
            "refs/heads/../../x",
            "invalid ref name",
        ),
        (zero.as_str(), &"a".repeat(40), "main", "invalid ref name"),
        (
            zero.as_str(),
            &"b".repeat(64),
            "refs/heads/main",
            "differ in length",
        ),
    ] {
        let answer = deploy_socket_exchange(&platform, &request(old, new, name));
        assert_eq!(answer.len(), 2, "{answer:?}");
        let output: serde_json::Value = serde_json::from_str(&answer[0]).unwrap();
        let line = output["line"].as_str().unwrap();
        assert!(
            line.contains("malformed deploy request") && line.contains(reason),
            "{new:?} {name:?}: {line}"
        );
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&answer[1]).unwrap(),
            serde_json::json!({ "type": "finished", "success": false })
        );
    }
    assert_eq!(platform.gitd.db_dump(), before);
    // gitd is unharmed: a real push still deploys.
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
}

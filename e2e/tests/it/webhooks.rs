//! Webhooks end to end: a receiver on loopback (the test's own HTTP server) gets a deploy
//! event whose `Paas-Signature` checks out with the secret, and a crash event with its exit
//! status when the app exits after starting; a receiver that is down gets the configured
//! attempts and `paas webhooks:deliveries` says each failed and that gitd gave up. With the
//! platform's default settings a loopback or metadata URL is refused, bad input stores
//! nothing, and another user can neither see nor remove the app's webhooks.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::platform::{Platform, docker_lines, free_port};
use crate::util::{commit_files, head, hello_repo, wait_for};

const SECRET: &str = "e2e-webhook-secret-0123456789";

/// Serves, then exits with status 3 once `/tmp/crash` exists: a crash the test sets off.
const CRASHING_PROCFILE: &str =
    "web: httpd -p ${PORT:-5000} -h /www; while [ ! -e /tmp/crash ]; do sleep 1; done; exit 3\n";

/// One request a receiver got: its headers (names lowercased) and body.
struct Received {
    headers: Vec<(String, String)>,
    body: String,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// An HTTP server on 127.0.0.1 that answers every request 204 and hands it to the test.
struct Receiver {
    port: u16,
    requests: mpsc::Receiver<Received>,
}

impl Receiver {
    fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (sender, requests) = mpsc::channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = Vec::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':') {
                        headers.push((name.trim().to_lowercase(), value.trim().to_owned()));
                    }
                }
                let length: usize = headers
                    .iter()
                    .find(|(name, _)| name == "content-length")
                    .map_or(0, |(_, value)| value.parse().unwrap());
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n");
                let received = Received {
                    headers,
                    body: String::from_utf8(body).unwrap(),
                };
                if sender.send(received).is_err() {
                    return;
                }
            }
        });
        Receiver { port, requests }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The next request whose event is `kind`, skipping others.
    fn event(&self, kind: &str) -> Received {
        wait_for(&format!("a {kind} delivery"), || {
            let received = self
                .requests
                .recv_timeout(Duration::from_millis(500))
                .ok()?;
            (received.header("paas-event") == kind).then_some(received)
        })
    }
}

/// Checks `Paas-Signature: t=…,v1=…` as docs/deploying.md tells receivers to.
fn assert_signed(received: &Received, secret: &str) {
    let signature = received.header("paas-signature");
    let (t, v1) = signature
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("{signature}"));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", received.body).as_bytes());
    mac.verify_slice(&hex::decode(v1).unwrap())
        .unwrap_or_else(|_| panic!("bad signature {signature} of {}", received.body));
    let mut wrong = Hmac::<Sha256>::new_from_slice(b"another secret").unwrap();
    wrong.update(format!("{t}.{}", received.body).as_bytes());
    assert!(wrong.verify_slice(&hex::decode(v1).unwrap()).is_err());
}

fn webhook_settings() -> toml::Table {
    let mut webhooks = toml::Table::new();
    webhooks.insert("allow_private_addresses".into(), true.into());
    webhooks.insert("attempts".into(), 3.into());
    webhooks.insert("first_retry_ms".into(), 200.into());
    let mut config = toml::Table::new();
    config.insert("webhooks".into(), webhooks.into());
    config
}

#[test]
fn receivers_get_signed_deploy_and_crash_events_and_a_receiver_that_is_down_gets_retries() {
    let platform = Platform::for_pushes_with_gitd_config(webhook_settings());
    let app = platform.create_app("hooks");
    let receiver = Receiver::start();
    let added = platform
        .paas(&[
            "webhooks:add",
            &receiver.url(),
            "--include",
            "deploy,crash",
            "--secret",
            SECRET,
            "-a",
            &app,
        ])
        .success();
    assert!(
        added.stdout.contains(&format!("Secret: {SECRET}")),
        "{added}"
    );
    let down = format!("http://127.0.0.1:{}/", free_port());
    let added_down = platform
        .paas(&[
            "webhooks:add",
            &down,
            "--include",
            "deploy.succeeded",
            "-a",
            &app,
            "--json",
        ])
        .success()
        .json();
    let down_id = added_down["id"].as_u64().unwrap();
    assert!(
        added_down["secret"].as_str().unwrap().len() >= 32,
        "a secret is made: {added_down}"
    );
    let listed = platform.paas(&["webhooks", "-a", &app]).success();
    assert!(listed.stdout.contains(&receiver.url()), "{listed}");
    assert!(listed.stdout.contains(&down), "{listed}");

    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[("Procfile", CRASHING_PROCFILE)],
        "crash on demand",
    );
    platform.deploy(&app, repo.path());

    let deployed = receiver.event("deploy.succeeded");
    assert_signed(&deployed, SECRET);
    let payload = deployed.json();
    assert_eq!(payload["event"], "deploy.succeeded", "{payload}");
    assert_eq!(payload["app"], app.as_str(), "{payload}");
    assert_eq!(payload["id"], deployed.header("paas-delivery"), "{payload}");
    assert_eq!(payload["data"]["release"], 1, "{payload}");
    assert_eq!(payload["data"]["commit"], head(repo.path()), "{payload}");

    let web = platform.containers(&app, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    docker_lines(&["exec", &web[0], "touch", "/tmp/crash"]);
    let crashed = receiver.event("instance.crashed");
    assert_signed(&crashed, SECRET);
    let payload = crashed.json();
    assert_eq!(payload["data"]["exit_status"], 3, "{payload}");
    assert_eq!(payload["data"]["instance"], "web.1", "{payload}");
    assert_eq!(payload["data"]["release"], 1, "{payload}");

    // The receiver that is down: 3 attempts, 200 ms then 400 ms apart, then none.
    let log = wait_for("gitd to give up on the receiver that is down", || {
        let out = platform
            .paas(&[
                "webhooks:deliveries",
                "-a",
                &app,
                "--webhook",
                &down_id.to_string(),
            ])
            .success();
        out.stdout
            .contains("gave up after 3 attempts")
            .then_some(out.stdout)
    });
    let attempts: Vec<&str> = log.lines().skip(2).collect();
    assert_eq!(attempts.len(), 3, "{log}");
    for (line, next) in attempts.iter().zip([
        "gave up after 3 attempts",
        "retry in 400 ms",
        "retry in 200 ms",
    ]) {
        assert!(line.contains("deploy.succeeded"), "{log}");
        assert!(line.contains("Connection refused"), "{log}");
        assert!(
            line.ends_with(next),
            "{line:?} should end with {next:?}:\n{log}"
        );
    }
    let all = platform
        .paas(&["webhooks:deliveries", "-a", &app, "--json"])
        .success()
        .json();
    let delivered = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|attempt| attempt["next"] == "delivered")
        .count();
    assert!(
        delivered >= 2,
        "the deploy and the crash were delivered: {all}"
    );
}

#[test]
fn internal_urls_and_bad_input_are_refused_and_other_users_see_no_webhooks() {
    // The default settings: private addresses are off limits.
    let platform = Platform::for_pushes();
    let app = platform.create_app("hookrules");
    let add = |url: &str, include: &str| {
        platform.paas(&["webhooks:add", url, "--include", include, "-a", &app])
    };
    add("http://127.0.0.1:9/hook", "deploy").error("refused to deliver to 127.0.0.1");
    add("http://169.254.169.254/latest/meta-data/", "deploy").error("link-local");
    add("http://[::1]:8080/", "deploy").error("refused to deliver to ::1");
    add("https://hooks.example.com/", "dyno").error("unknown event \"dyno\"");
    add("ftp://hooks.example.com/", "deploy").error("use an http:// or https:// URL");
    add("https://user:pw@hooks.example.com/", "deploy").error("no user name or password");
    platform
        .paas(&[
            "webhooks:add",
            "https://hooks.example.com/",
            "--include",
            "deploy",
            "--secret",
            "short",
            "-a",
            &app,
        ])
        .error("invalid webhook secret");
    let none = platform.paas(&["webhooks", "-a", &app]).success();
    assert!(none.stdout.contains("has no webhooks"), "{none}");

    let added = platform
        .paas(&[
            "webhooks:add",
            "https://hooks.example.com/paas",
            "--include",
            "scale,rollback",
            "-a",
            &app,
            "--json",
        ])
        .success()
        .json();
    let id = added["id"].as_u64().unwrap().to_string();

    let mallory = platform.gitd.user("mallory");
    let mallorys = "mallory-own";
    mallory.run(&["apps:create", mallorys]).success();
    mallory
        .run(&["webhooks", "-a", &app])
        .error("Couldn't find that app.");
    mallory
        .run(&["webhooks:deliveries", "-a", &app])
        .error("Couldn't find that app.");
    mallory
        .run(&["webhooks:remove", &id, "-a", &app])
        .error("Couldn't find that app.");
    mallory
        .run(&["webhooks:remove", &id, "-a", mallorys])
        .error(&format!("has no webhook {id}"));
    mallory
        .run(&[
            "webhooks:add",
            "https://evil.example.com/",
            "--include",
            "deploy",
            "-a",
            &app,
        ])
        .error("Couldn't find that app.");
    mallory
        .run(&["apps:destroy", mallorys, "--confirm", mallorys])
        .success();

    let listed = platform
        .paas(&["webhooks", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["events"],
        serde_json::json!(["rollback", "scale"])
    );
    platform
        .paas(&["webhooks:remove", &id, "-a", &app])
        .success();
    let gone = platform.paas(&["webhooks", "-a", &app]).success();
    assert!(gone.stdout.contains("has no webhooks"), "{gone}");
}

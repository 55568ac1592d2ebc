//! The production guide works as written: the Traefik files in docs/operations.md ("Traefik on
//! the host, with TLS") are taken out of the page as they stand, given the test's own loopback
//! ports, paths and an ACME server that refuses at once (no request leaves the host), and run by
//! the real Traefik in front of a real agent and gitd. An app deployed behind it answers over
//! HTTPS on its host, plain HTTP is redirected to HTTPS, the API answers at
//! `https://paas.example.com` through the file provider's router, and the rollout itself went
//! through the guide's Traefik API entrypoint (the agent's `traefik_api`); maintenance mode
//! answers 503 through the guide's file provider directory (the agent's `traefik_routes_dir`).

use std::process::Command;

use crate::platform::{DOMAIN, Platform, Traefik, free_port, new_instance_key};
use crate::util::{hello_repo, wait_for, workspace_root};

const STATIC_CONFIG: &str = "/etc/traefik/traefik.yml";
const API_ROUTER: &str = "/etc/traefik/dynamic/paas-api.yml";
const API_HOST: &str = "paas.example.com";

/// The fenced block that follows the guide's line introducing `path` (a list item starting
/// with the path in backticks), without the list item's indentation.
fn documented_file(guide: &str, path: &str) -> String {
    let intro = format!("`{path}`");
    let mut lines = guide.lines().skip_while(|line| {
        let item = line
            .trim_start()
            .trim_start_matches(|c: char| c.is_ascii_digit());
        !item.trim_start_matches(". ").starts_with(&intro)
    });
    assert!(lines.next().is_some(), "the guide introduces {path}");
    let fence = lines
        .find(|line| line.trim_start().starts_with("```"))
        .unwrap_or_else(|| panic!("a code block after {path}"));
    let indent = fence.len() - fence.trim_start().len();
    let body: Vec<&str> = lines
        .take_while(|line| line.trim() != "```")
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect();
    body.join("\n") + "\n"
}

/// `text` with `from` replaced by `to`, which must occur exactly once: a guide that no longer
/// says what the test swaps fails here, not in some later, puzzling way.
fn swap(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "{from:?} once in the guide's file:\n{text}"
    );
    text.replacen(from, to, 1)
}

/// `curl` through the guide's Traefik: `-k` because the ACME server is unreachable and Traefik
/// serves its default certificate; `--resolve` so the TLS name and Host are the real ones.
fn curl(host: &str, port: u16, url: &str, extra: &[&str]) -> (String, String) {
    let output = Command::new("curl")
        .args([
            "-sk",
            "--max-time",
            "10",
            "-w",
            "\n%{http_code} %{redirect_url}",
        ])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
    (body.to_owned(), status.to_owned())
}

#[test]
fn the_guides_traefik_serves_apps_and_the_api_over_https() {
    let guide = std::fs::read_to_string(workspace_root().join("docs/operations.md")).unwrap();
    assert!(
        guide.contains("traefik_entrypoint = \"websecure\""),
        "the guide's agent routes on websecure"
    );
    let dir = tempfile::Builder::new()
        .prefix("paas-e2e-guide-traefik")
        .tempdir()
        .unwrap();
    let dynamic = dir.path().join("dynamic");
    std::fs::create_dir(&dynamic).unwrap();
    let (http_port, https_port, api_port) = (free_port(), free_port(), free_port());
    let instance_key = new_instance_key(&dir.path().join("agent-for-key.toml"));

    let config = documented_file(&guide, STATIC_CONFIG);
    let config = swap(
        &config,
        "address: \":80\"",
        &format!("address: \"127.0.0.1:{http_port}\""),
    );
    let config = swap(
        &config,
        "address: \":443\"",
        &format!("address: \"127.0.0.1:{https_port}\""),
    );
    let config = swap(
        &config,
        "\"127.0.0.1:8081\"",
        &format!("\"127.0.0.1:{api_port}\""),
    );
    let config = swap(&config, "<instance_key>", &instance_key);
    let config = swap(
        &config,
        "/etc/traefik/dynamic",
        &dynamic.display().to_string(),
    );
    let config = swap(
        &config,
        "/var/log/paas-router/access.log",
        &dir.path().join("access.log").display().to_string(),
    );
    let config = swap(
        &config,
        "/var/lib/traefik/acme.json",
        &dir.path().join("acme.json").display().to_string(),
    );
    // Port 1 on loopback: refused at once, so the resolver fails without leaving the host.
    let config = swap(
        &config,
        "    acme:\n",
        "    acme:\n      caServer: \"https://127.0.0.1:1/directory\"\n",
    );
    let config_path = dir.path().join("traefik.yml");
    std::fs::write(&config_path, config).unwrap();
    let traefik = Traefik::run(
        dir,
        &config_path,
        instance_key,
        format!("127.0.0.1:{https_port}"),
        format!("127.0.0.1:{api_port}"),
        dynamic.clone(),
    );

    let platform = Platform::behind(traefik, vec![("traefik_entrypoint", "websecure".into())]);
    let router = documented_file(&guide, API_ROUTER);
    let router = swap(
        &router,
        "http://127.0.0.1:8750",
        &format!("http://{}", platform.gitd.http_addr),
    );
    std::fs::write(dynamic.join("paas-api.yml"), router).unwrap();

    // The rollout waits on the guide's API entrypoint until Traefik routes the new instance.
    let app = platform.create_app("guide");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());

    let app_host = format!("{app}.{DOMAIN}");
    let (body, status) = curl(
        &app_host,
        https_port,
        &format!("https://{app_host}:{https_port}/"),
        &[],
    );
    assert_eq!(status.split(' ').next(), Some("200"), "{status} {body}");
    assert!(
        body.starts_with(&format!("Hello from {app} v1 on ")),
        "{body}"
    );

    let (_, status) = curl(
        &app_host,
        http_port,
        &format!("http://{app_host}:{http_port}/x"),
        &[],
    );
    assert_eq!(
        status,
        format!("301 https://{app_host}:{https_port}/x"),
        "plain HTTP is redirected to HTTPS"
    );

    let authorization = format!("Authorization: Bearer {}", platform.admin_token());
    let (body, status) = wait_for("the API router from the file provider", || {
        let (body, status) = curl(
            API_HOST,
            https_port,
            &format!("https://{API_HOST}:{https_port}/v1/apps"),
            &["-H", &authorization],
        );
        status.starts_with("200").then_some((body, status))
    });
    let apps: serde_json::Value = serde_json::from_str(&body)
        .unwrap_or_else(|err| panic!("the API's JSON through Traefik ({status}): {err}: {body}"));
    assert!(
        apps.as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["name"] == app.as_str()),
        "{apps}"
    );
    let (body, status) = curl(
        API_HOST,
        https_port,
        &format!("https://{API_HOST}:{https_port}/v1/apps"),
        &[],
    );
    assert!(status.starts_with("401"), "no token: {status} {body}");

    // Maintenance routes go through the guide's file provider directory too.
    platform.paas(&["maintenance:on", "-a", &app]).success();
    let (body, status) = curl(
        &app_host,
        https_port,
        &format!("https://{app_host}:{https_port}/"),
        &[],
    );
    assert!(status.starts_with("503"), "{status} {body}");
    platform.paas(&["maintenance:off", "-a", &app]).success();
    let (body, status) = curl(
        &app_host,
        https_port,
        &format!("https://{app_host}:{https_port}/"),
        &[],
    );
    assert!(status.starts_with("200"), "{status} {body}");
}

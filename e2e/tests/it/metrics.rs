//! Metrics end to end, through the real agent, Docker, Traefik and its Prometheus metrics: a
//! deployed app served a bounded load loop shows in `paas metrics --json` with requests (2xx),
//! CPU and memory samples of `web.1` and a deploy marker, the human view lists the same series,
//! and another user's request for the app's metrics is answered not-found.

use serde_json::Value;

use crate::platform::Platform;
use crate::util::{hello_repo, wait_for};

/// Requests sent before waiting, and at most a few more per look while waiting (the wait
/// itself is bounded by `wait_for`).
const LOAD: usize = 30;
const MORE_PER_LOOK: usize = 2;

fn requests_2xx(metrics: &Value) -> u64 {
    metrics["requests"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|point| point["status"]["2xx"].as_u64().unwrap_or(0))
        .sum()
}

fn web_1_points(metrics: &Value) -> usize {
    metrics["processes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|process| process["process"] == "web")
        .flat_map(|process| process["instances"].as_array().cloned().unwrap_or_default())
        .filter(|instance| instance["instance"] == "web.1")
        .map(|instance| instance["points"].as_array().map_or(0, Vec::len))
        .sum()
}

#[test]
fn an_apps_requests_cpu_memory_and_deploys_show_in_its_metrics_and_only_to_its_users() {
    let mut platform = Platform::start();
    platform.sample_metrics_every_second();
    let app = platform.create_app("metered");
    platform.deploy(&app, hello_repo().path());
    for _ in 0..LOAD {
        assert_eq!(platform.get(&app, "/").unwrap().status, 200);
    }

    let metrics = wait_for("requests, web.1 samples and a deploy marker", || {
        for _ in 0..MORE_PER_LOOK {
            platform.get(&app, "/").unwrap();
        }
        let out = platform.paas(&["metrics", "-a", &app, "--json"]).success();
        let metrics: Value = serde_json::from_str(&out.stdout).unwrap();
        (requests_2xx(&metrics) > 0
            && web_1_points(&metrics) > 0
            && !metrics["markers"].as_array().unwrap().is_empty())
        .then_some(metrics)
    });
    assert_eq!(metrics["app"], app.as_str());
    assert_eq!(metrics["period"], "1h");
    assert_eq!(metrics["resolution_secs"], 10);
    let marker = &metrics["markers"][0];
    assert_eq!(marker["kind"], "deploy", "{marker}");
    assert_eq!(marker["label"], "v1", "{marker}");
    let web = &metrics["processes"][0];
    let point = &web["instances"][0]["points"][0];
    assert!(point["memory_bytes"].as_u64().unwrap() > 0, "{point}");
    assert!(point["cpu_percent"].as_f64().unwrap() >= 0.0, "{point}");
    assert!(
        point["memory_limit_bytes"].as_u64().unwrap() >= point["memory_bytes"].as_u64().unwrap(),
        "{point}"
    );
    let requests = &metrics["requests"][0];
    assert!(
        requests["requests_per_sec"].as_f64().unwrap() > 0.0,
        "{requests}"
    );
    assert!(requests["p50_ms"].as_f64().is_some(), "{requests}");
    assert_eq!(requests["status"]["5xx"], 0, "{requests}");

    let text = platform
        .paas(&["metrics", "-a", &app, "--period", "24h"])
        .success()
        .stdout;
    assert!(
        text.starts_with(&format!("=== {app} Metrics (last 24h, 60 s points)\n")),
        "{text}"
    );
    for series in ["web.1 cpu", "web.1 memory", "requests", "p50 latency"] {
        assert!(text.contains(&format!("\n{series} ")), "{series} in {text}");
    }
    assert!(text.contains("  deploy  v1\n"), "{text}");

    let mallory = platform.user("mallory-metrics");
    for path in [
        format!("/v1/apps/{app}/metrics"),
        format!("/v1/apps/{app}/metrics?period=24h"),
        format!("/v1/apps/nosuchapp-{}/metrics", std::process::id()),
    ] {
        let answer = platform.api("GET", &path, &mallory.token, "");
        assert_eq!(answer.status, 404, "{path}: {}", answer.text());
        assert_eq!(answer.json()["error"]["code"], "not_found", "{path}");
        assert!(!answer.text().contains("processes"), "{}", answer.text());
    }
    let bad = platform.api(
        "GET",
        &format!("/v1/apps/{app}/metrics?period=2h"),
        platform.admin_token(),
        "",
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
}

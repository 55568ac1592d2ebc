//! The static Traefik config (`traefik.yml`) that agrees with the labels this agent puts on web
//! containers: the Docker provider limited to this agent's instance key, the file provider over
//! the page routes the agent writes (`crate::pages`), the JSON access log the agent reads the
//! router's lines from (`crate::logs::router`), the router's timeout for an app's answer
//! (Heroku's 30 s, logged as H12), the HTTP entrypoint
//! named as the agent's routers expect (`runtime.traefik_entrypoint`), the read-only API the
//! agent polls during rollouts and the Prometheus metrics per service on the same loopback
//! entrypoint, which the agent scrapes for each app's requests (`crate::metrics`). `paas-agent traefik-config` prints it; `scripts/up`,
//! `scripts/bench` and the e2e fixtures all run Traefik with it, so the label vocabulary and the
//! static config live beside each other. Touches no file and no Docker: it only renders text.

use std::net::SocketAddr;

use clap::ValueEnum;

use crate::config::AgentConfig;
use crate::logs::router::access_log_path;
use crate::naming::labels::traefik_constraint;
use crate::pages::routes_dir;

/// Traefik's log levels that paas uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    fn as_traefik(self) -> &'static str {
        match self {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        }
    }
}

/// Seconds Traefik waits for an app's response headers before it answers 504 itself: Heroku's
/// router timeout (H12). Without one, Traefik waits for ever.
pub const DEFAULT_RESPONSE_TIMEOUT_SECS: u64 = 30;

/// Where Traefik listens.
pub struct Listeners {
    /// The entrypoint the agent's routers name (`runtime.traefik_entrypoint`).
    pub web: SocketAddr,
    /// The API and `/ping` (entrypoint `traefik`), which `runtime.traefik_api` should point at.
    pub api: SocketAddr,
}

/// The YAML text of the static config. Every interpolated value is a socket address, an
/// entrypoint name checked by the agent's config (`[A-Za-z0-9_-]`) or a constraint over a hex
/// key, so none needs escaping inside double quotes; the one path is written as a JSON string,
/// which YAML reads as the same double-quoted string.
/// `response_timeout_secs` is how long an app may take to start answering
/// ([`DEFAULT_RESPONSE_TIMEOUT_SECS`] unless a test needs a shorter one).
pub fn render(
    config: &AgentConfig,
    listeners: &Listeners,
    log_level: LogLevel,
    response_timeout_secs: u64,
) -> String {
    let entrypoint = &config.runtime.traefik_entrypoint;
    let routes = serde_json::to_string(&routes_dir(config).to_string_lossy())
        .expect("a string always serializes");
    let access_log = serde_json::to_string(&access_log_path(config).to_string_lossy())
        .expect("a string always serializes");
    let constraint = traefik_constraint(config.instance_key());
    let (web, api, level) = (listeners.web, listeners.api, log_level.as_traefik());
    let buckets = crate::metrics::BUCKETS
        .iter()
        .map(f64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "# Written by `paas-agent traefik-config`: the static config that agrees with the agent's
# container labels. Holds the agent's instance key: keep it private (mode 0600).
entryPoints:
  {entrypoint}:
    address: \"{web}\"
  traefik:
    address: \"{api}\"
global:
  checkNewVersion: false
  sendAnonymousUsage: false
api:
  insecure: true
ping: {{}}
providers:
  # Pick up new containers within 50 ms instead of the default 2 s.
  providersThrottleDuration: 50ms
  docker:
    exposedByDefault: false
    # Only containers carrying the agent's secret instance key: never an image's or a build
    # step's labels.
    constraints: \"{constraint}\"
  # The routes of apps to the agent's pages (maintenance, no web processes), which the agent
  # writes and removes.
  file:
    directory: {routes}
    watch: true
# An app that has not started answering after this long gets Traefik's 504, which the agent
# logs as `code=H12` (Heroku's router timeout).
serversTransport:
  forwardingTimeouts:
    responseHeaderTimeout: {response_timeout_secs}s
# One JSON line per request, which the agent turns into the apps' `paas[router]` log lines
# (and truncates once read). No headers: they may carry credentials.
accessLog:
  filePath: {access_log}
  format: json
  fields:
    headers:
      defaultMode: drop
# Requests and latency per service (`/metrics` on the API's entrypoint), which the agent
# scrapes for every app's requests/s, status classes and percentiles.
metrics:
  prometheus:
    entryPoint: traefik
    addEntryPointsLabels: false
    addRoutersLabels: false
    addServicesLabels: true
    buckets: [{buckets}]
log:
  level: {level}
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A loaded config always has its state dir resolved.
    fn generated() -> AgentConfig {
        let mut config = AgentConfig::generate();
        config.state_dir = Some("/srv/paas/agent state".into());
        config
    }

    fn listeners() -> Listeners {
        Listeners {
            web: "127.0.0.1:8080".parse().unwrap(),
            api: "127.0.0.1:8081".parse().unwrap(),
        }
    }

    #[test]
    fn the_config_names_the_agents_entrypoint_key_and_ports() {
        let mut config = generated();
        config.runtime.traefik_entrypoint = "public".to_owned();
        let text = render(
            &config,
            &listeners(),
            LogLevel::Warn,
            DEFAULT_RESPONSE_TIMEOUT_SECS,
        );
        let key = config.instance_key().as_str();
        assert!(text.contains("\n  public:\n    address: \"127.0.0.1:8080\"\n"));
        assert!(text.contains("\n  traefik:\n    address: \"127.0.0.1:8081\"\n"));
        assert!(text.contains(&format!(
            "\n    constraints: \"Label(`paas.instance`,`{key}`)\"\n"
        )));
        assert!(text.contains("\n    exposedByDefault: false\n"));
        assert!(text.contains("\n  providersThrottleDuration: 50ms\n"));
        let routes = config.state_dir().join("traefik");
        assert!(text.contains(&format!(
            "\n  file:\n    directory: \"{}\"\n    watch: true\n",
            routes.display()
        )));
        assert!(text.contains("\napi:\n  insecure: true\nping: {}\n"));
        assert!(text.contains(&format!(
            "\naccessLog:\n  filePath: \"{}\"\n  format: json\n",
            config.state_dir().join("router").join("access.log").display()
        )));
        assert!(text.ends_with("log:\n  level: WARN\n"));
    }

    #[test]
    fn prometheus_metrics_are_per_service_on_the_api_entrypoint() {
        let text = render(&generated(), &listeners(), LogLevel::Warn, 30);
        assert!(text.contains(
            "\nmetrics:\n  prometheus:\n    entryPoint: traefik\n    addEntryPointsLabels: false\n    addRoutersLabels: false\n    addServicesLabels: true\n    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]\n"
        ));
    }

    #[test]
    fn apps_get_heroku_s_30_s_router_timeout_unless_told_otherwise() {
        let transport = |secs| {
            format!(
                "\nserversTransport:\n  forwardingTimeouts:\n    responseHeaderTimeout: {secs}s\n"
            )
        };
        let text = render(
            &generated(),
            &listeners(),
            LogLevel::Warn,
            DEFAULT_RESPONSE_TIMEOUT_SECS,
        );
        assert!(text.contains(&transport(30)), "{text}");
        let text = render(&generated(), &listeners(), LogLevel::Warn, 2);
        assert!(text.contains(&transport(2)), "{text}");
    }

    #[test]
    fn the_constraint_is_the_one_the_agent_prints() {
        let config = generated();
        let text = render(&config, &listeners(), LogLevel::Info, 30);
        assert!(text.contains(&traefik_constraint(config.instance_key())));
        assert!(text.ends_with("  level: INFO\n"));
    }

    #[test]
    fn every_line_is_indented_by_two_spaces_per_level() {
        let text = render(&generated(), &listeners(), LogLevel::Warn, 30);
        for line in text.lines() {
            let indent = line.len() - line.trim_start().len();
            assert_eq!(indent % 2, 0, "odd indentation: {line:?}");
            assert!(!line.contains('\t'), "a tab in YAML: {line:?}");
        }
    }
}

//! When a new `web` instance counts as ready in a rollout: the app's own startup checks (its
//! `app.json` `healthchecks`, carried by the spec) or the agent's default probe, and how long
//! it may take (the checks' budget, else `ready_timeout_secs`). The first check's path is the
//! one Docker's probe asks (gitd sends it as the spec's health path), so it decides when
//! Traefik routes to the instance; once the instance is healthy and routed, the agent tries
//! every check itself against the instance's address, `attempts` times, `timeout` seconds
//! each, `wait` seconds apart. A failure names the check, its path and what it last got; an
//! instance whose probe was refused a connection throughout is told it must listen on `$PORT`.
//! The probe's output is shown once per distinct line ([`distinct_lines`]): a probe that tried
//! forty times says the same forty times.

use std::time::Duration;

use paas_api::agent::AppSpec;
use paas_api::app_json::healthchecks::HealthCheck;
use tokio::time::Instant;

use super::container::APP_PORT;
use super::traefik::server_url;
use crate::config::RuntimeConfig;

/// How one change judges its new `web` instances ready.
#[derive(Debug, Clone)]
pub struct Readiness {
    pub checks: Vec<HealthCheck>,
    pub timeout_secs: u64,
}

impl Readiness {
    /// The checks of `spec` (the change's desired state, if it has one), else the default.
    pub fn of(spec: Option<&AppSpec>, config: &RuntimeConfig) -> Readiness {
        let checks = spec.map(|spec| &spec.healthchecks);
        Readiness {
            checks: checks.map(|c| c.web.clone()).unwrap_or_default(),
            timeout_secs: checks
                .and_then(|c| c.ready_timeout_secs())
                .unwrap_or(config.ready_timeout_secs),
        }
    }

    /// Why `label` is not ready at its deadline, given the last output of Docker's probe.
    pub fn not_healthy(&self, label: &str, last_check: Option<&str>) -> String {
        let secs = self.timeout_secs;
        if last_check.is_some_and(never_listened) {
            return format!(
                "Web process failed to bind to $PORT within {secs} seconds of launch: {label} must listen on $PORT ({APP_PORT}) (Heroku's R10)"
            );
        }
        let last = last_check
            .map(|c| format!(" (last health check: {c})"))
            .unwrap_or_default();
        match self.checks.first() {
            Some(check) => format!(
                "{label} failed health check {:?} (GET {}): not healthy within {secs} s{last}",
                check.name, check.path
            ),
            None => format!("{label} did not become healthy within {secs} s{last}"),
        }
    }

    /// Tries every check against the instance at `ip`, counting `initialDelay` from `begun`
    /// (when the change started waiting for it); the first that fails, as a reason.
    pub async fn run_checks(&self, label: &str, ip: &str, begun: Instant) -> Result<(), String> {
        for check in &self.checks {
            tokio::time::sleep_until(begun + Duration::from_secs(check.initial_delay.into())).await;
            try_check(check, &format!("{}{}", server_url(ip), check.path))
                .await
                .map_err(|last| {
                    format!(
                        "{label} failed health check {:?} (GET {}): {last} after {} attempt(s)",
                        check.name, check.path, check.attempts
                    )
                })?;
        }
        Ok(())
    }
}

/// `output` with each distinct line once, in the order first seen, followed by how often it
/// came when it came more than once (`wget: server returned error: HTTP/1.0 500 (40 times)`).
pub fn distinct_lines(output: &str) -> String {
    let mut counted: Vec<(&str, usize)> = Vec::new();
    for line in output
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        match counted.iter_mut().find(|(seen, _)| *seen == line) {
            Some((_, count)) => *count += 1,
            None => counted.push((line, 1)),
        }
    }
    counted
        .into_iter()
        .map(|(line, count)| match count {
            1 => line.to_owned(),
            _ => format!("{line} ({count} times)"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// busybox wget's words for a port nobody listens on.
fn never_listened(output: &str) -> bool {
    output.contains("Connection refused")
}

/// Tries `check` up to its attempts; what the last attempt got, if none passed.
async fn try_check(check: &HealthCheck, url: &str) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(check.timeout.into()))
        .build()
        .map_err(|err| err.to_string())?;
    let mut last = String::new();
    for attempt in 1..=check.attempts {
        match client.get(url).send().await {
            Ok(response)
                if response.status().is_success() || response.status().is_redirection() =>
            {
                return Ok(());
            }
            Ok(response) => last = format!("answered {}", response.status().as_u16()),
            Err(err) if err.is_timeout() => {
                last = format!("no answer within {} s", check.timeout);
            }
            Err(err) if err.is_connect() => {
                last = format!("connection refused: the process must listen on $PORT ({APP_PORT})");
            }
            Err(err) => last = err.to_string(),
        }
        if attempt < check.attempts {
            tokio::time::sleep(Duration::from_secs(check.wait.into())).await;
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use paas_api::app_json::parse_app_json;

    use super::*;

    fn readiness(app_json: &str) -> Readiness {
        Readiness {
            checks: parse_app_json(app_json).unwrap().healthchecks.web,
            timeout_secs: 12,
        }
    }

    #[test]
    fn a_failure_names_the_check_or_says_to_listen_on_port() {
        let checks = readiness(r#"{"healthchecks":{"web":[{"name":"ready","path":"/health"}]}}"#);
        let reason = checks.not_healthy(
            "web.1 (x)",
            Some("exit 1: wget: server returned error: HTTP/1.0 500"),
        );
        assert_eq!(
            reason,
            "web.1 (x) failed health check \"ready\" (GET /health): not healthy within 12 s (last health check: exit 1: wget: server returned error: HTTP/1.0 500)"
        );
        let refused = "exit 1: wget: can't connect to remote host (127.0.0.1): Connection refused";
        let reason = readiness("{}").not_healthy("web.1 (x)", Some(refused));
        assert!(
            reason.starts_with("Web process failed to bind to $PORT within 12 seconds"),
            "{reason}"
        );
        assert!(reason.contains("must listen on $PORT (5000)"), "{reason}");
        assert_eq!(
            readiness("{}").not_healthy("web.1 (x)", None),
            "web.1 (x) did not become healthy within 12 s"
        );
    }

    #[test]
    fn a_probe_output_says_each_distinct_line_once_with_its_count() {
        let refused = "wget: can't connect to remote host (127.0.0.1): Connection refused";
        let output = format!("{refused}\n").repeat(40);
        assert_eq!(distinct_lines(&output), format!("{refused} (40 times)"));
        let mixed = format!("{refused}\n\nwget: bad address 'x'\n  {refused}  \n");
        assert_eq!(
            distinct_lines(&mixed),
            format!("{refused} (2 times)\nwget: bad address 'x'")
        );
        assert_eq!(distinct_lines("one line"), "one line");
        assert_eq!(distinct_lines("\n \n"), "");
    }

    #[tokio::test]
    async fn checks_pass_on_2xx_and_fail_naming_the_last_answer() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let mut request = [0u8; 1024];
                let read = stream.read(&mut request).await.unwrap();
                let ok = String::from_utf8_lossy(&request[..read]).starts_with("GET /ok ");
                let status = if ok {
                    "200 OK"
                } else {
                    "500 Internal Server Error"
                };
                let answer =
                    format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            }
        });
        let check = |path: &str| {
            parse_app_json(&format!(
                r#"{{"healthchecks":{{"web":[{{"name":"c","path":"{path}","attempts":2,"wait":0,"timeout":2}}]}}}}"#
            ))
            .unwrap()
            .healthchecks
            .web
            .remove(0)
        };
        let base = format!("http://127.0.0.1:{port}");
        assert_eq!(
            try_check(&check("/ok"), &format!("{base}/ok")).await,
            Ok(())
        );
        assert_eq!(
            try_check(&check("/bad"), &format!("{base}/bad")).await,
            Err("answered 500".to_owned())
        );
    }
}

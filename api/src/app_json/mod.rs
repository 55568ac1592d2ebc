//! `app.json` at the root of a pushed tree, read with the Procfile: the parts paas acts on,
//! `cron` ([`cron`]) and `healthchecks` ([`healthchecks`]), both in Dokku's format. Every
//! other top-level key (Heroku's `name`, `env`, `addons`, `scripts`, …) is ignored. The file
//! is the tenant's: it is size-capped, counts are bounded, and each problem is refused with
//! one line naming the key (`app.json: cron[1].schedule: …`), so the push is rejected before
//! anything changes. A release keeps what it was deployed with ([`AppJson`] is stored with
//! it), so a rollback brings back the old jobs and checks.

pub mod cron;
pub mod healthchecks;
pub mod status;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use self::cron::{ConcurrencyPolicy, CronJob, MAX_CRON_COMMAND_BYTES, MAX_CRON_JOBS, Schedule};
use self::healthchecks::{
    DEFAULT_ATTEMPTS, DEFAULT_TIMEOUT_SECS, DEFAULT_WAIT_SECS, HealthCheck, Healthchecks,
    MAX_ATTEMPTS, MAX_CHECKS, MAX_INITIAL_DELAY_SECS, MAX_NAME_BYTES, MAX_TIMEOUT_SECS,
    MAX_WAIT_SECS,
};
use crate::names::HealthPath;

/// The largest `app.json` a push may carry, in bytes.
pub const MAX_APP_JSON_BYTES: usize = 64 * 1024;

/// What paas takes from an `app.json`; empty when the tree has none.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppJson {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cron: Vec<CronJob>,
    #[serde(default, skip_serializing_if = "Healthchecks::is_empty")]
    pub healthchecks: Healthchecks,
}

impl AppJson {
    pub fn is_empty(&self) -> bool {
        self.cron.is_empty() && self.healthchecks.is_empty()
    }
}

/// Why an `app.json` was refused: one line, naming the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("app.json: {0}")]
pub struct AppJsonError(String);

fn fail<T>(message: impl Into<String>) -> Result<T, AppJsonError> {
    Err(AppJsonError(message.into()))
}

/// Reads `text` (the file's contents).
pub fn parse_app_json(text: &str) -> Result<AppJson, AppJsonError> {
    if text.len() > MAX_APP_JSON_BYTES {
        return fail(format!("the file is over {MAX_APP_JSON_BYTES} bytes"));
    }
    let value: Value =
        serde_json::from_str(text).or_else(|err| fail(format!("not valid JSON: {err}")))?;
    let Value::Object(document) = value else {
        return fail("the file must be a JSON object");
    };
    let cron = match document.get("cron") {
        None | Some(Value::Null) => Vec::new(),
        Some(value) => parse_cron(value)?,
    };
    let healthchecks = match document.get("healthchecks") {
        None | Some(Value::Null) => Healthchecks::default(),
        Some(value) => parse_healthchecks(value)?,
    };
    Ok(AppJson { cron, healthchecks })
}

fn parse_cron(value: &Value) -> Result<Vec<CronJob>, AppJsonError> {
    let Value::Array(entries) = value else {
        return fail("cron must be a list of {\"command\", \"schedule\"} objects");
    };
    if entries.len() > MAX_CRON_JOBS {
        return fail(format!(
            "cron has {} jobs; at most {MAX_CRON_JOBS} are allowed",
            entries.len()
        ));
    }
    let mut jobs: Vec<CronJob> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("cron[{index}]");
        let entry = object(entry, &at)?;
        known_keys(entry, &at, &["command", "schedule", "concurrency_policy"])?;
        let command = string(entry, &at, "command")?
            .ok_or_else(|| AppJsonError(format!("{at}.command is missing")))?;
        if command.trim().is_empty() {
            return fail(format!("{at}.command is empty"));
        }
        if command.len() > MAX_CRON_COMMAND_BYTES || command.chars().any(char::is_control) {
            return fail(format!(
                "{at}.command must be one line of at most {MAX_CRON_COMMAND_BYTES} bytes without control characters"
            ));
        }
        let schedule: Schedule = string(entry, &at, "schedule")?
            .ok_or_else(|| AppJsonError(format!("{at}.schedule is missing")))?
            .parse()
            .or_else(|err| fail(format!("{at}.schedule: {err}")))?;
        let concurrency_policy = match string(entry, &at, "concurrency_policy")? {
            None | Some("forbid") => ConcurrencyPolicy::Forbid,
            Some("allow") => ConcurrencyPolicy::Allow,
            Some(other) => {
                return fail(format!(
                    "{at}.concurrency_policy {other:?} is not supported (forbid or allow)"
                ));
            }
        };
        let job = CronJob {
            command: command.to_owned(),
            schedule,
            concurrency_policy,
        };
        if let Some(first) = jobs.iter().position(|other| other.id() == job.id()) {
            return fail(format!("{at} repeats cron[{first}]"));
        }
        jobs.push(job);
    }
    Ok(jobs)
}

fn parse_healthchecks(value: &Value) -> Result<Healthchecks, AppJsonError> {
    let document = object(value, "healthchecks")?;
    if let Some(other) = document.keys().find(|key| key.as_str() != "web") {
        return fail(format!(
            "healthchecks.{} is not supported: only web has checks",
            printable(other)
        ));
    }
    let Some(web) = document.get("web") else {
        return Ok(Healthchecks::default());
    };
    let Value::Array(entries) = web else {
        return fail("healthchecks.web must be a list of checks");
    };
    if entries.len() > MAX_CHECKS {
        return fail(format!(
            "healthchecks.web has {} checks; at most {MAX_CHECKS} are allowed",
            entries.len()
        ));
    }
    let mut checks: Vec<HealthCheck> = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let at = format!("healthchecks.web[{index}]");
        let entry = object(entry, &at)?;
        for unsupported in [
            "command",
            "content",
            "listening",
            "port",
            "scheme",
            "uptime",
            "warn",
        ] {
            if entry.contains_key(unsupported) {
                return fail(format!(
                    "{at}.{unsupported} is not supported (paas checks an HTTP path on $PORT)"
                ));
            }
        }
        known_keys(
            entry,
            &at,
            &[
                "type",
                "name",
                "description",
                "path",
                "attempts",
                "timeout",
                "wait",
                "initialDelay",
            ],
        )?;
        let name = match string(entry, &at, "name")? {
            Some(name) => name.to_owned(),
            None => format!("web check {}", index + 1),
        };
        if name.trim().is_empty()
            || name.len() > MAX_NAME_BYTES
            || name.chars().any(char::is_control)
        {
            return fail(format!(
                "{at}.name must be 1 to {MAX_NAME_BYTES} bytes without control characters"
            ));
        }
        // Dokku's liveness and readiness checks run for the life of an instance; paas checks
        // only while a rollout starts one, so it refuses them rather than never run them.
        match string(entry, &at, "type")? {
            None | Some("startup") => {}
            Some(other) => {
                return fail(format!(
                    "{at} ({name:?}): type {:?} is not supported: paas runs startup checks only (\"type\": \"startup\", or no type)",
                    printable(other)
                ));
            }
        }
        if checks.iter().any(|check| check.name == name) {
            return fail(format!("{at}.name {name:?} is used twice"));
        }
        string(entry, &at, "description")?;
        let path: HealthPath = string(entry, &at, "path")?
            .unwrap_or("/")
            .parse()
            .or_else(|err| fail(format!("{at}.path: {err}")))?;
        checks.push(HealthCheck {
            name,
            path,
            attempts: number(entry, &at, "attempts", DEFAULT_ATTEMPTS, 1, MAX_ATTEMPTS)?,
            timeout: number(
                entry,
                &at,
                "timeout",
                DEFAULT_TIMEOUT_SECS,
                1,
                MAX_TIMEOUT_SECS,
            )?,
            wait: number(entry, &at, "wait", DEFAULT_WAIT_SECS, 0, MAX_WAIT_SECS)?,
            initial_delay: number(entry, &at, "initialDelay", 0, 0, MAX_INITIAL_DELAY_SECS)?,
        });
    }
    Ok(Healthchecks { web: checks })
}

fn object<'a>(value: &'a Value, at: &str) -> Result<&'a Map<String, Value>, AppJsonError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => fail(format!("{at} must be an object")),
    }
}

fn known_keys(entry: &Map<String, Value>, at: &str, known: &[&str]) -> Result<(), AppJsonError> {
    match entry.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => fail(format!("{at}.{} is not a known key", printable(key))),
        None => Ok(()),
    }
}

fn string<'a>(
    entry: &'a Map<String, Value>,
    at: &str,
    key: &str,
) -> Result<Option<&'a str>, AppJsonError> {
    match entry.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => fail(format!("{at}.{key} must be a string")),
    }
}

fn number(
    entry: &Map<String, Value>,
    at: &str,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> Result<u32, AppJsonError> {
    let value = match entry.get(key) {
        None | Some(Value::Null) => return Ok(default),
        Some(value) => value.as_u64().and_then(|n| u32::try_from(n).ok()),
    };
    match value {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => fail(format!(
            "{at}.{key} must be a whole number from {min} to {max}"
        )),
    }
}

/// A tenant's key, short and on one line, for an error message.
fn printable(key: &str) -> String {
    let shown: String = key.chars().take(40).filter(|c| !c.is_control()).collect();
    if shown.len() < key.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_dokkus_cron_and_healthchecks_and_ignores_herokus_other_keys() {
        let parsed = parse_app_json(
            r#"{
              "name": "hello", "env": {"A": {"value": "1"}}, "scripts": {"dokku": {}},
              "cron": [
                {"command": "echo tick", "schedule": "*/5 * * * *"},
                {"command": "bin/report", "schedule": "@daily", "concurrency_policy": "allow"}
              ],
              "healthchecks": {"web": [
                {"type": "startup", "name": "ready", "description": "d", "path": "/health",
                 "timeout": 5, "attempts": 3, "wait": 2, "initialDelay": 1},
                {"path": "/"}
              ]}
            }"#,
        )
        .unwrap();
        assert_eq!(parsed.cron.len(), 2);
        assert_eq!(parsed.cron[0].schedule.as_str(), "*/5 * * * *");
        assert_eq!(parsed.cron[0].concurrency_policy, ConcurrencyPolicy::Forbid);
        assert_eq!(parsed.cron[1].concurrency_policy, ConcurrencyPolicy::Allow);
        assert_ne!(parsed.cron[0].id(), parsed.cron[1].id());
        let web = &parsed.healthchecks.web;
        assert_eq!(web[0].name, "ready");
        assert_eq!(web[0].path.as_str(), "/health");
        assert_eq!(
            (
                web[0].attempts,
                web[0].timeout,
                web[0].wait,
                web[0].initial_delay
            ),
            (3, 5, 2, 1)
        );
        assert_eq!(web[1].name, "web check 2");
        assert_eq!((web[1].attempts, web[1].timeout, web[1].wait), (3, 5, 5));
        // What is stored reads back the same.
        let stored = serde_json::to_string(&parsed).unwrap();
        assert_eq!(serde_json::from_str::<AppJson>(&stored).unwrap(), parsed);
        assert_eq!(parse_app_json("{}").unwrap(), AppJson::default());
        assert!(AppJson::default().is_empty());
    }

    #[test]
    fn a_job_keeps_its_id_across_pushes_while_unchanged() {
        let job = |schedule: &str| {
            parse_app_json(&format!(
                r#"{{"cron":[{{"command":"echo tick","schedule":"{schedule}"}}]}}"#
            ))
            .unwrap()
            .cron[0]
                .id()
        };
        assert_eq!(job("* * * * *"), job("* * * * *"));
        assert_ne!(job("* * * * *"), job("*/2 * * * *"));
        assert_eq!(job("* * * * *").len(), 8);
    }

    #[test]
    fn hostile_files_are_refused_with_one_line_naming_the_key() {
        let many_jobs = format!(
            r#"{{"cron":[{}]}}"#,
            (0..=MAX_CRON_JOBS)
                .map(|i| format!(r#"{{"command":"echo {i}","schedule":"* * * * *"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let many_checks = format!(
            r#"{{"healthchecks":{{"web":[{}]}}}}"#,
            (0..=MAX_CHECKS)
                .map(|i| format!(r#"{{"name":"c{i}"}}"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        let huge = format!(r#"{{"x":"{}"}}"#, "a".repeat(MAX_APP_JSON_BYTES));
        let long_command = format!(
            r#"{{"cron":[{{"command":"{}","schedule":"* * * * *"}}]}}"#,
            "x".repeat(MAX_CRON_COMMAND_BYTES + 1)
        );
        for (text, expected) in [
            ("[1]", "app.json: the file must be a JSON object"),
            ("{", "app.json: not valid JSON"),
            (huge.as_str(), "over 65536 bytes"),
            (r#"{"cron":{}}"#, "cron must be a list"),
            (r#"{"cron":[1]}"#, "cron[0] must be an object"),
            (
                r#"{"cron":[{"schedule":"* * * * *"}]}"#,
                "cron[0].command is missing",
            ),
            (
                r#"{"cron":[{"command":" ","schedule":"* * * * *"}]}"#,
                "cron[0].command is empty",
            ),
            (
                r#"{"cron":[{"command":"a\nb","schedule":"* * * * *"}]}"#,
                "cron[0].command must be one line",
            ),
            (long_command.as_str(), "cron[0].command must be one line"),
            (
                r#"{"cron":[{"command":"echo \u001b[2J","schedule":"* * * * *"}]}"#,
                "cron[0].command must be one line",
            ),
            (
                r#"{"cron":[{"command":"x"}]}"#,
                "cron[0].schedule is missing",
            ),
            (
                r#"{"cron":[{"command":"x","schedule":5}]}"#,
                "cron[0].schedule must be a string",
            ),
            (
                r#"{"cron":[{"command":"x","schedule":"61 * * * *"}]}"#,
                "cron[0].schedule: invalid schedule \"61 * * * *\": minute 61 is outside 0-59",
            ),
            (
                r#"{"cron":[{"command":"x","schedule":"* * * * *","maintenance":true}]}"#,
                "cron[0].maintenance is not a known key",
            ),
            (
                r#"{"cron":[{"command":"x","schedule":"* * * * *","concurrency_policy":"replace"}]}"#,
                "concurrency_policy \"replace\" is not supported",
            ),
            (
                r#"{"cron":[{"command":"x","schedule":"* * * * *"},{"command":"x","schedule":"* * * * *"}]}"#,
                "cron[1] repeats cron[0]",
            ),
            (many_jobs.as_str(), "at most 20 are allowed"),
            (many_checks.as_str(), "at most 10 are allowed"),
            (r#"{"healthchecks":[]}"#, "healthchecks must be an object"),
            (
                r#"{"healthchecks":{"worker":[]}}"#,
                "healthchecks.worker is not supported",
            ),
            (
                r#"{"healthchecks":{"web":{}}}"#,
                "healthchecks.web must be a list",
            ),
            (
                r#"{"healthchecks":{"web":[{"type":"liveness"}]}}"#,
                "healthchecks.web[0] (\"web check 1\"): type \"liveness\" is not supported: paas runs startup checks only",
            ),
            (
                r#"{"healthchecks":{"web":[{"content":"ok"}]}}"#,
                "healthchecks.web[0].content is not supported",
            ),
            (
                r#"{"healthchecks":{"web":[{"pth":"/"}]}}"#,
                "healthchecks.web[0].pth is not a known key",
            ),
            (
                r#"{"healthchecks":{"web":[{"path":"/'$(reboot)'"}]}}"#,
                "healthchecks.web[0].path:",
            ),
            (
                r#"{"healthchecks":{"web":[{"attempts":0}]}}"#,
                "healthchecks.web[0].attempts must be a whole number from 1 to 20",
            ),
            (
                r#"{"healthchecks":{"web":[{"timeout":1.5}]}}"#,
                "healthchecks.web[0].timeout must be a whole number",
            ),
            (
                r#"{"healthchecks":{"web":[{"wait":-1}]}}"#,
                "healthchecks.web[0].wait must be",
            ),
            (
                r#"{"healthchecks":{"web":[{"initialDelay":100000}]}}"#,
                "initialDelay must be",
            ),
            (
                r#"{"healthchecks":{"web":[{"name":"a"},{"name":"a"}]}}"#,
                "name \"a\" is used twice",
            ),
            (
                r#"{"healthchecks":{"web":[{"name":"a\u0007"}]}}"#,
                "healthchecks.web[0].name must be",
            ),
        ] {
            let err = parse_app_json(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:.80}: {err}");
            assert!(err.starts_with("app.json: "), "{err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
    }
}

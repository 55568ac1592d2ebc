//! Notifications: an app's webhooks, the events they may include, the JSON gitd posts to them
//! and the log of its attempts. The event kinds are named once, in [`WebhookEvent`]; what a
//! user types after `--include` (a kind, or a group such as `deploy` or `crash`) is read by
//! [`parse_include`]. Webhook URLs and secrets are tenant input: [`WebhookUrl`] and
//! [`WebhookSecret`] hold only values that pass their rules. Whether a URL's address may be
//! reached is gitd's to decide when it delivers (the name is resolved then).
//!
//! Every delivery is a `POST` of a [`WebhookPayload`] with the headers named here: the
//! payload's id in [`DELIVERY_HEADER`] (the same on every retry, so receivers can drop
//! repeats), its kind in [`EVENT_HEADER`] and [`SIGNATURE_HEADER`]:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by the secret>`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub const SIGNATURE_HEADER: &str = "Paas-Signature";
/// The payload's id: the same on every attempt to deliver it.
pub const DELIVERY_HEADER: &str = "Paas-Delivery";
/// The payload's event kind, e.g. `deploy.succeeded`.
pub const EVENT_HEADER: &str = "Paas-Event";

/// The longest webhook URL accepted.
pub const MAX_URL_CHARS: usize = 2048;
/// Secrets given by the user are this long at least…
pub const MIN_SECRET_CHARS: usize = 16;
/// …and at most this.
pub const MAX_SECRET_CHARS: usize = 128;

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    #[serde(rename = "deploy.succeeded")]
    DeploySucceeded,
    /// The build or the rollout of a push failed.
    #[serde(rename = "deploy.failed")]
    DeployFailed,
    /// The Procfile's `release` command failed: nothing was switched.
    #[serde(rename = "release_phase.failed")]
    ReleasePhaseFailed,
    #[serde(rename = "instance.crashed")]
    InstanceCrashed,
    /// The kernel's OOM killer killed an instance (Docker's `oom` event); a SIGKILL from
    /// anything else is a crash.
    #[serde(rename = "instance.out_of_memory")]
    InstanceOutOfMemory,
    /// One process type crashed again and again in a short time.
    #[serde(rename = "instance.crash_loop")]
    CrashLoop,
    #[serde(rename = "rollback")]
    Rollback,
    #[serde(rename = "scale")]
    Scale,
}

impl WebhookEvent {
    pub const ALL: [WebhookEvent; 8] = [
        WebhookEvent::DeploySucceeded,
        WebhookEvent::DeployFailed,
        WebhookEvent::ReleasePhaseFailed,
        WebhookEvent::InstanceCrashed,
        WebhookEvent::InstanceOutOfMemory,
        WebhookEvent::CrashLoop,
        WebhookEvent::Rollback,
        WebhookEvent::Scale,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::DeploySucceeded => "deploy.succeeded",
            WebhookEvent::DeployFailed => "deploy.failed",
            WebhookEvent::ReleasePhaseFailed => "release_phase.failed",
            WebhookEvent::InstanceCrashed => "instance.crashed",
            WebhookEvent::InstanceOutOfMemory => "instance.out_of_memory",
            WebhookEvent::CrashLoop => "instance.crash_loop",
            WebhookEvent::Rollback => "rollback",
            WebhookEvent::Scale => "scale",
        }
    }

    /// The group `--include` names it by: `deploy`, `crash`, `rollback` or `scale`.
    pub fn group(self) -> &'static str {
        match self {
            WebhookEvent::DeploySucceeded
            | WebhookEvent::DeployFailed
            | WebhookEvent::ReleasePhaseFailed => "deploy",
            WebhookEvent::InstanceCrashed
            | WebhookEvent::InstanceOutOfMemory
            | WebhookEvent::CrashLoop => "crash",
            WebhookEvent::Rollback => "rollback",
            WebhookEvent::Scale => "scale",
        }
    }
}

impl fmt::Display for WebhookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for WebhookEvent {
    type Err = WebhookError;

    fn from_str(name: &str) -> Result<Self, WebhookError> {
        WebhookEvent::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| WebhookError::UnknownEvent(name.to_owned()))
    }
}

/// What a webhook's URL, secret or events broke.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookError {
    #[error(
        "unknown event {0:?}: use deploy, crash, rollback, scale or one of deploy.succeeded, deploy.failed, release_phase.failed, instance.crashed, instance.out_of_memory, instance.crash_loop"
    )]
    UnknownEvent(String),
    #[error("name at least one event to include, e.g. --include deploy,crash")]
    NoEvents,
    #[error("invalid webhook URL: {0}")]
    Url(&'static str),
    #[error(
        "invalid webhook secret: use {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} printable ASCII characters without spaces"
    )]
    Secret,
}

/// The kinds `--include` names (comma-separated kinds or groups), in [`WebhookEvent`] order,
/// each once.
pub fn parse_include(text: &str) -> Result<Vec<WebhookEvent>, WebhookError> {
    let mut kinds = std::collections::BTreeSet::new();
    for name in text
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
    {
        let in_group: Vec<WebhookEvent> = WebhookEvent::ALL
            .into_iter()
            .filter(|kind| kind.group() == name)
            .collect();
        if in_group.is_empty() {
            kinds.insert(name.parse()?);
        } else {
            kinds.extend(in_group);
        }
    }
    if kinds.is_empty() {
        return Err(WebhookError::NoEvents);
    }
    Ok(kinds.into_iter().collect())
}

crate::names::string_newtype!(
    /// A webhook's URL: `http://` or `https://`, a host, no user name or password (a secret in
    /// a URL ends up in logs), at most [`MAX_URL_CHARS`] printable ASCII characters.
    WebhookUrl,
    WebhookError,
    check_url
);

fn check_url(url: &str) -> Result<(), WebhookError> {
    if url.len() > MAX_URL_CHARS {
        return Err(WebhookError::Url("longer than 2048 characters"));
    }
    if !url.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(WebhookError::Url(
            "use printable ASCII without spaces (percent-encode the rest)",
        ));
    }
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or(WebhookError::Url("use an http:// or https:// URL"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return Err(WebhookError::Url(
            "no user name or password in the URL: verify deliveries with the signature",
        ));
    }
    if url.contains('#') {
        return Err(WebhookError::Url("no #fragment: it is never sent"));
    }
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed
                .split_once(']')
                .ok_or(WebhookError::Url("unclosed [ in the host"))?;
            if address.parse::<std::net::Ipv6Addr>().is_err() {
                return Err(WebhookError::Url("not an IPv6 address in [ ]"));
            }
            check_port(after)?;
            address
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            if let Some(port) = port {
                check_port(&format!(":{port}"))?;
            }
            let label_chars = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '.';
            if !host.chars().all(label_chars) {
                return Err(WebhookError::Url(
                    "the host has characters no host name has",
                ));
            }
            host
        }
    };
    if host.is_empty() {
        return Err(WebhookError::Url("no host"));
    }
    Ok(())
}

/// `after` is what follows a host: nothing, or `:<port>` with a port of 1–65535.
fn check_port(after: &str) -> Result<(), WebhookError> {
    if after.is_empty() {
        return Ok(());
    }
    match after.strip_prefix(':').map(str::parse::<u16>) {
        Some(Ok(port)) if port > 0 => Ok(()),
        _ => Err(WebhookError::Url(
            "the port must be a number from 1 to 65535",
        )),
    }
}

impl WebhookUrl {
    /// The host as written (an IPv6 address without its brackets).
    pub fn host(&self) -> &str {
        let rest = self.as_str().split_once("://").map_or("", |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or_default();
        match authority.strip_prefix('[') {
            Some(bracketed) => bracketed.split(']').next().unwrap_or_default(),
            None => authority.split(':').next().unwrap_or_default(),
        }
    }
}

crate::names::string_newtype!(
    /// The key a webhook's deliveries are signed with.
    WebhookSecret,
    WebhookError,
    |secret| {
        let printable = secret.bytes().all(|byte| byte.is_ascii_graphic());
        if printable && (MIN_SECRET_CHARS..=MAX_SECRET_CHARS).contains(&secret.len()) {
            Ok(())
        } else {
            Err(WebhookError::Secret)
        }
    }
);

/// `POST /v1/apps/{app}/webhooks`. Without a secret, gitd makes one.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    pub url: WebhookUrl,
    pub events: Vec<WebhookEvent>,
    #[serde(default)]
    pub secret: Option<WebhookSecret>,
}

/// A webhook as listed; its secret is shown once, when it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub id: u64,
    pub url: WebhookUrl,
    pub events: Vec<WebhookEvent>,
    pub created_at: DateTime<Utc>,
}

/// The answer to [`CreateWebhookRequest`]: the webhook and its secret, the only time it is
/// shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreatedWebhook {
    #[serde(flatten)]
    pub webhook: Webhook,
    pub secret: WebhookSecret,
}

/// What gitd posts to a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPayload {
    /// Also in [`DELIVERY_HEADER`]; the same on every retry.
    pub id: String,
    pub event: WebhookEvent,
    pub app: String,
    pub created_at: DateTime<Utc>,
    pub data: EventDetails,
}

/// What happened, as far as the event kind has it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventDetails {
    /// One line in the words of `paas logs`.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Who made the change (none for what happened to an instance).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<String>,
    /// `web.1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i64>,
    /// A rollback's target release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolled_back_to: Option<u32>,
    /// A scale's new formation.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub formation: BTreeMap<String, u32>,
    /// A crash loop's count of crashes in its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crashes: Option<u32>,
}

/// `GET /v1/apps/{app}/webhook-deliveries` query.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveriesQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One attempt to deliver an event to a webhook, newest first in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    pub webhook: u64,
    /// The payload's id.
    pub delivery: String,
    pub event: WebhookEvent,
    /// 1 for the first.
    pub attempt: u32,
    pub result: AttemptResult,
    pub next: AttemptNext,
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// An HTTP status: 2xx is delivered.
    Status(u16),
    /// No answer: the reason (refused, timed out, a forbidden address…).
    Error(String),
}

/// What happens after an attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptNext {
    Delivered,
    /// Tried again this many milliseconds after the attempt.
    RetryInMs(u64),
    /// That was the last attempt.
    GaveUp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_takes_groups_and_kinds_once_each() {
        assert_eq!(
            parse_include("deploy,crash").unwrap(),
            [
                WebhookEvent::DeploySucceeded,
                WebhookEvent::DeployFailed,
                WebhookEvent::ReleasePhaseFailed,
                WebhookEvent::InstanceCrashed,
                WebhookEvent::InstanceOutOfMemory,
                WebhookEvent::CrashLoop,
            ]
        );
        assert_eq!(
            parse_include("scale, deploy.failed,scale").unwrap(),
            [WebhookEvent::DeployFailed, WebhookEvent::Scale]
        );
        assert_eq!(parse_include(" , "), Err(WebhookError::NoEvents));
        assert_eq!(
            parse_include("deploy,dyno"),
            Err(WebhookError::UnknownEvent("dyno".into()))
        );
    }

    #[test]
    fn event_names_are_the_wire_names() {
        for kind in WebhookEvent::ALL {
            let wire = serde_json::to_value(kind).unwrap();
            assert_eq!(wire, kind.as_str());
            assert_eq!(kind.as_str().parse::<WebhookEvent>().unwrap(), kind);
        }
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        for good in [
            "https://hooks.example.com/paas",
            "http://127.0.0.1:8080/hook?x=1",
            "https://[::1]:9000/",
            "http://receiver",
        ] {
            let url: WebhookUrl = good.parse().unwrap_or_else(|e| panic!("{good}: {e}"));
            assert!(!url.host().is_empty(), "{good}");
        }
        assert_eq!(
            "https://[::1]:9000/".parse::<WebhookUrl>().unwrap().host(),
            "::1"
        );
        assert_eq!(
            "http://127.0.0.1:8080/x"
                .parse::<WebhookUrl>()
                .unwrap()
                .host(),
            "127.0.0.1"
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://user:pass@example.com/",
            "https://token@example.com/",
            "https:///path",
            "https://example.com:0/",
            "https://example.com:99999/",
            "https://exa mple.com/",
            "https://example.com/#frag",
            "https://ex\u{7f}ample.com/",
            "https://[::1/",
            "file:///etc/passwd",
            long.as_str(),
        ] {
            assert!(bad.parse::<WebhookUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_long_enough_and_printable() {
        assert!("0123456789abcdef".parse::<WebhookSecret>().is_ok());
        assert!("short".parse::<WebhookSecret>().is_err());
        assert!("0123456789 abcdef".parse::<WebhookSecret>().is_err());
        assert!("x".repeat(129).parse::<WebhookSecret>().is_err());
    }

    #[test]
    fn attempts_read_back_as_written() {
        let attempt = DeliveryAttempt {
            at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            webhook: 3,
            delivery: "d1".into(),
            event: WebhookEvent::Scale,
            attempt: 2,
            result: AttemptResult::Error("connection refused".into()),
            next: AttemptNext::RetryInMs(4000),
        };
        let text = serde_json::to_string(&attempt).unwrap();
        assert!(
            text.contains(r#""result":{"error":"connection refused"}"#),
            "{text}"
        );
        assert!(text.contains(r#""next":{"retry_in_ms":4000}"#), "{text}");
        assert_eq!(
            serde_json::from_str::<DeliveryAttempt>(&text).unwrap(),
            attempt
        );
    }
}

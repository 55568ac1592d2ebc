//! The router's lines, as Heroku's `heroku[router]` ones: every request Traefik routed to an
//! app becomes a `paas[router]` line in that app's log archive,
//! `at=info method=GET path="/" host=… status=200 connect=1ms service=12ms dyno=web.2 bytes=123`,
//! or an error line naming Heroku's code (`at=error code=H14 desc="No web processes running"`).
//!
//! Traefik writes one JSON object per request to its access log ([`access_log_path`], which
//! `paas-agent traefik-config` names); [`follow_access_log`] reads what is new a few times a
//! second, from where it stopped (kept in the state dir, so a restart neither repeats nor
//! skips), and truncates the file once it has read past [`TRUNCATE_AFTER`] bytes (Traefik
//! writes with `O_APPEND`, so it carries on at the start).
//!
//! A request counts for an app only when its router is one the agent made for that app (the
//! app's labels or page files, rebuilt from the saved specs: [`RouteTable`]) **and** its host is
//! one of the app's hosts; anything else (Traefik's own 404s, an operator's routers, a name two
//! apps could claim) is dropped, so a request to one app's host never shows in another app's
//! logs. Every value from the request is escaped ([`quoted`], [`bare`]): no quote, line break or
//! terminal escape of a path or host reaches a line unescaped. The dyno is the instance whose
//! address on the app's network Traefik sent the request to.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::Task;
use bollard::query_parameters::{ListContainersOptions, LogsOptions};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use paas_api::AppName;
use paas_api::agent::{LogEntry, LogStream};
use paas_api::domains::is_wildcard;
use serde::Deserialize;
use tokio::sync::broadcast;
use tracing::warn;

use super::archive::LogArchive;
use super::lines::LineAssembler;
use super::swarm_api::task_addresses;
use crate::config::{AgentConfig, EngineKind, RuntimeConfig};
use crate::naming::traefik::{provider, traefik_labels};
use crate::naming::{
    InstanceKey, LABEL_INDEX, LABEL_PROCESS, LABEL_RELEASE, docker_filters, is_ours, network_name,
    parse_release_label, service_name,
};
use crate::pages::{self, Page};
use crate::runtime::container::WEB;
use crate::runtime::{self, TaskFacts};
use crate::state::AgentState;

/// The process name of router lines (`paas[router]`, `paas logs -p router`).
pub const ROUTER_PROCESS: &str = "router";
/// How often the access log is read.
const POLL: Duration = Duration::from_millis(200);
/// Once read this far, the access log is truncated.
const TRUNCATE_AFTER: u64 = 16 * 1024 * 1024;
/// The most read at once; the rest waits for the next round.
const MAX_READ: u64 = 4 * 1024 * 1024;
/// Router lines buffered for slow `logs --tail` readers before they skip some.
const LIVE_BUFFER: usize = 1024;

/// Traefik's access log: `runtime.traefik_access_log`, by default `router/access.log` in the
/// state dir.
pub fn access_log_path(config: &AgentConfig) -> PathBuf {
    config
        .runtime
        .traefik_access_log
        .clone()
        .unwrap_or_else(|| config.state_dir().join("router").join("access.log"))
}

/// The router lines as they are archived, for the followed log streams.
pub struct RouterLines {
    sender: broadcast::Sender<(AppName, LogEntry)>,
}

impl Default for RouterLines {
    fn default() -> Self {
        RouterLines {
            sender: broadcast::channel(LIVE_BUFFER).0,
        }
    }
}

impl RouterLines {
    pub fn subscribe(&self) -> broadcast::Receiver<(AppName, LogEntry)> {
        self.sender.subscribe()
    }
}

/// One request as Traefik's JSON access log has it: the fields paas uses, each optional (a
/// request Traefik answered itself has no router, service or address).
#[derive(Debug, Default, Deserialize)]
struct AccessEntry {
    #[serde(rename = "StartUTC")]
    start: Option<DateTime<Utc>>,
    #[serde(rename = "RouterName")]
    router: Option<String>,
    #[serde(rename = "ServiceAddr")]
    service_addr: Option<String>,
    #[serde(rename = "RequestHost")]
    host: Option<String>,
    #[serde(rename = "RequestMethod")]
    method: Option<String>,
    #[serde(rename = "RequestPath")]
    path: Option<String>,
    #[serde(rename = "DownstreamStatus")]
    status: Option<u16>,
    #[serde(rename = "DownstreamContentSize")]
    bytes: Option<u64>,
    /// Nanoseconds the app took to answer.
    #[serde(rename = "OriginDuration")]
    origin_nanos: Option<u64>,
    /// Nanoseconds spent in Traefik itself: connecting, routing, retries.
    #[serde(rename = "Overhead")]
    overhead_nanos: Option<u64>,
}

/// What routed a request: the app's own routers, or one of the agent's pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    App,
    Page(Page),
}

/// Heroku's router codes for what the router itself had to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Code {
    /// The app has no web process running.
    H14,
    /// The app did not answer in time (Traefik's 504).
    H12,
    /// The app closed the connection without an answer (Traefik's 502).
    H13,
    /// The app is in maintenance.
    H80,
}

impl Code {
    fn of(route: Route, status: Option<u16>) -> Option<Code> {
        match (route, status) {
            (Route::Page(Page::NoWebProcesses), _) => Some(Code::H14),
            (Route::Page(Page::Maintenance), _) => Some(Code::H80),
            (Route::App, Some(504)) => Some(Code::H12),
            (Route::App, Some(502)) => Some(Code::H13),
            (Route::App, _) => None,
        }
    }

    /// `at=…` and Heroku's description.
    fn words(self) -> (&'static str, &'static str) {
        match self {
            Code::H14 => ("error", "No web processes running"),
            Code::H12 => ("error", "Request timeout"),
            Code::H13 => ("error", "Connection closed without response"),
            Code::H80 => ("info", "Maintenance mode"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Code::H14 => "H14",
            Code::H12 => "H12",
            Code::H13 => "H13",
            Code::H80 => "H80",
        }
    }
}

/// The router line of `entry`, served by `dyno` (none for the agent's pages).
fn line(entry: &AccessEntry, route: Route, dyno: Option<&str>) -> String {
    let mut fields = Vec::new();
    let code = Code::of(route, entry.status);
    match code {
        Some(code) => {
            let (at, desc) = code.words();
            fields.push(format!("at={at} code={} desc=\"{desc}\"", code.name()));
        }
        None => fields.push("at=info".to_owned()),
    }
    fields.push(format!(
        "method={}",
        bare(entry.method.as_deref().unwrap_or(""))
    ));
    fields.push(format!(
        "path={}",
        quoted(entry.path.as_deref().unwrap_or(""))
    ));
    fields.push(format!(
        "host={}",
        bare(entry.host.as_deref().unwrap_or(""))
    ));
    let number = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
    fields.push(format!("status={}", number(entry.status.map(u64::from))));
    let millis = |nanos: Option<u64>| {
        nanos
            .map(|nanos| format!("{}ms", nanos.div_ceil(1_000_000)))
            .unwrap_or_default()
    };
    let page = matches!(route, Route::Page(_));
    let (connect, service) = if page {
        (String::new(), String::new())
    } else {
        (millis(entry.overhead_nanos), millis(entry.origin_nanos))
    };
    fields.push(format!("connect={connect}"));
    fields.push(format!("service={service}"));
    fields.push(format!("dyno={}", dyno.unwrap_or("")));
    fields.push(format!("bytes={}", number(entry.bytes)));
    fields.join(" ")
}

/// `"…"` with `"` and `\` backslashed and every control character (line breaks, escapes,
/// DEL, C1) written as `\n`, `\r`, `\t` or `\xNN`/`\u{NN}`.
fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ch if (ch as u32) < 0x20 || ch as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", ch as u32));
            }
            ch if ch.is_control() => out.push_str(&format!("\\u{{{:x}}}", ch as u32)),
            ch => out.push(ch),
        }
    }
    out.push('"');
    out
}

/// A value written as it is when it is plain (letters, digits, `.-_:*`), else [`quoted`].
fn bare(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ".-_:*".contains(ch));
    if plain { text.to_owned() } else { quoted(text) }
}

/// Which app each router of the agent's belongs to, and the app's hosts.
#[derive(Default)]
struct RouteTable {
    /// `name@provider` → the apps that define it and how (two apps only by a clash of names,
    /// which drops the line).
    routers: HashMap<String, Vec<(AppName, Route)>>,
    hosts: HashMap<AppName, Vec<String>>,
}

impl RouteTable {
    fn add(
        &mut self,
        app: &AppName,
        hosts: Vec<String>,
        sticky: bool,
        config: &RuntimeConfig,
        engine: EngineKind,
    ) {
        let labels = traefik_labels(app.as_str(), &hosts, sticky, config);
        for key in labels.keys() {
            let Some(router) = key
                .strip_prefix("traefik.http.routers.")
                .and_then(|rest| rest.strip_suffix(".rule"))
            else {
                continue;
            };
            self.insert(format!("{router}@{}", provider(engine)), app, Route::App);
        }
        for page in Page::ALL {
            for router in pages::router_names(page, app.as_str(), &hosts, config) {
                self.insert(format!("{router}@file"), app, Route::Page(page));
            }
        }
        self.hosts.insert(app.clone(), hosts);
    }

    fn insert(&mut self, router: String, app: &AppName, route: Route) {
        let owners = self.routers.entry(router).or_default();
        if !owners.iter().any(|(owner, _)| owner == app) {
            owners.push((app.clone(), route));
        }
    }

    /// The app a request routed by `router` to `host` is about, if exactly one.
    fn resolve(&self, router: &str, host: &str) -> Option<(AppName, Route)> {
        let host = host_without_port(host).to_ascii_lowercase();
        let mut owners = self.routers.get(router)?.iter().filter(|(app, _)| {
            self.hosts
                .get(app)
                .is_some_and(|hosts| hosts.iter().any(|pattern| host_matches(pattern, &host)))
        });
        let first = owners.next()?.clone();
        owners.next().is_none().then_some(first)
    }
}

fn host_without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

/// Whether `host` is `pattern`, or for a wildcard `*.example.com` one label under it.
fn host_matches(pattern: &str, host: &str) -> bool {
    if !is_wildcard(pattern) {
        return pattern == host;
    }
    let suffix = &pattern[1..];
    host.strip_suffix(suffix)
        .is_some_and(|label| !label.is_empty() && !label.contains('.'))
}

/// The table of every app the agent has a saved spec or a page file of.
fn route_table(state: &AgentState) -> RouteTable {
    let mut apps = runtime::apps_with_spec(state).unwrap_or_default();
    apps.extend(state.pages.apps(Page::Maintenance).unwrap_or_default());
    apps.sort();
    apps.dedup();
    let config = &state.config.runtime;
    let mut table = RouteTable::default();
    for app in apps {
        let Ok(name) = app.parse::<AppName>() else {
            continue;
        };
        let Ok(hosts) = runtime::app_hosts(state, &app) else {
            continue;
        };
        // A rollout turning sticky sessions on or off has both kinds of routers for a while.
        table.add(&name, hosts.clone(), false, config, state.config.engine);
        table.add(&name, hosts, true, config, state.config.engine);
    }
    table
}

/// An instance of the app, as the router's lines name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Dyno {
    name: String,
    release: Option<u32>,
}

/// The app's instances by their address on its network (`172.18.0.3`).
async fn dynos(docker: &Docker, key: &InstanceKey, app: &str) -> HashMap<String, Dyno> {
    let listed = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(docker_filters(key, Some(app), None)),
            ..Default::default()
        }))
        .await;
    let Ok(summaries) = listed else {
        return HashMap::new();
    };
    let network = network_name(app);
    let mut dynos = HashMap::new();
    for summary in summaries {
        let Some(labels) = summary.labels.as_ref().filter(|l| is_ours(key, l)) else {
            continue;
        };
        let (Some(process), Some(index)) = (labels.get(LABEL_PROCESS), labels.get(LABEL_INDEX))
        else {
            continue;
        };
        let address = summary
            .network_settings
            .and_then(|settings| settings.networks)
            .and_then(|mut networks| networks.remove(&network))
            .and_then(|endpoint| endpoint.ip_address)
            .filter(|ip| !ip.is_empty());
        if let Some(address) = address {
            let dyno = Dyno {
                name: format!("{process}.{index}"),
                release: labels
                    .get(LABEL_RELEASE)
                    .and_then(|label| parse_release_label(label)),
            };
            dynos.insert(address, dyno);
        }
    }
    dynos
}

/// The app's web tasks on Swarm by their address on its network, the ones Swarm means to run
/// winning over retired ones that had the address before.
async fn task_dynos(docker: &Docker, key: &InstanceKey, app: &str) -> HashMap<String, Dyno> {
    let listed = task_addresses(docker, &service_name(app, WEB), &network_name(app)).await;
    let Ok(mut tasks) = listed else {
        return HashMap::new();
    };
    let ours = |task: &Task| {
        task.spec
            .as_ref()
            .and_then(|spec| spec.container_spec.as_ref())
            .and_then(|container| container.labels.as_ref())
            .is_some_and(|labels| is_ours(key, labels))
    };
    tasks.retain(|(task, _)| ours(task));
    let mut facts: Vec<(TaskFacts, String)> = tasks
        .iter()
        .filter_map(|(task, address)| Some((TaskFacts::of(task), address.clone()?)))
        .collect();
    facts.sort_by_key(|(task, _)| task.meant_to_run);
    facts
        .into_iter()
        .map(|(task, address)| {
            let dyno = Dyno {
                name: format!("{WEB}.{}", task.slot),
                release: task.release,
            };
            (address, dyno)
        })
        .collect()
}

/// The app and route of an access-log line, before its dyno is known.
struct Routed {
    app: AppName,
    route: Route,
    entry: AccessEntry,
}

/// The parsed lines of one read that belong to an app; the rest is dropped.
fn route_lines(text: &str, state: &AgentState) -> Vec<Routed> {
    // Built once per read, and only when a line needs it.
    let mut table: Option<RouteTable> = None;
    let mut routed = Vec::new();
    for raw in text.lines() {
        let Ok(entry) = serde_json::from_str::<AccessEntry>(raw) else {
            continue;
        };
        let (Some(router), Some(host)) = (entry.router.as_deref(), entry.host.as_deref()) else {
            continue;
        };
        let table = table.get_or_insert_with(|| route_table(state));
        if let Some((app, route)) = table.resolve(router, host) {
            routed.push(Routed { app, route, entry });
        }
    }
    routed
}

/// The entries of the routed lines, with their dynos, grouped by app.
async fn entries(state: &AgentState, routed: Vec<Routed>) -> HashMap<AppName, Vec<LogEntry>> {
    let mut addresses: HashMap<AppName, HashMap<String, Dyno>> = HashMap::new();
    let mut by_app: HashMap<AppName, Vec<LogEntry>> = HashMap::new();
    for Routed { app, route, entry } in routed {
        let dyno = match (route, entry.service_addr.as_deref()) {
            (Route::App, Some(addr)) => {
                if !addresses.contains_key(&app) {
                    let (docker, key) = (&state.docker, state.config.instance_key());
                    let found = match state.config.engine {
                        EngineKind::Docker => dynos(docker, key, app.as_str()).await,
                        EngineKind::Swarm => task_dynos(docker, key, app.as_str()).await,
                    };
                    addresses.insert(app.clone(), found);
                }
                let ip = host_without_port(addr);
                addresses.get(&app).and_then(|dynos| dynos.get(ip)).cloned()
            }
            _ => None,
        };
        let text = line(&entry, route, dyno.as_ref().map(|d| d.name.as_str()));
        by_app.entry(app).or_default().push(LogEntry {
            timestamp: entry.start.unwrap_or_else(Utc::now),
            process: ROUTER_PROCESS.to_owned(),
            index: 0,
            stream: LogStream::Router,
            line: text,
            release: dyno.and_then(|dyno| dyno.release),
        });
    }
    by_app
}

/// Where reading stopped, kept beside the agent's other state.
fn offset_file(config: &AgentConfig) -> PathBuf {
    config.state_dir().join("router-access.offset")
}

/// Reads the new whole lines of `path` from `offset`: the text and the offset after it. A file
/// shorter than `offset` was truncated or replaced: it is read from the start.
fn read_new(path: &Path, offset: u64) -> std::io::Result<(String, u64)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok((String::new(), 0)),
        Err(err) => return Err(err),
    };
    let len = file.metadata()?.len();
    let offset = if len < offset { 0 } else { offset };
    file.seek(SeekFrom::Start(offset))?;
    let mut bytes = Vec::new();
    file.take(MAX_READ).read_to_end(&mut bytes)?;
    let whole = bytes
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |end| end + 1);
    bytes.truncate(whole);
    let next = offset + whole as u64;
    Ok((String::from_utf8_lossy(&bytes).into_owned(), next))
}

/// Truncates `path` when everything in it was read and it is over [`TRUNCATE_AFTER`]; the
/// offset to go on from.
fn truncate_if_read(path: &Path, offset: u64) -> u64 {
    if offset < TRUNCATE_AFTER {
        return offset;
    }
    let truncated = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|file| {
            // Only when Traefik wrote nothing since: a line after `offset` would be lost.
            if file.metadata()?.len() != offset {
                return Ok(false);
            }
            file.set_len(0).map(|()| true)
        });
    match truncated {
        Ok(true) => 0,
        Ok(false) => offset,
        Err(err) => {
            warn!(path = %path.display(), error = %err, "cannot truncate Traefik's access log");
            offset
        }
    }
}

/// Follows Traefik's access log for as long as the agent runs, archiving every request to an
/// app as its router line and announcing it to the followed log streams: the file on the
/// docker engine, the output of the Traefik container on the swarm engine.
pub async fn follow_access_log(state: AgentState) {
    match state.config.engine {
        EngineKind::Docker => follow_access_file(state).await,
        EngineKind::Swarm => follow_router_output(state).await,
    }
}

/// Archives the router lines of `text` (access-log lines) and announces them.
async fn take_lines(state: &AgentState, archive: &LogArchive, text: &str) {
    let routed = route_lines(text, state);
    for (app, entries) in entries(state, routed).await {
        let kept = {
            let (archive, app, entries) = (archive.clone(), app.clone(), entries.clone());
            tokio::task::spawn_blocking(move || archive.append(&app, &entries)).await
        };
        if let Ok(Err(err)) = kept {
            warn!(%app, error = %err, "cannot archive the router's lines");
        }
        for entry in entries {
            // Nobody following is fine.
            let _ = state.router.sender.send((app.clone(), entry));
        }
    }
}

async fn follow_access_file(state: AgentState) {
    let path = access_log_path(&state.config);
    let offsets = offset_file(&state.config);
    let archive = LogArchive::of(&state.config);
    // Without a saved position (the first run), only what happens from now on.
    let mut offset = match std::fs::read_to_string(&offsets) {
        Ok(text) => text.trim().parse().unwrap_or(0),
        Err(_) => std::fs::metadata(&path).map_or(0, |meta| meta.len()),
    };
    loop {
        tokio::time::sleep(POLL).await;
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_new(&path, offset)).await
        };
        let (text, next) = match read {
            Ok(Ok(read)) => read,
            Ok(Err(err)) => {
                warn!(path = %path.display(), error = %err, "cannot read Traefik's access log");
                continue;
            }
            Err(_) => continue,
        };
        if next == offset {
            continue;
        }
        take_lines(&state, &archive, &text).await;
        offset = truncate_if_read(&path, next);
        if let Err(err) = std::fs::write(&offsets, format!("{offset}\n")) {
            warn!(error = %err, "cannot save the position in Traefik's access log");
        }
    }
}

/// Where reading the Traefik container's output stopped: the time of the last line read.
fn output_position_file(config: &AgentConfig) -> PathBuf {
    config.state_dir().join("router-output.position")
}

/// Follows the output of the Traefik container on the agent's node (`swarm.traefik_container`,
/// run with `--accesslog.format=json` and no file, so its access log is its output): the lines
/// logged after the saved position, a round of them every [`POLL`]. Its other lines (Traefik's
/// own log) are not requests and are dropped with the rest. A container that is not there or
/// restarts is followed again a [`POLL`] later.
async fn follow_router_output(state: AgentState) {
    let container = state.config.swarm.traefik_container.clone();
    let positions = output_position_file(&state.config);
    let archive = LogArchive::of(&state.config);
    // Without a saved position (the first run), only what happens from now on.
    let mut after = std::fs::read_to_string(&positions)
        .ok()
        .and_then(|text| DateTime::parse_from_rfc3339(text.trim()).ok())
        .map_or_else(Utc::now, |time| time.with_timezone(&Utc));
    loop {
        let options = LogsOptions {
            follow: true,
            stdout: true,
            timestamps: true,
            // Whole seconds: lines of that second already read are skipped by their time.
            since: i32::try_from(after.timestamp()).unwrap_or(0),
            tail: "all".to_owned(),
            ..Default::default()
        };
        let mut frames = state.docker.logs(&container, Some(options));
        let mut lines = LineAssembler::default();
        let mut ended = false;
        while !ended {
            let round = tokio::time::Instant::now() + POLL;
            let mut text = String::new();
            loop {
                match tokio::time::timeout_at(round, frames.next()).await {
                    Ok(Some(Ok(LogOutput::StdOut { message }))) => {
                        for (time, line) in lines.push(&message) {
                            if time > after {
                                after = time;
                                text.push_str(&line);
                                text.push('\n');
                            }
                        }
                    }
                    Ok(Some(Ok(_))) => {}
                    Ok(Some(Err(_)) | None) => {
                        ended = true;
                        break;
                    }
                    Err(_) => break,
                }
            }
            if text.is_empty() {
                continue;
            }
            take_lines(&state, &archive, &text).await;
            let position = after.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            if let Err(err) = std::fs::write(&positions, format!("{position}\n")) {
                warn!(error = %err, "cannot save the position in Traefik's output");
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppName {
        name.parse().unwrap()
    }

    fn entry(json: &str) -> AccessEntry {
        serde_json::from_str(json).unwrap()
    }

    const SERVED: &str = r#"{"DownstreamContentSize":123,"DownstreamStatus":200,"Duration":13100000,"OriginDuration":12000000,"Overhead":1100000,"RequestHost":"hello.paas.localhost","RequestMethod":"GET","RequestPath":"/","RouterName":"paas-hello@docker","ServiceAddr":"172.18.0.3:5000","ServiceName":"paas-hello@docker","StartUTC":"2026-12-06T22:33:40.600312692Z","level":"info"}"#;

    #[test]
    fn a_served_request_reads_like_herokus_router() {
        let entry = entry(SERVED);
        assert_eq!(
            line(&entry, Route::App, Some("web.2")),
            "at=info method=GET path=\"/\" host=hello.paas.localhost status=200 connect=2ms service=12ms dyno=web.2 bytes=123"
        );
        assert_eq!(
            entry.start.unwrap().to_rfc3339(),
            "2026-12-06T22:33:40.600312692+00:00"
        );
    }

    #[test]
    fn what_the_router_answered_itself_has_herokus_codes() {
        let mut request = entry(SERVED);
        let no_web = line(&request, Route::Page(Page::NoWebProcesses), None);
        assert!(
            no_web.starts_with("at=error code=H14 desc=\"No web processes running\" method=GET"),
            "{no_web}"
        );
        assert!(no_web.contains(" connect= service= dyno= "), "{no_web}");
        let maintenance = line(&request, Route::Page(Page::Maintenance), None);
        assert!(maintenance.starts_with("at=info code=H80 desc=\"Maintenance mode\" "));
        request.status = Some(504);
        assert!(
            line(&request, Route::App, Some("web.1"))
                .starts_with("at=error code=H12 desc=\"Request timeout\" ")
        );
        request.status = Some(502);
        assert!(
            line(&request, Route::App, Some("web.1"))
                .starts_with("at=error code=H13 desc=\"Connection closed without response\" ")
        );
        request.status = Some(500);
        assert!(line(&request, Route::App, Some("web.1")).starts_with("at=info method="));
    }

    #[test]
    fn hostile_paths_and_hosts_are_escaped() {
        let mut request = entry(SERVED);
        request.path = Some("/a\"b\nc\\d\u{1b}[2J\u{7f}\u{9b}e é".to_owned());
        request.host = Some("evil\" dyno=web.9".to_owned());
        request.method = Some("GET\r\nX".to_owned());
        let text = line(&request, Route::App, Some("web.1"));
        assert!(
            text.contains(r#"path="/a\"b\nc\\d\x1b[2J\x7f\u{9b}e é""#),
            "{text}"
        );
        assert!(text.contains(r#"host="evil\" dyno=web.9""#), "{text}");
        assert!(text.contains(r#"method="GET\r\nX""#), "{text}");
        assert!(!text.chars().any(char::is_control), "{text:?}");
        assert!(
            text.ends_with("\" status=200 connect=2ms service=12ms dyno=web.1 bytes=123"),
            "{text}"
        );
        // Traefik's own escapes of the request line stay as they came.
        request.path = Some("/x%22y%0Az".to_owned());
        assert!(line(&request, Route::App, None).contains("path=\"/x%22y%0Az\""));
    }

    #[test]
    fn unreadable_and_partial_entries_are_no_lines() {
        assert!(serde_json::from_str::<AccessEntry>("not json").is_err());
        let bare = entry("{}");
        assert_eq!(
            line(&bare, Route::App, None),
            "at=info method=\"\" path=\"\" host=\"\" status= connect= service= dyno= bytes="
        );
    }

    fn table() -> RouteTable {
        let config = RuntimeConfig::default();
        let mut table = RouteTable::default();
        table.add(
            &app("hello"),
            vec![
                "hello.paas.localhost".to_owned(),
                "www.example.com".to_owned(),
                "*.example.org".to_owned(),
            ],
            false,
            &config,
            EngineKind::Docker,
        );
        table.add(
            &app("other"),
            vec!["other.paas.localhost".to_owned()],
            false,
            &config,
            EngineKind::Docker,
        );
        table
    }

    #[test]
    fn routers_map_to_their_app_only_on_its_hosts() {
        let table = table();
        assert_eq!(
            table.resolve("paas-hello@docker", "hello.paas.localhost:8080"),
            Some((app("hello"), Route::App))
        );
        assert_eq!(
            table.resolve("paas_no_web-hello@file", "HELLO.paas.localhost"),
            Some((app("hello"), Route::Page(Page::NoWebProcesses)))
        );
        assert_eq!(
            table.resolve("paas_maintenance-hello-wildcards@file", "a.example.org"),
            Some((app("hello"), Route::Page(Page::Maintenance)))
        );
        let domains = table
            .routers
            .keys()
            .find(|name| name.starts_with("paas-hello-domains-"))
            .unwrap()
            .clone();
        assert_eq!(
            table.resolve(&domains, "www.example.com"),
            Some((app("hello"), Route::App))
        );
        // Another app's host, a router of nobody's, a provider paas does not use for it.
        assert_eq!(
            table.resolve("paas-hello@docker", "other.paas.localhost"),
            None
        );
        assert_eq!(
            table.resolve("paas-other@docker", "hello.paas.localhost"),
            None
        );
        assert_eq!(
            table.resolve("paas-hello@file", "hello.paas.localhost"),
            None
        );
        assert_eq!(
            table.resolve("paas-nobody@docker", "nobody.paas.localhost"),
            None
        );
        assert_eq!(table.resolve("paas-hello@docker", "a.b.example.org"), None);
    }

    #[test]
    fn a_router_name_two_apps_define_is_only_theirs_on_their_own_hosts() {
        let config = RuntimeConfig::default();
        let mut table = table();
        // `hello`'s router for its domains names an app too.
        table.add(
            &app("hello-domains"),
            vec!["hello-domains.paas.localhost".to_owned()],
            false,
            &config,
            EngineKind::Docker,
        );
        table.insert(
            "paas-hello-domains@docker".to_owned(),
            &app("hello"),
            Route::App,
        );
        assert_eq!(
            table.resolve("paas-hello-domains@docker", "hello-domains.paas.localhost"),
            Some((app("hello-domains"), Route::App))
        );
        assert_eq!(
            table.resolve("paas-hello-domains@docker", "hello.paas.localhost"),
            Some((app("hello"), Route::App))
        );
    }

    #[test]
    fn on_swarm_the_apps_routers_are_the_swarm_providers() {
        let mut table = RouteTable::default();
        table.add(
            &app("hello"),
            vec!["hello.paas.localhost".to_owned()],
            false,
            &RuntimeConfig::default(),
            EngineKind::Swarm,
        );
        assert_eq!(
            table.resolve("paas-hello@swarm", "hello.paas.localhost"),
            Some((app("hello"), Route::App))
        );
        assert_eq!(
            table.resolve("paas-hello@docker", "hello.paas.localhost"),
            None
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(host_matches("*.example.org", "a.example.org"));
        assert!(!host_matches("*.example.org", "example.org"));
        assert!(!host_matches("*.example.org", ".example.org"));
        assert!(!host_matches("*.example.org", "a.b.example.org"));
        assert!(host_matches("www.example.com", "www.example.com"));
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("a.test"), "a.test");
    }

    #[test]
    fn only_whole_lines_are_read_and_a_shorter_file_starts_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        assert_eq!(read_new(&path, 7).unwrap(), (String::new(), 0));
        std::fs::write(&path, "one\ntwo\nthr").unwrap();
        let (text, next) = read_new(&path, 0).unwrap();
        assert_eq!((text.as_str(), next), ("one\ntwo\n", 8));
        assert_eq!(read_new(&path, next).unwrap(), (String::new(), 8));
        std::fs::write(&path, "x\n").unwrap();
        assert_eq!(read_new(&path, 8).unwrap(), ("x\n".to_owned(), 2));
    }

    #[test]
    fn the_log_is_truncated_only_when_read_to_its_end_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        std::fs::write(&path, "a\n").unwrap();
        assert_eq!(truncate_if_read(&path, 2), 2);
        let big = TRUNCATE_AFTER + 2;
        std::fs::File::create(&path).unwrap().set_len(big).unwrap();
        assert_eq!(
            truncate_if_read(&path, big - 1),
            big - 1,
            "unread bytes stay"
        );
        assert_eq!(truncate_if_read(&path, big), 0);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}

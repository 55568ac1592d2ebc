//! Helpers of the in-process tests: [`FakeAgent`], a small axum server speaking the agent's
//! real HTTP API (the wire types of `paas_api::agent`, the routes `paas-agent-client` calls),
//! which records what it was asked and can be told to refuse, fail, hang or hold a rollout;
//! and [`TestGitd`], a real gitd ([`paas_gitd::serve`]) on loopback listeners of its own, in a
//! fresh data dir, connected to the fake agent through the real `AgentClient`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use futures::StreamExt;
use paas_api::agent::{
    AppSpec, BuildEvent, BuildSpec, Instance, LogMessage, LogStream, PruneRequest, PruneResult,
    RestartRequest, RolloutEvent,
};
use paas_api::oneoff::{OneOffEvent, OneOffSpec};
use paas_api::{ErrorBody, ErrorCode};
use paas_gitd::config::GitdConfig;
use paas_gitd::{Listeners, ServeConfig, Server};
use tempfile::TempDir;
use tokio::sync::Notify;

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-1";
const AGENT_TOKEN: &str = "fake-agent-token";

/// A point a rollout stops at until the test lets it go on.
#[derive(Default)]
pub struct Gate {
    reached: Notify,
    opened: Notify,
}

impl Gate {
    /// Waits until a rollout has stopped at this gate.
    pub async fn reached(&self) {
        self.reached.notified().await
    }

    /// Lets the rollout stopped here (or the next one to arrive) go on.
    pub fn open(&self) {
        self.opened.notify_one()
    }

    async fn hold(&self) {
        self.reached.notify_one();
        self.opened.notified().await
    }
}

/// How the fake agent answers one rollout (`PUT /v1/apps/{app}` or a restart).
pub enum Rollout {
    /// Progress lines, `serving`, `done`.
    Succeed,
    /// Answered 400 before any rollout event.
    Refuse(String),
    /// A `failed` event before `serving`, with the failed container's last lines.
    Fail { reason: String, logs: Vec<String> },
    /// Stops at the gate before `serving`, then goes on as `Succeed`.
    HoldBeforeServing(Arc<Gate>),
    /// Stops at the gate after `serving` (the old instances "draining"), then `done`.
    HoldAfterServing(Arc<Gate>),
}

/// How the fake agent answers one one-off container (`POST /v1/apps/{app}/oneoff`).
pub enum OneOff {
    /// These output lines, then `exited` with this status.
    Exit { lines: Vec<String>, status: i64 },
    /// One line, then nothing until the spec's timeout, then `timed_out`.
    RunPastTimeout,
    /// One line, then nothing until the client hangs up.
    Hang,
}

/// What the fake agent was asked, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Build(BuildSpec),
    PutApp(String, AppSpec),
    Restart(String, RestartRequest),
    DeleteApp(String),
    Prune(String, Vec<String>),
    OneOff(String, OneOffSpec),
}

#[derive(Default)]
struct Shared {
    calls: Mutex<Vec<Call>>,
    rollouts: Mutex<VecDeque<Rollout>>,
    /// What serves per app: the spec of the last rollout that reached `serving`.
    serving: Mutex<HashMap<String, AppSpec>>,
    /// The `paas/<app>:*` images "on the host", per app.
    images: Mutex<HashMap<String, Vec<String>>>,
    oneoffs: Mutex<VecDeque<OneOff>>,
    /// One-off streams the client hung up on before their end.
    oneoffs_abandoned: Mutex<u32>,
    /// Why each of the next builds fails, in order; a build with none left succeeds.
    failing_builds: Mutex<VecDeque<String>>,
}

pub struct FakeAgent {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeAgent {
    pub async fn start() -> FakeAgent {
        let shared = Arc::new(Shared::default());
        let router = Router::new()
            .route("/v1/builds", post(build))
            .route("/v1/apps/{app}", put(put_app).delete(delete_app))
            .route("/v1/apps/{app}/restart", post(restart))
            .route("/v1/apps/{app}/instances", get(instances))
            .route("/v1/apps/{app}/images", get(images))
            .route("/v1/apps/{app}/prune", post(prune))
            .route("/v1/apps/{app}/logs", get(logs))
            .route("/v1/apps/{app}/oneoff", post(oneoff))
            .route("/v1/events", get(events))
            .layer(axum::middleware::from_fn(check_token))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        FakeAgent { url, shared, task }
    }

    pub fn client(&self) -> paas_agent_client::AgentClient {
        paas_agent_client::AgentClient::new(&self.url, AGENT_TOKEN)
    }

    /// The next rollouts answer as these say, in order; after them, rollouts succeed.
    pub fn script(&self, rollout: Rollout) {
        self.shared.rollouts.lock().unwrap().push_back(rollout);
    }

    /// The next one-off containers answer as these say, in order; after them, they exit 0
    /// with one line.
    pub fn script_oneoff(&self, oneoff: OneOff) {
        self.shared.oneoffs.lock().unwrap().push_back(oneoff);
    }

    /// The one-off containers of `app` asked for, in order.
    pub fn oneoff_specs(&self, app: &str) -> Vec<OneOffSpec> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::OneOff(name, spec) if name == app => Some(spec),
                _ => None,
            })
            .collect()
    }

    /// How many one-off streams the client hung up on before their end.
    pub fn oneoffs_abandoned(&self) -> u32 {
        *self.shared.oneoffs_abandoned.lock().unwrap()
    }

    /// The next build fails with `reason`, after one line of output.
    pub fn fail_next_build(&self, reason: &str) {
        self.shared
            .failing_builds
            .lock()
            .unwrap()
            .push_back(reason.to_owned());
    }

    /// The next rollout fails with `reason`, the failed container having printed `logs`.
    pub fn fail_next(&self, reason: &str, logs: &[&str]) {
        self.script(Rollout::Fail {
            reason: reason.to_owned(),
            logs: logs.iter().map(|line| (*line).to_owned()).collect(),
        });
    }

    /// The spec of `app`'s latest rollout.
    pub fn last_spec(&self, app: &str) -> AppSpec {
        self.put_specs(app)
            .pop()
            .unwrap_or_else(|| panic!("{app} was never rolled out"))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }

    /// The rollouts (`PUT /v1/apps/{app}`) of `app`, in order.
    pub fn put_specs(&self, app: &str) -> Vec<AppSpec> {
        self.calls()
            .into_iter()
            .filter_map(|call| match call {
                Call::PutApp(name, spec) if name == app => Some(spec),
                _ => None,
            })
            .collect()
    }

    /// The release the fake agent serves for `app`, if any.
    pub fn serving(&self, app: &str) -> Option<AppSpec> {
        self.shared.serving.lock().unwrap().get(app).cloned()
    }
}

impl Drop for FakeAgent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn check_token(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let expected = format!("Bearer {AGENT_TOKEN}");
    let authorized = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    if !authorized {
        return error(StatusCode::UNAUTHORIZED, "bad token");
    }
    next.run(request).await
}

fn error(status: StatusCode, message: &str) -> Response {
    let code = if status == StatusCode::UNAUTHORIZED {
        ErrorCode::Unauthorized
    } else {
        ErrorCode::InvalidInput
    };
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

fn ndjson<T: serde::Serialize>(items: impl futures::Stream<Item = T> + Send + 'static) -> Response {
    let body = items.map(|item| {
        let mut line = serde_json::to_vec(&item).unwrap();
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Body::from_stream(body).into_response()
}

/// Reads the spec line, drains the tar, answers a line and `done`.
async fn build(State(shared): State<Arc<Shared>>, body: Body) -> Response {
    let mut stream = body.into_data_stream();
    let mut pending = Vec::new();
    let spec = loop {
        if let Some(end) = pending.iter().position(|&b| b == b'\n') {
            break serde_json::from_slice::<BuildSpec>(&pending[..end]).unwrap();
        }
        match stream.next().await {
            Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
            _ => return error(StatusCode::BAD_REQUEST, "no build spec"),
        }
    };
    while let Some(Ok(_)) = stream.next().await {}
    shared.calls.lock().unwrap().push(Call::Build(spec.clone()));
    let step = BuildEvent::Line("Step 1/1 : FROM paas/busybox".to_owned());
    if let Some(reason) = shared.failing_builds.lock().unwrap().pop_front() {
        return ndjson(futures::stream::iter([step, BuildEvent::Failed { reason }]));
    }
    // Named as the agent names it.
    let image = format!("paas/{}:v{}", spec.app, spec.release);
    shared
        .images
        .lock()
        .unwrap()
        .entry(spec.app.clone())
        .or_default()
        .push(image.clone());
    ndjson(futures::stream::iter([
        step,
        BuildEvent::Done {
            image,
            image_id: "sha256:fake".to_owned(),
        },
    ]))
}

async fn put_app(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
    axum::Json(spec): axum::Json<AppSpec>,
) -> Response {
    shared
        .calls
        .lock()
        .unwrap()
        .push(Call::PutApp(app.clone(), spec.clone()));
    roll_out(shared, app, Some(spec))
}

async fn restart(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
    axum::Json(request): axum::Json<RestartRequest>,
) -> Response {
    shared
        .calls
        .lock()
        .unwrap()
        .push(Call::Restart(app.clone(), request));
    roll_out(shared, app, None)
}

/// Streams the next scripted rollout; `spec` (none for a restart) serves from `serving` on.
fn roll_out(shared: Arc<Shared>, app: String, spec: Option<AppSpec>) -> Response {
    let script = shared
        .rollouts
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Rollout::Succeed);
    if let Rollout::Refuse(message) = &script {
        return error(StatusCode::BAD_REQUEST, message);
    }
    let events = async_stream::stream! {
        yield RolloutEvent::Line("Starting web.1… healthy".to_owned());
        match script {
            Rollout::Fail { reason, logs } => {
                yield RolloutEvent::Failed { reason, logs };
                return;
            }
            Rollout::HoldBeforeServing(ref gate) => gate.hold().await,
            _ => {}
        }
        if let Some(spec) = spec {
            shared.serving.lock().unwrap().insert(app.clone(), spec);
        }
        yield RolloutEvent::Serving;
        if let Rollout::HoldAfterServing(gate) = script {
            gate.hold().await;
        }
        yield RolloutEvent::Line("Stopped web.1".to_owned());
        yield RolloutEvent::Done;
    };
    ndjson(events)
}

async fn delete_app(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
) -> StatusCode {
    shared
        .calls
        .lock()
        .unwrap()
        .push(Call::DeleteApp(app.clone()));
    shared.serving.lock().unwrap().remove(&app);
    StatusCode::NO_CONTENT
}

async fn instances(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
) -> axum::Json<Vec<Instance>> {
    let serving = shared.serving.lock().unwrap().get(&app).cloned();
    let mut listed = Vec::new();
    if let Some(spec) = serving {
        for (process, wanted) in &spec.processes {
            for index in 1..=wanted.quantity {
                listed.push(Instance {
                    process: process.clone(),
                    index,
                    release: spec.release,
                    name: format!("paas-{app}-v{}-{process}-{index}", spec.release),
                    container_id: format!("{app}{index}"),
                    state: paas_api::types::InstanceState::Up,
                    started_at: None,
                    memory: wanted.resources.memory,
                    cpus: wanted.resources.cpus,
                    out_of_memory: false,
                    restarts: 0,
                    oneoff: None,
                    node: None,
                });
            }
        }
    }
    axum::Json(listed)
}

async fn images(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
) -> axum::Json<Vec<String>> {
    axum::Json(
        shared
            .images
            .lock()
            .unwrap()
            .get(&app)
            .cloned()
            .unwrap_or_default(),
    )
}

async fn prune(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
    axum::Json(request): axum::Json<PruneRequest>,
) -> axum::Json<PruneResult> {
    shared
        .calls
        .lock()
        .unwrap()
        .push(Call::Prune(app.clone(), request.keep.clone()));
    let mut images = shared.images.lock().unwrap();
    let present = images.entry(app).or_default();
    let removed = present
        .iter()
        .filter(|image| !request.keep.contains(image))
        .cloned()
        .collect();
    present.retain(|image| request.keep.contains(image));
    axum::Json(PruneResult { removed })
}

/// Counts a one-off stream dropped before its end.
struct Abandoned(Arc<Shared>, bool);

impl Drop for Abandoned {
    fn drop(&mut self) {
        if !self.1 {
            *self.0.oneoffs_abandoned.lock().unwrap() += 1;
        }
    }
}

async fn oneoff(
    State(shared): State<Arc<Shared>>,
    UrlPath(app): UrlPath<String>,
    axum::Json(spec): axum::Json<OneOffSpec>,
) -> Response {
    shared
        .calls
        .lock()
        .unwrap()
        .push(Call::OneOff(app.clone(), spec.clone()));
    let script = shared
        .oneoffs
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(OneOff::Exit {
            lines: vec![format!("{} done", spec.command)],
            status: 0,
        });
    let events = async_stream::stream! {
        let mut guard = Abandoned(shared, false);
        yield OneOffEvent::Started { name: format!("paas-{app}-v{}-{}-1", spec.release, spec.kind.as_str()), index: 1 };
        let line = |line: String| OneOffEvent::Output { stream: LogStream::Stdout, line };
        match script {
            OneOff::Exit { lines, status } => {
                for text in lines {
                    yield line(text);
                }
                guard.1 = true;
                yield OneOffEvent::Exited { status };
            }
            OneOff::RunPastTimeout => {
                yield line("migrating…".to_owned());
                tokio::time::sleep(Duration::from_secs(spec.timeout_secs)).await;
                guard.1 = true;
                yield OneOffEvent::TimedOut { after_secs: spec.timeout_secs };
            }
            OneOff::Hang => {
                yield line("migrating…".to_owned());
                futures::future::pending::<()>().await;
            }
        }
    };
    ndjson(events)
}

async fn logs() -> Response {
    ndjson(futures::stream::iter([LogMessage::Live]))
}

/// Open for as long as gitd follows it; nothing happens to fake containers.
async fn events() -> Response {
    Body::from_stream(futures::stream::pending::<Result<Bytes, Infallible>>()).into_response()
}

/// A real gitd in a fresh data dir, served in-process, wired to a [`FakeAgent`].
pub struct TestGitd {
    pub agent: FakeAgent,
    pub server: Server,
    pub url: String,
    pub token: String,
    http: reqwest::Client,
    _dir: TempDir,
}

impl TestGitd {
    pub async fn start() -> TestGitd {
        TestGitd::start_with(|_| {}).await
    }

    /// A gitd whose settings `configure` changed first, in its `gitd.toml` (so a restart
    /// keeps them).
    pub async fn start_with(configure: impl FnOnce(&mut GitdConfig)) -> TestGitd {
        let agent = FakeAgent::start().await;
        let dir = tempfile::Builder::new()
            .prefix("gitd-inproc")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, ADMIN_PASSWORD).unwrap();
        paas_gitd::init::run(paas_gitd::init::InitArgs {
            data: data.clone(),
            admin_user: ADMIN.to_owned(),
            admin_password_file: Some(password_file),
            force: false,
        })
        .unwrap();
        let mut config = GitdConfig::load(&data).unwrap();
        configure(&mut config);
        std::fs::write(
            GitdConfig::path(&data),
            toml::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        let server = serve(&data, &agent).await;
        let url = format!("http://{}", server.http_addr);
        let http = reqwest::Client::new();
        let login: serde_json::Value = http
            .post(format!("{url}/v1/login"))
            .json(&serde_json::json!({"username": ADMIN, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_owned();
        TestGitd {
            agent,
            server,
            url,
            token,
            http,
            _dir: dir,
        }
    }

    /// A gitd with the app `name` created and its v1 deployed.
    pub async fn deployed(name: &str) -> TestGitd {
        let gitd = TestGitd::start().await;
        gitd.create_app(name).await;
        let pushed = gitd.push(name, &[]).await;
        assert!(pushed.accepted, "{:?}", pushed.lines);
        gitd
    }

    pub fn data_dir(&self) -> &Path {
        &self.server.state().data_dir
    }

    /// `PATCH /v1/apps/{app}/config` with `vars` (a JSON object; `null` unsets).
    pub async fn set_config(&self, app: &str, vars: serde_json::Value) -> (u16, serde_json::Value) {
        self.api(
            reqwest::Method::PATCH,
            &format!("/v1/apps/{app}/config"),
            Some(serde_json::json!({ "vars": vars })),
        )
        .await
    }

    /// `GET /v1/apps/{app}`'s answer.
    pub async fn info(&self, app: &str) -> serde_json::Value {
        let (status, body) = self
            .api(reqwest::Method::GET, &format!("/v1/apps/{app}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// An API request as the admin sent from its own task, so the test can abort it (a
    /// requester going away) or await it later (a change queued behind another).
    pub fn send_in_background(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> tokio::task::JoinHandle<reqwest::Result<reqwest::Response>> {
        let request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(&body);
        tokio::spawn(request.send())
    }

    /// Asserts that the app's platform events include each of `expected`.
    pub async fn assert_events(&self, app: &str, expected: &[&str]) {
        let events = self.events(app).await;
        for expected in expected {
            assert!(
                events.iter().any(|e| e == expected),
                "{expected:?}: {events:?}"
            );
        }
    }

    /// An API request as the admin: the status and the JSON body (null when empty).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let json = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        (status, json)
    }

    pub async fn create_app(&self, name: &str) {
        let (status, body) = self
            .api(
                reqwest::Method::POST,
                "/v1/apps",
                Some(serde_json::json!({ "name": name })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }

    /// The app's releases, oldest first.
    pub async fn releases(&self, app: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/apps/{app}/releases"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let mut releases = body.as_array().cloned().unwrap();
        releases.reverse();
        releases
    }

    /// `(version, status)` of every release, oldest first.
    pub async fn statuses(&self, app: &str) -> Vec<(u64, String)> {
        self.releases(app)
            .await
            .iter()
            .map(|r| {
                (
                    r["version"].as_u64().unwrap(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    pub async fn config(&self, app: &str) -> BTreeMap<String, String> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/apps/{app}/config"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_value(body["vars"].clone()).unwrap()
    }

    /// The app's platform events as `<dyno>: <message>`, oldest first.
    pub async fn events(&self, app: &str) -> Vec<String> {
        let response = self
            .http
            .get(format!(
                "{}/v1/apps/{app}/logs?source=paas&num=1000",
                self.url
            ))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        text.lines()
            .filter(|line| !line.trim().is_empty())
            .map(|line| {
                let line: serde_json::Value = serde_json::from_str(line).unwrap();
                format!(
                    "{}: {}",
                    line["dyno"].as_str().unwrap_or_default(),
                    line["line"].as_str().unwrap_or_default()
                )
            })
            .collect()
    }
}

/// Serves `data` on fresh loopback listeners with `agent`.
async fn serve(data: &Path, agent: &FakeAgent) -> Server {
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gitd = GitdConfig::load(data).unwrap();
    paas_gitd::serve(
        ServeConfig {
            data_dir: data.to_owned(),
            gitd,
        },
        Listeners {
            http,
            ssh,
            deploy_socket: data.join("run").join("deploy.sock"),
        },
        Some(agent.client()),
    )
    .await
    .unwrap()
}

/// Polls `probe` every 10 ms until it gives a value; panics after a generous bound.
pub async fn eventually<T, F: Future<Output = Option<T>>>(
    what: &str,
    mut probe: impl FnMut() -> F,
) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a push through [`TestGitd::push`] showed the pusher, and whether it was accepted.
pub struct Pushed {
    pub accepted: bool,
    pub lines: Vec<String>,
}

impl TestGitd {
    /// The admin and the app as the store has them.
    pub async fn rows(&self, app: &str) -> (paas_gitd::store::AppRow, paas_gitd::store::UserRow) {
        let store = &self.server.state().store;
        let user = store.user_by_name(ADMIN).await.unwrap().unwrap();
        let app = store.app_for_user(&user, app).await.unwrap().unwrap();
        (app, user)
    }

    /// Commits `files` into the app's repository (as objects only, as git's quarantine would
    /// hold them) and deploys that commit through the ops entry point a push uses, under the
    /// app's lock; returns once the pusher would have been answered.
    pub async fn push(&self, app: &str, files: &[(&str, &str)]) -> Pushed {
        let commit = self.commit(app, files);
        let (app_row, user) = self.rows(app).await;
        let state = self.server.state();
        let lock = state.app_locks.acquire(app).await;
        let zero = "0".repeat(40);
        let request = paas_gitd::deploy::protocol::HookRequest {
            token: String::new(),
            app: app.to_owned(),
            updates: vec![
                paas_gitd::deploy::protocol::RefUpdate::parse(&format!(
                    "{zero} {commit} refs/heads/main"
                ))
                .unwrap(),
            ],
            object_directory: None,
            alternate_object_directories: None,
            quarantine_path: None,
        };
        let session = paas_gitd::deploy::PushSession {
            app: app_row,
            user,
            lock,
        };
        let mut lines = Vec::new();
        let followed = paas_gitd::ops::push::deploy(state, session, request)
            .follow(|line| lines.push(line))
            .await;
        let accepted = match followed {
            paas_gitd::ops::Followed::Serving => true,
            paas_gitd::ops::Followed::Finished(outcome) => outcome.is_ok(),
        };
        Pushed { accepted, lines }
    }

    /// A commit of `files` (a Dockerfile unless given) fetched into the app's repository.
    fn commit(&self, app: &str, files: &[(&str, &str)]) -> String {
        let work = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(work.path())
                .env("GIT_AUTHOR_NAME", "t")
                .env("GIT_AUTHOR_EMAIL", "t@example.com")
                .env("GIT_COMMITTER_NAME", "t")
                .env("GIT_COMMITTER_EMAIL", "t@example.com")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "git {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        git(&["init", "-q", "-b", "main"]);
        std::fs::write(work.path().join("Dockerfile"), "FROM paas/busybox\n").unwrap();
        for (path, contents) in files {
            std::fs::write(work.path().join(path), contents).unwrap();
        }
        git(&["add", "-A"]);
        git(&["commit", "-q", "-m", "test"]);
        let commit = git(&["rev-parse", "HEAD"]);
        let repo = self.data_dir().join("repos").join(format!("{app}.git"));
        git(&[
            "--git-dir",
            repo.to_str().unwrap(),
            "fetch",
            "-q",
            work.path().to_str().unwrap(),
            "+HEAD:refs/test/incoming",
        ]);
        commit
    }

    /// Stops the server and serves the same data dir again, as a restart after a crash would
    /// (new ports; the admin's token stays valid).
    pub async fn restart(&mut self) {
        let data = self.data_dir().to_owned();
        self.server = serve(&data, &self.agent).await;
        self.url = format!("http://{}", self.server.http_addr);
    }

    /// The app's builds, newest first, as the API lists them.
    pub async fn builds(&self, app: &str) -> Vec<serde_json::Value> {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/apps/{app}/builds"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body.as_array().unwrap().clone()
    }

    /// The saved output of release `version`.
    pub async fn output(&self, app: &str, version: u32) -> String {
        let (status, body) = self
            .api(
                reqwest::Method::GET,
                &format!("/v1/apps/{app}/releases/v{version}/output"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["output"].as_str().unwrap().to_owned()
    }
}

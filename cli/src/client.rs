//! A typed, blocking client for gitd's HTTP API (`/v1/...`, documented in
//! `paas_api::types`): one method per API call, taking and returning the wire types. It is
//! the only place that knows the API's paths. Server errors (`{"error":{"code","message"}}`)
//! come back as [`ClientError::Api`] carrying the server's message unchanged.
//!
//! Blocking to its callers, it runs reqwest's async client on a single-threaded Tokio runtime
//! of its own, on the calling thread: a one-shot command needs no worker threads, and
//! reqwest's blocking client would start one and hand every request, every body read and its
//! own shut-down across to it, each hand-over a wake-up that waits for a CPU on a busy machine.

use std::io::{BufRead, BufReader, Read};
use std::time::Duration;

use bytes::Bytes;
use paas_api::ErrorBody;
use paas_api::addons::{Addon, AddonChange, AddonName, AttachAddon, CreateAddon, PostgresInfo};
use paas_api::app_json::status::{AppChecks, CronJobStatus};
use paas_api::attach::{Frame, PROTOCOL};
use paas_api::backups::{Backup, BackupId, RestoreRequest, Restored};
use paas_api::builds::{Build, BuildOutput};
use paas_api::formation::ScaleChanges;
use paas_api::progress::{ChangeEvent, Progress, is_unknown_change_event};
use paas_api::resources::{ProcessSize, ResizeRequest};
use paas_api::routing::{Maintenance, StickySessions};
use paas_api::storage::{Mount, StorageChange, Volume, VolumeName};
use paas_api::types::{
    AddCollaboratorRequest, AddDomainRequest, AddKeyRequest, App, AppFeature, Collaborator,
    ConfigUpdate, ConfigUpdated, ConfigVars, CreateAppRequest, CreateUserRequest, Domain, Feature,
    FeatureUpdate, Formation, KeyChallenge, KeyChallengeRequest, LogLine, LogSource, LoginRequest,
    LoginResponse, ProcessFilter, ProcessInstance, Release, ReleaseOutput, RestartRequest,
    RollbackRequest, ScaleRequest, SshKey, StopRequest, User,
};
use paas_api::webhooks::{
    CreateWebhookRequest, CreatedWebhook, DeliveriesQuery, DeliveryAttempt, Webhook,
};
use paas_api::{AppName, DomainName, ErrorCode, ProcessType, Username};
use reqwest::Url;
use reqwest::header;
use reqwest::{Method, StatusCode};
use reqwest::{RequestBuilder, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::runtime::Runtime;

/// Requests that do not stream get an answer within this time or fail. Scaling, restarts,
/// config changes and rollbacks answer only once the rollout is done, and the agent gives each
/// container up to a minute to become healthy, so this is minutes, not seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// What a change streamed as it runs is answered as.
const NDJSON: &str = "application/x-ndjson";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with its error envelope.
    #[error("{message}")]
    Api {
        status: u16,
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("could not reach the paas server at {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("invalid server URL {0:?}")]
    BadServerUrl(String),
    #[error("unexpected answer from the paas server (HTTP {status}): {detail}")]
    Unexpected { status: u16, detail: String },
    #[error("the log stream broke")]
    StreamBroke(#[source] std::io::Error),
    #[error("the server sent an unreadable log line")]
    UnreadableLogLine(#[source] serde_json::Error),
}

/// What `GET /v1/apps/{app}/logs` is asked for.
#[derive(Debug, Clone, Default)]
pub struct LogsQuery {
    pub num: usize,
    /// Follow: keep the stream open for new lines.
    pub tail: bool,
    pub process: Option<ProcessFilter>,
    pub source: Option<LogSource>,
    /// The router's lines too.
    pub router: bool,
    pub release: Option<u32>,
}

#[derive(Deserialize)]
struct LenientErrorBody {
    error: LenientErrorDetail,
}

/// The error envelope read without insisting on a known code, so a newer server's codes
/// still show their message.
#[derive(Deserialize)]
struct LenientErrorDetail {
    code: String,
    message: String,
}

pub struct Client {
    http: reqwest::Client,
    /// Drives `http` on the thread that calls a method (see the module's docs).
    runtime: Runtime,
    server: String,
    base: Url,
    token: Option<String>,
}

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client, ClientError> {
        let base = Url::parse(server).map_err(|_| ClientError::BadServerUrl(server.to_owned()))?;
        if base.cannot_be_a_base() {
            return Err(ClientError::BadServerUrl(server.to_owned()));
        }
        let unreachable = |reason: String| ClientError::Unreachable {
            server: server.to_owned(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        // reqwest's connector and its timers need the runtime's reactor from the start.
        let _entered = runtime.enter();
        // No overall timeout here: `execute` gives one per request, and streams have none.
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(concat!("paas-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(Client {
            http,
            runtime,
            server: server.to_owned(),
            base,
            token,
        })
    }

    /// `<server>/v1/<segments…>`, each segment percent-encoded (fingerprints contain `/`).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url
                .path_segments_mut()
                .expect("checked in Client::new that the URL can be a base");
            path.pop_if_empty().push("v1");
            path.extend(segments);
        }
        url
    }

    /// A request with the bearer token.
    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a request within [`REQUEST_TIMEOUT`] and turns transport failures and error
    /// envelopes into [`ClientError`].
    fn execute(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        self.send(builder.timeout(REQUEST_TIMEOUT))
    }

    /// [`Client::execute`] without the overall timeout, for streams that last.
    fn send(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        self.runtime.block_on(self.send_async(builder))
    }

    /// [`Client::send`] for code already on the client's runtime.
    async fn send_async(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        let response = builder.send().await.map_err(|e| ClientError::Unreachable {
            server: self.server.clone(),
            reason: root_cause(&e),
        })?;
        // 101: an attached session's upgrade.
        if response.status().is_success() || response.status() == StatusCode::SWITCHING_PROTOCOLS {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Err(match serde_json::from_str::<LenientErrorBody>(&body) {
            Ok(envelope) => ClientError::Api {
                status,
                code: serde_json::from_value(serde_json::Value::String(envelope.error.code)).ok(),
                message: envelope.error.message,
            },
            Err(_) => ClientError::Unexpected {
                status,
                detail: summarize(&body),
            },
        })
    }

    fn call<T: DeserializeOwned>(&self, builder: RequestBuilder) -> Result<T, ClientError> {
        let response = self.execute(builder)?;
        self.read_answer(response)
    }

    /// A JSON answer's body as `T`.
    fn read_answer<T: DeserializeOwned>(&self, response: Response) -> Result<T, ClientError> {
        let status = response.status().as_u16();
        let body =
            self.runtime
                .block_on(response.text())
                .map_err(|e| ClientError::Unreachable {
                    server: self.server.clone(),
                    reason: root_cause(&e),
                })?;
        serde_json::from_str(&body).map_err(|e| ClientError::Unexpected {
            status,
            detail: format!("{e}: {}", summarize(&body)),
        })
    }

    /// Sends a change asking to follow it as it runs (`Accept: application/x-ndjson`): hands
    /// each [`Progress`] to `on_progress` as it arrives and returns the change's answer. An
    /// answer in plain JSON (a server from before such streams) is read as [`Client::call`]
    /// reads it.
    fn call_following<T: DeserializeOwned>(
        &self,
        builder: RequestBuilder,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<T, ClientError> {
        let response = self.execute(builder.header(header::ACCEPT, NDJSON))?;
        let status = response.status().as_u16();
        let streamed = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|kind| kind.as_bytes().starts_with(NDJSON.as_bytes()));
        if !streamed {
            return self.read_answer(response);
        }
        let unexpected = |detail: String| ClientError::Unexpected { status, detail };
        let body = BodyReader {
            runtime: &self.runtime,
            response,
            chunk: Bytes::new(),
        };
        for line in BufReader::new(body).split(b'\n') {
            let line = line.map_err(ClientError::StreamBroke)?;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ChangeEvent<T>>(&line) {
                Ok(ChangeEvent::Progress(progress)) => on_progress(progress),
                Ok(ChangeEvent::Done(answer)) => return Ok(answer),
                Ok(ChangeEvent::Failed(ErrorBody { error })) => {
                    return Err(ClientError::Api {
                        status: error.code.http_status(),
                        code: Some(error.code),
                        message: error.message,
                    });
                }
                // A newer server's kind of progress.
                Err(_) if is_unknown_change_event(&line) => {}
                Err(err) => {
                    let text = String::from_utf8_lossy(&line);
                    return Err(unexpected(format!("{err}: {}", summarize(&text))));
                }
            }
        }
        Err(unexpected(
            "the change's stream ended without its result".to_owned(),
        ))
    }

    fn call_empty(&self, builder: RequestBuilder) -> Result<(), ClientError> {
        self.execute(builder).map(drop)
    }

    fn get<T: DeserializeOwned>(&self, segments: &[&str]) -> Result<T, ClientError> {
        self.call(self.request(Method::GET, self.url(segments)))
    }

    pub fn login(&self, request: &LoginRequest) -> Result<LoginResponse, ClientError> {
        self.call(
            self.request(Method::POST, self.url(&["login"]))
                .json(request),
        )
    }

    pub fn logout(&self) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::POST, self.url(&["logout"])))
    }

    pub fn whoami(&self) -> Result<User, ClientError> {
        self.get(&["whoami"])
    }

    pub fn users(&self) -> Result<Vec<User>, ClientError> {
        self.get(&["users"])
    }

    pub fn create_user(&self, request: &CreateUserRequest) -> Result<User, ClientError> {
        self.call(
            self.request(Method::POST, self.url(&["users"]))
                .json(request),
        )
    }

    pub fn remove_user(&self, username: &Username) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, self.url(&["users", username])))
    }

    pub fn nodes(&self) -> Result<paas_api::nodes::NodeMap, ClientError> {
        self.get(&["nodes"])
    }

    pub fn set_node_availability(
        &self,
        node: &paas_api::nodes::NodeName,
        availability: paas_api::nodes::Availability,
    ) -> Result<paas_api::nodes::Node, ClientError> {
        self.call(
            self.request(Method::PUT, self.url(&["nodes", node, "availability"]))
                .json(&paas_api::nodes::AvailabilityChange { availability }),
        )
    }

    pub fn apps(&self) -> Result<Vec<App>, ClientError> {
        self.get(&["apps"])
    }

    pub fn create_app(&self, request: &CreateAppRequest) -> Result<App, ClientError> {
        self.call(
            self.request(Method::POST, self.url(&["apps"]))
                .json(request),
        )
    }

    pub fn app(&self, app: &AppName) -> Result<App, ClientError> {
        self.get(&["apps", app])
    }

    /// `addons`: the app's own add-ons, each confirmed to go with it.
    pub fn destroy_app(&self, app: &AppName, addons: &[AddonName]) -> Result<(), ClientError> {
        let mut url = self.url(&["apps", app]);
        url.query_pairs_mut().append_pair("confirm", app);
        if !addons.is_empty() {
            let names: Vec<&str> = addons.iter().map(|name| name.as_str()).collect();
            url.query_pairs_mut()
                .append_pair("addons", &names.join(","));
        }
        self.call_empty(self.request(Method::DELETE, url))
    }

    pub fn collaborators(&self, app: &AppName) -> Result<Vec<Collaborator>, ClientError> {
        self.get(&["apps", app, "collaborators"])
    }

    pub fn add_collaborator(
        &self,
        app: &AppName,
        username: &Username,
    ) -> Result<Collaborator, ClientError> {
        let request = AddCollaboratorRequest {
            username: username.clone(),
        };
        self.call(
            self.request(Method::POST, self.url(&["apps", app, "collaborators"]))
                .json(&request),
        )
    }

    pub fn remove_collaborator(
        &self,
        app: &AppName,
        username: &Username,
    ) -> Result<(), ClientError> {
        self.call_empty(self.request(
            Method::DELETE,
            self.url(&["apps", app, "collaborators", username]),
        ))
    }

    pub fn keys(&self) -> Result<Vec<SshKey>, ClientError> {
        self.get(&["keys"])
    }

    /// A challenge to sign with the private key of the key about to be added.
    pub fn key_challenge(&self, public_key: &str) -> Result<KeyChallenge, ClientError> {
        let request = KeyChallengeRequest {
            public_key: public_key.to_owned(),
        };
        self.call(
            self.request(Method::POST, self.url(&["keys", "challenge"]))
                .json(&request),
        )
    }

    pub fn add_key(
        &self,
        public_key: &str,
        challenge: &str,
        signature: &str,
    ) -> Result<SshKey, ClientError> {
        let request = AddKeyRequest {
            public_key: public_key.to_owned(),
            challenge: challenge.to_owned(),
            signature: signature.to_owned(),
        };
        self.call(
            self.request(Method::POST, self.url(&["keys"]))
                .json(&request),
        )
    }

    pub fn remove_key(&self, id_or_fingerprint: &str) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, self.url(&["keys", id_or_fingerprint])))
    }

    pub fn config(&self, app: &AppName) -> Result<ConfigVars, ClientError> {
        self.get(&["apps", app, "config"])
    }

    pub fn update_config(
        &self,
        app: &AppName,
        update: &ConfigUpdate,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<ConfigUpdated, ClientError> {
        self.call_following(
            self.request(Method::PATCH, self.url(&["apps", app, "config"]))
                .json(update),
            on_progress,
        )
    }

    pub fn releases(&self, app: &AppName, limit: Option<u32>) -> Result<Vec<Release>, ClientError> {
        let mut url = self.url(&["apps", app, "releases"]);
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.call(self.request(Method::GET, url))
    }

    pub fn release(&self, app: &AppName, version: u32) -> Result<Release, ClientError> {
        self.get(&["apps", app, "releases", &format!("v{version}")])
    }

    pub fn release_output(
        &self,
        app: &AppName,
        version: u32,
    ) -> Result<ReleaseOutput, ClientError> {
        self.get(&["apps", app, "releases", &format!("v{version}"), "output"])
    }

    pub fn builds(&self, app: &AppName, limit: Option<u32>) -> Result<Vec<Build>, ClientError> {
        let mut url = self.url(&["apps", app, "builds"]);
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.call(self.request(Method::GET, url))
    }

    pub fn metrics(
        &self,
        app: &AppName,
        period: paas_api::metrics::MetricsPeriod,
    ) -> Result<paas_api::metrics::AppMetrics, ClientError> {
        let mut url = self.url(&["apps", app, "metrics"]);
        url.query_pairs_mut().append_pair("period", period.as_str());
        self.call(self.request(Method::GET, url))
    }

    pub fn build_output(&self, app: &AppName, id: u32) -> Result<BuildOutput, ClientError> {
        self.get(&["apps", app, "builds", &id.to_string(), "output"])
    }

    /// Answers once the release rolled back to runs; returns the new release.
    pub fn rollback(
        &self,
        app: &AppName,
        request: &RollbackRequest,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Release, ClientError> {
        self.call_following(
            self.request(Method::POST, self.url(&["apps", app, "rollback"]))
                .json(request),
            on_progress,
        )
    }

    /// Starts a detached one-off; answers once it runs.
    pub fn run_detached(
        &self,
        app: &AppName,
        request: &paas_api::oneoff::RunRequest,
    ) -> Result<paas_api::oneoff::RunStarted, ClientError> {
        self.call(
            self.request(Method::POST, self.url(&["apps", app, "run", "detached"]))
                .json(request),
        )
    }

    pub fn ps(&self, app: &AppName) -> Result<Vec<ProcessInstance>, ClientError> {
        self.get(&["apps", app, "ps"])
    }

    /// Answers once the scaled instances run; returns the whole new formation.
    pub fn scale(
        &self,
        app: &AppName,
        changes: &ScaleChanges,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Formation>, ClientError> {
        let request = ScaleRequest {
            changes: changes.clone(),
        };
        self.call_following(
            self.request(Method::PATCH, self.url(&["apps", app, "formation"]))
                .json(&request),
            on_progress,
        )
    }

    /// Restarts `process` (every process type with `None`); answers once they run again.
    pub fn restart(
        &self,
        app: &AppName,
        process: Option<ProcessType>,
        index: Option<u32>,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ClientError> {
        self.call_following(
            self.request(Method::POST, self.url(&["apps", app, "restart"]))
                .json(&RestartRequest { process, index }),
            on_progress,
        )
    }

    pub fn stop(&self, app: &AppName, request: &StopRequest) -> Result<(), ClientError> {
        self.call_empty(
            self.request(Method::POST, self.url(&["apps", app, "ps", "stop"]))
                .json(request),
        )
    }

    pub fn domains(&self, app: &AppName) -> Result<Vec<Domain>, ClientError> {
        self.get(&["apps", app, "domains"])
    }

    /// Answers once the domain is routed.
    pub fn add_domain(
        &self,
        app: &AppName,
        hostname: &DomainName,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Domain, ClientError> {
        let request = AddDomainRequest {
            hostname: hostname.clone(),
        };
        self.call_following(
            self.request(Method::POST, self.url(&["apps", app, "domains"]))
                .json(&request),
            on_progress,
        )
    }

    pub fn remove_domain(
        &self,
        app: &AppName,
        hostname: &DomainName,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<(), ClientError> {
        self.call_following(
            self.request(
                Method::DELETE,
                self.url(&["apps", app, "domains", hostname]),
            ),
            on_progress,
        )
    }

    pub fn webhooks(&self, app: &AppName) -> Result<Vec<Webhook>, ClientError> {
        self.get(&["apps", app, "webhooks"])
    }

    pub fn add_webhook(
        &self,
        app: &AppName,
        request: &CreateWebhookRequest,
    ) -> Result<CreatedWebhook, ClientError> {
        self.call(
            self.request(Method::POST, self.url(&["apps", app, "webhooks"]))
                .json(request),
        )
    }

    pub fn remove_webhook(&self, app: &AppName, id: u64) -> Result<(), ClientError> {
        let id = id.to_string();
        self.call_empty(self.request(Method::DELETE, self.url(&["apps", app, "webhooks", &id])))
    }

    pub fn webhook_deliveries(
        &self,
        app: &AppName,
        query: &DeliveriesQuery,
    ) -> Result<Vec<DeliveryAttempt>, ClientError> {
        self.call(
            self.request(Method::GET, self.url(&["apps", app, "webhook-deliveries"]))
                .query(query),
        )
    }

    pub fn cron_jobs(&self, app: &AppName) -> Result<Vec<CronJobStatus>, ClientError> {
        self.get(&["apps", app, "cron"])
    }

    pub fn checks(&self, app: &AppName) -> Result<AppChecks, ClientError> {
        self.get(&["apps", app, "checks"])
    }

    pub fn features(&self, app: &AppName) -> Result<Vec<AppFeature>, ClientError> {
        self.get(&["apps", app, "features"])
    }

    /// Answers once the app runs with the feature on or off.
    pub fn set_feature(
        &self,
        app: &AppName,
        feature: Feature,
        enabled: bool,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<AppFeature, ClientError> {
        self.call_following(
            self.request(
                Method::PATCH,
                self.url(&["apps", app, "features", feature.name()]),
            )
            .json(&FeatureUpdate { enabled }),
            on_progress,
        )
    }

    pub fn maintenance(&self, app: &AppName) -> Result<Maintenance, ClientError> {
        self.get(&["apps", app, "maintenance"])
    }

    /// Answers once the app's hosts serve the maintenance page (or the app again).
    pub fn set_maintenance(
        &self,
        app: &AppName,
        enabled: bool,
    ) -> Result<Maintenance, ClientError> {
        self.call(
            self.request(Method::PUT, self.url(&["apps", app, "maintenance"]))
                .json(&Maintenance { enabled }),
        )
    }

    pub fn sticky_sessions(&self, app: &AppName) -> Result<StickySessions, ClientError> {
        self.get(&["apps", app, "sticky"])
    }

    /// Answers once `web` runs with sticky sessions on or off.
    pub fn set_sticky_sessions(
        &self,
        app: &AppName,
        enabled: bool,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<StickySessions, ClientError> {
        self.call_following(
            self.request(Method::PUT, self.url(&["apps", app, "sticky"]))
                .json(&StickySessions { enabled }),
            on_progress,
        )
    }

    pub fn sizes(&self, app: &AppName) -> Result<Vec<ProcessSize>, ClientError> {
        self.get(&["apps", app, "resources"])
    }

    /// Answers once the app runs with the new sizes; returns the release that made them.
    pub fn resize(
        &self,
        app: &AppName,
        request: &ResizeRequest,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<Release, ClientError> {
        self.call_following(
            self.request(Method::PATCH, self.url(&["apps", app, "resources"]))
                .json(request),
            on_progress,
        )
    }

    pub fn volumes(&self, app: &AppName) -> Result<Vec<Volume>, ClientError> {
        self.get(&["apps", app, "storage"])
    }

    /// Answers once the release with the mount serves and the old instances are gone.
    pub fn mount(
        &self,
        app: &AppName,
        mount: &Mount,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<StorageChange, ClientError> {
        self.call_following(
            self.request(Method::POST, self.url(&["apps", app, "storage", "mounts"]))
                .json(mount),
            on_progress,
        )
    }

    pub fn unmount(
        &self,
        app: &AppName,
        mount: &Mount,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<StorageChange, ClientError> {
        self.call_following(
            self.request(
                Method::POST,
                self.url(&["apps", app, "storage", "unmounts"]),
            )
            .json(mount),
            on_progress,
        )
    }

    pub fn destroy_volume(&self, app: &AppName, volume: &VolumeName) -> Result<(), ClientError> {
        let mut url = self.url(&["apps", app, "storage", volume]);
        url.query_pairs_mut().append_pair("confirm", app);
        self.call_empty(self.request(Method::DELETE, url))
    }

    /// The add-ons attached to the app.
    pub fn addons(&self, app: &AppName) -> Result<Vec<Addon>, ClientError> {
        self.get(&["apps", app, "addons"])
    }

    pub fn addon(&self, app: &AppName, addon: &AddonName) -> Result<Addon, ClientError> {
        self.get(&["apps", app, "addons", addon])
    }

    pub fn pg_info(&self, app: &AppName, addon: &AddonName) -> Result<PostgresInfo, ClientError> {
        self.get(&["apps", app, "addons", addon, "pg-info"])
    }

    /// Answers once the add-on answers and the release with its var serves.
    pub fn create_addon(
        &self,
        app: &AppName,
        request: &CreateAddon,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<AddonChange, ClientError> {
        self.call_following(
            self.request(Method::POST, self.url(&["apps", app, "addons"]))
                .json(request),
            on_progress,
        )
    }

    pub fn attach_addon(
        &self,
        app: &AppName,
        addon: &AddonName,
        request: &AttachAddon,
    ) -> Result<AddonChange, ClientError> {
        let url = self.url(&["apps", app, "addons", addon, "attachment"]);
        self.call(self.request(Method::POST, url).json(request))
    }

    pub fn detach_addon(
        &self,
        app: &AppName,
        addon: &AddonName,
    ) -> Result<AddonChange, ClientError> {
        let url = self.url(&["apps", app, "addons", addon, "attachment"]);
        self.call(self.request(Method::DELETE, url))
    }

    pub fn destroy_addon(
        &self,
        app: &AppName,
        addon: &AddonName,
        force: bool,
    ) -> Result<(), ClientError> {
        let mut url = self.url(&["apps", app, "addons", addon]);
        url.query_pairs_mut().append_pair("confirm", addon);
        if force {
            url.query_pairs_mut().append_pair("force", "true");
        }
        self.call_empty(self.request(Method::DELETE, url))
    }

    /// The captures of a Postgres add-on attached to the app, oldest first.
    pub fn backups(&self, app: &AppName, addon: &AddonName) -> Result<Vec<Backup>, ClientError> {
        self.get(&["apps", app, "addons", addon, "backups"])
    }

    /// Answers once the capture is complete.
    pub fn capture_backup(&self, app: &AppName, addon: &AddonName) -> Result<Backup, ClientError> {
        let url = self.url(&["apps", app, "addons", addon, "backups"]);
        self.call(self.request(Method::POST, url))
    }

    /// Answers once the add-on's data is replaced, or fails with it unchanged.
    pub fn restore_backup(
        &self,
        app: &AppName,
        addon: &AddonName,
        request: &RestoreRequest,
    ) -> Result<Restored, ClientError> {
        let url = self.url(&["apps", app, "addons", addon, "restores"]);
        self.call(self.request(Method::POST, url).json(request))
    }

    /// The capture's dump as it arrives, never held whole.
    pub fn download_backup(
        &self,
        app: &AppName,
        addon: &AddonName,
        id: &BackupId,
    ) -> Result<impl Read + '_, ClientError> {
        let url = self.url(&["apps", app, "addons", addon, "backups", id]);
        // Not `execute`: its overall timeout would cut a large download short.
        let response = self.send(self.request(Method::GET, url))?;
        Ok(BodyReader {
            runtime: &self.runtime,
            response,
            chunk: Bytes::new(),
        })
    }

    pub fn delete_backup(
        &self,
        app: &AppName,
        addon: &AddonName,
        id: &BackupId,
    ) -> Result<(), ClientError> {
        let mut url = self.url(&["apps", app, "addons", addon, "backups", id]);
        url.query_pairs_mut().append_pair("confirm", app);
        self.call_empty(self.request(Method::DELETE, url))
    }

    /// The app's log lines as the server sends them; with `tail`, until it stops.
    /// Opens the attached session at `segments` (`run/attached`, `ps/exec`), sends `request`
    /// as its first frame and runs `session` on the connection, on the client's runtime.
    pub fn attach<T, F, Fut, R>(
        &self,
        app: &AppName,
        segments: &[&str],
        request: &T,
        session: F,
    ) -> Result<R, ClientError>
    where
        T: serde::Serialize,
        F: FnOnce(reqwest::Upgraded) -> Fut,
        Fut: Future<Output = R>,
    {
        let mut path = vec!["apps", app.as_str()];
        path.extend_from_slice(segments);
        let builder = self
            .request(Method::GET, self.url(&path))
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, PROTOCOL);
        let open = serde_json::to_vec(request).expect("attach requests always serialize");
        let lost = |reason: String| ClientError::Unreachable {
            server: self.server.clone(),
            reason,
        };
        self.runtime.block_on(async {
            let response = self.send_async(builder).await?;
            let mut stream = response.upgrade().await.map_err(|e| lost(root_cause(&e)))?;
            stream
                .write_all(&Frame::Open(open).encode())
                .await
                .map_err(|e| lost(e.to_string()))?;
            Ok(session(stream).await)
        })
    }

    pub fn logs(
        &self,
        app: &AppName,
        query: &LogsQuery,
    ) -> Result<impl Iterator<Item = Result<LogLine, ClientError>>, ClientError> {
        let mut url = self.url(&["apps", app, "logs"]);
        {
            let mut pairs = url.query_pairs_mut();
            pairs.append_pair("num", &query.num.to_string());
            if query.tail {
                pairs.append_pair("tail", "true");
            }
            if let Some(process) = &query.process {
                pairs.append_pair("ps", &process.to_string());
            }
            if let Some(source) = query.source {
                pairs.append_pair("source", source.as_str());
            }
            if !query.router {
                pairs.append_pair("router", "false");
            }
            if let Some(release) = query.release {
                pairs.append_pair("release", &release.to_string());
            }
        }
        // Not `execute`: its overall timeout would cut a followed stream short.
        let response = self.send(self.request(Method::GET, url))?;
        let body = BodyReader {
            runtime: &self.runtime,
            response,
            chunk: Bytes::new(),
        };
        Ok(BufReader::new(body)
            .split(b'\n')
            .filter(|line| {
                line.as_ref()
                    .map_or(true, |line| !line.iter().all(u8::is_ascii_whitespace))
            })
            .map(|line| {
                let line = line.map_err(ClientError::StreamBroke)?;
                serde_json::from_slice(&line).map_err(ClientError::UnreadableLogLine)
            }))
    }
}

/// A response body read as [`std::io::Read`], one chunk at a time, on the client's runtime.
struct BodyReader<'a> {
    runtime: &'a Runtime,
    response: Response,
    /// What is left of the last chunk received.
    chunk: Bytes,
}

impl Read for BodyReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.response.chunk()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(e) => return Err(std::io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which is
/// what a user can act on; reqwest's outer layers only repeat the URL.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A one-line excerpt of an unexpected body.
fn summarize(body: &str) -> String {
    let one_line: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.is_empty() {
        return "empty body".to_owned();
    }
    let mut excerpt: String = one_line.chars().take(200).collect();
    if excerpt.len() < one_line.len() {
        excerpt.push('…');
    }
    excerpt
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_keep_a_path_prefix_and_encode_segments() {
        let client = Client::new("http://127.0.0.1:8750", None).unwrap();
        assert_eq!(
            client.url(&["apps", "web", "config"]).as_str(),
            "http://127.0.0.1:8750/v1/apps/web/config"
        );
        assert_eq!(
            client.url(&["keys", "SHA256:ab/c+d"]).as_str(),
            "http://127.0.0.1:8750/v1/keys/SHA256:ab%2Fc+d"
        );
        let prefixed = Client::new("https://example.com/paas", None).unwrap();
        assert_eq!(
            prefixed.url(&["whoami"]).as_str(),
            "https://example.com/paas/v1/whoami"
        );
    }

    #[test]
    fn long_bodies_are_summarized_on_one_line() {
        assert_eq!(summarize(""), "empty body");
        assert_eq!(summarize("a\n  b"), "a b");
        let long = "x".repeat(300);
        assert_eq!(summarize(&long).chars().count(), 201);
    }
}

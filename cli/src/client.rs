//! A typed, blocking client for gitd's HTTP API (`/v1/...`, documented in
//! `paas_api::types`). Server errors (`{"error":{"code","message"}}`) come back as
//! [`ClientError::Api`] carrying the server's message unchanged.

use std::time::Duration;

use paas_api::ErrorCode;
use paas_api::types::{
    AddCollaboratorRequest, AddKeyRequest, App, Collaborator, ConfigUpdate, ConfigUpdated,
    ConfigVars, CreateAppRequest, CreateUserRequest, KeyChallenge, KeyChallengeRequest,
    LoginRequest, LoginResponse, Release, SshKey, User,
};
use reqwest::Method;
use reqwest::Url;
use reqwest::blocking::{RequestBuilder, Response};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Requests that do not stream get an answer within this time or fail. Scaling, restarts,
/// config changes and rollbacks answer only once the rollout is done, and the agent gives each
/// container up to a minute to become healthy, so this is minutes, not seconds.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15 * 60);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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
    http: reqwest::blocking::Client,
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
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(None)
            .user_agent(concat!("paas-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::Unreachable {
                server: server.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Client {
            http,
            server: server.to_owned(),
            base,
            token,
        })
    }

    /// `<server>/v1/<segments…>`, each segment percent-encoded (fingerprints contain `/`).
    pub fn url(&self, segments: &[&str]) -> Url {
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

    /// A request with the bearer token, for routes beyond the ones typed here.
    pub fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends a request and turns transport failures and error envelopes into [`ClientError`].
    pub fn execute(&self, builder: RequestBuilder) -> Result<Response, ClientError> {
        let response =
            builder
                .timeout(REQUEST_TIMEOUT)
                .send()
                .map_err(|e| ClientError::Unreachable {
                    server: self.server.clone(),
                    reason: root_cause(&e),
                })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status().as_u16();
        let body = response.text().unwrap_or_default();
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
        let status = response.status().as_u16();
        let body = response.text().map_err(|e| ClientError::Unreachable {
            server: self.server.clone(),
            reason: root_cause(&e),
        })?;
        serde_json::from_str(&body).map_err(|e| ClientError::Unexpected {
            status,
            detail: format!("{e}: {}", summarize(&body)),
        })
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

    pub fn remove_user(&self, username: &str) -> Result<(), ClientError> {
        self.call_empty(self.request(Method::DELETE, self.url(&["users", username])))
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

    pub fn app(&self, app: &str) -> Result<App, ClientError> {
        self.get(&["apps", app])
    }

    pub fn destroy_app(&self, app: &str) -> Result<(), ClientError> {
        let mut url = self.url(&["apps", app]);
        url.query_pairs_mut().append_pair("confirm", app);
        self.call_empty(self.request(Method::DELETE, url))
    }

    pub fn collaborators(&self, app: &str) -> Result<Vec<Collaborator>, ClientError> {
        self.get(&["apps", app, "collaborators"])
    }

    pub fn add_collaborator(&self, app: &str, username: &str) -> Result<Collaborator, ClientError> {
        let request = AddCollaboratorRequest {
            username: username.to_owned(),
        };
        self.call(
            self.request(Method::POST, self.url(&["apps", app, "collaborators"]))
                .json(&request),
        )
    }

    pub fn remove_collaborator(&self, app: &str, username: &str) -> Result<(), ClientError> {
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

    pub fn config(&self, app: &str) -> Result<ConfigVars, ClientError> {
        self.get(&["apps", app, "config"])
    }

    pub fn update_config(
        &self,
        app: &str,
        update: &ConfigUpdate,
    ) -> Result<ConfigUpdated, ClientError> {
        self.call(
            self.request(Method::PATCH, self.url(&["apps", app, "config"]))
                .json(update),
        )
    }

    pub fn releases(&self, app: &str, limit: Option<u32>) -> Result<Vec<Release>, ClientError> {
        let mut url = self.url(&["apps", app, "releases"]);
        if let Some(limit) = limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        self.call(self.request(Method::GET, url))
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

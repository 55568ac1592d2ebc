//! Requests and responses of gitd's HTTP API (`/v1/...`), used by the CLI and the server.
//!
//! Routes (all JSON; every route but `POST /v1/login` needs `Authorization: Bearer <token>`):
//!
//! | route | body → answer |
//! |---|---|
//! | `POST /v1/login` | [`LoginRequest`] → [`LoginResponse`] |
//! | `POST /v1/logout` | → 204 (revokes the token used) |
//! | `GET /v1/whoami` | → [`User`] |
//! | `GET /v1/users`, `POST /v1/users`, `DELETE /v1/users/{name}` | admins only: [`CreateUserRequest`] → [`User`] |
//! | `GET /v1/apps`, `POST /v1/apps` | [`CreateAppRequest`] → [`App`] |
//! | `GET /v1/apps/{app}` | → [`App`] |
//! | `DELETE /v1/apps/{app}?confirm={app}` | → 204 |
//! | `GET /v1/apps/{app}/collaborators`, `POST …`, `DELETE …/{user}` | [`AddCollaboratorRequest`] → [`Collaborator`] |
//! | `GET /v1/keys`, `POST /v1/keys`, `DELETE /v1/keys/{id-or-fingerprint}` | [`AddKeyRequest`] → [`SshKey`] |
//! | `POST /v1/keys/challenge` | [`KeyChallengeRequest`] → [`KeyChallenge`], signed into [`AddKeyRequest`] to prove possession |
//! | `GET /v1/apps/{app}/config` | → [`ConfigVars`] |
//! | `PATCH /v1/apps/{app}/config` | [`ConfigUpdate`] → [`ConfigUpdated`] |
//! | `GET /v1/apps/{app}/releases?limit=N`, `GET …/releases/{version}` | → [`Release`] |
//! | `GET /v1/apps/{app}/ps` | → `Vec<`[`ProcessInstance`]`>` |
//! | `GET /v1/apps/{app}/formation` | → `Vec<`[`Formation`]`>` |
//! | `PATCH /v1/apps/{app}/formation` | [`ScaleRequest`] → `Vec<`[`Formation`]`>`, once the instances are healthy |
//! | `POST /v1/apps/{app}/restart` | [`RestartRequest`] → 204, once the restarted instances are healthy |
//! | `POST /v1/apps/{app}/ps/stop` | [`StopRequest`] → 204, once they are stopped (404 when nothing matched) |
//! | `GET /v1/apps/{app}/logs?num=N&tail=true&ps=web&source=app` | → NDJSON [`LogLine`]s, streamed (`tail`: follow until the client hangs up) |
//! | `GET /v1/apps/{app}/releases/{version}/output` | → [`ReleaseOutput`] |
//! | `POST /v1/apps/{app}/rollback` | [`RollbackRequest`] → [`Release`] (the new one), once it runs |
//! | `GET /v1/apps/{app}/domains`, `POST …`, `DELETE …/{hostname}` | [`AddDomainRequest`] → [`Domain`], once routed |
//! | `GET /v1/apps/{app}/features` | → `Vec<`[`AppFeature`]`>` |
//! | `PATCH /v1/apps/{app}/features/{feature}` | [`FeatureUpdate`] → [`AppFeature`], once the app runs with it |
//! | `GET /v1/apps/{app}/resources` | → `Vec<`[`ProcessSize`](crate::resources::ProcessSize)`>` |
//! | `PATCH /v1/apps/{app}/resources` | [`ResizeRequest`](crate::resources::ResizeRequest) → [`Release`] (the new one), once it runs |
//! | `GET /v1/apps/{app}/cron` | → `Vec<`[`CronJobStatus`](crate::app_json::status::CronJobStatus)`>`: the current release's `app.json` jobs, next and last run |
//! | `GET /v1/apps/{app}/checks` | → [`AppChecks`](crate::app_json::status::AppChecks): the current release's `web` checks |

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::domains::DomainName;
use crate::formation::ScaleChanges;
use crate::names::{AppName, ConfigKey, ProcessType, Username};
use crate::resources::{Cpus, Memory, Resources};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoginResponse {
    pub token: String,
    pub user: User,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: Username,
    pub is_admin: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateUserRequest {
    pub username: Username,
    pub password: String,
    #[serde(default)]
    pub is_admin: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CreateAppRequest {
    /// Omitted: the server picks a free name, as Heroku does.
    #[serde(default)]
    pub name: Option<AppName>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct App {
    pub name: AppName,
    pub owner: Username,
    pub created_at: DateTime<Utc>,
    /// `ssh://git@HOST:PORT/<app>.git`, with the host and port the server advertises.
    pub git_url: String,
    /// `http://<app>.<domain>`.
    pub web_url: String,
    /// The branch whose pushes deploy (`main` unless set otherwise).
    pub deploy_branch: String,
    /// The newest successful release, if any.
    pub current_release: Option<u32>,
    /// How many instances of each process type run (empty before the first deploy).
    #[serde(default)]
    pub formation: BTreeMap<ProcessType, u32>,
    /// Custom domains routed to `web` (filled in by `GET /v1/apps/{app}`).
    #[serde(default)]
    pub domains: Vec<DomainName>,
    /// The newest successful deploy or rollback.
    #[serde(default)]
    pub last_deploy: Option<LastDeploy>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CollaboratorRole {
    Owner,
    Collaborator,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collaborator {
    pub username: Username,
    pub role: CollaboratorRole,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddCollaboratorRequest {
    pub username: Username,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AddKeyRequest {
    /// One line of OpenSSH public key text (`ssh-ed25519 AAAA… comment`).
    pub public_key: String,
    /// A [`KeyChallenge`]'s `challenge`, as issued to the caller.
    pub challenge: String,
    /// The challenge signed with the key's private key: `ssh-keygen -Y sign -n <namespace>`
    /// output (an armored SSHSIG).
    pub signature: String,
}

/// The key about to be added: checked before a challenge is issued for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyChallengeRequest {
    /// One line of OpenSSH public key text, as in [`AddKeyRequest`].
    pub public_key: String,
}

/// What `POST /v1/keys` wants signed: proof that the caller holds the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyChallenge {
    /// The exact bytes to sign; single use, valid for a few minutes.
    pub challenge: String,
    /// The SSHSIG namespace (`ssh-keygen -Y sign -n`).
    pub namespace: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshKey {
    pub id: i64,
    /// `SHA256:…`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// Key algorithm, e.g. `ssh-ed25519`.
    pub algorithm: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigVars {
    pub vars: BTreeMap<ConfigKey, String>,
}

/// `PATCH /v1/apps/{app}/config`: a key set to `null` is unset, as in Heroku's API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigUpdate {
    pub vars: BTreeMap<ConfigKey, Option<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConfigUpdated {
    pub vars: BTreeMap<ConfigKey, String>,
    /// The release the change made; none when it changed nothing (every key set already had
    /// that value, every key unset was not set), which restarts nothing.
    pub release: Option<Release>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseStatus {
    Building,
    Failed,
    Succeeded,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub version: u32,
    pub description: String,
    pub user: Username,
    pub created_at: DateTime<Utc>,
    pub status: ReleaseStatus,
    /// Docker image of this release (`paas/<app>:v<N>`); none before the first build.
    pub image: Option<String>,
    /// Git commit the image was built from.
    pub commit: Option<String>,
    /// Process types and their commands (from the Procfile, or `web` = the image's command).
    pub processes: BTreeMap<ProcessType, Option<String>>,
    pub config: BTreeMap<ConfigKey, String>,
    /// The sizes process types were given (`paas ps:resize`); the others get the host's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: Resources,
    /// What the release took from the pushed tree's `app.json`: its cron jobs and checks.
    #[serde(default, skip_serializing_if = "crate::app_json::AppJson::is_empty")]
    pub app_json: crate::app_json::AppJson,
}

/// One process type of an app: how many instances run, and the command they run (`None`: the
/// image's own command).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Formation {
    pub process: ProcessType,
    pub quantity: u32,
    pub command: Option<String>,
}

/// `PATCH /v1/apps/{app}/formation`: the changes as users type them (`web=3`, `worker+1`,
/// `web-1`), on the wire as those strings (`{"changes":["web=3","worker+1"]}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub changes: ScaleChanges,
}

/// `POST /v1/apps/{app}/restart`: `process: None` restarts every process type. With `index`
/// (and a process type), only that instance (`web.1`): the others keep running.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RestartRequest {
    #[serde(default)]
    pub process: Option<ProcessType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// `POST /v1/apps/{app}/ps/stop` (and the agent's `POST /v1/apps/{app}/stop`): stop every
/// instance of `process`, or only `index`; one-offs (`run.1`) are stopped and removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    pub process: ProcessType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// An instance's state, in Heroku's words: what the agent reports of each container (it maps
/// Docker's states to these in one place) and what `paas ps` shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceState {
    /// Running and, for `web`, passing its health check.
    Up,
    /// Created or running but not yet healthy.
    Starting,
    /// Exited, dead, restarting after a crash, or failing its health check.
    Crashed,
    /// Stopped on purpose (being retired).
    Down,
    /// Stopped by `paas ps:stop`: kept down until a restart, a scale or a new release.
    Stopped,
}

impl InstanceState {
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Up => "up",
            InstanceState::Starting => "starting",
            InstanceState::Crashed => "crashed",
            InstanceState::Down => "down",
            InstanceState::Stopped => "stopped",
        }
    }
}

/// One running (or failing) container of an app, as `paas ps` shows it: `web.1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInstance {
    pub process: ProcessType,
    pub index: u32,
    pub release: u32,
    pub state: InstanceState,
    /// When it was started, while it runs.
    pub since: Option<DateTime<Utc>>,
    /// The Docker container's name.
    pub container: String,
    /// The limits it runs with (`None`: unlimited).
    #[serde(default)]
    pub memory: Option<Memory>,
    #[serde(default)]
    pub cpus: Option<Cpus>,
    /// Its last run ended by the kernel's OOM killer: `paas ps` says `crashed (out of memory)`.
    #[serde(default)]
    pub out_of_memory: bool,
    /// How often it was started again after it exited: `paas ps` says `crashed (3 restarts)`.
    #[serde(default)]
    pub restarts: u32,
    /// The command of its process type in the current release (`None`: the image's own);
    /// a one-off's own command.
    #[serde(default)]
    pub command: Option<String>,
    /// A one-off (`run.N`, `cron.N`, `release.1`), not an instance of the formation.
    #[serde(default)]
    pub oneoff: bool,
    /// The cluster node it runs on: `paas ps` says `up … on paascl-2`. `None` on a single host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// Where a log line comes from: the app's own output, or the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogSource {
    App,
    Paas,
}

impl LogSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LogSource::App => "app",
            LogSource::Paas => "paas",
        }
    }
}

/// `paas logs -p`: every instance of a process type (`web`) or one instance (`web.1`,
/// Heroku's `--dyno`). Sent as that text in the `ps` query parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessFilter {
    Type(ProcessType),
    Instance(ProcessType, u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidProcessFilter(String);

impl ProcessFilter {
    pub fn process(&self) -> &ProcessType {
        match self {
            ProcessFilter::Type(process) | ProcessFilter::Instance(process, _) => process,
        }
    }

    /// The instance number, when one instance is asked for.
    pub fn index(&self) -> Option<u32> {
        match self {
            ProcessFilter::Type(_) => None,
            ProcessFilter::Instance(_, index) => Some(*index),
        }
    }

    /// Whether a line of instance `process.index` is wanted.
    pub fn matches(&self, process: &str, index: u32) -> bool {
        self.process().as_str() == process && self.index().is_none_or(|wanted| wanted == index)
    }

    /// Whether a line whose dyno is `dyno` is wanted: only instances' lines (`web.1`), never
    /// app-wide events (`deploy`, `scale`).
    pub fn matches_dyno(&self, dyno: &str) -> bool {
        dyno.rsplit_once('.')
            .and_then(|(process, index)| Some((process, index.parse().ok()?)))
            .is_some_and(|(process, index)| self.matches(process, index))
    }
}

impl std::str::FromStr for ProcessFilter {
    type Err = InvalidProcessFilter;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.contains('.') {
            let (process, index) = crate::attach::parse_dyno(text).map_err(InvalidProcessFilter)?;
            return Ok(ProcessFilter::Instance(process, index));
        }
        text.parse()
            .map(ProcessFilter::Type)
            .map_err(|err: crate::ValidationError| InvalidProcessFilter(err.to_string()))
    }
}

impl std::fmt::Display for ProcessFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessFilter::Type(process) => write!(f, "{process}"),
            ProcessFilter::Instance(process, index) => write!(f, "{process}.{index}"),
        }
    }
}

impl<'de> Deserialize<'de> for ProcessFilter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One line of `paas logs`: `<timestamp> <source>[<dyno>]: <line>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub timestamp: DateTime<Utc>,
    pub source: LogSource,
    /// `web.1` for an instance's output and state changes; `deploy`, `scale`, `config`,
    /// `restart`, `rollback`, `domains` for platform events.
    pub dyno: String,
    pub line: String,
}

/// The build and rollout output of a release, as its push showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseOutput {
    pub version: u32,
    pub output: String,
}

/// `POST /v1/apps/{app}/rollback`: `version: None` means the successful release before the
/// current one.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RollbackRequest {
    #[serde(default)]
    pub version: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddDomainRequest {
    pub hostname: DomainName,
}

/// A custom domain routed to an app's `web` instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    pub hostname: DomainName,
    pub created_at: DateTime<Utc>,
}

/// The release that last put new code live (a deploy or a rollback), for `paas apps:info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastDeploy {
    pub version: u32,
    pub description: String,
    pub user: Username,
    pub created_at: DateTime<Utc>,
}

/// A lock-down an app can opt into (`paas features:enable`), spelled as users type it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Feature {
    /// Processes run as `nobody` instead of the image's user.
    #[serde(rename = "non-root")]
    NonRoot,
    /// The root filesystem is read-only; `/tmp` stays writable.
    #[serde(rename = "read-only-fs")]
    ReadOnlyFs,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown feature {0:?}; the features are: non-root, read-only-fs")]
pub struct UnknownFeature(pub String);

impl Feature {
    pub const ALL: [Feature; 2] = [Feature::NonRoot, Feature::ReadOnlyFs];

    pub fn name(self) -> &'static str {
        match self {
            Feature::NonRoot => "non-root",
            Feature::ReadOnlyFs => "read-only-fs",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Feature::NonRoot => "Run the app's processes as the unprivileged user nobody",
            Feature::ReadOnlyFs => "Mount the root filesystem read-only (/tmp stays writable)",
        }
    }
}

impl std::fmt::Display for Feature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Feature {
    type Err = UnknownFeature;

    fn from_str(name: &str) -> Result<Feature, UnknownFeature> {
        Feature::ALL
            .into_iter()
            .find(|feature| feature.name() == name)
            .ok_or_else(|| UnknownFeature(name.to_owned()))
    }
}

/// One feature of one app and whether it is on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppFeature {
    pub name: Feature,
    pub description: String,
    pub enabled: bool,
}

/// `PATCH /v1/apps/{app}/features/{feature}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureUpdate {
    pub enabled: bool,
}

#[cfg(test)]
mod feature_tests {
    use super::*;

    #[test]
    fn features_parse_and_serialize_by_their_names() {
        for feature in Feature::ALL {
            assert_eq!(feature.name().parse::<Feature>(), Ok(feature));
            assert_eq!(
                serde_json::to_string(&feature).unwrap(),
                format!("{:?}", feature.name())
            );
        }
        assert_eq!(
            "root".parse::<Feature>().unwrap_err().to_string(),
            "unknown feature \"root\"; the features are: non-root, read-only-fs"
        );
        assert!("NON-ROOT".parse::<Feature>().is_err());
    }
}

#[cfg(test)]
mod request_tests {
    use super::*;

    #[test]
    fn scale_requests_keep_their_wire_form() {
        let request: ScaleRequest =
            serde_json::from_str(r#"{"changes":["web=3","worker+1"]}"#).unwrap();
        assert_eq!(request.changes.len(), 2);
        assert_eq!(request.changes[0].process, "web");
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"changes":["web=3","worker+1"]}"#
        );
        let err = serde_json::from_str::<ScaleRequest>(r#"{"changes":["web=-1"]}"#).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid scale argument \"web=-1\": the count must be 0 to 100"),
            "{err}"
        );
        assert!(serde_json::from_str::<ScaleRequest>(r#"{"changes":[]}"#).is_err());
    }

    #[test]
    fn requests_refuse_bad_names() {
        for (body, expected) in [
            (r#"{"name":"../x"}"#, "invalid app name"),
            (r#"{"name":""}"#, "invalid app name"),
        ] {
            let err = serde_json::from_str::<CreateAppRequest>(body).unwrap_err();
            assert!(err.to_string().contains(expected), "{body}: {err}");
        }
        assert!(
            serde_json::from_str::<CreateAppRequest>("{}")
                .unwrap()
                .name
                .is_none()
        );
        let err =
            serde_json::from_str::<AddCollaboratorRequest>(r#"{"username":"Eve"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid username"), "{err}");
        let err = serde_json::from_str::<RestartRequest>(r#"{"process":"Web"}"#).unwrap_err();
        assert!(err.to_string().contains("invalid process type"), "{err}");
        let err = serde_json::from_str::<ConfigUpdate>(r#"{"vars":{"A-B":null}}"#).unwrap_err();
        assert!(err.to_string().contains("invalid config key"), "{err}");
    }
}

#[cfg(test)]
mod process_filter_tests {
    use super::*;

    #[test]
    fn a_type_takes_every_instance_and_an_instance_only_itself() {
        let web: ProcessFilter = "web".parse().unwrap();
        let web1: ProcessFilter = "web.1".parse().unwrap();
        assert!(web.matches_dyno("web.1") && web.matches_dyno("web.2"));
        assert!(web1.matches_dyno("web.1"));
        assert!(!web1.matches_dyno("web.2") && !web1.matches_dyno("web.10"));
        assert!(!web.matches_dyno("worker.1") && !web.matches_dyno("deploy"));
        assert_eq!(web1.to_string(), "web.1");
        assert_eq!(web1.index(), Some(1));
    }

    #[test]
    fn bad_filters_say_what_is_expected() {
        for bad in ["web.0", "web.x", "web.", "Web", ".1"] {
            assert!(bad.parse::<ProcessFilter>().is_err(), "{bad}");
        }
        let err = "web.0".parse::<ProcessFilter>().unwrap_err();
        assert!(err.to_string().contains("expected TYPE.N"), "{err}");
    }
}

//! [`OpsError`]: why an operation was refused or failed. HTTP maps it to API errors in one
//! place (`http::ApiError: From<OpsError>`); the deploy socket prints it to the pusher.

/// Why an operation was refused before it changed anything, or failed part-way (what ran
/// before keeps running).
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The request asks for something that cannot be: bad input, a state that forbids it.
    #[error("{0}")]
    Invalid(String),
    /// What the request names does not exist (a release, a domain).
    #[error("{0}")]
    NotFound(String),
    /// The request clashes with what exists (a domain taken).
    #[error("{0}")]
    Conflict(String),
    /// A quota the change would exceed.
    #[error(transparent)]
    Quota(#[from] crate::quotas::QuotaExceeded),
    /// gitd has no agent configured.
    #[error("No agent is configured: set [agent] url and token in gitd.toml.")]
    NoAgent,
    /// The agent refused or failed the change; `logs` are the failed container's last lines.
    #[error("{what}: {reason}")]
    Agent {
        what: String,
        reason: String,
        logs: Vec<String>,
    },
    /// The app's repository could not be moved or removed; details are in gitd's log.
    #[error("Could not remove the app's repository.")]
    Repository,
    /// The store failed; details are in gitd's log.
    #[error("internal error; see the paas-gitd log")]
    Store(#[from] crate::store::StoreError),
    /// The operation's task panicked; details are in gitd's log.
    #[error("internal error; see the paas-gitd log")]
    Panicked,
}

impl OpsError {
    pub fn invalid(message: impl Into<String>) -> Self {
        OpsError::Invalid(message.into())
    }

    /// The reason and, if any, the failed container's last log lines, on one line.
    pub fn with_logs(&self) -> String {
        match self {
            OpsError::Agent { logs, .. } if !logs.is_empty() => format!(
                "{self}; last log lines: {}",
                logs.iter()
                    .map(|line| line.trim())
                    .collect::<Vec<_>>()
                    .join(" | ")
            ),
            _ => self.to_string(),
        }
    }
}

impl OpsError {
    /// What the agent refused or failed (a build, a rollout), as `what` it was part of.
    pub fn agent(what: impl Into<String>, failure: crate::ops::rollout::RolloutFailure) -> Self {
        OpsError::Agent {
            what: what.into(),
            reason: failure.reason,
            logs: failure.logs,
        }
    }
}

impl From<paas_api::ValidationError> for OpsError {
    fn from(err: paas_api::ValidationError) -> Self {
        OpsError::Invalid(err.to_string())
    }
}

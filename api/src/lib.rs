//! The wire contract shared by every paas component: the JSON types the CLI, gitd and the
//! agent exchange, and the parsing and validation of what users type (app names, config keys,
//! usernames). It does no I/O of any kind: no files, sockets, processes or clocks beyond the
//! timestamps callers hand it, so every rule here is unit-testable and the same everywhere.

pub mod addons;
pub mod agent;
pub mod ansi;
pub mod app_json;
pub mod attach;
pub mod backups;
pub mod buildpacks;
pub mod builds;
pub mod domains;
pub mod error;
#[cfg(feature = "axum")]
pub mod extract;
pub mod formation;
pub mod git_command;
pub mod metrics;
pub mod names;
pub mod nodes;
pub mod oneoff;
pub mod procfile;
pub mod progress;
pub mod resources;
pub mod routing;
pub mod storage;
pub mod types;
pub mod webhooks;

pub use domains::{DomainError, DomainName};
pub use error::{ErrorBody, ErrorCode, ErrorDetail};
pub use names::{AppName, ConfigKey, HealthPath, ProcessType, Username, ValidationError};

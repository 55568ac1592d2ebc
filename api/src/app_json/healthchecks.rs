//! `app.json`'s `healthchecks`, in Dokku's format: startup checks of the `web` process, each
//! an HTTP GET of a path on `$PORT` that must answer 2xx or 3xx, tried `attempts` times,
//! `timeout` seconds each, `wait` seconds apart, after `initialDelay` seconds. They decide
//! when a new `web` instance is ready during a rollout, and how long it may take
//! ([`Healthchecks::ready_timeout_secs`]).

use serde::{Deserialize, Serialize};

use crate::names::HealthPath;

/// The most checks `web` may have.
pub const MAX_CHECKS: usize = 10;
/// Bounds of a check's numbers (seconds, or tries).
pub const MAX_ATTEMPTS: u32 = 20;
pub const MAX_TIMEOUT_SECS: u32 = 60;
pub const MAX_WAIT_SECS: u32 = 60;
pub const MAX_INITIAL_DELAY_SECS: u32 = 300;
/// The longest a check's name may be, in bytes.
pub const MAX_NAME_BYTES: usize = 100;

/// Dokku's defaults for what a check leaves out.
pub const DEFAULT_ATTEMPTS: u32 = 3;
pub const DEFAULT_TIMEOUT_SECS: u32 = 5;
pub const DEFAULT_WAIT_SECS: u32 = 5;
/// A rollout gives new instances at least this long, whatever the checks' budgets: starting
/// a container and Traefik picking it up take their own time.
pub const MIN_READY_TIMEOUT_SECS: u64 = 10;

/// One startup check of `web`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    pub name: String,
    pub path: HealthPath,
    pub attempts: u32,
    pub timeout: u32,
    pub wait: u32,
    #[serde(rename = "initialDelay")]
    pub initial_delay: u32,
}

impl HealthCheck {
    /// The longest this check may take to pass: its delay, then every attempt timing out
    /// with the wait between attempts.
    pub fn budget_secs(&self) -> u64 {
        u64::from(self.initial_delay)
            + u64::from(self.attempts) * u64::from(self.timeout)
            + u64::from(self.attempts.saturating_sub(1)) * u64::from(self.wait)
    }
}

/// The checks of `web` (the only process type with checks).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthchecks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub web: Vec<HealthCheck>,
}

impl Healthchecks {
    pub fn is_empty(&self) -> bool {
        self.web.is_empty()
    }

    /// How long a new `web` instance may take to pass every check, when there are checks:
    /// the largest budget of one check (they run side by side in time, as the probe of the
    /// first check gates routing while the others are tried).
    pub fn ready_timeout_secs(&self) -> Option<u64> {
        self.web
            .iter()
            .map(HealthCheck::budget_secs)
            .max()
            .map(|budget| budget.max(MIN_READY_TIMEOUT_SECS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_delay_attempts_and_waits_between_them() {
        let check = HealthCheck {
            name: "web check".into(),
            path: "/health".parse().unwrap(),
            attempts: 3,
            timeout: 5,
            wait: 2,
            initial_delay: 1,
        };
        assert_eq!(check.budget_secs(), 1 + 15 + 4);
        let checks = Healthchecks {
            web: vec![
                check.clone(),
                HealthCheck {
                    attempts: 1,
                    ..check
                },
            ],
        };
        assert_eq!(checks.ready_timeout_secs(), Some(20));
        let quick = Healthchecks {
            web: vec![HealthCheck {
                attempts: 1,
                timeout: 1,
                initial_delay: 0,
                ..checks.web[0].clone()
            }],
        };
        assert_eq!(quick.ready_timeout_secs(), Some(MIN_READY_TIMEOUT_SECS));
        assert_eq!(Healthchecks::default().ready_timeout_secs(), None);
    }
}

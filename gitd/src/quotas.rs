//! `[quotas]` in gitd.toml: how much one tenant may ask of the platform. Apps per user,
//! process types per app, instances per process type and per app (one-offs included: a
//! `run` or cron run may start only while the formation and the running one-offs leave room),
//! and the size of one push.
//! Every check lives here, so the HTTP API and the deploy pipeline refuse with the same words.
//!
//! Admins are exempt from the apps quota only: they are the operators who set it. Every app,
//! whoever owns it, is held to the per-app quotas, and every repository to the push limit.

use std::collections::BTreeMap;

use paas_api::ProcessType;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaSettings {
    /// Apps a non-admin user may own.
    #[serde(default = "default_apps_per_user")]
    pub apps_per_user: u32,
    /// Process types a release may define (Procfile entries).
    #[serde(default = "default_process_types_per_app")]
    pub process_types_per_app: u32,
    /// Instances of one process type (never more than the API's own 100).
    #[serde(default = "default_instances_per_process")]
    pub instances_per_process: u32,
    /// Instances of all process types of one app together.
    #[serde(default = "default_instances_per_app")]
    pub instances_per_app: u32,
    /// The largest pack one push may send, in bytes: git's `receive.maxInputSize`, written
    /// into every app repository (existing ones when gitd starts). 0 means no limit.
    #[serde(default = "default_max_push_bytes")]
    pub max_push_bytes: u64,
}

fn default_apps_per_user() -> u32 {
    100
}
fn default_process_types_per_app() -> u32 {
    20
}
fn default_instances_per_process() -> u32 {
    100
}
fn default_instances_per_app() -> u32 {
    100
}
fn default_max_push_bytes() -> u64 {
    1024 * 1024 * 1024
}

impl Default for QuotaSettings {
    fn default() -> Self {
        toml::from_str("").expect("every quota has a default")
    }
}

/// A quota a request would exceed; the message is the one line the user sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaExceeded {
    #[error(
        "You have reached your quota of {limit} apps; destroy one first or ask an admin to raise apps_per_user."
    )]
    Apps { limit: u32 },
    #[error(
        "The Procfile defines {count} process types; the quota is {limit} per app (process_types_per_app)."
    )]
    ProcessTypes { count: usize, limit: u32 },
    #[error(
        "{process} would have {quantity} instances; the quota is {limit} per process type (instances_per_process)."
    )]
    InstancesPerProcess {
        process: String,
        quantity: u32,
        limit: u32,
    },
    #[error(
        "The app would run {total} instances; the quota is {limit} per app (instances_per_app)."
    )]
    InstancesPerApp { total: u64, limit: u32 },
    #[error(
        "The app runs {formation} instances and {oneoffs} one-offs; another would pass the quota of {limit} per app (instances_per_app)."
    )]
    OneOffs {
        formation: u64,
        oneoffs: usize,
        limit: u32,
    },
}

/// Refusals of the HTTP API: 403, the quota's one line.
impl From<QuotaExceeded> for crate::http::ApiError {
    fn from(exceeded: QuotaExceeded) -> Self {
        crate::http::ApiError::new(paas_api::ErrorCode::Forbidden, exceeded.to_string())
    }
}

impl QuotaSettings {
    /// Whether a user who owns `owned` apps may create another.
    pub fn check_new_app(&self, owned: usize, is_admin: bool) -> Result<(), QuotaExceeded> {
        if is_admin || owned < self.apps_per_user as usize {
            Ok(())
        } else {
            Err(QuotaExceeded::Apps {
                limit: self.apps_per_user,
            })
        }
    }

    /// Whether a release may define `count` process types.
    pub fn check_process_types(&self, count: usize) -> Result<(), QuotaExceeded> {
        if count <= self.process_types_per_app as usize {
            Ok(())
        } else {
            Err(QuotaExceeded::ProcessTypes {
                count,
                limit: self.process_types_per_app,
            })
        }
    }

    /// Whether an app running `current` may scale to `next`. What is over a quota may still
    /// shrink (after an operator lowered it), never grow.
    pub fn check_scale(
        &self,
        current: &BTreeMap<ProcessType, u32>,
        next: &BTreeMap<ProcessType, u32>,
    ) -> Result<(), QuotaExceeded> {
        let now = |process: &str| current.get(process).copied().unwrap_or(0);
        if let Some((process, &quantity)) = next.iter().find(|(process, quantity)| {
            **quantity > self.instances_per_process && **quantity > now(process)
        }) {
            return Err(QuotaExceeded::InstancesPerProcess {
                process: process.to_string(),
                quantity,
                limit: self.instances_per_process,
            });
        }
        let total = |formation: &BTreeMap<ProcessType, u32>| -> u64 {
            formation.values().map(|&q| u64::from(q)).sum()
        };
        let (before, total) = (total(current), total(next));
        if total > u64::from(self.instances_per_app) && total > before {
            return Err(QuotaExceeded::InstancesPerApp {
                total,
                limit: self.instances_per_app,
            });
        }
        Ok(())
    }
}

impl QuotaSettings {
    /// Whether one more one-off may start beside `formation` instances and `oneoffs` running
    /// one-offs.
    pub fn check_oneoff(&self, formation: u64, oneoffs: usize) -> Result<(), QuotaExceeded> {
        if formation + (oneoffs as u64) < u64::from(self.instances_per_app) {
            Ok(())
        } else {
            Err(QuotaExceeded::OneOffs {
                formation,
                oneoffs,
                limit: self.instances_per_app,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(text: &str) -> QuotaSettings {
        toml::from_str(text).unwrap()
    }

    fn counts(pairs: &[(&str, u32)]) -> BTreeMap<ProcessType, u32> {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), *v))
            .collect()
    }

    #[test]
    fn defaults_fit_what_the_api_allows_anyway() {
        let defaults = QuotaSettings::default();
        assert_eq!(defaults.apps_per_user, 100);
        assert_eq!(
            defaults.instances_per_process,
            paas_api::formation::MAX_QUANTITY
        );
        assert!(
            defaults
                .check_scale(&counts(&[("web", 1)]), &counts(&[("web", 100)]))
                .is_ok()
        );
        assert!(defaults.check_process_types(20).is_ok());
        assert_eq!(defaults.max_push_bytes, 1 << 30);
        assert!(toml::from_str::<QuotaSettings>("apps = 3").is_err());
    }

    #[test]
    fn the_apps_quota_binds_users_but_not_admins() {
        let quotas = quotas("apps_per_user = 2");
        assert!(quotas.check_new_app(1, false).is_ok());
        let refused = quotas.check_new_app(2, false).unwrap_err();
        assert_eq!(
            refused.to_string(),
            "You have reached your quota of 2 apps; destroy one first or ask an admin to raise apps_per_user."
        );
        assert!(quotas.check_new_app(50, true).is_ok());
    }

    #[test]
    fn process_types_are_counted() {
        let quotas = quotas("process_types_per_app = 2");
        assert!(quotas.check_process_types(2).is_ok());
        assert_eq!(
            quotas.check_process_types(3),
            Err(QuotaExceeded::ProcessTypes { count: 3, limit: 2 })
        );
    }

    #[test]
    fn instances_are_bounded_per_type_and_in_sum() {
        let quotas = quotas("instances_per_process = 3\ninstances_per_app = 4");
        let one = counts(&[("web", 1), ("worker", 0)]);
        assert!(
            quotas
                .check_scale(&one, &counts(&[("web", 3), ("worker", 1)]))
                .is_ok()
        );
        assert_eq!(
            quotas.check_scale(&one, &counts(&[("web", 4), ("worker", 0)])),
            Err(QuotaExceeded::InstancesPerProcess {
                process: "web".into(),
                quantity: 4,
                limit: 3
            })
        );
        assert_eq!(
            quotas.check_scale(&one, &counts(&[("web", 3), ("worker", 2)])),
            Err(QuotaExceeded::InstancesPerApp { total: 5, limit: 4 })
        );
    }

    #[test]
    fn one_offs_need_room_beside_the_formation() {
        let quotas = quotas("instances_per_app = 3");
        assert!(quotas.check_oneoff(2, 0).is_ok());
        assert_eq!(
            quotas.check_oneoff(2, 1).unwrap_err().to_string(),
            "The app runs 2 instances and 1 one-offs; another would pass the quota of 3 per app (instances_per_app)."
        );
        assert!(quotas.check_oneoff(3, 0).is_err());
    }

    #[test]
    fn what_is_over_a_lowered_quota_may_shrink_but_not_grow() {
        let quotas = quotas("instances_per_process = 2\ninstances_per_app = 3");
        let over = counts(&[("web", 5), ("worker", 1)]);
        assert!(
            quotas
                .check_scale(&over, &counts(&[("web", 4), ("worker", 1)]))
                .is_ok()
        );
        assert!(
            quotas
                .check_scale(&over, &counts(&[("web", 6), ("worker", 1)]))
                .is_err()
        );
        assert!(
            quotas
                .check_scale(&over, &counts(&[("web", 4), ("worker", 3)]))
                .is_err()
        );
    }
}

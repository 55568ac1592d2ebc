//! Config set/unset: every change makes a release carrying the new config snapshot; a request
//! that changes nothing (values already set, keys not set) makes none and restarts nothing. An app
//! that runs goes through the release lifecycle with it, and the change only becomes the
//! app's config once the new release serves; before the first deploy it is just recorded.

use paas_api::types::{ConfigUpdate, ConfigUpdated, ReleaseStatus};

use super::release::{self, ReleaseKind};
use super::release_phase::release_timeout;
use super::rollout::check_health_check_path;
use paas_api::Username;

use super::{Op, OpsError, Reporter};
use crate::state::SharedState;
use crate::store::NewRelease;
use crate::store::{AppRow, UserRow};

/// Applies `update` to the app's config, detached.
pub fn update(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    update: ConfigUpdate,
) -> Op<ConfigUpdated> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |reporter| async move {
        apply(&op_state, &app, by, update, &reporter).await
    })
}

/// Applies `update` to the app's config within an operation that holds the app's lock:
/// [`update`]'s, or another operation's whose change sets config vars (add-ons).
pub(super) async fn apply(
    state: &SharedState,
    app: &AppRow,
    by: Username,
    update: ConfigUpdate,
    reporter: &Reporter,
) -> Result<ConfigUpdated, OpsError> {
    let description = describe(&update)?;
    let before = state.store.config_vars(app.id).await?;
    let mut vars = before.clone();
    for (key, value) in update.vars {
        match value {
            Some(value) => vars.insert(key, value),
            None => vars.remove(key.as_str()),
        };
    }
    if vars == before {
        return Ok(ConfigUpdated {
            vars,
            release: None,
        });
    }
    check_health_check_path(&vars).map_err(OpsError::Invalid)?;
    release_timeout(&vars).map_err(OpsError::Invalid)?;
    let current = state.store.deployed_state(app.id).await?.current;
    // Only a release with an image runs; before the first deploy the change is recorded.
    let running = current.filter(|release| release.image.is_some());
    let new = NewRelease {
        app_id: app.id,
        kind: ReleaseKind::Config,
        description,
        username: by,
        image: running.as_ref().and_then(|r| r.image.clone()),
        commit: running.as_ref().and_then(|r| r.commit.clone()),
        processes: running
            .as_ref()
            .map(|r| r.processes.clone())
            .unwrap_or_default(),
        config: vars.clone(),
        resources: running
            .as_ref()
            .map(|r| r.resources.clone())
            .unwrap_or_default(),
        app_json: running
            .as_ref()
            .map(|r| r.app_json.clone())
            .unwrap_or_default(),
    };
    let release = match running {
        None => {
            let release = state.store.create_live_release(new).await?;
            let message = format!(
                "{} by user {}: release v{}",
                release.description, release.user, release.version
            );
            crate::events::record_in(state, app.id, Some(release.version), "config", message).await;
            release
        }
        Some(_) => {
            let release = release::begin(state, new).await?;
            release::go_live(state, app, &release, ReleaseKind::Config, reporter, |_| {}).await?;
            release
        }
    };
    tracing::info!(app = %app.name, version = release.version, "config changed");
    Ok(ConfigUpdated {
        vars,
        release: Some(paas_api::types::Release {
            status: ReleaseStatus::Succeeded,
            ..release
        }),
    })
}

/// Validates a config change and says what it does, Heroku-style: "Set A, B config vars",
/// "Unset C config vars", or both joined with "; ".
fn describe(update: &ConfigUpdate) -> Result<String, OpsError> {
    if update.vars.is_empty() {
        return Err(OpsError::invalid("No config vars given."));
    }
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for (key, value) in &update.vars {
        match value {
            Some(value) => {
                paas_api::names::validate_config_value(key, value)?;
                set.push(key.as_str());
            }
            None => unset.push(key.as_str()),
        }
    }
    let mut parts = Vec::new();
    if !set.is_empty() {
        parts.push(format!("Set {} config vars", set.join(", ")));
    }
    if !unset.is_empty() {
        parts.push(format!("Unset {} config vars", unset.join(", ")));
    }
    Ok(parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(pairs: &[(&str, Option<&str>)]) -> ConfigUpdate {
        ConfigUpdate {
            vars: pairs
                .iter()
                .map(|(k, v)| (k.parse().unwrap(), v.map(str::to_owned)))
                .collect(),
        }
    }

    #[test]
    fn descriptions_follow_heroku() {
        assert_eq!(
            describe(&update(&[("GREETING", Some("hi"))])).unwrap(),
            "Set GREETING config vars"
        );
        assert_eq!(
            describe(&update(&[("A", Some("1")), ("B", None), ("C", Some("3"))])).unwrap(),
            "Set A, C config vars; Unset B config vars"
        );
    }

    #[test]
    fn refuses_bad_keys_and_empty_changes() {
        assert!(describe(&update(&[])).is_err());
        // Bad keys do not get as far as `describe`: the request does not deserialize.
        for bad in [r#"{"vars":{"1BAD":"x"}}"#, r#"{"vars":{"A-B":null}}"#] {
            assert!(serde_json::from_str::<ConfigUpdate>(bad).is_err(), "{bad}");
        }
    }
}

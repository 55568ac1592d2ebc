//! Config vars. Every change makes a release carrying the new config snapshot; an app that
//! runs is rolled out with the new environment, and the change only sticks if that succeeds.

use axum::extract::{Path, State};
use paas_api::types::{ConfigUpdate, ConfigUpdated, ConfigVars, Release, ReleaseStatus};

use super::formation::{deploy_failed, detached};
use super::{ApiError, ApiResult, AuthUser, Json};
use crate::deploy::rollout;
use crate::state::SharedState;
use crate::store::{NewRelease, ReleaseOutcome};

pub async fn get(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
) -> ApiResult<Json<ConfigVars>> {
    let app = auth.app(&state, &name).await?;
    let vars = state.store.config_vars(app.id).await?;
    Ok(Json(ConfigVars { vars }))
}

pub async fn update(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<String>,
    Json(update): Json<ConfigUpdate>,
) -> ApiResult<Json<ConfigUpdated>> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        let description = describe(&update)?;
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        let username = auth.user.username.clone();
        let app_id = app.id;
        let mut vars = state.store.config_vars(app_id).await?;
        for (key, value) in update.vars {
            match value {
                Some(value) => vars.insert(key, value),
                None => vars.remove(&key),
            };
        }
        let deployed = state.store.deployed_state(app_id).await?;
        let (current, stored_formation) = (deployed.current, deployed.formation);
        rollout::check_health_check_path(&vars).map_err(ApiError::invalid)?;
        // Only a release with an image runs; before the first deploy the change is just recorded.
        let running = current.as_ref().filter(|release| release.image.is_some());
        let new = NewRelease {
            app_id,
            description,
            username,
            image: current.as_ref().and_then(|r| r.image.clone()),
            commit: current.as_ref().and_then(|r| r.commit.clone()),
            processes: current
                .as_ref()
                .map(|r| r.processes.clone())
                .unwrap_or_default(),
            config: vars.clone(),
        };
        let release = if running.is_some() {
            state.store.create_release(new).await?
        } else {
            state.store.create_live_release(new).await?
        };
        if let Some(running) = running {
            let formation = rollout::formation_for(&running.processes, &stored_formation);
            let launched = rollout::roll_out(&state, &app, &release, formation, |line| {
                tracing::info!(app = %app.name, "{line}");
            })
            .await;
            let version = release.version;
            let succeeded = launched.is_ok();
            let outcome = ReleaseOutcome {
                status: if succeeded {
                    ReleaseStatus::Succeeded
                } else {
                    ReleaseStatus::Failed
                },
                image: None,
                processes: release.processes.clone(),
                config: succeeded.then(|| vars.clone()),
                output: None,
            };
            state.store.finish_release(app_id, version, outcome).await?;
            if let Err(failure) = launched {
                tracing::info!(app = %name, version, reason = %failure, "config rollout failed");
                return Err(deploy_failed(
                    &format!(
                        "Release v{version} failed to start; the config vars were not changed"
                    ),
                    &failure,
                ));
            }
        }
        let release = Release {
            status: ReleaseStatus::Succeeded,
            ..release
        };
        tracing::info!(app = %name, version = release.version, "config changed");
        let message = format!(
            "{} by user {}: release v{}",
            release.description, release.user, release.version
        );
        crate::events::record(&state, app_id, "config", message).await;
        Ok(Json(ConfigUpdated { vars, release }))
    })
    .await
}

/// Validates a config change and says what it does, Heroku-style: "Set A, B config vars",
/// "Unset C config vars", or both joined with "; ".
fn describe(update: &ConfigUpdate) -> ApiResult<String> {
    if update.vars.is_empty() {
        return Err(ApiError::invalid("No config vars given."));
    }
    let mut set = Vec::new();
    let mut unset = Vec::new();
    for (key, value) in &update.vars {
        paas_api::validate_config_key(key)?;
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
                .map(|(k, v)| (k.to_string(), v.map(str::to_owned)))
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
        assert!(describe(&update(&[("1BAD", Some("x"))])).is_err());
        assert!(describe(&update(&[("A-B", None)])).is_err());
    }
}

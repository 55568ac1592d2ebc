//! Config vars. Every change makes a release carrying the new config snapshot; an app that
//! runs is rolled out with the new environment, and the change only sticks if that succeeds.

use std::collections::BTreeMap;

use axum::extract::State;
use paas_api::types::{ConfigUpdate, ConfigUpdated, ConfigVars, Release, ReleaseStatus};

use super::formation::{deploy_failed, detached};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::queries;
use crate::deploy::rollout;
use crate::state::SharedState;
use paas_api::AppName;

pub async fn get(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<ConfigVars>> {
    let app = auth.app(&state, &name).await?;
    let vars = state
        .db
        .call(move |conn| queries::config_vars(conn, app.id))
        .await?;
    Ok(Json(ConfigVars { vars }))
}

pub async fn update(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(update): Json<ConfigUpdate>,
) -> ApiResult<Json<ConfigUpdated>> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        let description = describe(&update)?;
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        let username = auth.user.username.clone();
        let app_id = app.id;
        let (vars, current, stored_formation) = state
            .db
            .call(move |conn| -> rusqlite::Result<_> {
                let mut vars = queries::config_vars(conn, app_id)?;
                for (key, value) in update.vars {
                    match value {
                        Some(value) => vars.insert(key.into(), value),
                        None => vars.remove(key.as_str()),
                    };
                }
                let current = queries::current_release(conn, app_id)?;
                Ok((vars, current, queries::formation(conn, app_id)?))
            })
            .await?;
        rollout::check_health_check_path(&vars).map_err(ApiError::invalid)?;
        // Only a release with an image runs; before the first deploy the change is just recorded.
        let running = current.as_ref().filter(|release| release.image.is_some());
        let status = if running.is_some() {
            ReleaseStatus::Building
        } else {
            ReleaseStatus::Succeeded
        };
        let release = {
            let vars = vars.clone();
            let current = current.clone();
            state
                .db
                .call(move |conn| -> rusqlite::Result<_> {
                    let tx = conn.transaction()?;
                    let no_processes = BTreeMap::new();
                    let release = queries::insert_release(
                        &tx,
                        &queries::NewRelease {
                            app_id,
                            description: &description,
                            username: &username,
                            status,
                            image: current.as_ref().and_then(|r| r.image.as_deref()),
                            commit: current.as_ref().and_then(|r| r.commit.as_deref()),
                            processes: current.as_ref().map_or(&no_processes, |r| &r.processes),
                            config: &vars,
                        },
                    )?;
                    if status == ReleaseStatus::Succeeded {
                        queries::replace_config_vars(&tx, app_id, &vars)?;
                    }
                    tx.commit()?;
                    Ok(release)
                })
                .await?
        };
        if let Some(running) = running {
            let formation = rollout::formation_for(&running.processes, &stored_formation);
            let launched = rollout::roll_out(&state, &app, &release, formation, |line| {
                tracing::info!(app = %app.name, "{line}");
            })
            .await;
            let version = release.version;
            let processes = release.processes.clone();
            let new_vars = vars.clone();
            let succeeded = launched.is_ok();
            state
                .db
                .call(move |conn| -> rusqlite::Result<()> {
                    let tx = conn.transaction()?;
                    let status = if succeeded {
                        queries::replace_config_vars(&tx, app_id, &new_vars)?;
                        ReleaseStatus::Succeeded
                    } else {
                        ReleaseStatus::Failed
                    };
                    queries::finish_release(&tx, app_id, version, status, None, &processes)?;
                    tx.commit()
                })
                .await?;
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

//! The changes that make no release: scale, restart, custom domains and features. Each
//! re-rolls the current release (or restarts its instances) through the agent under the
//! app's lock, detached like every operation, and is recorded only once the agent has
//! applied it (a domain change is undone if its rollout fails). They answer once the old
//! instances are gone, as the CLI reports them done.

use std::collections::{BTreeMap, BTreeSet};

use paas_api::DomainName;
use paas_api::ProcessType;
use paas_api::domains::check_platform_hosts;
use paas_api::formation::{ScaleChanges, apply_scale};
use paas_api::types::{AppFeature, Domain, Feature, Formation, Release};

use super::rollout::{self, Reached, Rolling, RolloutFailure};
use super::{Op, OpsError, Reporter};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};
use crate::store::{DeployedState, DomainClaim};

/// The running release, if any, and the quantity of each of its process types.
pub async fn current_formation(
    state: &SharedState,
    app: &AppRow,
) -> Result<(Option<Release>, BTreeMap<ProcessType, u32>), OpsError> {
    Ok(running_formation(state.store.deployed_state(app.id).await?))
}

/// The release that runs and the quantity of each of its process types, from what the store
/// holds.
pub fn running_formation(deployed: DeployedState) -> (Option<Release>, BTreeMap<ProcessType, u32>) {
    // A release without an image (config set before the first deploy) runs nothing.
    let release = deployed.current.filter(|release| release.image.is_some());
    let formation = match &release {
        Some(release) => rollout::formation_for(&release.processes, &deployed.formation),
        None => BTreeMap::new(),
    };
    (release, formation)
}

/// The formation as the API lists it.
pub fn formation_list(
    release: Option<&Release>,
    formation: &BTreeMap<ProcessType, u32>,
) -> Vec<Formation> {
    formation
        .iter()
        .map(|(process, quantity)| Formation {
            process: process.clone(),
            quantity: *quantity,
            command: release
                .and_then(|release| release.processes.get(process).cloned())
                .flatten(),
        })
        .collect()
}

/// Follows `rolling` to its end, recording `formation` once the agent serves it.
async fn follow(
    state: &SharedState,
    app: &AppRow,
    mut rolling: Rolling,
    formation: Option<BTreeMap<ProcessType, u32>>,
    reporter: &Reporter,
) -> Result<(), RolloutFailure> {
    let reached = rolling.until_serving(reporter).await?;
    if let Some(formation) = formation
        && let Err(err) = state.store.replace_formation(app.id, formation).await
    {
        tracing::error!(app = %app.name, error = %err, "cannot record the formation");
        return Err(RolloutFailure {
            reason: "the app runs, but its formation could not be recorded; see the paas-gitd log"
                .to_owned(),
            logs: Vec::new(),
        });
    }
    if reached == Reached::Serving {
        rolling.until_done(reporter).await?;
    }
    Ok(())
}

/// Rolls the current release out again as it is stored (its domains, its features, or
/// `features` in their place); an app that runs nothing yet picks the change up on its
/// first deploy.
pub(super) async fn reroll(
    state: &SharedState,
    app: &AppRow,
    features: Option<BTreeSet<Feature>>,
    reporter: &Reporter,
) -> Result<Option<Release>, RolloutFailure> {
    let (release, formation) =
        current_formation(state, app)
            .await
            .map_err(|err| RolloutFailure {
                reason: err.to_string(),
                logs: Vec::new(),
            })?;
    let Some(release) = release else {
        return Ok(None);
    };
    let rolling = rollout::start(state, app, &release, &formation, features).await?;
    follow(state, app, rolling, Some(formation), reporter).await?;
    Ok(Some(release))
}

/// The version of the release a change re-rolled, for its event.
pub(super) fn version_of(rerolled: Option<Release>) -> Option<u32> {
    rerolled.map(|release| release.version)
}

/// `paas scale`: applies `changes` to the formation read under the lock, so `web+1` adds to
/// what the previous change left.
pub fn scale(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    changes: ScaleChanges,
) -> Op<Vec<Formation>> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let (release, current) = current_formation(&state, &app).await?;
        let next = apply_scale(&current, &changes).map_err(|e| OpsError::Invalid(e.to_string()))?;
        state.config.quotas.check_scale(&current, &next)?;
        let Some(release) = release else {
            return Err(OpsError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            )));
        };
        // Sent even when the formation is unchanged: the agent starts instances that died.
        let rolling = rollout::start(&state, &app, &release, &next, None)
            .await
            .map_err(|failure| OpsError::agent("Scaling failed", failure))?;
        follow(&state, &app, rolling, Some(next.clone()), &reporter)
            .await
            .map_err(|failure| OpsError::agent("Scaling failed", failure))?;
        if next != current {
            tracing::info!(app = %app.name, formation = ?next, %by, "scaled");
            let scaled = events::formation_summary(&next);
            let details = paas_api::webhooks::EventDetails {
                message: format!("Scaled to {scaled} by user {by}"),
                release: Some(release.version),
                user: Some(by.to_string()),
                formation: next.iter().map(|(p, q)| (p.to_string(), *q)).collect(),
                ..Default::default()
            };
            let scale = paas_api::webhooks::WebhookEvent::Scale;
            crate::webhooks::notify(&state, app.id, &app.name, scale, details).await;
            let message = format!("Scaled to {scaled} by user {by}");
            events::record_in(&state, app.id, Some(release.version), "scale", message).await;
        }
        Ok(formation_list(Some(&release), &next))
    })
}

/// `paas restart [process]`: replaces the instances of one process type, or all.
pub fn restart(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    process: Option<ProcessType>,
    index: Option<u32>,
) -> Op<()> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let (release, formation) = current_formation(&state, &app).await?;
        if let Some(index) = index {
            let Some(process) = &process else {
                return Err(OpsError::invalid("name the instance as TYPE.N, e.g. web.1"));
            };
            let quantity = formation.get(process.as_str()).copied().unwrap_or(0);
            if index == 0 || index > quantity {
                return Err(OpsError::invalid(format!(
                    "{} has no {process}.{index}: it runs {quantity} {process} instance(s)",
                    app.name
                )));
            }
        }
        let Some(release) = release else {
            return Err(OpsError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            )));
        };
        if let Some(process) = &process
            && !formation.contains_key(process.as_str())
        {
            let known = formation.keys().cloned().collect::<Vec<_>>().join(", ");
            return Err(OpsError::invalid(format!(
                "unknown process type {process:?}; this app has: {known}"
            )));
        }
        let restarted = match (&process, index) {
            (Some(process), Some(index)) => format!("{process}.{index}"),
            (Some(process), None) => process.to_string(),
            (None, _) => "all processes".to_owned(),
        };
        let rolling = rollout::start_restart(&state, &app, process, index)
            .map_err(|failure| OpsError::agent("Restart failed", failure))?;
        follow(&state, &app, rolling, None, &reporter)
            .await
            .map_err(|failure| OpsError::agent("Restart failed", failure))?;
        let message = format!("Restarted {restarted} by user {by}");
        events::record_in(&state, app.id, Some(release.version), "restart", message).await;
        Ok(())
    })
}

/// `paas domains:add`: claims `hostname` for the app and routes it; if routing fails, the
/// claim is undone and the app keeps its old routing. Names of the platform's own hosts and
/// their neighbours are refused, and so is any name that overlaps another app's.
pub fn add_domain(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    hostname: DomainName,
) -> Result<Op<Domain>, OpsError> {
    let platform_hosts: Vec<&str> = std::iter::once(state.config.domain.as_str())
        .chain(state.config.http.public_hosts.iter().map(String::as_str))
        .collect();
    check_platform_hosts(&hostname, &platform_hosts)
        .map_err(|err| OpsError::Invalid(format!("{err}.")))?;
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    Ok(super::spawn(
        state,
        &name,
        None,
        move |reporter| async move {
            let state = op_state;
            let added = match state.store.add_domain(app.id, &hostname).await? {
                DomainClaim::Added(domain) => domain,
                DomainClaim::AlreadyThisApps => {
                    return Err(OpsError::Conflict(format!(
                        "{hostname} is already a domain of this app."
                    )));
                }
                DomainClaim::Taken => return Err(in_use(&hostname)),
            };
            if let Err(failure) = reroll(&state, &app, None, &reporter).await {
                state.store.remove_domain(app.id, &hostname).await?;
                return Err(OpsError::agent("Routing the new domains failed", failure));
            }
            let message = format!("Added domain {hostname} by user {by}");
            events::record(&state, app.id, "domains", message).await;
            Ok(added)
        },
    ))
}

/// The one answer for a name that another app has, or that overlaps one of its names.
fn in_use(hostname: &DomainName) -> OpsError {
    let what = if hostname.is_wildcard() {
        "covers a domain another app serves"
    } else {
        "is already in use by another app"
    };
    OpsError::Conflict(format!("{hostname} {what}."))
}

/// `paas domains:remove`: stops routing `hostname` to the app; if that fails, the domain is
/// put back.
pub fn remove_domain(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    hostname: DomainName,
) -> Op<()> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        if !state.store.remove_domain(app.id, &hostname).await? {
            return Err(OpsError::NotFound(format!(
                "{} has no domain {hostname}.",
                app.name
            )));
        }
        if let Err(failure) = reroll(&state, &app, None, &reporter).await {
            state.store.restore_domain(app.id, &hostname).await?;
            return Err(OpsError::agent("Routing the new domains failed", failure));
        }
        let message = format!("Removed domain {hostname} by user {by}");
        events::record(&state, app.id, "domains", message).await;
        Ok(())
    })
}

/// `paas features:enable|disable`: rolls the running release out again with the new
/// container options, and stores the change only once that succeeded; before the first
/// deploy it is just stored.
pub fn set_feature(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    feature: Feature,
    enabled: bool,
) -> Op<AppFeature> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let mut features = state.store.enabled_features(app.id).await?;
        let changed = if enabled {
            features.insert(feature)
        } else {
            features.remove(&feature)
        };
        if !changed {
            return Ok(app_feature(feature, &features));
        }
        let verb = if enabled { "Enabled" } else { "Disabled" };
        let rerolled = match reroll(&state, &app, Some(features.clone()), &reporter).await {
            Ok(rerolled) => rerolled,
            Err(failure) => {
                let (release, _) = current_formation(&state, &app).await?;
                let version = release.map(|r| r.version).unwrap_or_default();
                return Err(OpsError::agent(
                    format!(
                        "v{version} failed to start with {feature} {}; nothing was changed",
                        verb.to_lowercase()
                    ),
                    failure,
                ));
            }
        };
        state.store.set_feature(app.id, feature, enabled).await?;
        tracing::info!(app = %app.name, %feature, enabled, %by, "feature changed");
        let message = format!("{verb} feature {feature} by user {by}");
        events::record_in(&state, app.id, version_of(rerolled), "feature", message).await;
        Ok(app_feature(feature, &features))
    })
}

pub fn app_feature(feature: Feature, enabled: &BTreeSet<Feature>) -> AppFeature {
    AppFeature {
        name: feature,
        description: feature.description().to_owned(),
        enabled: enabled.contains(&feature),
    }
}

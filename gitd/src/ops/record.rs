//! The store calls operations make, in one place.

use std::collections::{BTreeMap, BTreeSet};

use paas_api::types::{Feature, Release, ReleaseStatus};

use crate::db::queries;
use crate::state::SharedState;

/// What a new release is made of; its version is the app's next one.
#[derive(Debug, Clone)]
pub struct NewRelease {
    pub app_id: i64,
    pub description: String,
    pub username: String,
    pub image: Option<String>,
    pub commit: Option<String>,
    pub processes: BTreeMap<String, Option<String>>,
    pub config: BTreeMap<String, String>,
}

/// How a release's build or rollout ended.
#[derive(Debug, Clone)]
pub struct ReleaseOutcome {
    pub status: ReleaseStatus,
    pub image: Option<String>,
    pub processes: BTreeMap<String, Option<String>>,
    /// Becomes the app's config vars, in the same transaction.
    pub config: Option<BTreeMap<String, String>>,
    pub output: Option<String>,
}

/// What an app runs now: its current release and the stored formation.
pub struct DeployedState {
    pub current: Option<Release>,
    pub formation: BTreeMap<String, u32>,
}

pub type StoreResult<T> = rusqlite::Result<T>;

pub async fn config_vars(
    state: &SharedState,
    app_id: i64,
) -> StoreResult<BTreeMap<String, String>> {
    state
        .db
        .call(move |conn| queries::config_vars(conn, app_id))
        .await
}

pub async fn deployed_state(state: &SharedState, app_id: i64) -> StoreResult<DeployedState> {
    state
        .db
        .call(move |conn| {
            Ok(DeployedState {
                current: queries::current_release(conn, app_id)?,
                formation: queries::formation(conn, app_id)?,
            })
        })
        .await
}

pub async fn create_release(state: &SharedState, new: NewRelease) -> StoreResult<Release> {
    insert(state, new, ReleaseStatus::Building).await
}

/// A release that is live as it is made (a config change while nothing runs): its config
/// becomes the app's in the same transaction.
pub async fn create_live_release(state: &SharedState, new: NewRelease) -> StoreResult<Release> {
    insert(state, new, ReleaseStatus::Succeeded).await
}

async fn insert(
    state: &SharedState,
    new: NewRelease,
    status: ReleaseStatus,
) -> StoreResult<Release> {
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let release = queries::insert_release(
                &tx,
                &queries::NewRelease {
                    app_id: new.app_id,
                    description: &new.description,
                    username: &new.username,
                    status,
                    image: new.image.as_deref(),
                    commit: new.commit.as_deref(),
                    processes: &new.processes,
                    config: &new.config,
                },
            )?;
            if status == ReleaseStatus::Succeeded {
                queries::replace_config_vars(&tx, new.app_id, &new.config)?;
            }
            tx.commit()?;
            Ok(release)
        })
        .await
}

pub async fn finish_release(
    state: &SharedState,
    app_id: i64,
    version: u32,
    outcome: ReleaseOutcome,
) -> StoreResult<()> {
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            queries::finish_release(
                &tx,
                app_id,
                version,
                outcome.status,
                outcome.image.as_deref(),
                &outcome.processes,
            )?;
            if let Some(config) = &outcome.config {
                queries::replace_config_vars(&tx, app_id, config)?;
            }
            if let Some(output) = &outcome.output {
                queries::save_release_output(&tx, app_id, version, output)?;
            }
            tx.commit()
        })
        .await
}

pub async fn save_release_output(
    state: &SharedState,
    app_id: i64,
    version: u32,
    output: String,
) -> StoreResult<()> {
    state
        .db
        .call(move |conn| queries::save_release_output(conn, app_id, version, &output))
        .await
}

pub async fn releases(state: &SharedState, app_id: i64) -> StoreResult<Vec<Release>> {
    state
        .db
        .call(move |conn| queries::releases(conn, app_id, u32::MAX))
        .await
}

pub async fn replace_formation(
    state: &SharedState,
    app_id: i64,
    formation: BTreeMap<String, u32>,
) -> StoreResult<()> {
    state
        .db
        .call(move |conn| queries::replace_formation(conn, app_id, &formation))
        .await
}

/// The app's custom domains and enabled features: what every rollout applies.
pub async fn rollout_settings(
    state: &SharedState,
    app_id: i64,
) -> StoreResult<(Vec<String>, BTreeSet<Feature>)> {
    state
        .db
        .call(move |conn| {
            Ok((
                queries::domains(conn, app_id)?
                    .into_iter()
                    .map(|(hostname, _)| hostname)
                    .collect(),
                queries::enabled_features(conn, app_id)?,
            ))
        })
        .await
}

/// How adding a domain went; anything but `Added` changed nothing.
pub enum DomainClaim {
    Added(paas_api::types::Domain),
    /// The app has the domain already.
    AlreadyThisApps,
    /// Another owner's app has it, or a name it overlaps.
    Taken,
}

pub async fn add_domain(
    state: &SharedState,
    app_id: i64,
    hostname: &str,
) -> StoreResult<DomainClaim> {
    let hostname = hostname.to_owned();
    state
        .db
        .call(move |conn| {
            let tx = conn.transaction()?;
            let owned = queries::domains(&tx, app_id)?
                .into_iter()
                .any(|(existing, _)| existing == hostname);
            if owned {
                return Ok(DomainClaim::AlreadyThisApps);
            }
            let taken = queries::domains_of_other_owners(&tx, app_id)?
                .iter()
                .any(|other| paas_api::domains::overlaps(&hostname, other));
            if taken {
                return Ok(DomainClaim::Taken);
            }
            let added = match queries::insert_domain(&tx, app_id, &hostname) {
                Err(err) if crate::db::is_constraint_violation(&err) => {
                    return Ok(DomainClaim::Taken);
                }
                other => other?,
            };
            tx.commit()?;
            Ok(DomainClaim::Added(paas_api::types::Domain {
                hostname,
                created_at: crate::db::to_time(added),
            }))
        })
        .await
}

/// Puts back a domain just removed, when the change that removed it is undone.
pub async fn restore_domain(state: &SharedState, app_id: i64, hostname: &str) -> StoreResult<()> {
    let hostname = hostname.to_owned();
    state
        .db
        .call(move |conn| queries::insert_domain(conn, app_id, &hostname).map(drop))
        .await
}

/// Returns whether the app had the domain.
pub async fn remove_domain(state: &SharedState, app_id: i64, hostname: &str) -> StoreResult<bool> {
    let hostname = hostname.to_owned();
    state
        .db
        .call(move |conn| queries::delete_domain(conn, app_id, &hostname))
        .await
}

pub async fn enabled_features(state: &SharedState, app_id: i64) -> StoreResult<BTreeSet<Feature>> {
    state
        .db
        .call(move |conn| queries::enabled_features(conn, app_id))
        .await
}

pub async fn set_feature(
    state: &SharedState,
    app_id: i64,
    feature: Feature,
    enabled: bool,
) -> StoreResult<()> {
    state
        .db
        .call(move |conn| queries::set_feature(conn, app_id, feature, enabled))
        .await
}

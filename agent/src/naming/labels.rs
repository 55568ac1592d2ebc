//! The labels the agent puts on images and containers, and reads back.
//!
//! Docker copies an image's labels onto its containers, and the classic builder's step
//! containers carry the labels of the Dockerfile being built, so a label such as `paas.app`
//! or `traefik.*` proves nothing by itself. What marks a container as the agent's is
//! [`LABEL_INSTANCE`] with the agent's secret [`InstanceKey`]: the agent sets it on every
//! container it creates (never on images or builds), filters every listing and event stream
//! on it, and Traefik's Docker provider is told to consider only containers carrying it
//! ([`traefik_constraint`]).

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

pub const LABEL_APP: &str = "paas.app";
pub const LABEL_RELEASE: &str = "paas.release";
pub const LABEL_PROCESS: &str = "paas.process";
pub const LABEL_INDEX: &str = "paas.index";
/// On images only: the commit the image was built from.
pub const LABEL_COMMIT: &str = "paas.commit";
/// Fingerprint of everything the container was created from.
pub const LABEL_SPEC: &str = "paas.spec";
/// Carries the [`InstanceKey`]: the one label an image or a build cannot forge.
pub const LABEL_INSTANCE: &str = "paas.instance";
/// Carries the [`InstanceKey`] on one-off containers in place of [`LABEL_INSTANCE`], so they
/// are the agent's but never an instance: Traefik and the rollouts, which select by
/// [`LABEL_INSTANCE`], never see them.
pub const LABEL_ONEOFF: &str = "paas.oneoff";
/// On an app's volumes: the name the tenant gave it (`paas.app` says whose it is).
pub const LABEL_VOLUME: &str = "paas.volume";
/// Carries the [`InstanceKey`] on add-on containers and volumes in place of [`LABEL_INSTANCE`]:
/// they are the agent's, but no rollout, convergence or Traefik ever selects them.
pub const LABEL_ADDON: &str = "paas.addon";
/// On add-on containers and volumes: whose it is and its name and kind.
pub const LABEL_ADDON_OWNER: &str = "paas.addon.owner";
pub const LABEL_ADDON_NAME: &str = "paas.addon.name";
pub const LABEL_ADDON_KIND: &str = "paas.addon.kind";
/// Labels under these prefixes are the platform's: Traefik's routing and paas's bookkeeping.
/// Compared case-insensitively (Traefik reads its labels without regard to case).
pub const TRAEFIK_LABEL_PREFIX: &str = "traefik.";
pub const PAAS_LABEL_PREFIX: &str = "paas.";

/// The first label of an image (in name order) that would route traffic once copied onto a
/// container: the build refuses such images, and a rollout too (an image built before that
/// check, or not by the agent).
pub fn first_routing_label(labels: &HashMap<String, String>) -> Option<&str> {
    let mut names: Vec<&str> = labels
        .keys()
        .map(String::as_str)
        .filter(|name| has_prefix(name, TRAEFIK_LABEL_PREFIX))
        .collect();
    names.sort_unstable();
    names.first().copied()
}

/// Whether `name` starts with `prefix`, ignoring ASCII case.
pub fn has_prefix(name: &str, prefix: &str) -> bool {
    name.get(..prefix.len())
        .is_some_and(|start| start.eq_ignore_ascii_case(prefix))
}

pub fn release_label(release: u32) -> String {
    format!("v{release}")
}

pub fn parse_release_label(label: &str) -> Option<u32> {
    label.strip_prefix('v')?.parse().ok()
}

/// The labels of the image built for `release` of `app` from `commit`.
pub fn build_labels(app: &str, release: u32, commit: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (LABEL_APP.to_owned(), app.to_owned()),
        (LABEL_RELEASE.to_owned(), release_label(release)),
        (LABEL_COMMIT.to_owned(), commit.to_owned()),
    ])
}

/// Which instance of which app a container is, as its labels tell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceLabels {
    pub app: String,
    pub release: u32,
    pub process: String,
    pub index: u32,
    /// Of everything the container was created from; empty on containers made before it was.
    pub fingerprint: String,
}

impl InstanceLabels {
    /// The paas labels of an agent's container.
    pub fn to_labels(&self, key: &InstanceKey) -> HashMap<String, String> {
        HashMap::from([
            (LABEL_APP.to_owned(), self.app.clone()),
            (LABEL_RELEASE.to_owned(), release_label(self.release)),
            (LABEL_PROCESS.to_owned(), self.process.clone()),
            (LABEL_INDEX.to_owned(), self.index.to_string()),
            (LABEL_SPEC.to_owned(), self.fingerprint.clone()),
            (LABEL_INSTANCE.to_owned(), key.as_str().to_owned()),
        ])
    }

    /// Read back from a container's labels (or an event's attributes); `None` when one is
    /// missing or unreadable. Whether the container is the agent's is [`is_ours`]'s question.
    pub fn parse(labels: &HashMap<String, String>) -> Option<InstanceLabels> {
        Some(InstanceLabels {
            app: labels.get(LABEL_APP)?.clone(),
            release: parse_release_label(labels.get(LABEL_RELEASE)?)?,
            process: labels.get(LABEL_PROCESS)?.clone(),
            index: labels.get(LABEL_INDEX)?.parse().ok()?,
            fingerprint: labels.get(LABEL_SPEC).cloned().unwrap_or_default(),
        })
    }

    /// The container's name as the naming convention gives it (a container being replaced
    /// is renamed).
    pub fn canonical_name(&self) -> String {
        super::container_name(&self.app, self.release, &self.process, self.index)
    }
}

/// The agent's secret `instance_key` (hex, 128 bits or more), the value of
/// [`LABEL_INSTANCE`] on its containers. Tenants never see it, so no image or build can carry
/// it; it is never printed except by `paas-agent traefik-constraint`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct InstanceKey(String);

impl TryFrom<String> for InstanceKey {
    type Error = String;

    fn try_from(key: String) -> Result<Self, Self::Error> {
        InstanceKey::parse(&key)
    }
}

impl From<InstanceKey> for String {
    fn from(key: InstanceKey) -> String {
        key.0
    }
}

/// The fewest hex digits an instance key may have (128 bits).
pub const MIN_INSTANCE_KEY_HEX: usize = 32;

impl InstanceKey {
    /// A fresh random 256-bit key.
    pub fn generate() -> InstanceKey {
        let mut bytes = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut bytes);
        InstanceKey(hex::encode(bytes))
    }

    pub fn parse(key: &str) -> Result<InstanceKey, String> {
        if key.len() < MIN_INSTANCE_KEY_HEX || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!(
                "instance_key must be at least {MIN_INSTANCE_KEY_HEX} hex digits (128 random bits)"
            ));
        }
        Ok(InstanceKey(key.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for InstanceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InstanceKey(…)")
    }
}

/// A key for unit tests.
#[cfg(test)]
pub(crate) fn test_key() -> InstanceKey {
    InstanceKey::parse(&"5e".repeat(16)).expect("32 hex digits")
}

/// The Traefik Docker provider's `constraints` expression that limits it to this agent's
/// containers.
pub fn traefik_constraint(key: &InstanceKey) -> String {
    format!("Label(`{LABEL_INSTANCE}`,`{}`)", key.as_str())
}

/// Docker `label` filters for this agent's containers: of `app` if given, of `process` too.
pub fn label_filters(key: &InstanceKey, app: Option<&str>, process: Option<&str>) -> Vec<String> {
    let mut filters = vec![format!("{LABEL_INSTANCE}={}", key.as_str())];
    if let Some(app) = app {
        filters.push(format!("{LABEL_APP}={app}"));
    }
    if let Some(process) = process {
        filters.push(format!("{LABEL_PROCESS}={process}"));
    }
    filters
}

/// Docker filters (`label` only) for this agent's containers, as list and event calls take
/// them.
pub fn docker_filters(
    key: &InstanceKey,
    app: Option<&str>,
    process: Option<&str>,
) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), label_filters(key, app, process))])
}

/// Docker filters (`label` only) for this agent's one-off containers of `app` (of one kind,
/// `release` or `run`, if given).
pub fn oneoff_filters(
    key: &InstanceKey,
    app: &str,
    kind: Option<&str>,
) -> HashMap<String, Vec<String>> {
    let mut filters = vec![
        format!("{LABEL_ONEOFF}={}", key.as_str()),
        format!("{LABEL_APP}={app}"),
    ];
    if let Some(kind) = kind {
        filters.push(format!("{LABEL_PROCESS}={kind}"));
    }
    HashMap::from([("label".to_owned(), filters)])
}

/// Docker filters for whatever carries the app's label without the key: its network (older
/// engines may hold duplicates of it).
pub fn app_filters(app: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_owned(), vec![format!("{LABEL_APP}={app}")])])
}

/// The labels of the app's network.
pub fn network_labels(app: &str) -> HashMap<String, String> {
    HashMap::from([(LABEL_APP.to_owned(), app.to_owned())])
}

/// The labels of one of the app's volumes.
pub fn volume_labels(app: &str, volume: &str) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_APP.to_owned(), app.to_owned()),
        (LABEL_VOLUME.to_owned(), volume.to_owned()),
    ])
}

/// The labels of an add-on's container and volume.
pub fn addon_labels(
    key: &InstanceKey,
    owner: &str,
    name: &str,
    kind: &str,
) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_ADDON.to_owned(), key.as_str().to_owned()),
        (LABEL_ADDON_OWNER.to_owned(), owner.to_owned()),
        (LABEL_ADDON_NAME.to_owned(), name.to_owned()),
        (LABEL_ADDON_KIND.to_owned(), kind.to_owned()),
    ])
}

/// Whether labels (a container's, or an event's attributes) carry this agent's key.
pub fn is_ours(key: &InstanceKey, labels: &HashMap<String, String>) -> bool {
    labels.get(LABEL_INSTANCE).map(String::as_str) == Some(key.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_labels_round_trip() {
        assert_eq!(parse_release_label(&release_label(12)), Some(12));
        assert_eq!(parse_release_label("12"), None);
    }

    #[test]
    fn addon_labels_are_never_an_instance_or_an_app() {
        let labels = addon_labels(&test_key(), "ann", "db", "postgres");
        assert_eq!(labels[LABEL_ADDON], test_key().as_str());
        assert!(!is_ours(&test_key(), &labels));
        assert!(!labels.contains_key(LABEL_APP));
        assert!(!labels.contains_key(LABEL_ONEOFF));
    }

    #[test]
    fn instance_labels_round_trip_and_carry_the_key() {
        let key = test_key();
        let instance = InstanceLabels {
            app: "hello".into(),
            release: 3,
            process: "web".into(),
            index: 2,
            fingerprint: "abc".into(),
        };
        let labels = instance.to_labels(&key);
        assert_eq!(labels["paas.release"], "v3");
        assert_eq!(labels["paas.index"], "2");
        assert!(is_ours(&key, &labels));
        assert_eq!(InstanceLabels::parse(&labels), Some(instance.clone()));
        assert_eq!(instance.canonical_name(), "paas-hello-v3-web-2");
        for missing in [LABEL_APP, LABEL_RELEASE, LABEL_PROCESS, LABEL_INDEX] {
            let mut partial = labels.clone();
            partial.remove(missing);
            assert_eq!(InstanceLabels::parse(&partial), None, "{missing}");
        }
        let mut unfingerprinted = labels.clone();
        unfingerprinted.remove(LABEL_SPEC);
        assert_eq!(
            InstanceLabels::parse(&unfingerprinted).unwrap().fingerprint,
            ""
        );
    }

    #[test]
    fn build_labels_name_app_release_and_commit() {
        let labels = build_labels("hello", 3, "0123abc");
        assert_eq!(
            labels.into_iter().collect::<Vec<_>>(),
            [
                ("paas.app".to_owned(), "hello".to_owned()),
                ("paas.commit".to_owned(), "0123abc".to_owned()),
                ("paas.release".to_owned(), "v3".to_owned()),
            ]
        );
    }

    #[test]
    fn the_key_filters_and_constrains() {
        let key = test_key();
        assert_eq!(
            traefik_constraint(&key),
            format!("Label(`paas.instance`,`{}`)", "5e".repeat(16))
        );
        assert_eq!(
            label_filters(&key, Some("hello"), Some("web")),
            [
                format!("paas.instance={}", key.as_str()),
                "paas.app=hello".to_owned(),
                "paas.process=web".to_owned()
            ]
        );
        assert!(format!("{key:?}").find(key.as_str()).is_none());
        assert!(InstanceKey::parse("abc").is_err());
        assert!(InstanceKey::parse(&"g".repeat(32)).is_err());
        assert_eq!(InstanceKey::generate().as_str().len(), 64);
        let other = InstanceKey::parse(&"0".repeat(32)).unwrap();
        assert!(!is_ours(
            &other,
            &HashMap::from([(LABEL_INSTANCE.to_owned(), key.as_str().to_owned())])
        ));
    }

    #[test]
    fn only_traefik_labels_route() {
        let labels = |names: &[&str]| -> HashMap<String, String> {
            names
                .iter()
                .map(|name| ((*name).to_owned(), "x".to_owned()))
                .collect()
        };
        assert_eq!(
            first_routing_label(&labels(&["paas.app", "org.opencontainers.image.title"])),
            None
        );
        assert_eq!(
            first_routing_label(&labels(&["traefik.tcp.routers.a.rule", "TRAEFIK.enable"])),
            Some("TRAEFIK.enable")
        );
        assert!(!has_prefix("traefik", TRAEFIK_LABEL_PREFIX));
        assert!(has_prefix("Paas.app", PAAS_LABEL_PREFIX));
    }
}

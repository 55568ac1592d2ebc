//! Images must not carry labels reserved for the platform. Docker copies an image's labels
//! onto every container made from it, so a `traefik.*` label in a pushed Dockerfile (or one a
//! buildpack sets) would route traffic as its author likes, and a `paas.*` label would pass
//! for the agent's own bookkeeping. After a build the image's labels are read back: a label
//! under `traefik.` or a `paas.` label other than exactly those of the build spec fails the
//! build, and the image is removed, so no release is ever made of it.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;

use super::BuildJob;
use crate::naming::{PAAS_LABEL_PREFIX, TRAEFIK_LABEL_PREFIX, has_prefix};

/// Label prefixes only the platform may set, compared case-insensitively.
pub const RESERVED_PREFIXES: &[&str] = &[TRAEFIK_LABEL_PREFIX, PAAS_LABEL_PREFIX];

#[derive(Debug, thiserror::Error)]
pub enum ReservedLabelError {
    #[error(
        "the image carries label `{0}`: labels under traefik. and paas. are reserved for the platform"
    )]
    Reserved(String),
    #[error("reading the labels of {image}: {message}")]
    Inspect { image: String, message: String },
}

/// The first reserved label of `labels` (in name order) that `allowed` does not hold with
/// exactly that value.
pub fn first_reserved(
    labels: &HashMap<String, String>,
    allowed: &BTreeMap<String, String>,
) -> Option<String> {
    let mut names: Vec<&String> = labels.keys().collect();
    names.sort();
    names
        .into_iter()
        .find(|name| {
            RESERVED_PREFIXES
                .iter()
                .any(|prefix| has_prefix(name, prefix))
                && allowed.get(*name) != labels.get(*name)
        })
        .cloned()
}

/// Refuses `spec.image` if it carries a reserved label, removing it first.
pub async fn refuse_reserved(docker: &Docker, spec: &BuildJob) -> Result<(), ReservedLabelError> {
    let inspect_error = |err: bollard::errors::Error| ReservedLabelError::Inspect {
        image: spec.image.clone(),
        message: err.to_string(),
    };
    let image = docker
        .inspect_image(&spec.image)
        .await
        .map_err(inspect_error)?;
    let labels = image
        .config
        .and_then(|config| config.labels)
        .unwrap_or_default();
    let Some(label) = first_reserved(&labels, &spec.labels) else {
        return Ok(());
    };
    crate::images::remove_tag(docker, &spec.image)
        .await
        .map_err(inspect_error)?;
    Err(ReservedLabelError::Reserved(label))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec_labels() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("paas.app".to_owned(), "hello".to_owned()),
            ("paas.release".to_owned(), "v3".to_owned()),
        ])
    }

    #[test]
    fn only_the_specs_own_paas_labels_pass() {
        let ok = labels(&[
            ("paas.app", "hello"),
            ("paas.release", "v3"),
            ("org.opencontainers.image.title", "hello"),
            ("io.buildpacks.stack.id", "heroku-24"),
        ]);
        assert_eq!(first_reserved(&ok, &spec_labels()), None);
        let other_value = labels(&[("paas.app", "victim"), ("paas.release", "v3")]);
        assert_eq!(
            first_reserved(&other_value, &spec_labels()).as_deref(),
            Some("paas.app")
        );
        let extra = labels(&[("paas.app", "hello"), ("paas.process", "web")]);
        assert_eq!(
            first_reserved(&extra, &spec_labels()).as_deref(),
            Some("paas.process")
        );
    }

    #[test]
    fn every_traefik_label_is_refused_whatever_its_case() {
        for name in [
            "traefik.http.routers.x.rule",
            "traefik.tcp.routers.x.rule",
            "traefik.enable",
            "Traefik.http.routers.x.service",
            "PAAS.instance",
        ] {
            let found = first_reserved(&labels(&[(name, "x")]), &spec_labels());
            assert_eq!(found.as_deref(), Some(name));
        }
        let err = ReservedLabelError::Reserved("traefik.http.routers.x.rule".into());
        assert_eq!(
            err.to_string(),
            "the image carries label `traefik.http.routers.x.rule`: labels under traefik. and paas. are reserved for the platform"
        );
    }
}

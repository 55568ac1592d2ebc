//! Every name the agent gives a Docker object, built and read back here and nowhere else:
//! image tags (`paas/<app>:v<N>`), container names (`paas-<app>-v<N>-<process>-<i>`), the app
//! network (`paas-app-<app>`), the Swarm services of its process types, the pack cache volume, add-on containers and volumes
//! (`paas-addon-<name>.<owner>`), the labels on images and containers
//! ([`labels`]: paas's own bookkeeping and the instance key) and Traefik's router, service and
//! middleware labels ([`traefik`]), and the names of pushed images in a registry ([`registry`]). gitd never sees any of these: it sends app names and
//! release numbers, and the agent names what they become.

pub mod labels;
pub mod registry;
pub mod traefik;

#[cfg(test)]
pub use labels::LABEL_INSTANCE;
#[cfg(test)]
pub(crate) use labels::test_key;
pub use labels::{
    InstanceKey, LABEL_APP, LABEL_INDEX, LABEL_ONEOFF, LABEL_PROCESS, LABEL_RELEASE,
    PAAS_LABEL_PREFIX, TRAEFIK_LABEL_PREFIX, docker_filters, first_routing_label, has_prefix,
    is_ours, label_filters, parse_release_label, release_label,
};

/// Repository of every image the agent builds for an app.
pub fn image_repository(app: &str) -> String {
    format!("paas/{app}")
}

/// The tag of the image built for `release` of `app`; later releases (config changes,
/// rollbacks) run it again under their own number.
pub fn image_tag(app: &str, release: u32) -> String {
    format!("{}:v{release}", image_repository(app))
}

/// `paas/<app>:v<N>` → (`<app>`, N): the tags [`image_tag`] gives, and nothing else.
pub fn parse_image_tag(tag: &str) -> Option<(&str, u32)> {
    let (app, number) = split_image_tag(tag)?;
    Some((app, number.parse().ok()?))
}

/// `paas/<app>:v<digits>` → `<app>`: whose release a tag names, however large its number
/// (a build naming another app's release by a tag no release has is still refused).
pub fn image_tag_owner(tag: &str) -> Option<&str> {
    split_image_tag(tag).map(|(app, _)| app)
}

fn split_image_tag(tag: &str) -> Option<(&str, &str)> {
    let rest = tag.strip_prefix("paas/")?;
    let (app, version) = rest.split_once(':')?;
    let number = version.strip_prefix('v')?;
    let well_formed = !app.is_empty()
        && !app.contains('/')
        && !number.is_empty()
        && number.bytes().all(|b| b.is_ascii_digit());
    well_formed.then_some((app, number))
}

/// The container of one process type and index of one release.
pub fn container_name(app: &str, release: u32, process: &str, index: u32) -> String {
    format!("paas-{app}-v{release}-{process}-{index}")
}

/// The name a container steps aside under while a new one takes its name, until it is
/// retired: unique per container, and never a canonical [`container_name`].
pub fn replaced_name(name: &str, id: &str) -> String {
    format!("{name}-replaced-{}", &id[..12.min(id.len())])
}

/// The app's own network (a bridge on one host, an overlay on Swarm): Docker keeps networks
/// apart, so apps cannot reach each other, while Traefik reaches every one.
pub fn network_name(app: &str) -> String {
    format!("paas-app-{app}")
}

/// The Swarm service of `process` of `app` (engine `swarm`). Swarm wants one DNS label
/// (letters, digits, dashes, at most 63), so no separator can keep `a-b` + `c` apart from
/// `a` + `b-c`: a digest of the pair does, after a readable part. The agent finds an app's
/// services by their labels, never by parsing this.
pub fn service_name(app: &str, process: &str) -> String {
    dns_label(
        format!("paas-{app}-{}", process.replace('_', "-")),
        &format!("{app}\0{process}"),
    )
}

/// The Swarm service of the add-on `name` of `owner` (engine `swarm`): one DNS label, as
/// [`service_name`], with the owner's dots and underscores as dashes and a digest of the pair.
pub fn addon_service(owner: &str, name: &str) -> String {
    dns_label(
        format!("paas-addon-{name}-{}", owner.replace(['.', '_'], "-")),
        &format!("{owner}\0{name}"),
    )
}

/// `readable` cut to fit, then a digest of `identity`, which keeps apart what the readable
/// part cannot: one DNS label of at most 63 characters.
fn dns_label(mut readable: String, identity: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(identity.as_bytes());
    readable.truncate(54);
    format!("{readable}-{}", hex::encode(&digest[..4]))
}

/// Docker's name of the app's volume `volume`. App names and volume names have no dots, so
/// the dot keeps `a-b` + `c` apart from `a` + `b-c`; the name comes from the app the request
/// is for, so no app can name another's volume.
pub fn volume_name(app: &str, volume: &str) -> String {
    format!("{}{volume}", volume_prefix(app))
}

/// What every Docker volume name of the app starts with, and no other app's does.
pub fn volume_prefix(app: &str) -> String {
    format!("paas-vol-{app}.")
}

/// The container of the add-on `name` of `owner`, and (a separate namespace in Docker) its
/// volume. Add-on names have no dots, so the first dot ends the name: `a` of `b.c` and `a` of
/// `b-c` stay apart, and nothing here is ever an app's container, network or volume name.
pub fn addon_container(owner: &str, name: &str) -> String {
    format!("paas-addon-{name}.{owner}")
}

/// The volume that holds the data of the add-on `name` of `owner`.
pub fn addon_volume(owner: &str, name: &str) -> String {
    addon_container(owner, name)
}

/// The volume pack keeps an app's build cache in.
pub fn pack_cache_volume(app: &str) -> String {
    format!("paas-pack-cache-{app}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_one_dns_label_and_keep_apps_and_processes_apart() {
        let name = service_name("hello", "web");
        assert!(name.starts_with("paas-hello-web-"), "{name}");
        assert_ne!(service_name("a-b", "c"), service_name("a", "b-c"));
        let longest = service_name(&"a".repeat(30), &format!("w_{}", "x".repeat(28)));
        assert!(longest.len() <= 63, "{longest}");
        let label = regex::Regex::new("^[a-z0-9][a-z0-9-]*$").unwrap();
        assert!(label.is_match(&longest), "{longest}");
    }

    #[test]
    fn add_on_service_names_are_one_dns_label_per_owner_and_name() {
        let name = addon_service("ann.b_c", "db");
        assert!(name.starts_with("paas-addon-db-ann-b-c-"), "{name}");
        assert_ne!(addon_service("a.b", "db"), addon_service("a_b", "db"));
        assert_ne!(addon_service("a-b", "c"), addon_service("a", "b-c"));
        let longest = addon_service(&"o".repeat(40), &"n".repeat(30));
        assert!(longest.len() <= 63, "{longest}");
        let label = regex::Regex::new("^[a-z0-9][a-z0-9-]*$").unwrap();
        assert!(label.is_match(&longest), "{longest}");
    }

    #[test]
    fn image_tags_round_trip_and_nothing_else_parses() {
        assert_eq!(image_tag("hello", 3), "paas/hello:v3");
        assert_eq!(
            parse_image_tag(&image_tag("hello", 12)),
            Some(("hello", 12))
        );
        for other in [
            "paas/busybox:latest",
            "paas/x:v",
            "paas/x:12",
            "paas/a/b:v1",
            "paas/:v1",
            "other/x:v1",
            "paas/x:v1x",
        ] {
            assert_eq!(parse_image_tag(other), None, "{other}");
            assert_eq!(image_tag_owner(other), None, "{other}");
        }
        assert_eq!(image_tag_owner("paas/x:v99999999999"), Some("x"));
        assert_eq!(parse_image_tag("paas/x:v99999999999"), None);
    }

    #[test]
    fn container_and_network_names() {
        assert_eq!(container_name("hello", 3, "web", 2), "paas-hello-v3-web-2");
        assert_eq!(network_name("hello"), "paas-app-hello");
        assert_eq!(volume_name("hello", "data"), "paas-vol-hello.data");
        assert_ne!(volume_name("a-b", "c"), volume_name("a", "b-c"));
        assert!(!volume_name("ab", "c").starts_with(&volume_prefix("a")));
        assert_eq!(pack_cache_volume("hello"), "paas-pack-cache-hello");
        assert_eq!(addon_container("ann", "db"), "paas-addon-db.ann");
        assert_ne!(addon_container("b-c", "a"), addon_container("c", "a-b"));
        assert_eq!(addon_volume("ann", "db"), "paas-addon-db.ann");
        let replaced = replaced_name("paas-hello-v3-web-2", "0123456789abcdef0123");
        assert_eq!(replaced, "paas-hello-v3-web-2-replaced-0123456789ab");
        assert_eq!(replaced_name("x", "ab"), "x-replaced-ab");
    }
}

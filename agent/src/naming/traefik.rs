//! Traefik's labels on `web` containers: the routers, the service and the retry middleware of
//! an app, all named after [`router_name`]. Only these labels reach Traefik: an image's own
//! `traefik.*` labels are refused ([`super::first_routing_label`]).

use std::collections::HashMap;

use paas_api::domains::{is_wildcard, traefik_rule};
use sha2::{Digest, Sha256};

use super::network_name;
use crate::config::RuntimeConfig;
use crate::runtime::APP_PORT;

/// Router priorities: Traefik otherwise ranks routers by the length of their rule, so a long
/// wildcard regex would beat a short exact host of another app. Exact hosts always win over
/// wildcards (two wildcards never overlap: each covers exactly one label, and domains are
/// unique across apps). Both stay below the rule-length default of any router an operator
/// defines, so the platform's own routes always win over an app's.
pub const EXACT_HOST_PRIORITY: u32 = 2;
pub const WILDCARD_PRIORITY: u32 = 1;
const _: () = assert!(EXACT_HOST_PRIORITY > WILDCARD_PRIORITY);

/// Traefik router, service and middleware names are all derived from this.
pub fn router_name(app: &str) -> String {
    format!("paas-{app}")
}

/// The app's service as Traefik's API names it (`GET /api/http/services/{name}`).
pub fn service_api_name(app: &str) -> String {
    format!("{}@docker", router_name(app))
}

/// Router and service `paas-<app>` for `<app>.<domain>`, and for the custom domains a router
/// for the exact hosts and one for the wildcards, each named after its rule, all through a
/// retry middleware that resends a request when a server fails to connect (a safety net;
/// draining is the plan). Every router has an explicit priority ([`EXACT_HOST_PRIORITY`],
/// [`WILDCARD_PRIORITY`]).
///
/// Traefik drops a router that containers define differently, so the rules that change with
/// `domains:add` get names of their own: during a rollout the old and new containers then
/// define routers side by side instead of one conflicting one.
pub fn traefik_labels(
    app: &str,
    hosts: &[String],
    config: &RuntimeConfig,
) -> HashMap<String, String> {
    let name = router_name(app);
    let retry = format!("{name}-retry");
    let mut labels = HashMap::from([
        ("traefik.enable".to_owned(), "true".to_owned()),
        ("traefik.docker.network".to_owned(), network_name(app)),
        (
            format!("traefik.http.middlewares.{retry}.retry.attempts"),
            "3".to_owned(),
        ),
        (
            format!("traefik.http.middlewares.{retry}.retry.initialinterval"),
            "50ms".to_owned(),
        ),
        (
            format!("traefik.http.services.{name}.loadbalancer.server.port"),
            APP_PORT.to_string(),
        ),
    ]);
    let (own, custom) = hosts
        .split_first()
        .expect("an app always has its own host name");
    let mut routers = vec![(name.clone(), traefik_rule(own), EXACT_HOST_PRIORITY)];
    let (wildcards, exact): (Vec<&String>, Vec<&String>) =
        custom.iter().partition(|host| is_wildcard(host));
    for (kind, hosts, priority) in [
        ("domains", exact, EXACT_HOST_PRIORITY),
        ("wildcards", wildcards, WILDCARD_PRIORITY),
    ] {
        if hosts.is_empty() {
            continue;
        }
        let rule = hosts
            .iter()
            .map(|host| traefik_rule(host))
            .collect::<Vec<_>>()
            .join(" || ");
        let definition = format!("{rule} priority={priority}");
        let digest = hex::encode(&Sha256::digest(definition.as_bytes())[..4]);
        routers.push((format!("{name}-{kind}-{digest}"), rule, priority));
    }
    for (router, rule, priority) in routers {
        let prefix = format!("traefik.http.routers.{router}");
        labels.insert(format!("{prefix}.rule"), rule.clone());
        labels.insert(format!("{prefix}.priority"), priority.to_string());
        labels.insert(
            format!("{prefix}.entrypoints"),
            config.traefik_entrypoint.clone(),
        );
        labels.insert(format!("{prefix}.service"), name.clone());
        labels.insert(format!("{prefix}.middlewares"), retry.clone());
        if let Some(resolver) = &config.traefik_cert_resolver {
            let tls = format!("traefik.http.routers.{router}-tls");
            labels.insert(format!("{tls}.rule"), rule);
            labels.insert(format!("{tls}.priority"), priority.to_string());
            labels.insert(
                format!("{tls}.entrypoints"),
                config.traefik_tls_entrypoint.clone(),
            );
            labels.insert(format!("{tls}.service"), name.clone());
            labels.insert(format!("{tls}.middlewares"), retry.clone());
            labels.insert(format!("{tls}.tls"), "true".to_owned());
            labels.insert(format!("{tls}.tls.certresolver"), resolver.clone());
        }
    }
    labels
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn changing_custom_domains_renames_their_router_only() {
        let config = RuntimeConfig::default();
        let routers = |domains: &[&str]| -> Vec<String> {
            let hosts: Vec<String> = std::iter::once("hello.paas.localhost")
                .chain(domains.iter().copied())
                .map(str::to_owned)
                .collect();
            let mut names: Vec<String> = traefik_labels("hello", &hosts, &config)
                .into_keys()
                .filter_map(|k| {
                    Some(
                        k.strip_prefix("traefik.http.routers.")?
                            .strip_suffix(".rule")?
                            .to_owned(),
                    )
                })
                .collect();
            names.sort();
            names
        };
        assert_eq!(routers(&[]), ["paas-hello"]);
        let one = routers(&["www.example.com"]);
        let two = routers(&["www.example.com", "api.example.com"]);
        assert_eq!(one.len(), 2);
        assert_eq!(one[0], "paas-hello");
        assert_eq!(two[0], "paas-hello");
        assert_ne!(one[1], two[1]);
    }

    #[test]
    fn exact_hosts_outrank_wildcards_whatever_the_rule_lengths() {
        let config = RuntimeConfig::default();
        let hosts: Vec<String> = [
            "hello.paas.localhost",
            "*.a-very-long-name-so-the-regex-rule-is-longest.example.org",
            "x.io",
        ]
        .map(str::to_owned)
        .to_vec();
        let labels = traefik_labels("hello", &hosts, &config);
        let mut priorities: Vec<(String, u32)> = labels
            .iter()
            .filter_map(|(key, value)| {
                let router = key
                    .strip_prefix("traefik.http.routers.")?
                    .strip_suffix(".priority")?;
                let rule = &labels[&format!("traefik.http.routers.{router}.rule")];
                Some((rule.clone(), value.parse().unwrap()))
            })
            .collect();
        priorities.sort();
        assert_eq!(priorities.len(), 3, "{labels:?}");
        for (rule, priority) in &priorities {
            let expected = if rule.starts_with("HostRegexp(") {
                WILDCARD_PRIORITY
            } else {
                EXACT_HOST_PRIORITY
            };
            assert_eq!(*priority, expected, "{rule}");
            assert!(!rule.contains(" || HostRegexp") && !rule.contains(") || Host("));
        }
        // Every router has one, also without a priority of its own the rule length would rank.
        let routers = labels
            .keys()
            .filter(|k| k.starts_with("traefik.http.routers.") && k.ends_with(".rule"))
            .count();
        assert_eq!(routers, priorities.len());
    }

    #[test]
    fn changing_the_wildcards_renames_their_router_only() {
        let config = RuntimeConfig::default();
        let routers = |domains: &[&str]| -> BTreeMap<String, String> {
            let hosts: Vec<String> = std::iter::once("hello.paas.localhost")
                .chain(domains.iter().copied())
                .map(str::to_owned)
                .collect();
            traefik_labels("hello", &hosts, &config)
                .into_iter()
                .filter_map(|(k, v)| {
                    let router = k
                        .strip_prefix("traefik.http.routers.")?
                        .strip_suffix(".rule")?;
                    Some((router.to_owned(), v))
                })
                .collect()
        };
        let before = routers(&["www.example.com", "*.example.org"]);
        let after = routers(&["www.example.com", "*.example.org", "*.example.net"]);
        let only_before: Vec<_> = before.keys().filter(|k| !after.contains_key(*k)).collect();
        assert_eq!(only_before.len(), 1);
        assert!(only_before[0].starts_with("paas-hello-wildcards-"));
        assert!(after.keys().any(|k| k.starts_with("paas-hello-domains-")));
    }
}

//! Traefik's labels on `web` containers: the routers, the service and the retry middleware of
//! an app, all named after [`router_name`]. Only these labels reach Traefik: an image's own
//! `traefik.*` labels are refused ([`super::first_routing_label`]).

use std::collections::HashMap;

use paas_api::domains::{is_wildcard, traefik_rule};
use sha2::{Digest, Sha256};

use super::network_name;
use crate::config::{EngineKind, RuntimeConfig};
use crate::runtime::APP_PORT;

/// Router priorities, set here and nowhere else. Traefik otherwise ranks routers by the length
/// of their rule, so a long wildcard regex would beat a short exact host of another app. The
/// order, lowest first: an app's wildcards, the maintenance page over an app's wildcards, exact
/// hosts, the maintenance page over an app's exact hosts. So an exact host always beats any
/// wildcard, even one whose app is in maintenance: a wildcard's app going into maintenance never
/// takes another app's exact host under it (two wildcards never overlap: each covers exactly one
/// label, and domains are unique across apps). The "no web processes" page (H14) takes the
/// app's own priorities: it is routed only while the app has no web instance, so it never
/// competes with them but for the moment a scale from zero takes to remove it. All stay below the rule-length default of any
/// router an operator defines, so the platform's own routes always win over an app's.
pub fn priority(exact: bool, maintenance: bool) -> u32 {
    match (exact, maintenance) {
        (false, false) => 1,
        (false, true) => 2,
        (true, false) => 3,
        (true, true) => 4,
    }
}

/// Traefik router, service and middleware names are all derived from this.
pub fn router_name(app: &str) -> String {
    format!("paas-{app}")
}

/// The routers and service of an app with sticky sessions. The underscore is in no app name,
/// so no other app's names (`paas-<app>…`) can ever be these.
fn sticky_name(app: &str) -> String {
    format!("paas_sticky-{app}")
}

/// The file provider's routers and service of an app in maintenance; as [`sticky_name`], no
/// app-derived name can be it.
pub fn maintenance_name(app: &str) -> String {
    format!("paas_maintenance-{app}")
}

/// The file provider's routers and service of an app with no web process running (H14); as
/// [`sticky_name`], no app-derived name can be it.
pub fn no_web_name(app: &str) -> String {
    format!("paas_no_web-{app}")
}

/// The sticky-session cookie of `app`: one name per app, so two apps' cookies never mix.
pub fn sticky_cookie_name(app: &str) -> String {
    format!("paas_sticky_{app}")
}

/// The names Traefik's API may know the app's load balancer by (`GET
/// /api/http/services/{name}`): the plain one and the sticky one. A rollout that turns sticky
/// sessions on or off has containers in both at once, so readiness and draining look at both.
pub fn service_api_names(app: &str, engine: EngineKind) -> [String; 2] {
    let provider = provider(engine);
    [
        format!("{}@{provider}", router_name(app)),
        format!("{}@{provider}", sticky_name(app)),
    ]
}

/// The Traefik provider that reads the app routers' labels: `docker` from the containers,
/// `swarm` from the services.
pub fn provider(engine: EngineKind) -> &'static str {
    match engine {
        EngineKind::Docker => "docker",
        EngineKind::Swarm => "swarm",
    }
}

/// Router and service `paas-<app>` for `<app>.<domain>`, and for the custom domains a router
/// for the exact hosts and one for the wildcards, each named after its rule, all through a
/// retry middleware that resends a request when a server fails to connect (a safety net;
/// draining is the plan). Every router has an explicit [`priority`].
///
/// With `sticky`, the routers and the service are named `paas_sticky-<app>…` instead and the
/// service sets a cookie ([`sticky_cookie_name`], HttpOnly, SameSite=Lax; the TLS routers get
/// a service of their own whose cookie is also Secure) naming the instance that answered.
///
/// Traefik drops a router or service that containers define differently, so what changes with
/// `domains:add` or `ps:sticky` gets names of its own: during a rollout the old and new
/// containers then define routers and services side by side instead of conflicting ones.
pub fn traefik_labels(
    app: &str,
    hosts: &[String],
    sticky: bool,
    config: &RuntimeConfig,
) -> HashMap<String, String> {
    let name = if sticky {
        sticky_name(app)
    } else {
        router_name(app)
    };
    let retry = format!("{}-retry", router_name(app));
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
    ]);
    let tls_service = format!("{name}-tls");
    let mut services = vec![(name.clone(), false)];
    if config.traefik_cert_resolver.is_some() && sticky {
        services.push((tls_service.clone(), true));
    }
    for (service, secure) in services {
        let prefix = format!("traefik.http.services.{service}.loadbalancer");
        labels.insert(format!("{prefix}.server.port"), APP_PORT.to_string());
        if sticky {
            let cookie = format!("{prefix}.sticky.cookie");
            labels.insert(format!("{cookie}.name"), sticky_cookie_name(app));
            labels.insert(format!("{cookie}.httponly"), "true".to_owned());
            labels.insert(format!("{cookie}.samesite"), "lax".to_owned());
            labels.insert(format!("{cookie}.secure"), secure.to_string());
        }
    }
    let tls_target = if sticky { tls_service } else { name.clone() };
    let mut routers = Vec::new();
    for (kind, rule, exact) in host_rules(hosts) {
        let priority = priority(exact, false);
        let router = match kind {
            None => name.clone(),
            Some(kind) => {
                let definition = format!("{rule} priority={priority}");
                let digest = hex::encode(&Sha256::digest(definition.as_bytes())[..4]);
                format!("{name}-{kind}-{digest}")
            }
        };
        routers.push((router, rule, priority));
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
            labels.insert(format!("{tls}.service"), tls_target.clone());
            labels.insert(format!("{tls}.middlewares"), retry.clone());
            labels.insert(format!("{tls}.tls"), "true".to_owned());
            labels.insert(format!("{tls}.tls.certresolver"), resolver.clone());
        }
    }
    labels
}

/// The rules that route an app's hosts, each with whether it matches exact hosts: the app's
/// own host (kind `None`: its router is named after the app alone), then its custom exact
/// hosts (`domains`) and its wildcards (`wildcards`), each kind as one rule.
pub fn host_rules(hosts: &[String]) -> Vec<(Option<&'static str>, String, bool)> {
    let (own, custom) = hosts
        .split_first()
        .expect("an app always has its own host name");
    let mut rules = vec![(None, traefik_rule(own), true)];
    let (wildcards, exact): (Vec<&String>, Vec<&String>) =
        custom.iter().partition(|host| is_wildcard(host));
    for (kind, hosts, is_exact) in [("domains", exact, true), ("wildcards", wildcards, false)] {
        if hosts.is_empty() {
            continue;
        }
        let rule = hosts
            .iter()
            .map(|host| traefik_rule(host))
            .collect::<Vec<_>>()
            .join(" || ");
        rules.push((Some(kind), rule, is_exact));
    }
    rules
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
            let mut names: Vec<String> = traefik_labels("hello", &hosts, false, &config)
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
        let labels = traefik_labels("hello", &hosts, false, &config);
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
                super::priority(false, false)
            } else {
                super::priority(true, false)
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
    fn maintenance_ranks_above_its_own_kind_of_host_and_below_exact_hosts() {
        let order = [
            priority(false, false),
            priority(false, true),
            priority(true, false),
            priority(true, true),
        ];
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]), "{order:?}");
        // 0 would mean "no priority" to Traefik: ranked by rule length again.
        assert!(order[0] > 0);
    }

    #[test]
    fn sticky_sessions_name_routers_and_service_apart_and_set_the_apps_cookie() {
        let mut config = RuntimeConfig::default();
        let hosts: Vec<String> = ["hello.paas.localhost", "www.example.com"]
            .map(str::to_owned)
            .to_vec();
        let plain = traefik_labels("hello", &hosts, false, &config);
        let sticky = traefik_labels("hello", &hosts, true, &config);
        assert!(!plain.keys().any(|k| k.contains(".sticky.")));
        let router_names = |labels: &HashMap<String, String>| -> Vec<String> {
            labels
                .keys()
                .filter_map(|k| {
                    Some(
                        k.strip_prefix("traefik.http.routers.")?
                            .strip_suffix(".rule")?
                            .to_owned(),
                    )
                })
                .collect()
        };
        for router in router_names(&plain) {
            assert!(!sticky.contains_key(&format!("traefik.http.routers.{router}.rule")));
        }
        for router in router_names(&sticky) {
            assert_eq!(
                sticky[&format!("traefik.http.routers.{router}.service")],
                "paas_sticky-hello"
            );
        }
        let cookie = "traefik.http.services.paas_sticky-hello.loadbalancer.sticky.cookie";
        assert_eq!(sticky[&format!("{cookie}.name")], "paas_sticky_hello");
        assert_eq!(sticky[&format!("{cookie}.httponly")], "true");
        assert_eq!(sticky[&format!("{cookie}.samesite")], "lax");
        assert_eq!(sticky[&format!("{cookie}.secure")], "false");
        assert_ne!(sticky_cookie_name("hello"), sticky_cookie_name("hello-2"));
        assert_eq!(
            service_api_names("hello", EngineKind::Docker).map(|name| name.replace("@docker", "")),
            ["paas-hello".to_owned(), "paas_sticky-hello".to_owned()]
        );
        assert_eq!(
            service_api_names("hello", EngineKind::Swarm)[0],
            "paas-hello@swarm"
        );

        config.traefik_cert_resolver = Some("le".to_owned());
        let tls = traefik_labels("hello", &hosts, true, &config);
        let secure = "traefik.http.services.paas_sticky-hello-tls.loadbalancer.sticky.cookie";
        assert_eq!(tls[&format!("{secure}.secure")], "true");
        assert_eq!(tls[&format!("{secure}.name")], "paas_sticky_hello");
        assert_eq!(
            tls["traefik.http.routers.paas_sticky-hello-tls.service"],
            "paas_sticky-hello-tls"
        );
        assert_eq!(
            tls["traefik.http.routers.paas_sticky-hello.service"],
            "paas_sticky-hello"
        );
    }

    #[test]
    fn changing_the_wildcards_renames_their_router_only() {
        let config = RuntimeConfig::default();
        let routers = |domains: &[&str]| -> BTreeMap<String, String> {
            let hosts: Vec<String> = std::iter::once("hello.paas.localhost")
                .chain(domains.iter().copied())
                .map(str::to_owned)
                .collect();
            traefik_labels("hello", &hosts, false, &config)
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

//! What an app container looks like, computed without touching Docker: its name, labels,
//! environment, health check, limits and Traefik routing, and a fingerprint of all of it so a
//! running container can be recognised as matching the desired state.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, RestartPolicy,
    RestartPolicyNameEnum,
};
use paas_api::agent::AppSpec;
use paas_api::domains::traefik_rule;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::config::RuntimeConfig;

/// Every app process listens here (`PORT`); Traefik and the health check use it.
pub const APP_PORT: u16 = 5000;
/// The only process type that is health-checked and routed.
pub const WEB: &str = "web";
/// Where the host's static busybox appears inside `web` containers.
pub const BUSYBOX_IN_CONTAINER: &str = "/.paas/busybox";
/// While this file exists the health check fails, so Traefik stops routing to the container.
pub const DRAIN_MARKER: &str = "/tmp/.paas-drain";
/// Consecutive failed probes before Docker calls a container unhealthy: two, so one slow
/// answer under load does not take a serving container out of rotation.
const HEALTH_RETRIES: i64 = 2;
/// A probe that takes longer than this fails.
const HEALTH_TIMEOUT_NS: i64 = 3_000_000_000;

pub const LABEL_APP: &str = "paas.app";
pub const LABEL_RELEASE: &str = "paas.release";
pub const LABEL_PROCESS: &str = "paas.process";
pub const LABEL_INDEX: &str = "paas.index";
/// Fingerprint of everything the container was created from ([`fingerprint`]).
pub const LABEL_SPEC: &str = "paas.spec";

pub fn container_name(app: &str, release: u32, process: &str, index: u32) -> String {
    format!("paas-{app}-v{release}-{process}-{index}")
}

/// The app's own bridge network: Docker keeps bridge networks apart, so apps cannot reach
/// each other, while Traefik on the host reaches every one.
pub fn network_name(app: &str) -> String {
    format!("paas-app-{app}")
}

pub fn release_label(release: u32) -> String {
    format!("v{release}")
}

pub fn parse_release_label(label: &str) -> Option<u32> {
    label.strip_prefix('v')?.parse().ok()
}

/// Traefik router, service and middleware names are all derived from this.
pub fn router_name(app: &str) -> String {
    format!("paas-{app}")
}

/// The container of one process type and index, ready to be created.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub process: String,
    pub index: u32,
    pub name: String,
    pub fingerprint: String,
    pub body: ContainerCreateBody,
}

/// Every container `spec` asks for, in process then index order.
pub fn wanted_containers(app: &str, spec: &AppSpec, config: &RuntimeConfig) -> Vec<Wanted> {
    let mut wanted = Vec::new();
    for (process, process_spec) in &spec.processes {
        let fingerprint = fingerprint(app, spec, process, config);
        for index in 1..=process_spec.quantity {
            wanted.push(Wanted {
                process: process.clone(),
                index,
                name: container_name(app, spec.release, process, index),
                body: create_body(app, spec, process, index, &fingerprint, config),
                fingerprint: fingerprint.clone(),
            });
        }
    }
    wanted
}

/// What decides a container's behaviour besides its name; ordered maps keep it stable.
#[derive(Serialize)]
struct Fingerprinted<'a> {
    image: &'a str,
    env: BTreeMap<String, String>,
    command: Option<&'a str>,
    routing: Option<(Vec<String>, String)>,
    /// Absent without a cert resolver, so fingerprints from before TLS existed still match.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<(&'a str, &'a str)>,
    health_path: Option<String>,
    memory_limit_mb: u64,
    health_interval_ms: u64,
    busybox: &'a std::path::Path,
}

pub fn fingerprint(app: &str, spec: &AppSpec, process: &str, config: &RuntimeConfig) -> String {
    let is_web = process == WEB;
    let command = spec
        .processes
        .get(process)
        .and_then(|p| p.command.as_deref());
    let fingerprinted = Fingerprinted {
        image: &spec.image,
        env: environment(app, spec, process),
        command,
        routing: is_web.then(|| {
            (
                hostnames(app, spec, config),
                config.traefik_entrypoint.clone(),
            )
        }),
        tls: config
            .traefik_cert_resolver
            .as_deref()
            .filter(|_| is_web)
            .map(|resolver| (resolver, config.traefik_tls_entrypoint.as_str())),
        health_path: is_web.then(|| health_path(spec, config).to_owned()),
        memory_limit_mb: config.memory_limit_mb,
        health_interval_ms: config.health_interval_ms,
        busybox: &config.busybox,
    };
    let json = serde_json::to_vec(&fingerprinted).expect("the fingerprint always serializes");
    hex::encode(&Sha256::digest(&json)[..8])
}

/// Config vars first, then what the platform sets, which the app cannot override.
pub fn environment(app: &str, spec: &AppSpec, process: &str) -> BTreeMap<String, String> {
    let mut env = spec.env.clone();
    env.insert("PORT".into(), APP_PORT.to_string());
    env.insert("PAAS_APP".into(), app.to_owned());
    env.insert("PAAS_RELEASE".into(), release_label(spec.release));
    env.insert("PAAS_PROCESS".into(), process.to_owned());
    env
}

pub fn hostnames(app: &str, spec: &AppSpec, config: &RuntimeConfig) -> Vec<String> {
    let mut hosts = vec![format!("{app}.{}", config.domain)];
    for domain in &spec.domains {
        if !hosts.contains(domain) {
            hosts.push(domain.clone());
        }
    }
    hosts
}

pub fn health_path<'a>(spec: &'a AppSpec, config: &'a RuntimeConfig) -> &'a str {
    spec.health_check_path
        .as_deref()
        .unwrap_or(&config.health_path)
}

fn create_body(
    app: &str,
    spec: &AppSpec,
    process: &str,
    index: u32,
    fingerprint: &str,
    config: &RuntimeConfig,
) -> ContainerCreateBody {
    let is_web = process == WEB;
    let mut labels = HashMap::from([
        (LABEL_APP.to_owned(), app.to_owned()),
        (LABEL_RELEASE.to_owned(), release_label(spec.release)),
        (LABEL_PROCESS.to_owned(), process.to_owned()),
        (LABEL_INDEX.to_owned(), index.to_string()),
        (LABEL_SPEC.to_owned(), fingerprint.to_owned()),
    ]);
    if is_web {
        labels.extend(traefik_labels(app, &hostnames(app, spec, config), config));
    }
    let memory =
        i64::try_from(config.memory_limit_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let host_config = HostConfig {
        network_mode: Some(network_name(app)),
        // What the container keeps once it serves; a rollout starts it without one first.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        }),
        // An init as PID 1 forwards SIGTERM (a server as PID 1 would ignore it and wait out
        // the stop timeout) and reaps the children of forking servers.
        init: Some(true),
        memory: Some(memory),
        // Equal to the memory limit: no swap on top of it.
        memory_swap: Some(memory),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), "10m".to_owned()),
                ("max-file".to_owned(), "3".to_owned()),
            ])),
        }),
        binds: is_web.then(|| {
            vec![format!(
                "{}:{BUSYBOX_IN_CONTAINER}:ro",
                config.busybox.display()
            )]
        }),
        ..Default::default()
    };
    let command = spec.processes.get(process).and_then(|p| p.command.clone());
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(
            environment(app, spec, process)
                .into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        // Like Heroku, a Procfile command is a shell command line; the image's entrypoint stays.
        cmd: command.map(|command| vec!["/bin/sh".to_owned(), "-c".to_owned(), command]),
        labels: Some(labels),
        healthcheck: is_web.then(|| health_check(health_path(spec, config), config)),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// A probe that fails while draining and otherwise GETs the app on its port. It runs with the
/// mounted busybox, so it works on images without a shell or wget. Docker 20.10 probes first
/// one interval after the start, so the interval bounds how soon a ready container is routed.
fn health_check(path: &str, config: &RuntimeConfig) -> HealthConfig {
    let script = format!(
        "! {BUSYBOX_IN_CONTAINER} test -e {DRAIN_MARKER} && exec {BUSYBOX_IN_CONTAINER} wget -q -O /dev/null 'http://127.0.0.1:{APP_PORT}{path}'"
    );
    let interval_ns =
        i64::try_from(config.health_interval_ms.saturating_mul(1_000_000)).unwrap_or(i64::MAX);
    HealthConfig {
        test: Some(vec![
            "CMD".to_owned(),
            BUSYBOX_IN_CONTAINER.to_owned(),
            "sh".to_owned(),
            "-c".to_owned(),
            script,
        ]),
        interval: Some(interval_ns),
        timeout: Some(HEALTH_TIMEOUT_NS),
        retries: Some(HEALTH_RETRIES),
        start_period: Some(0),
        start_interval: None,
    }
}

/// Router and service `paas-<app>` for `<app>.<domain>`, and for the custom domains (which
/// may be wildcards) a second router named after its rule, both through a retry middleware
/// that resends a request when a server fails to connect (a safety net; draining is the plan).
///
/// Traefik drops a router that containers define differently, so the rule that changes with
/// `domains:add` gets a name of its own: during a rollout the old and new containers then
/// define two routers side by side instead of one conflicting one.
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
    let mut routers = vec![(name.clone(), traefik_rule(own))];
    if !custom.is_empty() {
        let rule = custom
            .iter()
            .map(|host| traefik_rule(host))
            .collect::<Vec<_>>()
            .join(" || ");
        let digest = hex::encode(&Sha256::digest(rule.as_bytes())[..4]);
        routers.push((format!("{name}-domains-{digest}"), rule));
    }
    for (router, rule) in routers {
        let prefix = format!("traefik.http.routers.{router}");
        labels.insert(format!("{prefix}.rule"), rule.clone());
        labels.insert(
            format!("{prefix}.entrypoints"),
            config.traefik_entrypoint.clone(),
        );
        labels.insert(format!("{prefix}.service"), name.clone());
        labels.insert(format!("{prefix}.middlewares"), retry.clone());
        if let Some(resolver) = &config.traefik_cert_resolver {
            let tls = format!("traefik.http.routers.{router}-tls");
            labels.insert(format!("{tls}.rule"), rule);
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
    use paas_api::agent::ProcessSpec;

    use super::*;

    fn spec() -> AppSpec {
        AppSpec {
            release: 3,
            image: "paas/hello:v3".into(),
            env: BTreeMap::from([
                ("GREETING".into(), "Howdy".into()),
                ("PORT".into(), "80".into()),
            ]),
            processes: BTreeMap::from([
                (
                    "web".into(),
                    ProcessSpec {
                        command: None,
                        quantity: 2,
                    },
                ),
                (
                    "worker".into(),
                    ProcessSpec {
                        command: Some("./work --hard".into()),
                        quantity: 1,
                    },
                ),
            ]),
            domains: vec!["www.example.com".into(), "*.example.org".into()],
            health_check_path: None,
            container: Default::default(),
        }
    }

    fn labels(wanted: &Wanted) -> &HashMap<String, String> {
        wanted.body.labels.as_ref().unwrap()
    }

    #[test]
    fn one_container_per_process_and_index() {
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default());
        let names: Vec<_> = wanted.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "paas-hello-v3-web-1",
                "paas-hello-v3-web-2",
                "paas-hello-v3-worker-1"
            ]
        );
        let web = &wanted[1];
        assert_eq!(labels(web)["paas.app"], "hello");
        assert_eq!(labels(web)["paas.release"], "v3");
        assert_eq!(labels(web)["paas.process"], "web");
        assert_eq!(labels(web)["paas.index"], "2");
        assert_eq!(labels(web)["paas.spec"], web.fingerprint);
    }

    #[test]
    fn the_platform_sets_port_and_identity() {
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default());
        let env = wanted[2].body.env.clone().unwrap();
        for expected in [
            "GREETING=Howdy",
            "PORT=5000",
            "PAAS_APP=hello",
            "PAAS_RELEASE=v3",
            "PAAS_PROCESS=worker",
        ] {
            assert!(env.contains(&expected.to_owned()), "{expected} in {env:?}");
        }
        assert!(!env.contains(&"PORT=80".to_owned()));
        assert_eq!(
            wanted[2].body.cmd.clone().unwrap(),
            ["/bin/sh", "-c", "./work --hard"]
        );
        assert_eq!(wanted[0].body.cmd, None);
    }

    #[test]
    fn a_cert_resolver_adds_a_tls_router_per_router() {
        let plain = RuntimeConfig::default();
        let tls = RuntimeConfig {
            traefik_cert_resolver: Some("letsencrypt".into()),
            ..RuntimeConfig::default()
        };
        let wanted = wanted_containers("hello", &spec(), &tls);
        let web = labels(&wanted[0]);
        let routers: Vec<&str> = web
            .keys()
            .filter_map(|key| key.strip_prefix("traefik.http.routers."))
            .filter_map(|key| key.strip_suffix(".tls.certresolver"))
            .collect();
        assert_eq!(routers.len(), 2, "{web:?}");
        for router in routers {
            let plain_router = router.strip_suffix("-tls").unwrap();
            let key = |router: &str, field: &str| format!("traefik.http.routers.{router}.{field}");
            assert_eq!(web[&key(router, "tls.certresolver")], "letsencrypt");
            assert_eq!(web[&key(router, "tls")], "true");
            assert_eq!(web[&key(router, "entrypoints")], "websecure");
            assert_eq!(web[&key(router, "rule")], web[&key(plain_router, "rule")]);
            assert_eq!(web[&key(router, "service")], "paas-hello");
        }
        let worker = labels(&wanted[2]);
        assert!(!worker.keys().any(|k| k.starts_with("traefik.")));
        // Without a resolver: no TLS router, and the fingerprint is what it always was.
        let plain_web = wanted_containers("hello", &spec(), &plain);
        assert!(!labels(&plain_web[0]).keys().any(|k| k.contains(".tls")));
        assert_ne!(plain_web[0].fingerprint, wanted[0].fingerprint);
        assert_eq!(plain_web[2].fingerprint, wanted[2].fingerprint);
    }

    #[test]
    fn only_web_is_routed_and_checked() {
        let config = RuntimeConfig::default();
        let wanted = wanted_containers("hello", &spec(), &config);
        let web = labels(&wanted[0]);
        assert_eq!(web["traefik.enable"], "true");
        assert_eq!(
            web["traefik.http.routers.paas-hello.rule"],
            "Host(`hello.paas.localhost`)"
        );
        let custom: Vec<&String> = web
            .keys()
            .filter(|k| {
                k.starts_with("traefik.http.routers.paas-hello-domains-") && k.ends_with(".rule")
            })
            .collect();
        assert_eq!(custom.len(), 1, "{web:?}");
        assert_eq!(
            web[custom[0]],
            "Host(`www.example.com`) || HostRegexp(`^[a-z0-9-]+\\.example\\.org$`)"
        );
        let custom_router = custom[0].trim_end_matches(".rule");
        assert_eq!(web[&format!("{custom_router}.service")], "paas-hello");
        assert_eq!(web[&format!("{custom_router}.entrypoints")], "web");
        assert_eq!(web["traefik.http.routers.paas-hello.entrypoints"], "web");
        assert_eq!(web["traefik.docker.network"], "paas-app-hello");
        assert_eq!(
            web["traefik.http.services.paas-hello.loadbalancer.server.port"],
            "5000"
        );
        assert_eq!(
            web["traefik.http.routers.paas-hello.middlewares"],
            "paas-hello-retry"
        );
        let check = wanted[0].body.healthcheck.clone().unwrap();
        let script = check.test.unwrap().pop().unwrap();
        assert!(script.contains("'http://127.0.0.1:5000/'"), "{script}");
        assert!(script.contains("test -e /tmp/.paas-drain"), "{script}");
        assert_eq!(check.interval, Some(500_000_000));

        let worker = &wanted[2];
        assert!(!labels(worker).keys().any(|k| k.starts_with("traefik.")));
        assert!(worker.body.healthcheck.is_none());
        assert!(worker.body.host_config.as_ref().unwrap().binds.is_none());
    }

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
    fn limits_restart_policy_and_logs() {
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default());
        let host = wanted[0].body.host_config.clone().unwrap();
        assert_eq!(host.memory, Some(512 * 1024 * 1024));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );
        assert_eq!(host.security_opt.unwrap(), ["no-new-privileges"]);
        assert_eq!(host.network_mode.as_deref(), Some("paas-app-hello"));
        let logs = host.log_config.unwrap();
        assert_eq!(logs.typ.as_deref(), Some("json-file"));
        assert!(logs.config.unwrap().contains_key("max-size"));
        assert_eq!(host.binds.unwrap(), ["/bin/busybox:/.paas/busybox:ro"]);
    }

    #[test]
    fn fingerprints_change_with_what_matters_only() {
        let config = RuntimeConfig::default();
        let base = fingerprint("hello", &spec(), "web", &config);
        assert_eq!(base, fingerprint("hello", &spec(), "web", &config));

        let mut env = spec();
        env.env.insert("GREETING".into(), "Hi".into());
        assert_ne!(base, fingerprint("hello", &env, "web", &config));

        let mut domains = spec();
        domains.domains.push("api.example.com".into());
        assert_ne!(base, fingerprint("hello", &domains, "web", &config));
        // Workers are not routed: domains do not concern them.
        assert_eq!(
            fingerprint("hello", &spec(), "worker", &config),
            fingerprint("hello", &domains, "worker", &config)
        );

        let mut scaled = spec();
        scaled.processes.get_mut("web").unwrap().quantity = 5;
        assert_eq!(base, fingerprint("hello", &scaled, "web", &config));
    }

    #[test]
    fn release_labels_round_trip() {
        assert_eq!(parse_release_label(&release_label(12)), Some(12));
        assert_eq!(parse_release_label("12"), None);
    }
}

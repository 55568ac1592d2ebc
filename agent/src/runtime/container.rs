//! What an app container looks like, computed without touching Docker: its environment,
//! health check, limits and routing (names and labels from [`crate::naming`]), and a
//! fingerprint of all of it so a running container can be recognised as matching the desired
//! state.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, Mount as DockerMount,
    MountTypeEnum, RestartPolicy, RestartPolicyNameEnum,
};
use paas_api::agent::{AppSpec, ContainerOptions};
use paas_api::storage::Mount;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::engine::Wanted;
use super::resources::{Limits, limits};
use crate::config::RuntimeConfig;
use crate::naming::labels::InstanceLabels;
use crate::naming::traefik::traefik_labels;
use crate::naming::{self, InstanceKey, release_label};
use paas_api::resources::Cpus;

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
/// Docker's interval between probes, and so when its first probe runs (Docker 20.10 has no
/// `start_interval`): short, so a new container is seen ready moments after it answers. The
/// probe paces itself to `health_interval_ms` once it has passed ([`health_check`]).
const PROBE_INTERVAL_MS: u64 = 100;
/// How often a probe that has not passed yet asks the app, and for how many tries, so that it
/// ends within [`HEALTH_TIMEOUT_NS`].
const FIRST_PROBE_POLL_US: u64 = 50_000;
const FIRST_PROBE_TRIES: u32 = 40;
/// Written by the first probe that passes: from then on probes pace themselves.
const READY_MARKER: &str = "/tmp/.paas-ready";

/// The user every process of a `non_root` app runs as: `nobody`, which owns nothing.
pub const NON_ROOT_USER: &str = "65534:65534";
/// What is left of the capabilities after `cap_drop: ALL`: what a web server's start needs
/// (chown and setuid/setgid to drop to its own user, reading and writing files of other
/// users while root, signalling its workers, binding a port under 1024). Gone among others:
/// NET_RAW (raw sockets: spoofing, ARP tricks on the app network), MKNOD, SETFCAP, SETPCAP,
/// SYS_CHROOT, AUDIT_WRITE.
pub const CAPABILITIES: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
];
/// Mount options of the writable `/tmp` of an app with a read-only root filesystem; its size
/// counts against the container's memory limit.
const TMPFS_OPTIONS: &str = "rw,nosuid,nodev,mode=1777";

/// Every container `spec` asks for, in process then index order.
pub fn wanted_containers(
    app: &str,
    spec: &AppSpec,
    config: &RuntimeConfig,
    key: &InstanceKey,
) -> Vec<Wanted<ContainerCreateBody>> {
    let mut wanted = Vec::new();
    for (process, process_spec) in &spec.processes {
        let fingerprint = fingerprint(app, spec, process, config);
        for index in 1..=process_spec.quantity {
            let instance = InstanceLabels {
                app: app.to_owned(),
                release: spec.release,
                process: process.to_string(),
                index,
                fingerprint: fingerprint.clone(),
            };
            wanted.push(Wanted {
                process: process.to_string(),
                index,
                name: instance.canonical_name(),
                template: create_body(spec, &instance, key, config),
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
    /// Absent unless on, so fingerprints from before sticky sessions existed still match.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    sticky: bool,
    /// Absent without a cert resolver, so fingerprints from before TLS existed still match.
    #[serde(skip_serializing_if = "Option::is_none")]
    tls: Option<(&'a str, &'a str)>,
    health_path: Option<String>,
    memory_limit_mb: u64,
    /// Absent without a CPU limit, so fingerprints from before CPU limits existed still match.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<paas_api::resources::Cpus>,
    health_interval_ms: u64,
    busybox: &'a std::path::Path,
    hardening: Hardening<'a>,
    /// Absent without volumes, so fingerprints from before storage existed still match.
    #[serde(skip_serializing_if = "<[Mount]>::is_empty")]
    volumes: &'a [Mount],
}

/// The lock-downs of a container, platform-wide and the app's own.
#[derive(Serialize)]
struct Hardening<'a> {
    capabilities: &'a [&'a str],
    pids_limit: i64,
    cpu_shares: i64,
    container: ContainerOptions,
}

pub fn fingerprint(app: &str, spec: &AppSpec, process: &str, config: &RuntimeConfig) -> String {
    let is_web = process == WEB;
    let command = spec
        .processes
        .get(process)
        .and_then(|p| p.command.as_deref());
    let limits = process_limits(spec, process, config);
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
        sticky: is_web && spec.sticky_sessions,
        tls: config
            .traefik_cert_resolver
            .as_deref()
            .filter(|_| is_web)
            .map(|resolver| (resolver, config.traefik_tls_entrypoint.as_str())),
        health_path: is_web.then(|| health_path(spec, config).to_owned()),
        memory_limit_mb: limits.memory_mb,
        cpus: limits.cpus,
        health_interval_ms: config.health_interval_ms,
        busybox: &config.busybox,
        hardening: Hardening {
            capabilities: CAPABILITIES,
            pids_limit: config.pids_limit,
            cpu_shares: config.cpu_shares,
            container: spec.container,
        },
        volumes: &spec.volumes,
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

/// The memory and CPU limits of `process`'s containers.
pub(crate) fn process_limits(spec: &AppSpec, process: &str, config: &RuntimeConfig) -> Limits {
    let resources = spec
        .processes
        .get(process)
        .map(|p| p.resources)
        .unwrap_or_default();
    limits(&resources, config)
}

pub fn health_path<'a>(spec: &'a AppSpec, config: &'a RuntimeConfig) -> &'a str {
    spec.health_check_path
        .as_deref()
        .unwrap_or(&config.health_path)
}

/// What shapes the Docker host settings of one of an app's containers, a process instance or a
/// one-off alike.
pub struct HostSettings<'a> {
    pub app: &'a str,
    pub limits: Limits,
    pub container: ContainerOptions,
    pub restart: RestartPolicyNameEnum,
    /// The app's volumes: only ever Docker volumes named from the app ([`naming::volume_name`]),
    /// never a host path.
    pub volumes: &'a [Mount],
}

/// The one place an app container's host settings are made: the app's network, an init, the
/// memory and CPU limits, the platform's hardening and the app's own, the app's volumes and
/// rotated json-file logs. Process instances and one-offs differ only in what `settings` says.
pub fn host_config(settings: &HostSettings<'_>, config: &RuntimeConfig) -> HostConfig {
    let memory = settings.limits.memory_bytes();
    let read_only = settings.container.read_only_root_fs;
    HostConfig {
        network_mode: Some(naming::network_name(settings.app)),
        restart_policy: Some(RestartPolicy {
            name: Some(settings.restart),
            maximum_retry_count: None,
        }),
        // An init as PID 1 forwards SIGTERM (a server as PID 1 would ignore it and wait out
        // the stop timeout) and reaps the children of forking servers.
        init: Some(true),
        memory: Some(memory),
        // Equal to the memory limit: no swap on top of it.
        memory_swap: Some(memory),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        cap_drop: Some(vec!["ALL".to_owned()]),
        cap_add: Some(CAPABILITIES.iter().map(|&cap| cap.to_owned()).collect()),
        pids_limit: Some(config.pids_limit),
        cpu_shares: Some(config.cpu_shares),
        nano_cpus: settings.limits.cpus.map(Cpus::nanos),
        // The health check and the drain marker need only /tmp, which stays writable.
        readonly_rootfs: read_only.then_some(true),
        tmpfs: read_only.then(|| HashMap::from([("/tmp".to_owned(), TMPFS_OPTIONS.to_owned())])),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".to_owned()),
            config: Some(HashMap::from([
                ("max-size".to_owned(), "10m".to_owned()),
                ("max-file".to_owned(), "3".to_owned()),
            ])),
        }),
        mounts: (!settings.volumes.is_empty()).then(|| {
            settings
                .volumes
                .iter()
                .map(|mount| DockerMount {
                    target: Some(mount.path.to_string()),
                    source: Some(naming::volume_name(settings.app, &mount.name)),
                    typ: Some(MountTypeEnum::VOLUME),
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    }
}

fn create_body(
    spec: &AppSpec,
    instance: &InstanceLabels,
    key: &InstanceKey,
    config: &RuntimeConfig,
) -> ContainerCreateBody {
    let app = instance.app.as_str();
    let process = instance.process.as_str();
    let is_web = process == WEB;
    let mut labels = instance.to_labels(key);
    if is_web {
        labels.extend(traefik_labels(
            app,
            &hostnames(app, spec, config),
            spec.sticky_sessions,
            config,
        ));
    }
    let mut host_config = host_config(
        &HostSettings {
            app,
            limits: process_limits(spec, process, config),
            container: spec.container,
            // What the container keeps once it serves; a rollout starts it without one first.
            restart: RestartPolicyNameEnum::UNLESS_STOPPED,
            volumes: &spec.volumes,
        },
        config,
    );
    host_config.binds = is_web.then(|| {
        vec![format!(
            "{}:{BUSYBOX_IN_CONTAINER}:ro",
            config.busybox.display()
        )]
    });
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
        // The health check runs as this user too; it needs no privileges.
        user: spec.container.non_root.then(|| NON_ROOT_USER.to_owned()),
        healthcheck: is_web.then(|| health_check(health_path(spec, config), config)),
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// A probe that fails while draining and otherwise GETs the app on its port. It runs with the
/// mounted busybox, so it works on images without a shell or wget.
///
/// Traefik routes only to containers Docker calls healthy, so the first passing probe is what
/// puts a new container in service. Docker 20.10 probes first one interval after the start
/// and then one interval after each probe ends, so the interval is short
/// ([`PROBE_INTERVAL_MS`]) and the probe does the pacing itself: until one has passed, a probe
/// asks the app every 50 ms (for at most two seconds; the start period, as long as the ready
/// timeout, keeps those failures from counting); once one has ([`READY_MARKER`]), each probe
/// first sleeps the rest of `health_interval_ms`, so a serving container costs one exec per
/// `health_interval_ms` as before and a drain is seen as soon as before.
pub(crate) fn health_check(path: &str, config: &RuntimeConfig) -> HealthConfig {
    let busybox = BUSYBOX_IN_CONTAINER;
    let get = format!("{busybox} wget -q -O /dev/null 'http://127.0.0.1:{APP_PORT}{path}'");
    let pace_us = config
        .health_interval_ms
        .saturating_sub(PROBE_INTERVAL_MS)
        .saturating_mul(1000);
    let script = format!(
        "if {busybox} test -e {READY_MARKER}; then {busybox} usleep {pace_us}; ! {busybox} test -e {DRAIN_MARKER} && exec {get}; exit 1; fi; \
         i=0; while ! {busybox} test -e {DRAIN_MARKER}; do \
         if {get}; then {busybox} touch {READY_MARKER} 2>/dev/null; exit 0; fi; \
         i=$((i+1)); [ $i -ge {FIRST_PROBE_TRIES} ] && exit 1; {busybox} usleep {FIRST_PROBE_POLL_US}; done; exit 1"
    );
    let interval_ns = i64::try_from(PROBE_INTERVAL_MS * 1_000_000).unwrap_or(i64::MAX);
    let start_period_ns =
        i64::try_from(config.ready_timeout_secs.saturating_mul(1_000_000_000)).unwrap_or(i64::MAX);
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
        start_period: Some(start_period_ns),
        start_interval: None,
    }
}

#[cfg(test)]
mod tests {
    use paas_api::agent::ProcessSpec;
    use paas_api::resources::ProcessResources;

    use super::*;
    use crate::naming::labels::{LABEL_INSTANCE, is_ours, test_key};

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
                    "web".parse().unwrap(),
                    ProcessSpec {
                        command: None,
                        quantity: 2,
                        resources: Default::default(),
                    },
                ),
                (
                    "worker".parse().unwrap(),
                    ProcessSpec {
                        command: Some("./work --hard".into()),
                        quantity: 1,
                        resources: Default::default(),
                    },
                ),
            ]),
            domains: vec!["www.example.com".into(), "*.example.org".into()],
            health_check_path: None,
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    fn labels(wanted: &Wanted<ContainerCreateBody>) -> &HashMap<String, String> {
        wanted.template.labels.as_ref().unwrap()
    }

    #[test]
    fn one_container_per_process_and_index() {
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default(), &test_key());
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
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default(), &test_key());
        let env = wanted[2].template.env.clone().unwrap();
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
            wanted[2].template.cmd.clone().unwrap(),
            ["/bin/sh", "-c", "./work --hard"]
        );
        assert_eq!(wanted[0].template.cmd, None);
    }

    #[test]
    fn a_cert_resolver_adds_a_tls_router_per_router() {
        let plain = RuntimeConfig::default();
        let tls = RuntimeConfig {
            traefik_cert_resolver: Some("letsencrypt".into()),
            ..RuntimeConfig::default()
        };
        let wanted = wanted_containers("hello", &spec(), &tls, &test_key());
        let web = labels(&wanted[0]);
        let routers: Vec<&str> = web
            .keys()
            .filter_map(|key| key.strip_prefix("traefik.http.routers."))
            .filter_map(|key| key.strip_suffix(".tls.certresolver"))
            .collect();
        assert_eq!(routers.len(), 3, "{web:?}");
        for router in routers {
            let plain_router = router.strip_suffix("-tls").unwrap();
            let key = |router: &str, field: &str| format!("traefik.http.routers.{router}.{field}");
            assert_eq!(web[&key(router, "tls.certresolver")], "letsencrypt");
            assert_eq!(web[&key(router, "tls")], "true");
            assert_eq!(web[&key(router, "entrypoints")], "websecure");
            assert_eq!(web[&key(router, "rule")], web[&key(plain_router, "rule")]);
            assert_eq!(
                web[&key(router, "priority")],
                web[&key(plain_router, "priority")]
            );
            assert_eq!(web[&key(router, "service")], "paas-hello");
        }
        let worker = labels(&wanted[2]);
        assert!(!worker.keys().any(|k| k.starts_with("traefik.")));
        // Without a resolver: no TLS router, and the fingerprint is what it always was.
        let plain_web = wanted_containers("hello", &spec(), &plain, &test_key());
        assert!(!labels(&plain_web[0]).keys().any(|k| k.contains(".tls")));
        assert_ne!(plain_web[0].fingerprint, wanted[0].fingerprint);
        assert_eq!(plain_web[2].fingerprint, wanted[2].fingerprint);
    }

    #[test]
    fn only_web_is_routed_and_checked() {
        let config = RuntimeConfig::default();
        let wanted = wanted_containers("hello", &spec(), &config, &test_key());
        let web = labels(&wanted[0]);
        assert_eq!(web["traefik.enable"], "true");
        assert_eq!(
            web["traefik.http.routers.paas-hello.rule"],
            "Host(`hello.paas.localhost`)"
        );
        let router_of = |kind: &str| -> String {
            let rules: Vec<&String> = web
                .keys()
                .filter(|k| {
                    k.starts_with(&format!("traefik.http.routers.paas-hello-{kind}-"))
                        && k.ends_with(".rule")
                })
                .collect();
            assert_eq!(rules.len(), 1, "{kind}: {web:?}");
            rules[0].trim_end_matches(".rule").to_owned()
        };
        let exact = router_of("domains");
        let wildcards = router_of("wildcards");
        assert_eq!(web[&format!("{exact}.rule")], "Host(`www.example.com`)");
        assert_eq!(
            web[&format!("{wildcards}.rule")],
            "HostRegexp(`^[a-z0-9-]+\\.example\\.org$`)"
        );
        for custom_router in [&exact, &wildcards] {
            assert_eq!(web[&format!("{custom_router}.service")], "paas-hello");
            assert_eq!(web[&format!("{custom_router}.entrypoints")], "web");
            assert_eq!(
                web[&format!("{custom_router}.middlewares")],
                "paas-hello-retry"
            );
        }
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
        let check = wanted[0].template.healthcheck.clone().unwrap();
        let script = check.test.unwrap().pop().unwrap();
        assert!(script.contains("'http://127.0.0.1:5000/'"), "{script}");
        assert!(script.contains("test -e /tmp/.paas-drain"), "{script}");
        // Docker probes every 100 ms; once passed, a probe sleeps the rest of the configured
        // 500 ms, so a serving container is probed every 500 ms.
        assert_eq!(check.interval, Some(100_000_000));
        assert!(script.contains("usleep 400000"), "{script}");
        assert!(script.contains("touch /tmp/.paas-ready"), "{script}");
        assert_eq!(check.start_period, Some(60_000_000_000));

        let worker = &wanted[2];
        assert!(!labels(worker).keys().any(|k| k.starts_with("traefik.")));
        assert!(worker.template.healthcheck.is_none());
        assert!(
            worker
                .template
                .host_config
                .as_ref()
                .unwrap()
                .binds
                .is_none()
        );
    }

    #[test]
    fn limits_restart_policy_and_logs() {
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default(), &test_key());
        let host = wanted[0].template.host_config.clone().unwrap();
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
        assert_eq!(host.nano_cpus, None, "no CPU quota by default");
    }

    #[test]
    fn a_resized_process_gets_its_own_limits_and_a_new_fingerprint() {
        let config = RuntimeConfig::default();
        let mut sized = spec();
        sized.processes.get_mut("web").unwrap().resources = ProcessResources {
            memory: Some("256M".parse().unwrap()),
            cpus: Some("0.5".parse().unwrap()),
        };
        let wanted = wanted_containers("hello", &sized, &config, &test_key());
        let web = wanted.iter().find(|w| w.process == "web").unwrap();
        let host = web.template.host_config.clone().unwrap();
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swap, Some(256 * 1024 * 1024));
        assert_eq!(host.nano_cpus, Some(500_000_000));
        let worker = wanted.iter().find(|w| w.process == "worker").unwrap();
        let host = worker.template.host_config.clone().unwrap();
        assert_eq!(
            host.memory,
            Some(512 * 1024 * 1024),
            "others keep the default"
        );
        assert_ne!(
            fingerprint("hello", &sized, "web", &config),
            fingerprint("hello", &spec(), "web", &config)
        );
        assert_eq!(
            fingerprint("hello", &sized, "worker", &config),
            fingerprint("hello", &spec(), "worker", &config)
        );
        let defaults = RuntimeConfig {
            default_cpus: Some("1".parse().unwrap()),
            ..RuntimeConfig::default()
        };
        let wanted = wanted_containers("hello", &spec(), &defaults, &test_key());
        assert_eq!(
            wanted[0].template.host_config.clone().unwrap().nano_cpus,
            Some(1_000_000_000)
        );
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

        let mut sticky = spec();
        sticky.sticky_sessions = true;
        assert_ne!(base, fingerprint("hello", &sticky, "web", &config));
        assert_eq!(
            fingerprint("hello", &spec(), "worker", &config),
            fingerprint("hello", &sticky, "worker", &config)
        );

        let mut scaled = spec();
        scaled.processes.get_mut("web").unwrap().quantity = 5;
        assert_eq!(base, fingerprint("hello", &scaled, "web", &config));

        let mut mounted = spec();
        mounted.volumes.push("data:/data".parse().unwrap());
        assert_ne!(base, fingerprint("hello", &mounted, "web", &config));
        let wanted = wanted_containers("hello", &mounted, &config, &test_key());
        for container in &wanted {
            let mounts = container.template.host_config.clone().unwrap().mounts;
            assert_eq!(mounts.unwrap()[0].target.as_deref(), Some("/data"));
        }
    }

    #[test]
    fn every_container_carries_the_instance_key() {
        let key = test_key();
        let wanted = wanted_containers("hello", &spec(), &RuntimeConfig::default(), &key);
        for container in &wanted {
            assert!(is_ours(&key, labels(container)), "{}", container.name);
            assert_eq!(labels(container)[LABEL_INSTANCE], key.as_str());
        }
        let other = InstanceKey::parse(&"0".repeat(32)).unwrap();
        assert!(!is_ours(&other, labels(&wanted[0])));
    }

    #[test]
    fn one_builder_makes_the_host_settings_of_processes_and_oneoffs() {
        let config = RuntimeConfig {
            pids_limit: 100,
            cpu_shares: 256,
            ..RuntimeConfig::default()
        };
        let settings = HostSettings {
            app: "hello",
            limits: Limits {
                memory_mb: 256,
                cpus: Some("0.5".parse().unwrap()),
            },
            container: ContainerOptions {
                non_root: true,
                read_only_root_fs: true,
            },
            restart: RestartPolicyNameEnum::NO,
            volumes: &["data:/app/data".parse().unwrap()],
        };
        let host = host_config(&settings, &config);
        assert_eq!(host.network_mode.as_deref(), Some("paas-app-hello"));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        assert_eq!(host.init, Some(true));
        assert_eq!(host.memory, Some(256 * 1024 * 1024));
        assert_eq!(host.memory_swap, host.memory);
        assert_eq!(host.nano_cpus, Some(500_000_000));
        assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
        assert_eq!(host.cap_add.unwrap(), CAPABILITIES);
        assert_eq!(host.security_opt.unwrap(), ["no-new-privileges"]);
        assert_eq!((host.pids_limit, host.cpu_shares), (Some(100), Some(256)));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert!(host.tmpfs.unwrap()["/tmp"].contains("nosuid"));
        assert_eq!(host.log_config.unwrap().typ.as_deref(), Some("json-file"));
        assert_eq!(host.binds, None, "no host path unless a caller adds one");
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].typ, Some(MountTypeEnum::VOLUME));
        assert_eq!(mounts[0].source.as_deref(), Some("paas-vol-hello.data"));
        assert_eq!(mounts[0].target.as_deref(), Some("/app/data"));

        // A process instance is that plus its restart policy and, for web, the busybox mount.
        let wanted = wanted_containers("hello", &spec(), &config, &test_key());
        let web = wanted[0].template.host_config.clone().unwrap();
        let worker = wanted[2].template.host_config.clone().unwrap();
        let plain = host_config(
            &HostSettings {
                app: "hello",
                limits: limits(&Default::default(), &config),
                container: ContainerOptions::default(),
                restart: RestartPolicyNameEnum::UNLESS_STOPPED,
                volumes: &[],
            },
            &config,
        );
        assert_eq!(worker, plain);
        assert_eq!(worker.mounts, None);
        assert_eq!(HostConfig { binds: None, ..web }, plain);
    }

    #[test]
    fn containers_are_hardened() {
        let config = RuntimeConfig {
            pids_limit: 100,
            cpu_shares: 256,
            ..RuntimeConfig::default()
        };
        let wanted = wanted_containers("hello", &spec(), &config, &test_key());
        for container in &wanted {
            let host = container.template.host_config.clone().unwrap();
            assert_eq!(host.cap_drop.unwrap(), ["ALL"]);
            let caps = host.cap_add.unwrap();
            assert!(!caps.iter().any(|cap| cap.contains("NET_RAW")), "{caps:?}");
            assert!(caps.contains(&"SETUID".to_owned()), "{caps:?}");
            assert_eq!(host.pids_limit, Some(100));
            assert_eq!(host.cpu_shares, Some(256));
            assert_eq!(host.security_opt.unwrap(), ["no-new-privileges"]);
            // Not asked for: the image's user and a writable root.
            assert_eq!(host.readonly_rootfs, None);
            assert_eq!(host.tmpfs, None);
            assert_eq!(container.template.user, None);
        }

        let mut locked = spec();
        locked.container = ContainerOptions {
            non_root: true,
            read_only_root_fs: true,
        };
        let wanted = wanted_containers("hello", &locked, &config, &test_key());
        for container in &wanted {
            let host = container.template.host_config.clone().unwrap();
            assert_eq!(container.template.user.as_deref(), Some("65534:65534"));
            assert_eq!(host.readonly_rootfs, Some(true));
            let tmpfs = host.tmpfs.unwrap();
            assert!(tmpfs["/tmp"].contains("mode=1777"), "{tmpfs:?}");
        }
        // The drain marker lives where the read-only root leaves room.
        assert!(DRAIN_MARKER.starts_with("/tmp/"));
    }

    #[test]
    fn fingerprints_follow_the_hardening() {
        let config = RuntimeConfig::default();
        let base = fingerprint("hello", &spec(), "web", &config);
        let mut non_root = spec();
        non_root.container.non_root = true;
        assert_ne!(base, fingerprint("hello", &non_root, "web", &config));
        let mut read_only = spec();
        read_only.container.read_only_root_fs = true;
        assert_ne!(base, fingerprint("hello", &read_only, "web", &config));
        let pids = RuntimeConfig {
            pids_limit: 64,
            ..RuntimeConfig::default()
        };
        assert_ne!(base, fingerprint("hello", &spec(), "web", &pids));
        let shares = RuntimeConfig {
            cpu_shares: 64,
            ..RuntimeConfig::default()
        };
        assert_ne!(base, fingerprint("hello", &spec(), "web", &shares));
    }
}

//! What an app's Swarm services look like, computed without touching Docker: one service per
//! process type, with the same environment, command, limits, hardening, health check and
//! Traefik routing as a container of the docker engine ([`super::super::container`]), plus what
//! Swarm itself needs: the replica count, a start-first update that rolls back on failure, the
//! app's overlay network and the labels the agent finds its services by.

use std::collections::HashMap;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, Limit, Mount as DockerMount, MountTypeEnum,
    NetworkAttachmentConfig, ServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated,
    ServiceSpecRollbackConfig, ServiceSpecRollbackConfigFailureActionEnum,
    ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecLogDriver, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use paas_api::agent::AppSpec;
use paas_api::resources::Cpus;

use crate::config::RuntimeConfig;
use crate::naming::traefik::traefik_labels;
use crate::naming::{self, InstanceKey, LABEL_APP, LABEL_PROCESS, LABEL_RELEASE, release_label};
use crate::runtime::container::{
    self, BUSYBOX_IN_CONTAINER, CAPABILITIES, NON_ROOT_USER, WEB, environment, fingerprint,
    health_path, hostnames,
};

/// The fingerprint of what a service's tasks run ([`container::fingerprint`]): a task whose
/// container carries the service's is one of the current spec.
pub const LABEL_FINGERPRINT: &str = "paas.fingerprint";

/// How long a new task must keep running once started before Swarm counts it updated: a
/// crash in this window fails the update, which then rolls back.
const MONITOR_NS: i64 = 3_000_000_000;
/// How long a stopping task gets after SIGTERM before SIGKILL.
const STOP_GRACE_NS: i64 = 10_000_000_000;
/// A crashed task comes back after this long.
const RESTART_DELAY_NS: i64 = 1_000_000_000;

/// How long a stopping web task goes on serving before its process gets SIGTERM. Traefik
/// reads the tasks Swarm means to run once a second, so a task Swarm retires (a rollout, a
/// scale-down, a drain) leaves Traefik within a few seconds even on a busy manager, and no new
/// request reaches it by the time the app is told to stop. (3 s let one request in a thousand
/// through to a stopped task while a scale 6 → 1 ran on a machine with a load of 24.)
pub const DRAIN_SECS: u64 = 5;

/// The entrypoint and command an image runs with (`docker image inspect`): a web task starts
/// them under [`drain_first`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageCommand {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// A shell (the mounted busybox) that runs its arguments as a child and, on SIGTERM, waits
/// [`DRAIN_SECS`] before passing it on, then exits as the child did.
fn drain_first() -> Vec<String> {
    let busybox = BUSYBOX_IN_CONTAINER;
    let script = format!(
        "\"$@\" & child=$!; trap '{busybox} sleep {DRAIN_SECS}; kill -TERM $child 2>/dev/null' TERM; \
         wait $child; status=$?; if [ $status -gt 128 ]; then wait $child; status=$?; fi; exit $status"
    );
    vec![
        busybox.to_owned(),
        "sh".to_owned(),
        "-c".to_owned(),
        script,
        "paas-drain".to_owned(),
    ]
}

/// The labels that say a service is `process` of `app`, made by this agent (`key`).
pub fn service_labels(app: &str, process: &str, key: &InstanceKey) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_APP.to_owned(), app.to_owned()),
        (LABEL_PROCESS.to_owned(), process.to_owned()),
        (
            naming::labels::LABEL_INSTANCE.to_owned(),
            key.as_str().to_owned(),
        ),
    ])
}

/// The service `process` of `spec` runs as.
pub fn service_spec(
    app: &str,
    spec: &AppSpec,
    process: &str,
    image: &ImageCommand,
    config: &RuntimeConfig,
    key: &InstanceKey,
) -> ServiceSpec {
    let is_web = process == WEB;
    let fingerprint = fingerprint(app, spec, process, config);
    // The tasks' containers carry what says which spec they run; the service also carries
    // the routing.
    let mut container_labels = service_labels(app, process, key);
    container_labels.insert(LABEL_RELEASE.to_owned(), release_label(spec.release));
    container_labels.insert(LABEL_FINGERPRINT.to_owned(), fingerprint);
    let mut labels = container_labels.clone();
    // Swarm's service labels are the agent's alone (an image's labels only reach its
    // containers), so a tenant's Dockerfile cannot add a router here.
    if is_web {
        labels.extend(swarm_routing(traefik_labels(
            app,
            &hostnames(app, spec, config),
            spec.sticky_sessions,
            config,
        )));
    }
    let quantity = spec.processes.get(process).map_or(0, |p| p.quantity);
    // Like Heroku, a Procfile command is a shell command line; the image's entrypoint stays.
    let command = spec
        .processes
        .get(process)
        .and_then(|p| p.command.clone())
        .map(|command| vec!["/bin/sh".to_owned(), "-c".to_owned(), command]);
    let (command, args) = if is_web {
        let mut args = image.entrypoint.clone();
        args.extend(command.unwrap_or_else(|| image.cmd.clone()));
        (Some(drain_first()), Some(args))
    } else {
        (None, command)
    };
    let limits = container::process_limits(spec, process, config);
    let read_only = spec.container.read_only_root_fs;
    let mut mounts: Vec<DockerMount> = spec
        .volumes
        .iter()
        .map(|mount| DockerMount {
            target: Some(mount.path.to_string()),
            source: Some(naming::volume_name(app, &mount.name)),
            typ: Some(MountTypeEnum::VOLUME),
            ..Default::default()
        })
        .collect();
    if is_web {
        mounts.push(DockerMount {
            target: Some(BUSYBOX_IN_CONTAINER.to_owned()),
            source: Some(config.busybox.display().to_string()),
            typ: Some(MountTypeEnum::BIND),
            read_only: Some(true),
            ..Default::default()
        });
    }
    if read_only {
        mounts.push(DockerMount {
            target: Some("/tmp".to_owned()),
            typ: Some(MountTypeEnum::TMPFS),
            ..Default::default()
        });
    }
    ServiceSpec {
        name: Some(naming::service_name(app, process)),
        labels: Some(labels),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(spec.image.clone()),
                labels: Some(container_labels),
                command,
                args,
                env: Some(
                    environment(app, spec, process)
                        .into_iter()
                        .map(|(key, value)| format!("{key}={value}"))
                        .collect(),
                ),
                user: spec.container.non_root.then(|| NON_ROOT_USER.to_owned()),
                read_only: read_only.then_some(true),
                mounts: (!mounts.is_empty()).then_some(mounts),
                stop_grace_period: Some(
                    STOP_GRACE_NS
                        + if is_web {
                            DRAIN_SECS as i64 * 1_000_000_000
                        } else {
                            0
                        },
                ),
                health_check: is_web
                    .then(|| container::health_check(health_path(spec, config), config)),
                init: Some(true),
                capability_drop: Some(vec!["ALL".to_owned()]),
                capability_add: Some(CAPABILITIES.iter().map(|&cap| cap.to_string()).collect()),
                ..Default::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit {
                    memory_bytes: Some(limits.memory_bytes()),
                    nano_cpus: limits.cpus.map(Cpus::nanos),
                    pids: Some(config.pids_limit),
                }),
                reservations: None,
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(RESTART_DELAY_NS),
                max_attempts: None,
                window: None,
            }),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(naming::network_name(app)),
                ..Default::default()
            }]),
            log_driver: Some(TaskSpecLogDriver {
                name: Some("json-file".to_owned()),
                options: Some(HashMap::from([
                    ("max-size".to_owned(), "10m".to_owned()),
                    ("max-file".to_owned(), "3".to_owned()),
                ])),
            }),
            ..Default::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated {
                replicas: Some(i64::from(quantity)),
            }),
            ..Default::default()
        }),
        // Every task of a change at once, each new one running (and healthy) before an old
        // one stops; a failure puts the previous spec back.
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(0),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(MONITOR_NS),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(0),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(MONITOR_NS),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        // No virtual IP: this kind of host has no IPVS, and Traefik routes to the tasks'
        // own addresses anyway.
        endpoint_spec: Some(EndpointSpec {
            mode: Some(EndpointSpecModeEnum::DNSRR),
            ports: None,
        }),
        networks: None,
    }
}

/// Attempts of a request whose connection fails: Traefik reads Swarm's tasks once a second,
/// so for up to a second after Swarm stops a task Traefik may still pick it, and its address
/// no longer answers; each attempt after the first goes to another task.
const RETRY_ATTEMPTS: &str = "5";

/// The docker provider's routing labels as the swarm provider reads them: the network to reach
/// the tasks on is named by `traefik.swarm.network`, Traefik balances over the tasks' own
/// addresses, not a virtual IP (`lbswarm=false`), and retries more ([`RETRY_ATTEMPTS`]).
fn swarm_routing(labels: HashMap<String, String>) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = labels
        .into_iter()
        .map(|(key, value)| match key.as_str() {
            "traefik.docker.network" => ("traefik.swarm.network".to_owned(), value),
            _ if key.ends_with(".retry.attempts") => (key, RETRY_ATTEMPTS.to_owned()),
            _ => (key, value),
        })
        .collect();
    labels.insert("traefik.swarm.lbswarm".to_owned(), "false".to_owned());
    labels
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::agent::ProcessSpec;

    use super::*;
    use crate::naming::test_key;

    fn spec() -> AppSpec {
        AppSpec {
            release: 4,
            image: "10.231.0.1:5000/paas/hello@sha256:abc".into(),
            env: BTreeMap::from([("GREETING".into(), "Howdy".into())]),
            processes: BTreeMap::from([
                (
                    "web".parse().unwrap(),
                    ProcessSpec {
                        command: None,
                        quantity: 3,
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
            domains: vec!["www.example.com".into()],
            health_check_path: None,
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    fn image() -> ImageCommand {
        ImageCommand {
            entrypoint: vec!["/entry".into()],
            cmd: vec!["httpd".into(), "-f".into()],
        }
    }

    fn web() -> ServiceSpec {
        service_spec(
            "hello",
            &spec(),
            "web",
            &image(),
            &RuntimeConfig::default(),
            &test_key(),
        )
    }

    #[test]
    fn a_process_type_is_one_replicated_service_updated_start_first_with_rollback() {
        let service = web();
        assert_eq!(
            service.name.as_deref(),
            Some(naming::service_name("hello", "web").as_str())
        );
        assert_eq!(service.mode.unwrap().replicated.unwrap().replicas, Some(3));
        let update = service.update_config.unwrap();
        assert_eq!(
            update.order,
            Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST)
        );
        assert_eq!(
            update.failure_action,
            Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK)
        );
        assert_eq!(
            service.endpoint_spec.unwrap().mode,
            Some(EndpointSpecModeEnum::DNSRR)
        );
        let task = service.task_template.unwrap();
        let networks = task.networks.unwrap();
        assert_eq!(networks.len(), 1);
        assert_eq!(networks[0].target.as_deref(), Some("paas-app-hello"));
        let container = task.container_spec.unwrap();
        assert_eq!(
            container.image.as_deref(),
            Some("10.231.0.1:5000/paas/hello@sha256:abc")
        );
        let env = container.env.unwrap();
        for expected in [
            "GREETING=Howdy",
            "PORT=5000",
            "PAAS_RELEASE=v4",
            "PAAS_PROCESS=web",
        ] {
            assert!(env.iter().any(|e| e == expected), "{expected} in {env:?}");
        }
        assert!(container.health_check.is_some(), "web has the health check");
        assert_eq!(container.capability_drop, Some(vec!["ALL".to_owned()]));
        let limits = task.resources.unwrap().limits.unwrap();
        assert_eq!(
            limits.memory_bytes,
            Some(i64::try_from(RuntimeConfig::default().memory_limit_mb * 1024 * 1024).unwrap())
        );
    }

    #[test]
    fn only_web_is_routed_and_through_the_swarm_provider_on_the_app_network() {
        let labels = web().labels.unwrap();
        assert_eq!(labels["traefik.swarm.network"], "paas-app-hello");
        assert_eq!(labels["traefik.swarm.lbswarm"], "false");
        assert!(!labels.contains_key("traefik.docker.network"));
        assert!(
            labels
                .iter()
                .any(|(key, value)| key.ends_with(".retry.attempts") && value == RETRY_ATTEMPTS),
            "{labels:?}"
        );
        assert!(
            labels
                .iter()
                .any(|(key, value)| key.ends_with(".rule") && value.contains("www.example.com")),
            "{labels:?}"
        );
        assert_eq!(labels[LABEL_APP], "hello");
        assert_eq!(labels[LABEL_RELEASE], "v4");

        let worker = service_spec(
            "hello",
            &spec(),
            "worker",
            &image(),
            &RuntimeConfig::default(),
            &test_key(),
        );
        let worker_labels = worker.labels.unwrap();
        assert!(!worker_labels.keys().any(|key| key.starts_with("traefik.")));
        let container = worker.task_template.unwrap().container_spec.unwrap();
        assert!(container.health_check.is_none());
        assert_eq!(container.command, None, "the image's entrypoint stays");
        assert_eq!(
            container.args,
            Some(vec!["/bin/sh".into(), "-c".into(), "./work --hard".into()])
        );
    }

    #[test]
    fn web_runs_the_images_command_under_a_drain_that_delays_sigterm() {
        let container = web().task_template.unwrap().container_spec.unwrap();
        let command = container.command.unwrap();
        assert_eq!(&command[..3], [BUSYBOX_IN_CONTAINER, "sh", "-c"]);
        assert!(
            command[3].contains(&format!("sleep {DRAIN_SECS}")),
            "{command:?}"
        );
        assert_eq!(
            container.args,
            Some(vec!["/entry".into(), "httpd".into(), "-f".into()])
        );
        let mut procfile = spec();
        procfile.processes.get_mut("web").unwrap().command = Some("./serve".into());
        let service = service_spec(
            "hello",
            &procfile,
            "web",
            &image(),
            &RuntimeConfig::default(),
            &test_key(),
        );
        let container = service.task_template.unwrap().container_spec.unwrap();
        assert_eq!(
            container.args,
            Some(vec![
                "/entry".into(),
                "/bin/sh".into(),
                "-c".into(),
                "./serve".into()
            ])
        );
        assert!(container.stop_grace_period.unwrap() > DRAIN_SECS as i64 * 1_000_000_000);
    }

    #[test]
    fn a_config_change_changes_the_fingerprint_and_a_scale_does_not() {
        let fingerprint = |spec: &AppSpec| {
            service_spec(
                "hello",
                spec,
                "web",
                &image(),
                &RuntimeConfig::default(),
                &test_key(),
            )
            .labels
            .unwrap()[LABEL_FINGERPRINT]
                .clone()
        };
        let before = fingerprint(&spec());
        let mut scaled = spec();
        scaled.processes.get_mut("web").unwrap().quantity = 6;
        assert_eq!(fingerprint(&scaled), before);
        let mut configured = spec();
        configured.env.insert("GREETING".into(), "Hi".into());
        assert_ne!(fingerprint(&configured), before);
    }
}

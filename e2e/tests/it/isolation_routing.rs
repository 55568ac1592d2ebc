//! Tenant isolation at the routing layer, through the real platform (pushes over SSH through
//! gitd and the agent, a real Traefik constrained to the agent's instance key): images whose
//! labels would route traffic (another app's host, a TCP catch-all, Traefik's own API) are
//! refused at build time and change nothing; a build step labelled like another app's
//! container is never routed and never shows in that app's `ps` or logs; an exact domain beats
//! another app's wildcard; app containers run with dropped capabilities, pids and CPU limits,
//! and, when the app asks, as `nobody` on a read-only root; an agent config without an
//! instance key is refused until one is added.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use paas_api::agent::{AppSpec, ContainerOptions, ProcessSpec, RolloutEvent};
use serde_json::Value;

use crate::platform::{
    Agent, AgentOptions, DOMAIN, Platform, Traefik, docker, docker_lines, image_field,
    remove_from_docker,
};
use crate::util::{
    bin, commit_files, git_command, git_repo, hello_repo, http_get, wait_for, workspace_root,
};

/// The capabilities the agent leaves app containers (`runtime::container::CAPABILITIES`).
const CAPABILITIES: [&str; 8] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "NET_BIND_SERVICE",
    "SETGID",
    "SETUID",
];
/// What the build check says of every reserved label.
const RESERVED: &str = "labels under traefik. and paas. are reserved for the platform";

/// A repository holding only `Dockerfile`.
fn dockerfile_repo(dockerfile: &str) -> tempfile::TempDir {
    let repo = git_repo();
    commit_files(repo.path(), &[("Dockerfile", dockerfile)], "Dockerfile");
    repo
}

/// Asserts `victim` answers as itself through Traefik.
#[track_caller]
fn assert_serves_itself(platform: &Platform, victim: &str) {
    let answer = platform.get(victim, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer
            .body
            .starts_with(&format!("Hello from {victim} v1 on ")),
        "{answer:?}"
    );
}

fn traefik_api(platform: &Platform, path: &str) -> Value {
    let answer = http_get(&platform.traefik().api, "localhost", path).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    serde_json::from_str(&answer.body).unwrap()
}

#[test]
fn images_whose_labels_would_route_are_refused_and_change_nothing() {
    let platform = Platform::start();
    let victim = platform.create_app("victim");
    let pushed = platform.push(&victim, hello_repo().path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    assert_serves_itself(&platform, &victim);
    // Traefik's API answers on its own port: the test below can tell if it leaked.
    let version = http_get(&platform.traefik().api, "localhost", "/api/version").unwrap();
    assert!(version.body.contains("\"Version\""), "{version:?}");

    let mallory = platform.user("mallory");
    let evil = platform.app(&mallory, "evil");
    let serve_stolen = "RUN mkdir /stolen && echo stolen > /stolen/index.html\n\
                        CMD [\"httpd\", \"-f\", \"-p\", \"5000\", \"-h\", \"/stolen\"]\n";
    let attacks = [
        (
            "hijack of another app's host",
            format!(
                "FROM paas/busybox:latest\n\
                 LABEL traefik.http.routers.hijack.rule=\"Host(`{victim}.{DOMAIN}`)\" \
                 traefik.http.routers.hijack.priority=1000000 \
                 traefik.http.routers.hijack.entrypoints=web\n{serve_stolen}"
            ),
            "traefik.http.routers.hijack.entrypoints",
        ),
        (
            "TCP catch-all",
            format!(
                "FROM paas/busybox:latest\n\
                 LABEL traefik.tcp.routers.all.rule=\"HostSNI(`*`)\" \
                 traefik.tcp.routers.all.entrypoints=web \
                 traefik.tcp.services.all.loadbalancer.server.port=5000\n{serve_stolen}"
            ),
            "traefik.tcp.routers.all.entrypoints",
        ),
        (
            "Traefik's API on the web entrypoint",
            format!(
                "FROM paas/busybox:latest\n\
                 LABEL traefik.http.routers.api.rule=\"PathPrefix(`/api`)\" \
                 traefik.http.routers.api.priority=1000000 \
                 traefik.http.routers.api.service=api@internal\n{serve_stolen}"
            ),
            "traefik.http.routers.api.priority",
        ),
    ];
    for (build, (attack, dockerfile, first_label)) in (1..).zip(attacks) {
        let repo = dockerfile_repo(&dockerfile);
        let pushed = platform
            .push_ref(repo.path(), &mallory.key, &evil, "HEAD:main")
            .rejected(RESERVED);
        assert!(
            pushed
                .stderr
                .contains(&format!("the image carries label `{first_label}`")),
            "{attack}: {}",
            pushed.stderr
        );
        assert!(platform.releases(&mallory, &evil).is_empty(), "{attack}");
        let builds = platform.builds(&mallory, &evil);
        assert_eq!(builds.len(), build, "{attack}: {builds:?}");
        assert_eq!(builds[build - 1]["status"], "failed", "{attack}");
        assert_eq!(
            image_field(&format!("paas/{evil}:v1"), "{{.Id}}"),
            None,
            "{attack}: the image is removed"
        );
        assert!(
            docker_lines(&["ps", "-aq", "--filter", &format!("label=paas.app={evil}")]).is_empty(),
            "{attack}: nothing runs"
        );

        assert_serves_itself(&platform, &victim);
        let api = platform.get(&victim, "/api/version").unwrap();
        assert!(!api.body.contains("\"Version\""), "{attack}: {api:?}");
        let api = platform
            .get("anything.example.test", "/api/rawdata")
            .unwrap();
        assert_eq!(api.status, 404, "{attack}: {api:?}");
        let tcp = traefik_api(&platform, "/api/tcp/routers");
        assert_eq!(tcp, serde_json::json!([]), "{attack}");
        let routers = traefik_api(&platform, "/api/http/routers");
        let names: Vec<&str> = routers
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|router| router["name"].as_str())
            .filter(|name| name.ends_with("@docker"))
            .collect();
        assert_eq!(names, [format!("paas-{victim}@docker")], "{attack}");
    }
}

#[test]
fn a_build_step_labelled_as_another_app_is_never_routed_or_listed() {
    let platform = Platform::start();
    let victim = platform.create_app("bvictim");
    let pushed = platform.push(&victim, hello_repo().path());
    assert_eq!(pushed.code, Some(0), "{pushed}");

    let mallory = platform.user("mallory");
    let evil = platform.app(&mallory, "bevil");
    // The RUN step serves "stolen" on :8000 and prints into its output while it lasts; its
    // container carries the LABELs above it.
    let repo = dockerfile_repo(&format!(
        "FROM paas/busybox:latest\n\
         LABEL traefik.enable=true \
         traefik.http.routers.steal.rule=\"Host(`{victim}.{DOMAIN}`)\" \
         traefik.http.routers.steal.priority=1000000 \
         traefik.http.routers.steal.entrypoints=web \
         traefik.http.services.steal.loadbalancer.server.port=8000 \
         paas.app={victim} paas.process=web paas.index=1 paas.release=v1\n\
         RUN mkdir /stolen && echo stolen > /stolen/index.html && httpd -p 8000 -h /stolen && \
         for i in $(seq 1 60); do echo INJECTED-LINE; sleep 0.5; done\n"
    ));
    let push = git_command(repo.path(), &mallory.key, platform.gitd.ssh_addr.port())
        .args(["push", &platform.git_url(&evil), "HEAD:main"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let build_step = || {
        docker_lines(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=paas.app={victim}"),
            "--filter",
            "label=traefik.http.routers.steal.rule",
        ])
    };
    wait_for("the labelled build step to run", || {
        (!build_step().is_empty()).then_some(())
    });
    for _ in 0..20 {
        assert_serves_itself(&platform, &victim);
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = platform
        .paas(&["ps", "-a", &victim, "--json"])
        .success()
        .json();
    let names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|instance| instance["container"].as_str())
        .collect();
    assert_eq!(names, [format!("paas-{victim}-v1-web-1")], "{ps}");
    let text = platform.paas(&["ps", "-a", &victim]).success();
    assert!(
        text.stdout
            .starts_with("=== web (512M): httpd -f -p ${PORT:-5000} -h /www (1)\nweb.1: up "),
        "{text}"
    );
    let logs = platform
        .paas(&["logs", "-n", "500", "-a", &victim])
        .success();
    assert!(!logs.stdout.contains("INJECTED"), "{logs}");
    let routers = traefik_api(&platform, "/api/http/routers").to_string();
    assert!(!routers.contains("steal"), "{routers}");
    assert!(
        !build_step().is_empty(),
        "the build step ran all along the checks"
    );

    let output = push.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains(RESERVED), "{stderr}");
    assert_serves_itself(&platform, &victim);
}

#[test]
fn an_exact_domain_beats_another_apps_wildcard_whatever_the_rule_lengths() {
    let platform = Platform::start();
    let wild = platform.create_app("wild");
    let exact = platform.create_app("exact");
    for app in [&wild, &exact] {
        let pushed = platform.push(app, hello_repo().path());
        assert_eq!(pushed.code, Some(0), "{pushed}");
    }
    // HostRegexp(`^[a-z0-9-]+\.x\.test$`) is the longer rule: by length alone it would win.
    platform
        .paas(&["domains:add", "*.x.test", "-a", &wild])
        .success();
    platform
        .paas(&["domains:add", "www.x.test", "-a", &exact])
        .success();
    let from = |host: &str| {
        let answer = platform.get(host, "/").unwrap();
        assert_eq!(answer.status, 200, "{host}: {answer:?}");
        answer.body
    };
    for _ in 0..5 {
        assert!(
            from("www.x.test").starts_with(&format!("Hello from {exact} ")),
            "{}",
            platform.logs()
        );
        assert!(from("shop.x.test").starts_with(&format!("Hello from {wild} ")));
        assert!(from(&exact).starts_with(&format!("Hello from {exact} ")));
    }
    let routers = traefik_api(&platform, "/api/http/routers");
    let priority_of = |prefix: &str| -> Vec<i64> {
        routers
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"].as_str().unwrap().starts_with(prefix))
            .map(|r| r["priority"].as_i64().unwrap())
            .collect()
    };
    let wildcard = priority_of(&format!("paas-{wild}-wildcards-"));
    let exact_host = priority_of(&format!("paas-{exact}-domains-"));
    assert_eq!(wildcard.len(), 1, "{routers}");
    assert_eq!(exact_host.len(), 1, "{routers}");
    assert!(exact_host[0] > wildcard[0], "{routers}");
}

// ---------------------------------------------------------------------------------------------
// Container hardening, driving the agent's API directly.

fn put(agent: &Agent, app: &str, spec: &AppSpec) -> Vec<RolloutEvent> {
    let response = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .unwrap()
        .put(format!("{}/v1/apps/{app}", agent.url))
        .bearer_auth(&agent.token)
        .json(spec)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let events: Vec<RolloutEvent> = response
        .text()
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(
        events.last(),
        Some(&RolloutEvent::Done),
        "rollout of v{}: {events:?}\n{}",
        spec.release,
        agent.log()
    );
    events
}

/// The web process tells who it runs as and what it may write, then serves examples/hello.
const PROBING_WEB: &str = "echo uid=$(id -u) gid=$(id -g); \
     if touch /probe 2>/dev/null; then echo root=writable; else echo root=read-only; fi; \
     if touch /tmp/probe; then echo tmp=writable; fi; \
     exec httpd -f -p \"$PORT\" -h /www";

fn probing_spec(image: &str, release: u32, container: ContainerOptions) -> AppSpec {
    AppSpec {
        release,
        image: image.to_owned(),
        env: BTreeMap::new(),
        processes: BTreeMap::from([(
            "web".parse().unwrap(),
            ProcessSpec {
                command: Some(PROBING_WEB.to_owned()),
                quantity: 1,
                resources: Default::default(),
            },
        )]),
        domains: vec![],
        health_check_path: None,
        healthchecks: Default::default(),
        container,
        sticky_sessions: false,
        volumes: Vec::new(),
    }
}

fn web_container(app: &str, release: u32) -> Value {
    let name = format!("paas-{app}-v{release}-web-1");
    serde_json::from_str::<Value>(&docker(&["inspect", &name])).unwrap()[0].clone()
}

/// Names without Docker's optional `CAP_` prefix, sorted.
fn capability_names(value: &Value) -> Vec<String> {
    let mut names: Vec<String> = value
        .as_array()
        .unwrap()
        .iter()
        .map(|cap| cap.as_str().unwrap().trim_start_matches("CAP_").to_owned())
        .collect();
    names.sort();
    names
}

/// Bit numbers of capabilities in the kernel's order (linux/capability.h).
fn capability_bit(name: &str) -> u32 {
    match name {
        "CHOWN" => 0,
        "DAC_OVERRIDE" => 1,
        "FOWNER" => 3,
        "FSETID" => 4,
        "KILL" => 5,
        "SETGID" => 6,
        "SETUID" => 7,
        "NET_BIND_SERVICE" => 10,
        "NET_RAW" => 13,
        other => panic!("no bit for {other}"),
    }
}

#[test]
fn app_containers_run_hardened_and_honour_the_apps_lock_downs() {
    let app = format!("harden-{}", std::process::id());
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            remove_from_docker(&self.0);
        }
    }
    let _cleanup = Cleanup(app.clone());
    let image = format!("paas/{app}:v1");
    docker(&[
        "build",
        "-q",
        "--label",
        &format!("paas.app={app}"),
        "-t",
        &image,
        &workspace_root()
            .join("examples/hello")
            .display()
            .to_string(),
    ]);
    let traefik = Traefik::start();
    let agent = Agent::with(AgentOptions {
        traefik: Some(&traefik),
        runtime: vec![("pids_limit", 200.into()), ("cpu_shares", 512.into())],
        ..AgentOptions::default()
    });

    put(
        &agent,
        &app,
        &probing_spec(&image, 1, ContainerOptions::default()),
    );
    let details = web_container(&app, 1);
    let host = &details["HostConfig"];
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]), "{host}");
    assert_eq!(capability_names(&host["CapAdd"]), CAPABILITIES, "{host}");
    assert_eq!(host["PidsLimit"], 200, "{host}");
    assert_eq!(host["CpuShares"], 512, "{host}");
    assert_eq!(
        host["SecurityOpt"],
        serde_json::json!(["no-new-privileges"])
    );
    assert_eq!(host["ReadonlyRootfs"], false);
    // What the kernel gives the app's process: the set above, without NET_RAW.
    let id = details["Id"].as_str().unwrap();
    let status = docker(&["exec", id, "cat", "/proc/1/status"]);
    let bounding = status
        .lines()
        .find_map(|line| line.strip_prefix("CapBnd:"))
        .map(|hex| u64::from_str_radix(hex.trim(), 16).unwrap())
        .unwrap();
    let expected = CAPABILITIES
        .iter()
        .fold(0u64, |bits, cap| bits | 1 << capability_bit(cap));
    assert_eq!(bounding, expected, "{status}");
    assert_eq!(bounding & 1 << capability_bit("NET_RAW"), 0);
    let logs = docker(&["logs", id]);
    assert!(logs.contains("uid=0 "), "{logs}");
    assert!(logs.contains("root=writable"), "{logs}");
    let answer = traefik.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} ")),
        "{answer:?}"
    );

    // Both lock-downs: served after passing its health check, the first release drained.
    let locked = ContainerOptions {
        non_root: true,
        read_only_root_fs: true,
    };
    let events = put(&agent, &app, &probing_spec(&image, 2, locked));
    let said: Vec<String> = events
        .iter()
        .filter_map(|event| match event {
            RolloutEvent::Line(line) => Some(line.clone()),
            _ => None,
        })
        .collect();
    assert!(
        said.iter()
            .any(|l| l.starts_with("Starting web.1") && l.ends_with("healthy")),
        "{said:?}"
    );
    assert!(!said.iter().any(|l| l.contains("Warning")), "{said:?}");
    let details = web_container(&app, 2);
    assert_eq!(details["Config"]["User"], "65534:65534");
    assert_eq!(details["HostConfig"]["ReadonlyRootfs"], true);
    let id = details["Id"].as_str().unwrap().to_owned();
    let logs = docker(&["logs", &id]);
    for expected in ["uid=65534 gid=65534", "root=read-only", "tmp=writable"] {
        assert!(logs.contains(expected), "{expected} in {logs}");
    }
    wait_for("v2 to serve", || {
        let answer = traefik.get(&app, "/").ok()?;
        answer
            .body
            .starts_with(&format!("Hello from {app} v2 "))
            .then_some(())
    });

    // And back: the locked-down container drains (its marker goes to the tmpfs) and retires.
    let events = put(
        &agent,
        &app,
        &probing_spec(&image, 3, ContainerOptions::default()),
    );
    let said = format!("{events:?}");
    assert!(said.contains("Stopped web.1"), "{said}");
    assert!(!said.contains("Warning"), "{said}");
    assert!(
        docker_lines(&["ps", "-aq", "--filter", &format!("id={id}")]).is_empty(),
        "v2 retired"
    );
}

#[test]
fn an_agent_config_without_an_instance_key_is_refused_until_one_is_added() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let run = |args: &[&str]| {
        Command::new(bin("paas-agent"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap()
    };
    assert!(run(&["init"]).status.success());
    let written = std::fs::read_to_string(&config).unwrap();
    let without: String = written
        .lines()
        .filter(|line| !line.starts_with("instance_key"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert_ne!(without, written, "init writes an instance key");
    std::fs::write(&config, &without).unwrap();

    for refused in [
        vec!["serve", "--listen", "127.0.0.1:0"],
        vec!["traefik-constraint"],
    ] {
        let out = run(&refused);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{refused:?}: {stderr}");
        assert!(
            stderr.contains("has no instance_key; run `paas-agent add-instance-key"),
            "{stderr}"
        );
    }
    assert!(run(&["add-instance-key"]).status.success());
    let added = std::fs::read_to_string(&config).unwrap();
    assert!(added.ends_with(&without), "the rest is kept:\n{added}");
    let constraint = run(&["traefik-constraint"]);
    assert!(constraint.status.success());
    let printed = String::from_utf8(constraint.stdout).unwrap();
    let key = printed
        .trim()
        .strip_prefix("Label(`paas.instance`,`")
        .and_then(|rest| rest.strip_suffix("`)"))
        .unwrap_or_else(|| panic!("{printed}"));
    assert!(key.len() >= 32 && key.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(added.contains(key));
    // Once there, it stays.
    assert!(run(&["add-instance-key"]).status.success());
    assert_eq!(std::fs::read_to_string(&config).unwrap(), added);
}

#[test]
fn a_rollout_refuses_an_image_carrying_traefik_labels() {
    let app = format!("rtlabel-{}", std::process::id());
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            remove_from_docker(&self.0);
        }
    }
    let _cleanup = Cleanup(app.clone());
    let good = format!("paas/{app}:v1");
    let labelled = format!("paas/{app}:v2");
    let hello = workspace_root()
        .join("examples/hello")
        .display()
        .to_string();
    let app_label = format!("paas.app={app}");
    docker(&["build", "-q", "--label", &app_label, "-t", &good, &hello]);
    // Built outside the agent's build check, as an image from before it would be.
    let rule = format!("traefik.http.routers.x.rule=Host(`{app}.{DOMAIN}`)");
    docker(&[
        "build", "-q", "--label", &app_label, "--label", &rule, "-t", &labelled, &hello,
    ]);
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    let spec =
        |release: u32, image: &str| probing_spec(image, release, ContainerOptions::default());
    put(&agent, &app, &spec(1, &good));

    let response = reqwest::blocking::Client::new()
        .put(format!("{}/v1/apps/{app}", agent.url))
        .bearer_auth(&agent.token)
        .json(&spec(2, &labelled))
        .send()
        .unwrap();
    let events: Vec<RolloutEvent> = response
        .text()
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    match events.last() {
        Some(RolloutEvent::Failed { reason, .. }) => assert_eq!(
            reason,
            &format!(
                "image {labelled} carries label `traefik.http.routers.x.rule`: labels under traefik. are reserved for the platform; push the app again to rebuild it"
            )
        ),
        other => panic!("{other:?}"),
    }
    let running = docker_lines(&["ps", "-q", "--filter", &format!("label=paas.app={app}")]);
    assert_eq!(running.len(), 1, "{running:?}");
    let answer = traefik.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 ")),
        "{answer:?}"
    );
}

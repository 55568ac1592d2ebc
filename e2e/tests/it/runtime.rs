//! The agent's container runtime against the real Docker engine and a real Traefik: desired
//! state served through Traefik, scaling, new config, failed releases, crash recovery, agent
//! restarts, cross-app isolation, removal, and zero dropped requests under load across
//! rollouts, a restart and a scale-down. Each test runs its own Traefik (free loopback ports,
//! its own config) and its own `paas-agent`, and removes its app's containers when it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use paas_api::agent::{AppSpec, Instance, ProcessSpec, RolloutEvent};
use paas_api::types::InstanceState;
use serde_json::Value;

use crate::platform::{
    Agent, DOMAIN, LoadLoop, Traefik, docker, ensure_docker, remove_from_docker, served_by,
};
use crate::util::{http_get, wait_for, workspace_root};
/// Requests the load loop makes at least (the bar).
const MIN_LOAD_REQUESTS: usize = 2_000;

// ---------------------------------------------------------------------------------------------
// Harness: the agent's runtime API and the app under test (Traefik and the agent themselves are
// `platform`'s).

/// The agent's runtime API, as these tests drive it with a plain HTTP client.
impl Agent {
    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::blocking::RequestBuilder {
        http_client()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
    }

    /// Sends the desired state and reads the whole event stream.
    fn put(&self, app: &str, spec: &AppSpec) -> Vec<RolloutEvent> {
        let response = self
            .request(reqwest::Method::PUT, &format!("/v1/apps/{app}"))
            .json(spec)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200, "{}", response.text().unwrap());
        parse_events(&response.text().unwrap())
    }

    fn deploy(&self, app: &str, spec: &AppSpec) -> Vec<RolloutEvent> {
        let events = self.put(app, spec);
        assert_eq!(
            events.last(),
            Some(&RolloutEvent::Done),
            "rollout of v{} failed: {events:?}\nagent log:\n{}",
            spec.release,
            self.log()
        );
        events
    }

    fn restart_app(&self, app: &str, process: Option<&str>) -> Vec<RolloutEvent> {
        let response = self
            .request(reqwest::Method::POST, &format!("/v1/apps/{app}/restart"))
            .json(&serde_json::json!({ "process": process }))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        parse_events(&response.text().unwrap())
    }

    fn instances(&self, app: &str) -> Vec<Instance> {
        let response = self
            .request(reqwest::Method::GET, &format!("/v1/apps/{app}/instances"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().unwrap()
    }
}

/// One HTTP client for the process; rollouts stream for a while, so its timeout only catches
/// hangs.
fn http_client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap()
    })
}

fn parse_events(text: &str) -> Vec<RolloutEvent> {
    text.lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?}: {e}")))
        .collect()
}

fn lines(events: &[RolloutEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match event {
            RolloutEvent::Line(line) => Some(line.as_str()),
            _ => None,
        })
        .collect()
}

/// A unique app name; its containers, networks and images are removed when the test ends.
struct TestApp {
    name: String,
}

impl TestApp {
    fn new(prefix: &str) -> TestApp {
        ensure_docker();
        let name = format!("{prefix}-{}", std::process::id());
        // examples/hello under the app's own repository, so any release number can run it.
        // The app's label makes the image the app's own: removing it never takes an image a
        // concurrent test's build just found in the cache. (The cache makes the build quick.)
        let mut args = vec![
            "build".to_owned(),
            "-q".to_owned(),
            "--label".to_owned(),
            format!("paas.app={name}"),
        ];
        for release in 1..=6 {
            args.extend(["-t".to_owned(), format!("paas/{name}:v{release}")]);
        }
        args.push(
            workspace_root()
                .join("examples/hello")
                .display()
                .to_string(),
        );
        docker(&args.iter().map(String::as_str).collect::<Vec<_>>());
        TestApp { name }
    }

    fn image(&self, release: u32) -> String {
        format!("paas/{}:v{release}", self.name)
    }

    fn spec(&self, release: u32, web: u32) -> AppSpec {
        AppSpec {
            release,
            image: self.image(release),
            env: BTreeMap::new(),
            processes: BTreeMap::from([(
                "web".parse().unwrap(),
                ProcessSpec {
                    command: None,
                    quantity: web,
                    resources: Default::default(),
                },
            )]),
            domains: vec![],
            health_check_path: None,
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    /// Container ids of the app that Docker reports running.
    fn running(&self) -> BTreeSet<String> {
        docker(&[
            "ps",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=paas.app={}", self.name),
        ])
        .lines()
        .map(str::to_owned)
        .collect()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        remove_from_docker(&self.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Tests' helpers

fn inspect(id: &str) -> Value {
    let json = docker(&["inspect", id]);
    serde_json::from_str::<Value>(&json).unwrap()[0].clone()
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn desired_state_is_served_scaled_and_reconfigured() {
    let app = TestApp::new("rt-serve");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);

    let mut spec = app.spec(1, 1);
    spec.processes.insert(
        "worker".parse().unwrap(),
        ProcessSpec {
            command: Some("exec sleep 100000".to_owned()),
            quantity: 1,
            resources: Default::default(),
        },
    );
    let events = agent.deploy(&app.name, &spec);
    let progress = lines(&events);
    assert!(
        progress
            .contains(&format!("Starting web.1 (paas-{}-v1-web-1)… healthy", app.name).as_str()),
        "{progress:?}"
    );
    // Done means routed: the very first request through Traefik is served.
    let first = traefik.get(&app.name, "/").unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert!(
        first
            .body
            .starts_with(&format!("Hello from {} v1 on ", app.name)),
        "{first:?}"
    );

    // The containers as the conventions describe them.
    let web = inspect(&format!("paas-{}-v1-web-1", app.name));
    let labels = &web["Config"]["Labels"];
    assert_eq!(labels["paas.app"], app.name.as_str());
    assert_eq!(labels["paas.release"], "v1");
    assert_eq!(labels["paas.process"], "web");
    assert_eq!(labels["paas.index"], "1");
    assert_eq!(labels["traefik.enable"], "true");
    assert_eq!(
        labels[format!("traefik.http.routers.paas-{}.rule", app.name)],
        format!("Host(`{}.{DOMAIN}`)", app.name)
    );
    let host = &web["HostConfig"];
    assert_eq!(host["RestartPolicy"]["Name"], "unless-stopped");
    assert_eq!(host["Memory"], 512 * 1024 * 1024);
    assert_eq!(host["SecurityOpt"][0], "no-new-privileges");
    assert_eq!(host["LogConfig"]["Type"], "json-file");
    assert_eq!(host["LogConfig"]["Config"]["max-size"], "10m");
    let env: Vec<&str> = web["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for expected in ["PORT=5000", "PAAS_RELEASE=v1", "PAAS_PROCESS=web"] {
        assert!(env.contains(&expected), "{expected} in {env:?}");
    }
    let worker = inspect(&format!("paas-{}-v1-worker-1", app.name));
    assert_eq!(worker["State"]["Running"], true);
    let worker_labels = worker["Config"]["Labels"].as_object().unwrap();
    assert!(!worker_labels.keys().any(|k| k.starts_with("traefik.")));

    // web=3: the first container stays, two join, and Traefik spreads requests over all three.
    let web_1 = web["Id"].as_str().unwrap().to_owned();
    spec.processes.get_mut("web").unwrap().quantity = 3;
    let events = agent.deploy(&app.name, &spec);
    assert_eq!(
        lines(&events).len(),
        2,
        "only the two new ones start: {events:?}"
    );
    let instances = agent.instances(&app.name);
    let webs: Vec<&Instance> = instances.iter().filter(|i| i.process == "web").collect();
    assert_eq!(webs.len(), 3, "{instances:?}");
    assert!(webs.iter().any(|i| i.container_id == web_1));
    for instance in &webs {
        assert_eq!(instance.state, InstanceState::Up);
        assert_eq!(instance.release, 1);
        assert!(instance.started_at.is_some());
    }
    let hosts: BTreeSet<String> = webs
        .iter()
        .map(|i| i.container_id[..12].to_owned())
        .collect();
    let mut seen = BTreeSet::new();
    wait_for("requests to reach all three web containers", || {
        let response = traefik.get(&app.name, "/").ok()?;
        assert_eq!(response.status, 200, "{response:?}");
        seen.insert(served_by(&response.body));
        (seen == hosts).then_some(())
    });

    // Back to one: two retire, the first one keeps serving.
    spec.processes.get_mut("web").unwrap().quantity = 1;
    agent.deploy(&app.name, &spec);
    let webs: Vec<Instance> = agent
        .instances(&app.name)
        .into_iter()
        .filter(|i| i.process == "web")
        .collect();
    assert_eq!(webs.len(), 1);
    assert_eq!(webs[0].container_id, web_1);
    assert_eq!(app.running().len(), 2, "web.1 and worker.1");

    // New config is a new release: served right after the rollout.
    spec.release = 2;
    spec.image = app.image(2);
    spec.env.insert("GREETING".to_owned(), "Howdy".to_owned());
    agent.deploy(&app.name, &spec);
    let response = traefik.get(&app.name, "/").unwrap();
    assert!(
        response
            .body
            .starts_with(&format!("Howdy from {} v2 on", app.name)),
        "{response:?}"
    );
    let releases: BTreeSet<u32> = agent
        .instances(&app.name)
        .iter()
        .map(|i| i.release)
        .collect();
    assert_eq!(releases, BTreeSet::from([2]));
}

#[test]
fn a_failing_release_is_rejected_and_the_previous_one_keeps_serving() {
    let app = TestApp::new("rt-fail");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    agent.deploy(&app.name, &app.spec(1, 2));
    let before = app.running();

    // A process that exits at once.
    let mut crashing = app.spec(2, 2);
    crashing.processes.get_mut("web").unwrap().command =
        Some("echo 'booting v2'; echo 'fatal: no database' >&2; exit 3".to_owned());
    let events = agent.put(&app.name, &crashing);
    match events.last() {
        Some(RolloutEvent::Failed { reason, logs }) => {
            assert!(reason.contains("exited with code 3"), "{reason}");
            assert!(logs.iter().any(|l| l == "fatal: no database"), "{logs:?}");
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(app.running(), before, "v1 untouched, v2 removed");
    assert!(
        traefik
            .get(&app.name, "/")
            .unwrap()
            .body
            .contains(" v1 on "),
        "v1 still answers"
    );

    // A process that runs but never listens on $PORT.
    let mut deaf = app.spec(3, 1);
    deaf.processes.get_mut("web").unwrap().command =
        Some("echo 'listening elsewhere'; exec sleep 100000".to_owned());
    let events = agent.put(&app.name, &deaf);
    match events.last() {
        Some(RolloutEvent::Failed { reason, logs }) => {
            // Heroku's R10: the reason says what the process must do.
            assert!(
                reason.contains("failed to bind to $PORT")
                    && reason.contains("must listen on $PORT"),
                "{reason}"
            );
            assert_eq!(logs, &["listening elsewhere"]);
        }
        other => panic!("expected a failure, got {other:?}"),
    }
    assert_eq!(app.running(), before);
    let names: BTreeSet<String> = agent
        .instances(&app.name)
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            format!("paas-{}-v1-web-1", app.name),
            format!("paas-{}-v1-web-2", app.name)
        ]),
        "old containers keep their names"
    );
    let response = traefik.get(&app.name, "/").unwrap();
    assert_eq!(response.status, 200);
    assert!(response.body.contains(" v1 on "), "{response:?}");
}

#[test]
fn crashed_containers_come_back_and_agent_restarts_change_nothing() {
    let app = TestApp::new("rt-crash");
    let traefik = Traefik::start();
    let mut agent = Agent::start(&traefik);
    let spec = app.spec(1, 2);
    agent.deploy(&app.name, &spec);
    let before = agent.instances(&app.name);

    agent.restart();
    assert_eq!(
        agent.instances(&app.name),
        before,
        "same ids, same start times"
    );
    let events = agent.deploy(&app.name, &spec);
    assert!(
        lines(&events)[0].starts_with("Nothing to change"),
        "{events:?}"
    );
    assert_eq!(agent.instances(&app.name), before);

    // `docker kill` counts as a manual stop for Docker's restart policy; the agent's
    // supervisor starts the container again and Traefik routes to it once it is healthy.
    let victim = &before[0];
    let first_start = inspect(&victim.container_id)["State"]["StartedAt"].clone();
    docker(&["kill", &victim.container_id]);
    wait_for(
        "the killed container to be running and healthy again",
        || {
            let details = inspect(&victim.container_id);
            let healthy = details["State"]["Health"]["Status"] == "healthy";
            (healthy && details["State"]["StartedAt"] != first_start).then_some(())
        },
    );
    let host = victim.container_id[..12].to_owned();
    wait_for("the restarted container to answer through Traefik", || {
        let response = traefik.get(&app.name, "/").ok()?;
        (served_by(&response.body) == host).then_some(())
    });
    let after = agent.instances(&app.name);
    assert_eq!(after.len(), 2);
    assert!(after.iter().any(|i| i.container_id == victim.container_id));
}

#[test]
fn apps_cannot_reach_each_other() {
    let app_a = TestApp::new("rt-iso-a");
    let app_b = TestApp::new("rt-iso-b");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    agent.deploy(&app_a.name, &app_a.spec(1, 2));
    agent.deploy(&app_b.name, &app_b.spec(1, 1));

    let ip_of = |name: &str, app: &str| -> String {
        let details = inspect(name);
        details["NetworkSettings"]["Networks"][format!("paas-app-{app}")]["IPAddress"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let a1 = format!("paas-{}-v1-web-1", app_a.name);
    let a2_ip = ip_of(&format!("paas-{}-v1-web-2", app_a.name), &app_a.name);
    let b1_ip = ip_of(&format!("paas-{}-v1-web-1", app_b.name), &app_b.name);
    // The image's own busybox; `timeout` bounds a connection the firewall drops silently.
    let fetch = |ip: &str| {
        Command::new("docker")
            .args([
                "exec", &a1, "timeout", "-s", "KILL", "5", "wget", "-q", "-O", "-",
            ])
            .arg(format!("http://{ip}:5000/"))
            .output()
            .unwrap()
    };
    let sibling = fetch(&a2_ip);
    assert!(sibling.status.success(), "{sibling:?}");
    assert!(String::from_utf8_lossy(&sibling.stdout).contains(&app_a.name));
    let other = fetch(&b1_ip);
    assert!(!other.status.success(), "app A reached app B: {other:?}");
    // B itself is up and reachable by Traefik on the host.
    assert!(
        traefik
            .get(&app_b.name, "/")
            .unwrap()
            .body
            .contains(&app_b.name)
    );
}

#[test]
fn removal_takes_containers_network_and_images() {
    let app = TestApp::new("rt-gone");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    agent.deploy(&app.name, &app.spec(1, 2));
    let response = agent
        .request(reqwest::Method::DELETE, &format!("/v1/apps/{}", app.name))
        .send()
        .unwrap();
    assert_eq!(response.status(), 204);
    let leftovers = docker(&[
        "ps",
        "-aq",
        "--filter",
        &format!("label=paas.app={}", app.name),
    ]);
    assert_eq!(leftovers, "");
    let networks = docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        &format!("name=paas-app-{}", app.name),
    ]);
    assert_eq!(networks, "");
    let images = docker(&["images", "-q", &format!("paas/{}", app.name)]);
    assert_eq!(images, "");
    assert!(agent.instances(&app.name).is_empty());
    assert_eq!(traefik.get(&app.name, "/").unwrap().status, 404);
}

#[test]
fn bad_requests_are_refused_and_change_nothing() {
    let app = TestApp::new("rt-bad");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    agent.deploy(&app.name, &app.spec(1, 1));
    let before = app.running();

    let unauthenticated = http_client()
        .put(format!("{}/v1/apps/{}", agent.url, app.name))
        .json(&app.spec(2, 1))
        .send()
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    let mut injected = app.spec(2, 1);
    injected.domains = vec!["x.com`) || PathPrefix(`/".to_owned()];
    let mut too_many = app.spec(2, 1);
    too_many.processes.get_mut("web").unwrap().quantity = 101;
    let mut shell = serde_json::to_value(app.spec(2, 1)).unwrap();
    shell["health_check_path"] = "/'; reboot; '".into();
    for (body, expected) in [
        (serde_json::to_string(&injected).unwrap(), "invalid domain"),
        (
            serde_json::to_string(&too_many).unwrap(),
            "over the limit of 100",
        ),
        (
            serde_json::to_string(&shell).unwrap(),
            "invalid health check path",
        ),
        ("{\"release\":".to_owned(), "invalid app spec"),
    ] {
        let response = agent
            .request(reqwest::Method::PUT, &format!("/v1/apps/{}", app.name))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(response.status(), 400);
        let error: Value = response.json().unwrap();
        assert_eq!(error["error"]["code"], "invalid_input");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{message}");
    }
    let response = agent
        .request(reqwest::Method::GET, "/v1/apps/Not_An_App/instances")
        .send()
        .unwrap();
    // One path rule for gitd and the agent: a name that cannot be an app is no app (404).
    assert_eq!(response.status(), 404);
    assert_eq!(app.running(), before);
}

#[test]
fn rollouts_restarts_domain_changes_and_scale_down_drop_no_requests() {
    let app = TestApp::new("rt-zero");
    let traefik = Traefik::start();
    let agent = Agent::start(&traefik);
    agent.deploy(&app.name, &app.spec(1, 3));

    let load = LoadLoop::start(
        &traefik.web,
        &format!("{}.{DOMAIN}", app.name),
        MIN_LOAD_REQUESTS,
        |body| body.starts_with("Hello from"),
    );

    let mut ids = app.running();
    for release in 2..=4 {
        agent.deploy(&app.name, &app.spec(release, 3));
        let now = app.running();
        assert!(now.is_disjoint(&ids), "v{release} replaced every container");
        ids = now;
    }
    let events = agent.restart_app(&app.name, Some("web"));
    assert_eq!(events.last(), Some(&RolloutEvent::Done), "{events:?}");
    let restarted = app.running();
    assert!(
        restarted.is_disjoint(&ids),
        "restart replaced every container"
    );
    assert_eq!(restarted.len(), 3);
    // A custom domain changes the web containers' routing labels, so they roll again.
    let mut with_domain = app.spec(4, 3);
    with_domain.domains = vec![format!("www.{}.test", app.name)];
    agent.deploy(&app.name, &with_domain);
    assert!(app.running().is_disjoint(&restarted));
    let custom = http_get(&traefik.web, &with_domain.domains[0], "/").unwrap();
    assert_eq!(custom.status, 200, "{custom:?}");
    assert!(custom.body.starts_with("Hello from"), "{custom:?}");

    with_domain.processes.get_mut("web").unwrap().quantity = 1;
    agent.deploy(&app.name, &with_domain);
    assert_eq!(app.running().len(), 1);

    load.finish("3 rollouts, a restart, a domain change and a scale-down");
    let names: Vec<String> = agent
        .instances(&app.name)
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names, [format!("paas-{}-v4-web-1", app.name)]);
}

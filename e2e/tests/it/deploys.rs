//! Issue 4 end to end, the way a user does it: the real `paas` CLI and real `git push` over SSH
//! to a real gitd, whose agent runs the app in Docker behind a real Traefik. Pushes go live,
//! `scale` and `config:set` roll out, a release that fails its check is rejected while the old
//! one keeps serving, crashed containers come back, agent restarts change nothing, apps cannot
//! reach each other, and a load loop sees no failed request across redeploys and scaling.

use std::collections::BTreeSet;

use crate::local_cluster::SHARED_NAME;
use crate::platform::{DOMAIN, Engine, LoadLoop, Platform, docker_lines, served_by};
use crate::util::wait_for;
use crate::util::{commit_files, hello_repo};

/// Requests the load loop makes at least (the bar).
const MIN_LOAD_REQUESTS: usize = 2_000;

/// Pushes and asserts the push went live.
#[track_caller]
fn deploy(platform: &Platform, app: &str, repo: &std::path::Path) -> String {
    let pushed = platform.push(app, repo);
    assert_eq!(
        pushed.code,
        Some(0),
        "push failed:\n{pushed}\n{}",
        platform.logs()
    );
    pushed.stderr
}

/// The app's running web containers once there are `count`: at once on one host, where a
/// change ends with the old containers removed; on Swarm a retired web task goes on serving
/// for a few seconds after the change (`DRAIN_SECS`), so they are waited for.
#[track_caller]
fn web_containers(platform: &Platform, engine: Engine, app: &str, count: usize) -> Vec<String> {
    match engine {
        Engine::Docker => {
            let webs = platform.containers(app, "web");
            assert_eq!(webs.len(), count, "{webs:?}");
            webs
        }
        Engine::Swarm => wait_for(&format!("{count} web containers of {app}"), || {
            Some(platform.containers(app, "web")).filter(|webs| webs.len() == count)
        }),
    }
}

fn a_push_goes_live_then_scales_reconfigures_and_restarts(engine: Engine) {
    let platform = Platform::start_on(engine);
    let app = platform.create_app("live");
    let repo = hello_repo();

    let output = deploy(&platform, &app, repo.path());
    let url = platform.web_url(&app);
    let started = match engine {
        Engine::Docker => format!("remote: -----> Starting web.1 (paas-{app}-v1-web-1)… healthy"),
        Engine::Swarm => "remote: -----> Creating the web service: 1 task(s)".to_owned(),
    };
    for expected in [
        "remote: -----> Launching v1: web=1".to_owned(),
        started,
        format!("remote: =====> Application deployed: {url}"),
    ] {
        assert!(
            output.contains(&expected),
            "{expected:?} missing:\n{output}"
        );
    }
    // Deployed means routed: the first request is served by v1.
    let first = platform.get(&app, "/").unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    assert!(
        first.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{first:?}"
    );
    let info = platform
        .paas(&["apps:info", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(info["web_url"], url.as_str());
    assert_eq!(info["current_release"], 1);
    assert_eq!(info["formation"]["web"], 1);

    let ps = platform.paas(&["ps", "-a", &app]).success();
    // As on Heroku: the size and the command in the header (`=== web (Basic): cmd (1)`).
    assert!(
        ps.stdout
            .starts_with("=== web (512M): httpd -f -p ${PORT:-5000} -h /www (1)\nweb.1: up "),
        "{ps}"
    );
    // On a cluster each instance names its node: `… ago) on paassuite-2  v1`.
    let placed = match engine {
        Engine::Docker => "ago)  v1".to_owned(),
        Engine::Swarm => format!("ago) on {SHARED_NAME}-"),
    };
    assert!(ps.stdout.contains(&placed), "{ps}");
    assert!(ps.stdout.trim_end().ends_with("  v1"), "{ps}");

    // web=3: three containers, and Traefik spreads requests over all of them.
    let scaled = platform.paas(&["scale", "web=3", "-a", &app]).success();
    assert!(
        scaled.stderr.contains("... done, now running web at 3"),
        "{scaled}"
    );
    let webs = web_containers(&platform, engine, &app, 3);
    let hosts: BTreeSet<String> = webs.iter().map(|id| id[..12].to_owned()).collect();
    let mut seen = BTreeSet::new();
    wait_for("requests to reach all three web containers", || {
        let answer = platform.get(&app, "/").ok()?;
        assert_eq!(answer.status, 200, "{answer:?}");
        seen.insert(served_by(&answer.body));
        (seen == hosts).then_some(())
    });
    let listed = platform
        .paas(&["ps", "-a", &app, "--json"])
        .success()
        .json();
    let states: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["up", "up", "up"], "{listed}");

    // Relative changes and back to one: two retire, behind a spinner on a terminal.
    let terminal = platform
        .cli
        .cmd(&["ps:scale", "web-2", "-a", &app])
        .env("NO_COLOR", "1")
        .spawn_in_terminal()
        .finish()
        .success();
    assert!(
        terminal.stdout.contains(&format!(
            "Scaling processes of ⬢ {app}... done, now running web at 1"
        )),
        "{terminal}"
    );
    assert!(
        terminal.stdout.chars().any(|c| "⠁⠂⠄⡀⢀⠠⠐⠈".contains(c)),
        "a spinner while waiting: {terminal}"
    );
    web_containers(&platform, engine, &app, 1);
    let info = platform
        .paas(&["apps:info", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(info["formation"]["web"], 1);

    // Bad scale input: one clear line, nothing changes, no release.
    platform
        .paas(&["scale", "wrker=2", "-a", &app])
        .error("unknown process type \"wrker\"; this app has: web");
    platform
        .paas(&["scale", "web=101", "-a", &app])
        .error("the range is 0 to 100");
    platform.paas(&["scale", "web", "-a", &app]).error("web=3");
    web_containers(&platform, engine, &app, 1);

    // New config is served by a new release.
    platform
        .paas(&["config:set", "GREETING=Howdy", "-a", &app])
        .success();
    let answer = platform.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Howdy from {app} v2 on ")),
        "{answer:?}"
    );

    // A restart replaces the container and keeps serving.
    let before = web_containers(&platform, engine, &app, 1);
    platform.paas(&["restart", "web", "-a", &app]).success();
    let after = web_containers(&platform, engine, &app, 1);
    assert_ne!(before, after);
    platform.wait_for_body(&app, "Howdy from");
    platform
        .paas(&["restart", "nope", "-a", &app])
        .error("unknown process type \"nope\"");

    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(releases.as_array().unwrap().len(), 2, "{releases}");
}
on_each_engine!(a_push_goes_live_then_scales_reconfigures_and_restarts);

fn a_release_that_fails_its_check_is_rejected_and_the_old_one_keeps_serving(engine: Engine) {
    let platform = Platform::start_on(engine);
    let app = platform.create_app("broken");
    let repo = hello_repo();
    deploy(&platform, &app, repo.path());

    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: echo 'booting the broken release' && echo 'fatal: no database' && exit 3\n",
        )],
        "break it",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(
        pushed.code,
        Some(0),
        "the push should be rejected:\n{pushed}"
    );
    for expected in [
        "Last log lines of the failed container",
        "fatal: no database",
        "Release v2 failed to start",
        "[remote rejected]",
    ] {
        assert!(
            pushed.stderr.contains(expected),
            "{expected:?} missing:\n{pushed}"
        );
    }
    let answer = platform.get(&app, "/").unwrap();
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{answer:?}"
    );
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    let statuses: Vec<(u64, &str)> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(statuses, [(2, "failed"), (1, "succeeded")]);

    // A config change whose rollout fails is refused and changes no config var.
    // What the rollout waited for is shown first, the error last.
    let refused = platform.paas(&["config:set", "PAAS_HEALTH_CHECK_PATH=/missing", "-a", &app]);
    assert_eq!(refused.code, Some(1), "{refused}");
    let (error, waits) = refused
        .stderr
        .trim_end()
        .lines()
        .collect::<Vec<_>>()
        .split_last()
        .map(|(last, rest)| (*last, rest.to_vec()))
        .unwrap_or_default();
    assert!(
        error.starts_with("error: ")
            && error.contains("failed to start; the config vars were not changed"),
        "{refused}"
    );
    // On Swarm the wait is for the service's tasks, and Swarm's own progress is told too.
    let progress: &[&str] = match engine {
        Engine::Docker => &["Waiting for web.1 to answer on $PORT ("],
        Engine::Swarm => &["Waiting for web (1 task(s)) to start (", "web: "],
    };
    assert!(
        waits
            .iter()
            .all(|line| progress.iter().any(|start| line.starts_with(start))),
        "{refused}"
    );
    let config = platform
        .paas(&["config", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(config, serde_json::json!({}));
    platform.wait_for_body(&app, &format!("Hello from {app} v1"));
}
on_each_engine!(a_release_that_fails_its_check_is_rejected_and_the_old_one_keeps_serving);

#[test]
fn crashed_containers_come_back_and_agent_restarts_change_nothing() {
    let mut platform = Platform::start();
    let app = platform.create_app("sturdy");
    deploy(&platform, &app, hello_repo().path());

    let killed = platform.containers(&app, "web");
    assert_eq!(killed.len(), 1);
    let state = |id: &str| {
        docker_lines(&[
            "inspect",
            "--format",
            "{{.State.StartedAt}} {{.State.Health.Status}}",
            id,
        ])
        .join("")
    };
    let first_start = state(&killed[0]);
    docker_lines(&["kill", &killed[0]]);
    wait_for("the killed container to run and be healthy again", || {
        let now = state(&killed[0]);
        (now != first_start && now.ends_with(" healthy")).then_some(())
    });
    let host = killed[0][..12].to_owned();
    wait_for("the restarted container to answer through Traefik", || {
        let answer = platform.get(&app, "/").ok()?;
        (answer.status == 200 && served_by(&answer.body) == host).then_some(())
    });

    let running = platform.containers(&app, "web");
    platform.agent_mut().restart();
    assert_eq!(platform.containers(&app, "web"), running);
    let answer = platform.get(&app, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(ps.stdout.contains("web.1: up "), "{ps}");
    assert_eq!(platform.containers(&app, "web"), running);
}

#[test]
fn apps_are_isolated_and_destroy_removes_containers_and_images() {
    let mut platform = Platform::start();
    let first = platform.create_app("one");
    let second = platform.create_app("two");
    let repo = hello_repo();
    deploy(&platform, &first, repo.path());
    deploy(&platform, &second, repo.path());
    platform.wait_for_body(&first, &format!("Hello from {first} v1"));
    platform.wait_for_body(&second, &format!("Hello from {second} v1"));

    // From inside the first app, the second one's container is unreachable.
    let first_web = &platform.containers(&first, "web")[0];
    let second_web = &platform.containers(&second, "web")[0];
    let second_ip = docker_lines(&[
        "inspect",
        "--format",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        second_web,
    ])
    .join("");
    assert!(!second_ip.is_empty());
    // The image's busybox; `timeout` bounds a connection the firewall drops silently (its
    // wget's own `-T` crashes).
    let fetch_from_first = |url: &str| {
        std::process::Command::new("docker")
            .args([
                "exec", first_web, "timeout", "-s", "KILL", "5", "wget", "-q", "-O", "-", url,
            ])
            .output()
            .unwrap()
    };
    let probe = fetch_from_first(&format!("http://{second_ip}:5000/"));
    assert!(
        !probe.status.success(),
        "{first} reached {second}: {}",
        String::from_utf8_lossy(&probe.stdout)
    );
    // The same probe within an app works, so the failure above is isolation, not the probe.
    let own = fetch_from_first("http://127.0.0.1:5000/");
    assert!(own.status.success(), "{own:?}");
    assert!(String::from_utf8_lossy(&own.stdout).contains(&first));

    // Without the agent nothing can be removed, so nothing is.
    platform.agent_mut().stop();
    platform
        .paas(&["apps:destroy", &second, "--confirm", &second])
        .error("Could not remove");
    platform.paas(&["apps:info", "-a", &second]).success();
    assert_eq!(platform.containers(&second, "web").len(), 1);
    platform.agent_mut().resume();

    platform
        .paas(&["apps:destroy", &second, "--confirm", &second])
        .success();
    assert!(
        docker_lines(&["ps", "-aq", "--filter", &format!("label=paas.app={second}")]).is_empty()
    );
    assert!(
        docker_lines(&["image", "ls", "-q", &format!("paas/{second}")]).is_empty(),
        "the app's images are gone"
    );
    let gone = platform.get(&second, "/").unwrap();
    assert_eq!(gone.status, 404, "{gone:?}");
    platform.wait_for_body(&first, &format!("Hello from {first} v1"));
}

fn no_request_fails_across_redeploys_and_scaling(engine: Engine) {
    let platform = Platform::start_on(engine);
    let app = platform.create_app("steady");
    let repo = hello_repo();
    deploy(&platform, &app, repo.path());

    let load = LoadLoop::start(
        &platform.router(),
        &format!("{app}.{DOMAIN}"),
        MIN_LOAD_REQUESTS,
        |body| body.contains(" from "),
    );

    for round in 2..=4 {
        commit_files(
            repo.path(),
            &[("www/round.txt", &format!("{round}\n"))],
            &format!("round {round}"),
        );
        deploy(&platform, &app, repo.path());
        platform.wait_for_body(&app, &format!("Hello from {app} v{round}"));
    }
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    web_containers(&platform, engine, &app, 3);
    platform.paas(&["scale", "web=1", "-a", &app]).success();
    web_containers(&platform, engine, &app, 1);

    load.finish("3 redeploys and web=3 → web=1");
}
on_each_engine!(no_request_fails_across_redeploys_and_scaling);

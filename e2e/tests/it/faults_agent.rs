//! Faults around the agent, through the real platform (gitd, the agent, Docker, Traefik, git
//! over SSH): instances killed or removed while the agent was down come back when it starts,
//! Docker's restart policy brings a crashed process back while the agent is down, `paas
//! restart` and `paas scale` bring back an app whose instances are all dead, an agent killed
//! with SIGKILL in the middle of a rollout finishes or undoes it when it comes back, and every
//! app serves again after dockerd restarts, its add-on's rows kept and reachable.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::addons::{
    Cleanup, addon_container, config_var, postgres_answer, psql, query_when_up, web,
};
use crate::platform::{Platform, docker, docker_lines, ensure_addon_images};
use crate::util::{ADMIN_USER, commit_files, git_command, hello_repo, wait_for, workspace_root};

/// A `git push` of `repo` to `app` running in the background.
fn push_in_background(platform: &Platform, app: &str, repo: &Path) -> Child {
    git_command(repo, &platform.key, platform.gitd.ssh_addr.port())
        .args(["push", &platform.git_url(app), "HEAD:main"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// One `web` container of an app, whatever its state.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Web {
    release: String,
    name: String,
    id: String,
    state: String,
}

/// Every `web` container of `app` Docker knows, running or not.
fn webs(app: &str) -> Vec<Web> {
    let mut webs: Vec<Web> = docker_lines(&[
        "ps",
        "-a",
        "--no-trunc",
        "--filter",
        &format!("label=paas.app={app}"),
        "--filter",
        "label=paas.process=web",
        "--format",
        "{{.Label \"paas.release\"}} {{.Names}} {{.ID}} {{.State}}",
    ])
    .iter()
    .map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        Web {
            release: fields[0].to_owned(),
            name: fields[1].to_owned(),
            id: fields[2].to_owned(),
            state: fields[3].to_owned(),
        }
    })
    .collect();
    webs.sort();
    webs
}

/// The releases of `app`'s `web` containers, whatever their state.
fn releases(app: &str) -> BTreeSet<String> {
    webs(app).into_iter().map(|web| web.release).collect()
}

/// Polls until `app` runs exactly `count` web containers of `release` and nothing else, all
/// running, and answers as that release through Traefik.
fn wait_for_only(platform: &Platform, app: &str, release: &str, count: usize) {
    assert_eq!(wait_for_one_release(platform, app, count), release);
}

/// Polls until every web container of `app` is of one release, running, `count` of them, and
/// the app answers as that release through Traefik; returns the release.
fn wait_for_one_release(platform: &Platform, app: &str, count: usize) -> String {
    let release = wait_for(
        &format!("{app} to run {count} web container(s) of one release only"),
        || {
            let webs = webs(app);
            let releases: BTreeSet<&str> = webs.iter().map(|web| web.release.as_str()).collect();
            let settled = webs.len() == count
                && releases.len() == 1
                && webs.iter().all(|web| web.state == "running");
            settled.then(|| webs[0].release.clone())
        },
    );
    platform.wait_for_body(app, &format!("Hello from {app} {release} on "));
    release
}

/// Stops the agent, kills every web container of `app`, forgets the agent's desired state
/// (as an agent upgraded from one that kept none would have it) and starts the agent again:
/// nothing brings the instances back by itself, the app answers 404.
fn kill_every_instance_behind_the_agents_back(platform: &mut Platform, app: &str) {
    let running = platform.containers(app, "web");
    assert!(!running.is_empty());
    platform.agent_mut().stop();
    for id in &running {
        docker(&["kill", id]);
    }
    std::fs::remove_dir_all(platform.agent().state_dir()).unwrap();
    platform.agent_mut().resume();
    assert_eq!(platform.containers(app, "web"), Vec::<String>::new());
    wait_for(&format!("{app} to answer 404"), || {
        (platform.get(app, "/").ok()?.status == 404).then_some(())
    });
}

#[test]
fn restart_and_scale_bring_back_an_app_whose_instances_are_all_dead() {
    let mut platform = Platform::start();
    let app = platform.create_app("all-dead");
    platform.deploy(&app, hello_repo().path());
    platform.wait_for_body(&app, "Hello from");

    kill_every_instance_behind_the_agents_back(&mut platform, &app);
    platform.paas(&["restart", "-a", &app]).success();
    wait_for_only(&platform, &app, "v1", 1);

    // The same quantity starts the missing instance.
    kill_every_instance_behind_the_agents_back(&mut platform, &app);
    platform.paas(&["scale", "web=1", "-a", &app]).success();
    wait_for_only(&platform, &app, "v1", 1);

    // Up from none running, and down again.
    kill_every_instance_behind_the_agents_back(&mut platform, &app);
    platform.paas(&["scale", "web=2", "-a", &app]).success();
    wait_for_only(&platform, &app, "v1", 2);
    platform.paas(&["scale", "web=1", "-a", &app]).success();
    wait_for_only(&platform, &app, "v1", 1);
    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(ps.stdout.contains("web.1: up "), "{ps}");
}

#[test]
fn the_agent_converges_on_start_and_docker_restarts_crashed_processes_meanwhile() {
    let mut platform = Platform::start();
    let app = platform.create_app("converge");
    platform.deploy(&app, hello_repo().path());
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    wait_for_only(&platform, &app, "v1", 3);
    let before = webs(&app);

    // A process that crashes while the agent is down: Docker's restart policy brings it back.
    platform.agent_mut().stop();
    let crashed = &before[2];
    // The exec may end with an error: its container dies under it.
    docker_lines(&[
        "exec",
        &crashed.id,
        "/.paas/busybox",
        "sh",
        "-c",
        "kill -9 $(/.paas/busybox pidof httpd)",
    ]);
    wait_for("Docker to restart the crashed container", || {
        let details = docker(&[
            "inspect",
            "--format",
            "{{.RestartCount}} {{.State.Status}}",
            &crashed.id,
        ]);
        (details != "0 running" && details.ends_with(" running")).then_some(())
    });

    // Killed (a manual stop: no restart policy brings it back) and removed while it is down.
    let killed = &before[0];
    let removed = &before[1];
    docker(&["kill", &killed.id]);
    docker(&["rm", "-f", &removed.id]);
    platform.agent_mut().resume();

    wait_for_only(&platform, &app, "v1", 3);
    let after = webs(&app);
    let names = |webs: &[Web]| webs.iter().map(|w| w.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&after), names(&before));
    assert_eq!(after[0].id, killed.id, "started again in place");
    assert_ne!(after[1].id, removed.id, "created again");
    assert_eq!(after[2].id, crashed.id);
    // Every instance is routed again.
    let hosts: BTreeSet<String> = after.iter().map(|w| w.id[..12].to_owned()).collect();
    let mut seen = BTreeSet::new();
    wait_for("requests to reach all three instances", || {
        let answer = platform.get(&app, "/").ok()?;
        seen.insert(crate::platform::served_by(&answer.body));
        (seen == hosts).then_some(())
    });

    // An agent restart with everything in place changes nothing.
    platform.agent_mut().restart();
    assert_eq!(webs(&app), after);
}

/// Whether `id`'s health check has been told to fail (the agent is draining it).
fn is_draining(id: &str) -> bool {
    Command::new("docker")
        .args([
            "exec",
            id,
            "/.paas/busybox",
            "test",
            "-e",
            "/tmp/.paas-drain",
        ])
        .status()
        .is_ok_and(|status| status.success())
}

#[test]
fn an_agent_killed_mid_rollout_finishes_or_undoes_it() {
    let mut platform = Platform::start();
    let app = platform.create_app("midroll");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    wait_for_only(&platform, &app, "v1", 1);

    // Killed while the new instance is starting (it takes a while to listen): undone, the
    // old release alone serves, and the push fails.
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: sleep 5; exec httpd -f -p ${PORT:-5000} -h /www\n",
        )],
        "slow start",
    );
    let mut push = push_in_background(&platform, &app, repo.path());
    wait_for("the new release's container to exist", || {
        releases(&app).contains("v2").then_some(())
    });
    platform.agent_mut().stop();
    assert!(!push.wait().unwrap().success(), "the cut-off push failed");
    platform.agent_mut().resume();
    wait_for_only(&platform, &app, "v1", 1);

    // Killed after the new instance serves, while the old one drains: finished, the new
    // release alone serves.
    commit_files(
        repo.path(),
        &[("Procfile", "web: exec httpd -f -p ${PORT:-5000} -h /www\n")],
        "fast start",
    );
    let old = platform.containers(&app, "web");
    assert_eq!(old.len(), 1);
    let mut push = push_in_background(&platform, &app, repo.path());
    wait_for("the old release to be draining", || {
        is_draining(&old[0]).then_some(())
    });
    platform.agent_mut().stop();
    let _ = push.wait();
    platform.agent_mut().resume();
    let finished = wait_for_one_release(&platform, &app, 1);
    assert_ne!(finished, "v1", "the rollout was finished");

    // The next push goes live as usual.
    commit_files(repo.path(), &[("www/extra.txt", "x\n")], "next");
    platform.deploy(&app, repo.path());
    let next = wait_for_one_release(&platform, &app, 1);
    assert_ne!(next, finished);
}

/// Restarts dockerd as `scripts/lib/docker.sh` starts it; dropping it (also when the test
/// failed) starts dockerd again if it is not answering.
struct DockerdRestart;

/// Where dockerd writes its pid unless told otherwise (`--pidfile`).
const DOCKERD_PID_FILE: &str = "/var/run/docker.pid";

impl DockerdRestart {
    fn run() -> DockerdRestart {
        let guard = DockerdRestart;
        let answered = docker_lines(&["info", "--format", "{{.ID}}"]);
        assert!(!answered.is_empty(), "dockerd answers before the restart");
        // This machine's own dockerd, by its default pid file: the nodes of a local Swarm
        // cluster are dockerds too (each with a pid file of its own), and must stay up.
        let dockerd = std::fs::read_to_string(DOCKERD_PID_FILE)
            .unwrap_or_else(|err| panic!("{DOCKERD_PID_FILE}: {err}"));
        let dockerd = dockerd.trim().to_owned();
        assert!(
            Path::new(&format!("/proc/{dockerd}")).exists(),
            "dockerd {dockerd} runs on this host"
        );
        let stopped = Command::new("kill")
            .args(["-TERM", &dockerd])
            .status()
            .unwrap();
        assert!(stopped.success(), "SIGTERM to dockerd {dockerd}");
        wait_for("dockerd to exit", || {
            (!Path::new(&format!("/proc/{dockerd}")).exists()).then_some(())
        });
        start_dockerd();
        guard
    }
}

/// Starts dockerd unless it answers. Its output goes to its own log (`PAAS_DOCKERD_LOG`);
/// nothing of the test's is handed to the daemon, which outlives the test.
fn start_dockerd() {
    let started = Command::new("bash")
        .args(["-c", "source scripts/lib/docker.sh && ensure_docker"])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(
        started.success(),
        "dockerd did not start again; see /var/log/paas-dockerd.log"
    );
}

impl Drop for DockerdRestart {
    fn drop(&mut self) {
        start_dockerd();
    }
}

#[test]
fn every_app_serves_again_after_dockerd_restarts() {
    let platform = Platform::start();
    let apps = [
        platform.create_app("dockerd-a"),
        platform.create_app("dockerd-b"),
    ];
    for app in &apps {
        platform.deploy(app, hello_repo().path());
        wait_for_only(&platform, app, "v1", 1);
    }
    platform.paas(&["scale", "web=2", "-a", &apps[1]]).success();
    wait_for_only(&platform, &apps[1], "v1", 2);
    // An add-on of the first app, with a row written, goes down with dockerd too.
    ensure_addon_images();
    let name = format!("db-dockerd-{}", std::process::id());
    let addon = addon_container(ADMIN_USER, &name);
    let _cleanup = Cleanup(vec![addon.clone()]);
    platform
        .paas(&["addons:create", "postgres", "-a", &apps[0], "--name", &name])
        .success();
    wait_for_only(&platform, &apps[0], "v2", 1);
    let url = config_var(&platform, &apps[0], "DATABASE_URL").expect("DATABASE_URL is set");
    psql(
        &addon,
        &url,
        "CREATE TABLE kept (body text); INSERT INTO kept VALUES ('row')",
    );

    let _dockerd = DockerdRestart::run();
    wait_for_only(&platform, &apps[0], "v2", 1);
    wait_for_only(&platform, &apps[1], "v1", 2);
    assert_eq!(query_when_up(&addon, &url, "SELECT body FROM kept"), "row");
    assert_eq!(
        postgres_answer(&web(&platform, &apps[0]), &name),
        "N",
        "the app reaches its add-on by name again"
    );
    // The agent keeps working with the engine it reconnected to.
    platform.paas(&["scale", "web=1", "-a", &apps[1]]).success();
    wait_for_only(&platform, &apps[1], "v1", 1);
}

//! What a rollout runs and shows while it waits, end to end: a release whose web never listens
//! starts none of its workers (its push is rejected with Heroku's R10 words, no container of
//! it remains, its worker never wrote a line, the old release keeps serving), and a web that
//! takes a few seconds to listen is `starting` in `paas ps` until it serves, then `up`; while
//! it starts, `git push` and `paas config:set` say what they wait for and relay what it prints.

use std::io::Read;

use crate::platform::{Platform, Traefik, docker_lines, ensure_prerequisites};
use crate::util::{commit_files, hello_repo, wait_for};

const WEB: &str = "web: exec httpd -f -p ${PORT:-5000} -h /www\n";

/// Every container of `app`'s `process`, stopped ones too, as `name`.
fn all_containers(app: &str, process: &str) -> Vec<String> {
    docker_lines(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        &format!("label=paas.app={app}"),
        "--filter",
        &format!("label=paas.process={process}"),
    ])
}

#[test]
fn a_release_whose_web_never_listens_runs_none_of_its_workers() {
    let platform = Platform::start();
    let app = platform.create_app("workers");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            &format!("{WEB}worker: echo old worker up; exec sleep 3600\n"),
        )],
        "web and worker",
    );
    platform.deploy(&app, repo.path());
    platform.paas(&["scale", "worker=1", "-a", &app]).success();
    let workers = all_containers(&app, "worker");
    assert_eq!(workers.len(), 1, "{workers:?}");

    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: exec sleep 3600\nworker: echo new worker ran; exec sleep 3600\n",
        )],
        "a web that never listens",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("Web process failed to bind to $PORT within"),
        "{pushed}"
    );
    assert!(pushed.stderr.contains("must listen on $PORT"), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("-----> Waiting for web.1 to answer on $PORT ("),
        "the wait was shown before it failed: {pushed}"
    );
    assert_eq!(
        all_containers(&app, "worker"),
        workers,
        "no worker of the rejected release exists"
    );
    let webs = all_containers(&app, "web");
    assert_eq!(webs.len(), 1, "only the old web remains: {webs:?}");
    let logs = platform.paas(&["logs", "-a", &app, "-n", "1500"]).success();
    assert!(!logs.stdout.contains("new worker ran"), "{logs}");
    assert!(!pushed.stderr.contains("new worker ran"), "{pushed}");
    let answer = platform.get(&app, "/").unwrap();
    assert_eq!(
        answer.status, 200,
        "the old release keeps serving: {answer:?}"
    );
}

#[test]
fn a_slow_but_healthy_web_is_starting_until_it_serves() {
    let platform = Platform::start();
    let app = platform.create_app("slow");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: echo warming up; sleep 5; exec httpd -f -p ${PORT:-5000} -h /www\n",
        )],
        "a web that listens after five seconds",
    );
    let mut push = platform.spawn_push(&app, repo.path());
    let states = |app: &str| -> Vec<(u64, String)> {
        let listed = platform.paas(&["ps", "-a", app, "--json"]).success().json();
        listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["process"] == "web")
            .map(|i| {
                (
                    i["release"].as_u64().unwrap_or_default(),
                    i["state"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    };
    let seen = wait_for("a web of the new release in ps", || {
        let states = states(&app);
        states
            .iter()
            .find(|(release, _)| *release > 1)
            .map(|(_, state)| state.clone())
    });
    assert_eq!(seen, "starting", "while it does not listen yet");
    let status = push.wait().unwrap();
    let mut stderr = String::new();
    push.stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "{stderr}");
    let up = wait_for("the new web alone and up", || {
        let states = states(&app);
        (states.len() == 1 && states[0].0 > 1).then_some(states)
    });
    assert_eq!(up[0].1, "up", "{up:?}");
}

/// The seconds waited of every `Waiting for web.1 to answer on $PORT (N s of 60 s)` line.
fn answer_waits(output: &str) -> Vec<u64> {
    const WAIT: &str = "Waiting for web.1 to answer on $PORT (";
    output
        .lines()
        .filter_map(|line| line.trim_end().split_once(WAIT))
        .map(|(_, rest)| {
            let seconds = rest
                .strip_suffix(" s of 60 s)")
                .unwrap_or_else(|| panic!("a wait of 60 s: {rest:?}"));
            seconds.parse().unwrap()
        })
        .collect()
}

#[test]
fn a_slow_web_shows_what_is_waited_for_and_what_it_prints() {
    ensure_prerequisites();
    let platform = Platform::behind(Traefik::start(), vec![("ready_timeout_secs", 60.into())]);
    let app = platform.create_app("progress");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: echo booting the slow web; sleep 4; exec httpd -f -p ${PORT:-5000} -h /www\n",
        )],
        "a web that listens after four seconds",
    );
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    let waits = answer_waits(&pushed.stderr);
    assert!(!waits.is_empty(), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("-----> Waiting for web.1 to answer on $PORT ("),
        "{pushed}"
    );
    assert!(
        pushed.stderr.contains("       web.1: booting the slow web"),
        "{pushed}"
    );

    let set = platform
        .paas(&["config:set", "GREETING=hello", "-a", &app])
        .success();
    assert!(!answer_waits(&set.stderr).is_empty(), "{set}");
    let lines: Vec<&str> = set.stderr.lines().collect();
    assert!(lines.contains(&"web.1: booting the slow web"), "{set}");
    assert_eq!(
        lines.last().copied(),
        Some(format!("Setting GREETING on ⬢ {app}... done, v2").as_str()),
        "{set}"
    );
    let waits = answer_waits(&set.stderr);
    let mut sorted = waits.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(waits, sorted, "each wait is shown once, in order: {set}");

    // On a terminal the wait is the text of a spinner, which is cleared for the action line.
    let terminal = platform
        .cli
        .cmd(&["restart", "-a", &app])
        .spawn_in_terminal();
    terminal.expect(": Waiting for web.1 to answer on $PORT (");
    let restarted = terminal.finish();
    assert_eq!(restarted.code, Some(0), "{restarted}");
    let braille = '\u{2801}'..='\u{28ff}';
    assert!(
        restarted.stdout.chars().any(|c| braille.contains(&c)),
        "a spinner turned: {restarted}"
    );
    assert!(restarted.stdout.contains("... done"), "{restarted}");
}

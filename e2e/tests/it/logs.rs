//! `paas logs` end to end: lines of every web container merged in time order with the right
//! `app[web.N]` prefixes, platform events from gitd's database, and `--tail` following a
//! redeploy live (deploy events, instance state changes, the new container's output: a 100 KB
//! line, bytes that are not UTF-8 and 10 000 lines written at once) until SIGINT ends it with
//! status 0; a crash shows with its exit status and the restarted instance rejoins; a stream
//! that breaks ends with status 1. A crash while nobody follows is still in `paas logs` after
//! the fact, because gitd records the agent's instance events. Output outlives its containers:
//! a failed first release's and a retired release's lines stay in `paas logs` (the agent's
//! archive), until the app is destroyed.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset};

use crate::platform::{Platform, docker_lines};
use crate::util::{bin, wait_for};
use crate::util::{commit_files, hello_repo};

/// Every web instance says which container it is when it starts, then serves.
const BOOTING_PROCFILE: &str =
    "web: echo \"booting on $(hostname)\" && exec httpd -f -p ${PORT:-5000} -h /www\n";

/// The app writes a 100 KB line, a line with bytes that are not UTF-8 and 10 000 numbered
/// lines (stdout, plus one on stderr) as fast as it can, then serves.
const NOISY_PROCFILE: &str = "web: echo noisy start; printf '%102400s\\n' '' | sed 's/ /x/g'; printf 'bad \\377\\376 bytes\\n'; echo 'to stderr' >&2; seq 1 10000 | sed 's/^/line /'; exec httpd -f -p ${PORT:-5000} -h /www\n";

/// `<timestamp> <source>[<dyno>]: <text>` split into its parts.
fn parse(line: &str) -> (DateTime<FixedOffset>, &str, &str) {
    let (timestamp, rest) = line.split_once(' ').unwrap_or_else(|| panic!("{line:?}"));
    let (prefix, text) = rest.split_once(": ").unwrap_or_else(|| panic!("{line:?}"));
    let timestamp = DateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S%.6f%:z")
        .unwrap_or_else(|err| panic!("{timestamp:?}: {err}"));
    assert_eq!(
        timestamp.format("%Y-%m-%dT%H:%M:%S%.6f%:z").to_string(),
        line.split(' ').next().unwrap(),
        "microseconds and an offset"
    );
    (timestamp, prefix, text)
}

#[test]
fn logs_merge_every_web_container_in_time_order() {
    let platform = Platform::start();
    let app = platform.create_app("logs");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", BOOTING_PROCFILE)], "say hello");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    platform.paas(&["scale", "web=3", "-a", &app]).success();

    // Which container is web.N, from Docker's labels: its host name is its short id.
    let mut hosts = Vec::new();
    for index in 1..=3 {
        let id = docker_lines(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=paas.app={app}"),
            "--filter",
            &format!("label=paas.index={index}"),
        ]);
        assert_eq!(id.len(), 1, "web.{index}: {id:?}");
        hosts.push(id[0].clone());
    }

    let logs = wait_for(
        "every web instance's boot line in `paas logs -n 20`",
        || {
            let out = platform.paas(&["logs", "-n", "20", "-a", &app]).success();
            (1..=3)
                .all(|index| {
                    out.stdout
                        .contains(&format!("app[web.{index}]: booting on "))
                })
                .then_some(out)
        },
    );
    let lines: Vec<&str> = logs.stdout.lines().collect();
    assert!(lines.len() <= 20, "{logs}");
    let mut previous = None;
    for line in &lines {
        let (timestamp, prefix, text) = parse(line);
        if let Some(previous) = previous {
            assert!(previous <= timestamp, "out of order at {line:?}:\n{logs}");
        }
        previous = Some(timestamp);
        if let Some(index) = prefix
            .strip_prefix("app[web.")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            let index: usize = index.parse().unwrap();
            assert_eq!(
                text,
                format!("booting on {}", hosts[index - 1]),
                "web.{index} is the container labelled index {index}"
            );
        }
    }
    for event in [
        "paas[deploy]: Deploy ".to_owned(),
        "paas[deploy]: Release v1 created by user admin".to_owned(),
        "paas[scale]: Scaled to web@3 by user admin".to_owned(),
    ] {
        assert!(logs.stdout.contains(&event), "{event:?} missing:\n{logs}");
    }
    assert!(
        !logs.stdout.contains('\x1b'),
        "no colour without a terminal"
    );

    // Filters: platform events only, the app's own output only, one process type.
    let paas_only = platform.paas(&["logs", "-s", "paas", "-a", &app]).success();
    assert!(
        paas_only.stdout.lines().all(|l| l.contains(" paas[")),
        "{paas_only}"
    );
    assert!(paas_only.stdout.contains("paas[scale]"), "{paas_only}");
    let app_only = platform
        .paas(&["logs", "-s", "app", "-p", "web", "-a", &app])
        .success();
    assert!(
        app_only.stdout.lines().all(|l| l.contains(" app[web.")),
        "{app_only}"
    );
    // One instance, as Heroku's `--dyno`: its lines and events only, `-n` counted after.
    let web2 = platform
        .paas(&["logs", "-p", "web.2", "-a", &app])
        .success();
    assert!(
        web2.stdout
            .lines()
            .all(|l| l.contains(" app[web.2]:") || l.contains(" paas[web.2]:")),
        "{web2}"
    );
    assert!(web2.stdout.contains(&hosts[1]), "{web2}");
    let web2_last = platform
        .paas(&["logs", "-p", "web.2", "-n", "1", "-a", &app])
        .success();
    assert_eq!(
        web2_last.stdout.lines().collect::<Vec<_>>(),
        web2.stdout.lines().last().into_iter().collect::<Vec<_>>(),
        "-n counts the matching lines"
    );
    platform
        .paas(&["logs", "-p", "web.0", "-a", &app])
        .error("expected TYPE.N");
    let one = platform.paas(&["logs", "-n", "1", "-a", &app]).success();
    assert_eq!(one.stdout.lines().count(), 1, "{one}");

    let unknown = platform.paas(&["logs", "-s", "nope", "-a", &app]);
    assert_eq!(
        unknown.code,
        Some(2),
        "an unknown source is a usage error: {unknown}"
    );
    platform
        .paas(&["logs", "-p", "Web", "-a", &app])
        .error("invalid process type");
    platform
        .paas(&["logs", "-n", "0", "-a", &app])
        .error("-n must be 1 or more");
}

/// `paas ARGS` (a `logs` command) running in the background as the platform's admin, its
/// stdout collected.
pub struct Follower {
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    pub fn start(platform: &Platform, args: &[&str]) -> Follower {
        let home = platform.cli.home();
        let mut child = Command::new(bin("paas"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("PAAS_KEYRING", "off")
            .current_dir(home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let output = Arc::new(Mutex::new(Vec::new()));
        let sink = output.clone();
        let reader = std::thread::spawn(move || {
            let mut buffer = [0u8; 65536];
            while let Ok(n) = stdout.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Follower {
            child,
            output,
            reader: Some(reader),
        }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// Waits until what it printed contains `needle`; all it printed so far.
    pub fn wait_for_text(&mut self, what: &str, needle: &str) -> String {
        wait_for(what, || {
            if let Some(status) = self.child.try_wait().unwrap() {
                let mut stderr = String::new();
                self.child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut stderr)
                    .unwrap();
                panic!("paas logs exited with {status}: {stderr}\n{}", self.text());
            }
            let text = self.text();
            text.contains(needle).then_some(text)
        })
    }

    /// Waits for it to exit by itself; the exit code and its stderr.
    fn exited(mut self) -> (Option<i32>, String) {
        let status = wait_for("paas logs to exit", || self.child.try_wait().unwrap());
        let mut stderr = String::new();
        self.child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        (status.code(), stderr)
    }

    /// Sends SIGINT, as Ctrl-C does, and returns the exit code and everything printed.
    fn interrupt(mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(sent.success());
        let status = wait_for("paas logs to exit on SIGINT", || {
            self.child.try_wait().unwrap()
        });
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        (status.code(), self.text())
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn logs_follow_a_redeploy_live_and_end_on_sigint() {
    let mut platform = Platform::start();
    let app = platform.create_app("tail");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", BOOTING_PROCFILE)], "say hello");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    let first_host = platform.containers(&app, "web")[0][..12].to_owned();

    let mut follower = Follower::start(&platform, &["logs", "--tail", "-a", &app]);
    follower.wait_for_text(
        "the backlog",
        &format!("app[web.1]: booting on {first_host}"),
    );

    let commit = commit_files(repo.path(), &[("Procfile", NOISY_PROCFILE)], "be noisy");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    follower.wait_for_text("the new container's last line", "app[web.1]: line 10000\n");
    follower.wait_for_text(
        "the deploy event",
        &format!("paas[deploy]: Deploy {} by user admin", &commit[..7]),
    );
    follower.wait_for_text(
        "the old container's retirement",
        "State changed from up to stopped",
    );
    let (code, output) = follower.interrupt();
    assert_eq!(code, Some(0), "SIGINT ends --tail with status 0:\n{output}");

    let lines: Vec<&str> = output.lines().collect();
    for line in &lines {
        parse(line);
    }
    let texts: Vec<&str> = lines
        .iter()
        .filter(|line| line.contains(" app[web.1]: "))
        .map(|line| line.split_once(" app[web.1]: ").unwrap().1)
        .collect();
    // All 10 000 numbered lines, each once, in order.
    let numbered: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|text| text.starts_with("line "))
        .collect();
    let expected: Vec<String> = (1..=10_000).map(|n| format!("line {n}")).collect();
    assert_eq!(numbered.len(), expected.len(), "lost or repeated lines");
    assert!(
        numbered
            .iter()
            .zip(&expected)
            .all(|(got, want)| got == want)
    );
    // The 100 KB line is one line, whole.
    let long = "x".repeat(102_400);
    assert_eq!(texts.iter().filter(|text| **text == long).count(), 1);
    assert!(
        texts.contains(&"bad \u{fffd}\u{fffd} bytes"),
        "invalid UTF-8 is replaced"
    );
    assert!(texts.contains(&"to stderr"), "stderr is included");
    assert!(texts.contains(&"noisy start"));
    for event in [
        "paas[web.1]: Starting process",
        "paas[web.1]: State changed from starting to up",
        "paas[deploy]: Release v2 created by user admin",
    ] {
        assert!(
            output.contains(event),
            "{event:?} missing:\n{}",
            tail_of(&output)
        );
    }

    // After the fact, the same lines are in the backlog.
    let backlog = platform
        .paas(&["logs", "-n", "10010", "-s", "app", "-a", &app])
        .success();
    let numbered = backlog
        .stdout
        .lines()
        .filter(|l| l.contains("]: line "))
        .count();
    assert_eq!(numbered, 10_000);

    // A stream that breaks (the agent goes away) is an error, not a quiet end.
    let mut follower = Follower::start(&platform, &["logs", "-t", "-n", "1", "-a", &app]);
    follower.wait_for_text("the one backlog line", "\n");
    // A crash shows with its exit status, and the instance's restart follows.
    let web = platform.containers(&app, "web");
    docker_lines(&["kill", &web[0]]);
    follower.wait_for_text("the crash", "paas[web.1]: Process exited with status 137\n");
    follower.wait_for_text(
        "the crash",
        "paas[web.1]: State changed from up to crashed\n",
    );
    follower.wait_for_text(
        "the restarted instance's output",
        "app[web.1]: noisy start\n",
    );
    platform.agent_mut().stop();
    let (code, stderr) = follower.exited();
    assert_eq!(code, Some(1), "{stderr}");
    assert_eq!(
        stderr,
        "error: The log stream ended: paas-gitd or its agent stopped or restarted.\n"
    );
    platform.agent_mut().resume();
}

fn tail_of(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..]
        .iter()
        .map(|line| line.chars().take(200).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_crash_while_nobody_follows_shows_in_the_logs_afterwards() {
    let platform = Platform::start();
    let app = platform.create_app("crash");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", BOOTING_PROCFILE)], "say hello");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    // No `paas logs` has run yet: this is gitd's own record of the instance coming up.
    wait_for("gitd to record web.1 coming up", || {
        let out = platform
            .paas(&["logs", "-n", "50", "-s", "paas", "-a", &app])
            .success();
        out.stdout
            .contains("paas[web.1]: State changed from starting to up\n")
            .then_some(())
    });

    let web = platform.containers(&app, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    docker_lines(&["kill", &web[0]]);

    let crash_then_restart = [
        "paas[web.1]: Process exited with status 137",
        "paas[web.1]: State changed from up to crashed",
        "paas[web.1]: Starting process (v1, restart 1)",
        "paas[web.1]: State changed from crashed to starting",
        "paas[web.1]: State changed from starting to up",
    ];
    let logs = wait_for("the crash and the restart in `paas logs -n 50`", || {
        let out = platform.paas(&["logs", "-n", "50", "-a", &app]).success();
        follows_in_order(&out.stdout, &crash_then_restart).then_some(out)
    });
    let mut previous = None;
    for line in logs.stdout.lines() {
        let (timestamp, _, _) = parse(line);
        if let Some(previous) = previous {
            assert!(previous <= timestamp, "out of order at {line:?}:\n{logs}");
        }
        previous = Some(timestamp);
    }
    assert_eq!(
        logs.stdout
            .matches("Process exited with status 137")
            .count(),
        1,
        "the crash is told once:\n{logs}"
    );
    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(ps.stdout.contains("web.1: up (1 restart) "), "{ps}");
    // `ps --json` counts the restart too, and it and `releases --json` write their times in
    // one format: RFC 3339 in UTC.
    let instances = platform
        .paas(&["ps", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(instances[0]["restarts"], 1, "{instances}");
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    for time in [&instances[0]["since"], &releases[0]["created_at"]] {
        let time = time.as_str().unwrap_or_default();
        assert!(
            time.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(time).is_ok(),
            "{time:?} in {instances} and {releases}"
        );
    }
}

/// Whether `text` has lines ending in each of `needles`, in this order.
fn follows_in_order(text: &str, needles: &[&str]) -> bool {
    let mut lines = text.lines();
    needles
        .iter()
        .all(|needle| lines.any(|line| line.ends_with(needle)))
}

/// A first deploy whose web process dies at once: nothing of it keeps running.
const FATAL_PROCFILE: &str = "web: echo 'FATAL: DATABASE_URL is not set' >&2; exit 1\n";

#[test]
fn output_outlives_the_containers_that_wrote_it() {
    let platform = Platform::start();

    // A release that never came up: its container is gone, its last words are not.
    let broken = platform.create_app("fatal");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[("Procfile", FATAL_PROCFILE)],
        "needs a database",
    );
    let pushed = platform.push(&broken, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    assert!(platform.containers(&broken, "web").is_empty());
    let logs = platform.paas(&["logs", "-a", &broken]).success();
    assert!(
        logs.stdout
            .contains("app[web.1]: FATAL: DATABASE_URL is not set\n"),
        "{logs}"
    );

    // A retired release's instances, after a redeploy replaced them.
    let app = platform.create_app("generations");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", BOOTING_PROCFILE)], "say hello");
    assert_eq!(platform.push(&app, repo.path()).code, Some(0));
    platform.paas(&["scale", "web=2", "-a", &app]).success();
    let first = platform.containers(&app, "web");
    assert_eq!(first.len(), 2, "{first:?}");
    commit_files(repo.path(), &[("www/v2.txt", "2\n")], "v2");
    assert_eq!(platform.push(&app, repo.path()).code, Some(0));
    // The push returns once v2 serves; v1 drains and goes afterwards.
    wait_for("v1's containers to be removed", || {
        platform
            .containers_of_release(&app, 1)
            .is_empty()
            .then_some(())
    });
    let second = platform.containers(&app, "web");
    assert!(first.iter().all(|id| !second.contains(id)), "replaced");
    let logs = platform.paas(&["logs", "-n", "200", "-a", &app]).success();
    for id in first.iter().chain(&second) {
        let host: String = id.chars().take(12).collect();
        assert!(
            logs.stdout.contains(&format!("booting on {host}\n")),
            "{host} missing:\n{logs}"
        );
    }
    let mut previous = None;
    for line in logs.stdout.lines() {
        let (timestamp, _, _) = parse(line);
        assert!(
            previous <= Some(timestamp),
            "out of order at {line:?}:\n{logs}"
        );
        previous = Some(timestamp);
    }

    // `-n` counts the lines that match the filter, archived ones included.
    let three = platform
        .paas(&["logs", "-n", "3", "-p", "web", "-a", &app])
        .success();
    assert_eq!(three.stdout.lines().count(), 3, "{three}");
    assert!(
        three.stdout.lines().all(|line| line.contains("[web.")),
        "{three}"
    );

    // Destroying the app forgets them: a new app of that name starts with none.
    platform
        .paas(&["apps:destroy", "-a", &app, "--confirm", &app])
        .success();
    platform.paas(&["apps:create", &app]).success();
    let logs = platform.paas(&["logs", "-s", "app", "-a", &app]).success();
    assert!(!logs.stdout.contains("booting on"), "{logs}");
}

//! Attached sessions through the real platform: `paas run` under a real pseudo-terminal is an
//! interactive shell that sees the terminal's size, takes Ctrl-C as a key the remote process
//! gets, and hands back its exit status; piped, stdin and stdout stream without a terminal;
//! `paas ps:exec` runs in the named running instance. A window resized mid-session reaches the
//! remote terminal. Another user gets 404.

use crate::oneoff::run_containers;
use crate::platform::{Platform, docker, docker_lines};
use crate::util::{hello_repo, wait_for};

#[test]
fn paas_run_attaches_a_terminal_or_pipes_and_exits_with_the_commands_status() {
    let platform = Platform::start();
    let app = platform.create_app("attach");
    platform.deploy(&app, hello_repo().path());

    let piped = platform
        .cli
        .cmd(&["run", "-a", &app, "--", "cat"])
        .stdin("1\n")
        .run()
        .success();
    assert_eq!(piped.stdout, "1\n", "{piped}");
    let with_env = platform
        .cli
        .cmd(&[
            "run",
            "-a",
            &app,
            "-e",
            "WHO=e2e",
            "--",
            "read line; echo \"$line $WHO\" >&2",
        ])
        .stdin("hi\n")
        .run()
        .success();
    assert_eq!(with_env.stderr, "hi e2e\n", "{with_env}");
    let status = platform.paas(&["run", "-a", &app, "--", "test -t 0 || exit 3"]);
    assert_eq!(status.code, Some(3), "no terminal when not asked: {status}");

    let mut terminal = platform
        .cli
        .cmd(&["run", "-a", &app, "--", "sh"])
        .spawn_in_terminal_sized(100, 30);
    // What is typed is echoed; only what the shell runs prints the sums.
    terminal.send("stty size; echo tty-$((6*7)) $PAAS_PROCESS\r");
    terminal.expect("30 100");
    terminal.expect("tty-42 run");
    terminal.send("echo before-$((1+2)); sleep 1000\r");
    terminal.expect("before-3");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Ctrl-C: without it reaching the remote `sleep`, the next line never runs in time.
    terminal.send("\x03");
    terminal.send("echo alive-$((2+3))\r");
    terminal.expect("alive-5");
    terminal.send("exit 7\r");
    let ended = terminal.finish();
    assert_eq!(ended.code, Some(7), "{ended}");

    let left = run_containers(&app);
    assert!(
        left.is_empty(),
        "the one-off was removed when it ended: {left:?}"
    );

    let other = platform.user("attacher");
    let refused = platform.api(
        "GET",
        &format!("/v1/apps/{app}/run/attached"),
        &other.token,
        "",
    );
    assert_eq!(refused.status, 404, "{}", refused.text());
}

#[test]
fn ps_exec_runs_in_the_named_instance_with_its_status() {
    let platform = Platform::start();
    let app = platform.create_app("exec");
    platform.deploy(&app, hello_repo().path());

    let label = format!("label=paas.app={app}");
    let web1 = docker_lines(&[
        "ps",
        "-q",
        "--filter",
        &label,
        "--filter",
        "label=paas.process=web",
        "--filter",
        "label=paas.index=1",
    ]);
    assert_eq!(web1.len(), 1, "{web1:?}");
    let hostname = docker(&["inspect", "-f", "{{.Config.Hostname}}", &web1[0]]);
    let ran = platform
        .paas(&["ps:exec", "-a", &app, "-d", "web.1", "--", "hostname"])
        .success();
    assert_eq!(ran.stdout.trim(), hostname.trim(), "{ran}");

    let status = platform.paas(&[
        "ps:exec", "-a", &app, "-d", "web.1", "--", "sh", "-c", "exit 4",
    ]);
    assert_eq!(status.code, Some(4), "{status}");
    platform
        .paas(&["ps:exec", "-a", &app, "-d", "web.9", "--", "true"])
        .error("no running process web.9");

    let other = platform.user("execer");
    let refused = platform.api("GET", &format!("/v1/apps/{app}/ps/exec"), &other.token, "");
    assert_eq!(refused.status, 404, "{}", refused.text());
}

#[test]
fn a_window_resized_mid_session_reaches_the_remote_terminal() {
    let platform = Platform::start();
    let app = platform.create_app("winch");
    platform.deploy(&app, hello_repo().path());

    let mut terminal = platform
        .cli
        .cmd(&["run", "-a", &app, "--", "sh"])
        .spawn_in_terminal_sized(100, 30);
    terminal.send("stty size\r");
    terminal.expect("30 100");
    terminal.resize(120, 40);
    // The new size travels as a frame of its own beside the typed lines: ask until the
    // remote terminal reports it.
    wait_for("the remote terminal to take the new size", || {
        terminal.send("stty size\r");
        std::thread::sleep(std::time::Duration::from_millis(200));
        terminal.screen().contains("40 120").then_some(())
    });
    terminal.send("exit 0\r");
    let ended = terminal.finish();
    assert_eq!(ended.code, Some(0), "{ended}");
}

//! The HTTP edge and the login brake under attack, through a real `paas-gitd` and the real
//! CLI: slowloris connections are cut after the header timeout while the CLI still answers,
//! connections over the caps are closed, a login burst gets at most the limit verified (and
//! gitd's memory stays bounded) while the right password from another client still logs in,
//! `X-Forwarded-For` is believed only from a trusted proxy, usernames cannot forge log lines,
//! custom domains cannot take the platform's names or overlap another tenant's, `paas.db` is
//! private in a data dir that already existed, and tenant text reaches a terminal escaped.
//!
//! Extra client addresses are loopback ones (127.0.0.2, …): no traffic leaves the machine.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::util::{ADMIN_PASSWORD, ADMIN_USER, Gitd, GitdInit, HANG_GUARD, bin, wait_for};

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// `[http]` settings for gitd.toml.
fn http_settings(pairs: &[(&str, toml::Value)]) -> toml::Table {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), value.clone()))
        .collect()
}

/// A TCP connection to `server` from the local address `local` (std cannot bind before it
/// connects; tokio's socket can).
fn connect_from(local: IpAddr, server: SocketAddr) -> TcpStream {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    });
    let stream = runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(local, 0)).unwrap();
        socket.connect(server).await.unwrap().into_std().unwrap()
    });
    stream.set_nonblocking(false).unwrap();
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    stream
}

/// One request on a fresh connection from `local` (the default source address when None);
/// `(status, body)`.
fn request_from(
    local: Option<IpAddr>,
    server: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut stream = match local {
        Some(local) => connect_from(local, server),
        None => {
            let stream = TcpStream::connect(server).unwrap();
            stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
            stream
        }
    };
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

fn login_body(username: &str, password: &str) -> String {
    serde_json::json!({ "username": username, "password": password }).to_string()
}

/// Sends a keep-alive request on `stream` and reads its answer: true when the server served
/// it, false when it closed the connection instead.
fn served(stream: &mut TcpStream) -> bool {
    if stream
        .write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: paas\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut reader = BufReader::new(&mut *stream);
    let mut length = 0;
    let mut first = true;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        if first {
            assert!(line.starts_with("HTTP/1.1 401"), "{line:?}");
            first = false;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = value.trim().parse().unwrap();
        }
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).is_ok()
}

/// True once the server has closed `stream` without answering.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut buffer = [0u8; 64];
    matches!(stream.read(&mut buffer), Ok(0) | Err(_))
}

/// `VmHWM` (peak resident memory) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

#[test]
fn slowloris_is_cut_after_the_header_timeout_while_the_cli_answers() {
    let gitd = GitdInit::new()
        .set_config(
            "http",
            http_settings(&[("header_read_timeout_secs", 5.into())]),
        )
        .serve();
    let admin = gitd.admin();
    // 200 connections from ten client addresses (20 each, under the per-address cap), each
    // sending its request head one byte at a time and never finishing it.
    let streams: Vec<TcpStream> = (0..200u8)
        .map(|i| {
            let stream = connect_from(loopback(2 + i % 10), gitd.http_addr);
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect();
    let open = Arc::new(AtomicUsize::new(streams.len()));
    let rounds = Arc::new(AtomicUsize::new(0));
    let dripper = {
        let (open, rounds) = (open.clone(), rounds.clone());
        std::thread::spawn(move || drip(streams, &open, &rounds))
    };
    wait_for("a few rounds of slow bytes", || {
        (rounds.load(Ordering::SeqCst) >= 3).then_some(())
    });
    assert_eq!(
        open.load(Ordering::SeqCst),
        200,
        "every slow connection is held at first"
    );
    let apps = admin.run(&["apps"]).success();
    assert_eq!(apps.stdout, "You have no apps.\n", "{apps}");
    wait_for("gitd to close every slow connection", || {
        (open.load(Ordering::SeqCst) == 0).then_some(())
    });
    let answers = dripper.join().unwrap();
    assert!(
        answers
            .iter()
            .all(|answer| answer.is_empty() || answer.starts_with("HTTP/1.1 408")),
        "closed, with at most a 408: {:?}",
        answers.iter().find(|a| !a.is_empty())
    );
    admin.run(&["apps"]).success();
}

/// Sends each open stream one more byte of a never-ending request head per round, until the
/// server has closed them all (bounded by the hang guard); returns what each was answered.
fn drip(mut streams: Vec<TcpStream>, open: &AtomicUsize, rounds: &AtomicUsize) -> Vec<String> {
    let head = b"GET /v1/apps HTTP/1.1\r\nHost: paas\r\nX-Slow: ";
    let mut sent = vec![0usize; streams.len()];
    let mut answers = vec![String::new(); streams.len()];
    let mut closed = vec![false; streams.len()];
    let started = std::time::Instant::now();
    while closed.iter().any(|c| !c) && started.elapsed() < HANG_GUARD {
        for (i, stream) in streams.iter_mut().enumerate() {
            if closed[i] {
                continue;
            }
            let byte = head.get(sent[i]).copied().unwrap_or(b'a');
            match stream.write(&[byte]) {
                Ok(_) => sent[i] += 1,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed[i] = true,
            }
            let mut buffer = [0u8; 512];
            match stream.read(&mut buffer) {
                Ok(0) => closed[i] = true,
                Ok(n) => answers[i].push_str(&String::from_utf8_lossy(&buffer[..n])),
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => closed[i] = true,
            }
        }
        open.store(closed.iter().filter(|c| !**c).count(), Ordering::SeqCst);
        rounds.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(100));
    }
    answers
}

#[test]
fn connections_over_the_caps_are_closed() {
    let gitd = GitdInit::new()
        .set_config(
            "http",
            http_settings(&[
                ("max_connections", 12.into()),
                ("max_connections_per_address", 4.into()),
                ("header_read_timeout_secs", 120.into()),
            ]),
        )
        .serve();
    let held_from = |address: IpAddr| {
        wait_for("a connection gitd serves", || {
            let mut stream = connect_from(address, gitd.http_addr);
            served(&mut stream).then_some(stream)
        })
    };
    let mut held: Vec<TcpStream> = (0..4).map(|_| held_from(loopback(3))).collect();
    let mut over = connect_from(loopback(3), gitd.http_addr);
    assert!(
        !served(&mut over),
        "a fifth connection from one address is closed"
    );
    let mut other = connect_from(loopback(4), gitd.http_addr);
    assert!(served(&mut other), "another address is still served");
    held.push(other);
    held.extend((0..3).map(|_| held_from(loopback(4))));
    held.extend((0..4).map(|_| held_from(loopback(5))));
    assert_eq!(held.len(), 12);
    let mut over_total = connect_from(loopback(6), gitd.http_addr);
    assert!(
        !served(&mut over_total),
        "the thirteenth connection is closed"
    );
    assert!(closed_by_server(&mut over_total));
    drop(held.pop());
    let mut fresh = held_from(loopback(6));
    assert!(served(&mut fresh), "a freed place is taken again");
    for stream in &mut held {
        assert!(served(stream), "held connections keep being served");
    }
}

#[test]
fn a_login_burst_verifies_at_most_the_limit_and_another_client_still_logs_in() {
    let gitd = GitdInit::new()
        .set_config(
            "http",
            http_settings(&[
                ("max_connections", 600.into()),
                ("max_connections_per_address", 400.into()),
            ]),
        )
        .serve();
    let admin = gitd.admin();
    let before = peak_rss_kib(gitd.pid());
    let wrong = login_body(ADMIN_USER, "wrong-password-123");
    let burst = |from: Option<IpAddr>| -> Vec<u16> {
        let barrier = Barrier::new(200);
        std::thread::scope(|scope| {
            let workers: Vec<_> = (0..200)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        request_from(from, gitd.http_addr, "/v1/login", &[], &wrong).0
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        })
    };
    // The same burst from two more addresses: memory must not grow with the verifications.
    for from in [None, Some(loopback(3)), Some(loopback(4))] {
        let statuses = burst(from);
        let verified = statuses.iter().filter(|s| **s == 401).count();
        let limited = statuses.iter().filter(|s| **s == 429).count();
        assert_eq!(verified + limited, 200, "only 401 and 429: {statuses:?}");
        assert!(
            (1..=5).contains(&verified),
            "at most the limit of 5 verified, got {verified}"
        );
        let grown_mib = peak_rss_kib(gitd.pid()).saturating_sub(before) / 1024;
        eprintln!(
            "login burst from {from:?}: {verified} verified, {limited} refused, peak memory +{grown_mib} MiB"
        );
        assert!(grown_mib < 64, "gitd's peak memory grew by {grown_mib} MiB");
    }

    let right = login_body(ADMIN_USER, ADMIN_PASSWORD);
    let (status, body) = request_from(None, gitd.http_addr, "/v1/login", &[], &right);
    assert_eq!(status, 429, "this client must wait: {body}");
    assert!(body.contains("Too many failed logins"), "{body}");
    let (status, body) = request_from(Some(loopback(2)), gitd.http_addr, "/v1/login", &[], &right);
    assert_eq!(status, 200, "a fresh client logs in: {body}");
    admin.run(&["apps"]).success();
}

#[test]
fn forwarded_for_is_believed_only_from_a_trusted_proxy() {
    let gitd = GitdInit::new()
        .set_config(
            "http",
            http_settings(&[("trusted_proxies", vec!["127.0.0.9"].into())]),
        )
        .serve();
    let proxy = Some(loopback(9));
    let wrong = login_body(ADMIN_USER, "wrong-password-123");
    let right = login_body(ADMIN_USER, ADMIN_PASSWORD);
    let login = |peer: Option<IpAddr>, forwarded: &str, body: &str| {
        request_from(
            peer,
            gitd.http_addr,
            "/v1/login",
            &[("X-Forwarded-For", forwarded)],
            body,
        )
        .0
    };
    for _ in 0..5 {
        assert_eq!(login(proxy, "198.51.100.1", &wrong), 401);
    }
    assert_eq!(login(proxy, "198.51.100.1", &wrong), 429);
    assert_eq!(
        login(proxy, "198.51.100.2", &right),
        200,
        "another client behind the proxy"
    );
    assert_eq!(
        login(proxy, "198.51.100.2, 198.51.100.1", &right),
        429,
        "a client cannot choose its address by prepending one"
    );

    // From an untrusted peer the header is ignored: a new forged address each time does not
    // escape the count of the real one.
    for i in 0..5 {
        assert_eq!(login(None, &format!("203.0.113.{i}"), &wrong), 401);
    }
    assert_eq!(login(None, "203.0.113.99", &right), 429);
    let log = gitd.log();
    assert!(log.contains("address=198.51.100.1"), "{log}");
    assert!(log.contains("address=127.0.0.1"), "{log}");
    assert!(!log.contains("203.0.113."), "{log}");
}

#[test]
fn usernames_cannot_forge_log_lines() {
    let gitd = Gitd::start();
    let forged = "x\n2026-01-01T00:00:00Z  INFO paas_gitd: login username=admin\x1b[2J";
    let (status, _) = request_from(
        None,
        gitd.http_addr,
        "/v1/login",
        &[],
        &login_body(forged, "whatever-password"),
    );
    assert_eq!(status, 401);
    let long = "a".repeat(100_000);
    let (status, _) = request_from(
        None,
        gitd.http_addr,
        "/v1/login",
        &[],
        &login_body(&long, "whatever-password"),
    );
    assert_eq!(status, 401);
    let log = wait_for("the failed logins in gitd's log", || {
        let log = gitd.log();
        (log.matches("failed login").count() >= 2).then_some(log)
    });
    assert!(!log.contains('\x1b'), "{log:?}");
    assert!(
        !log.lines()
            .any(|line| line.contains("INFO paas_gitd: login") && !line.contains("failed login")),
        "{log}"
    );
    assert!(
        log.contains(
            r"username=x\n2026-01-01T00:00:00Z  INFO paas_gitd: login username=admin\u{1b}[2J"
        ),
        "{log}"
    );
    assert!(!log.contains(&"a".repeat(1000)), "long usernames are cut");
}

#[test]
fn domains_cannot_take_platform_names_or_overlap_another_tenant() {
    let gitd = GitdInit::new()
        .set_config("domain", "apps.isolation.test")
        .set_config(
            "http",
            http_settings(&[("public_hosts", vec!["api.control.test"].into())]),
        )
        .serve();
    let alice = gitd.user("alice");
    let bob = gitd.user("bob");
    alice.run(&["apps:create", "shop-a"]).success();
    bob.run(&["apps:create", "shop-b"]).success();
    alice
        .run(&["domains:add", "*.first.test", "-a", "shop-a"])
        .success();
    alice
        .run(&["domains:add", "www.store.test", "-a", "shop-a"])
        .success();

    let token = gitd.token("bob", "bob-password");
    let before = gitd.db_dump();
    for (domain, needle) in [
        ("api.control.test", "it is api.control.test"),
        ("www.control.test", "beside api.control.test"),
        ("*.control.test", "it covers api.control.test"),
        ("control.test", "parent domain of api.control.test"),
        ("www.isolation.test", "beside apps.isolation.test"),
        (
            "*.apps.isolation.test",
            "covers the names under apps.isolation.test",
        ),
        ("x.apps.isolation.test", "under apps.isolation.test"),
        (
            "www.first.test",
            "www.first.test is already in use by another app",
        ),
        (
            "*.store.test",
            "*.store.test covers a domain another app serves",
        ),
        (
            "*.first.test",
            "*.first.test covers a domain another app serves",
        ),
    ] {
        let refused = bob
            .run(&["domains:add", domain, "-a", "shop-b"])
            .error(needle);
        assert!(
            !refused.stderr.contains("shop-a") && !refused.stderr.contains("alice"),
            "the holder is not named: {refused}"
        );
    }
    let conflict = gitd.request(
        "POST",
        "/v1/apps/shop-b/domains",
        Some(&token),
        Some(br#"{"hostname":"*.store.test"}"#),
    );
    assert_eq!(conflict.status, 409, "{}", conflict.text());
    assert!(!conflict.text().contains("shop-a"), "{}", conflict.text());
    assert!(
        !conflict.text().contains("www.store.test"),
        "{}",
        conflict.text()
    );
    assert_eq!(gitd.db_dump(), before, "refusals change nothing");

    // An app's own names do not clash with each other, one owner's apps may share a zone, and
    // free names are free.
    alice
        .run(&["domains:add", "*.store.test", "-a", "shop-a"])
        .success();
    alice.run(&["apps:create", "shop-c"]).success();
    alice
        .run(&["domains:add", "www.first.test", "-a", "shop-c"])
        .success();
    bob.run(&["domains:add", "www.bob.test", "-a", "shop-b"])
        .success();
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn the_database_is_private_in_a_data_dir_that_already_existed() {
    let existing = tempfile::tempdir().unwrap();
    std::fs::set_permissions(existing.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let password = existing.path().join("password");
    std::fs::write(&password, "admin-password-1\n").unwrap();
    let data = existing.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let init = std::process::Command::new(bin("paas-gitd"))
        .arg("init")
        .arg("--data")
        .arg(&data)
        .arg("--admin-password-file")
        .arg(&password)
        .output()
        .unwrap();
    assert!(init.status.success(), "{init:?}");
    assert_eq!(mode(&data.join("paas.db")), 0o600);

    // A database left 0644 (by hand, or by an older version) is made private when served,
    // and so are its WAL files.
    let init = GitdInit::new();
    let gitd = init.serve();
    let db = gitd.data_dir().join("paas.db");
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut gitd = gitd;
    gitd.restart();
    gitd.admin().run(&["apps:create", "private"]).success();
    assert_eq!(mode(&db), 0o600);
    for companion in ["paas.db-wal", "paas.db-shm"] {
        assert_eq!(mode(&gitd.data_dir().join(companion)), 0o600, "{companion}");
    }
}

#[test]
fn tenant_text_reaches_a_terminal_escaped_and_a_pipe_unchanged() {
    let gitd = Gitd::start();
    let admin = gitd.admin();
    admin.run(&["apps:create", "escapes"]).success();
    let value = "hi\x1b[2J\x1b]0;owned\x07there";
    admin
        .run(&["config:set", &format!("GREETING={value}"), "-a", "escapes"])
        .success();

    let piped = admin
        .run(&["config:get", "GREETING", "-a", "escapes"])
        .success();
    assert_eq!(piped.stdout, format!("{value}\n"), "a pipe gets the bytes");

    let shown = r"hi\x1b[2J\x1b]0;owned\x07there";
    for args in [
        vec!["config", "-a", "escapes"],
        vec!["config:get", "GREETING", "-a", "escapes"],
        vec!["releases:info", "v1", "-a", "escapes"],
    ] {
        let screen = admin.cmd(&args).spawn_in_terminal().finish();
        assert_eq!(screen.code, Some(0), "{screen}");
        assert!(
            screen.stdout.contains(shown),
            "{args:?}: {:?}",
            screen.stdout
        );
        assert!(
            !screen.stdout.contains("\x1b[2J") && !screen.stdout.contains("\x1b]0;"),
            "{args:?}: {:?}",
            screen.stdout
        );
    }
}

#[test]
fn sigterm_stops_gitd_cleanly_with_connections_open() {
    let gitd = Gitd::start();
    let mut idle = TcpStream::connect(gitd.http_addr).unwrap();
    idle.set_read_timeout(Some(HANG_GUARD)).unwrap();
    assert!(served(&mut idle), "a keep-alive connection, now idle");
    let mut half = TcpStream::connect(gitd.http_addr).unwrap();
    half.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: pa")
        .unwrap();
    let pid = gitd.pid().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    wait_for("paas-gitd to exit", || {
        let state = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        (state.is_empty() || state.contains("State:\tZ")).then_some(())
    });
    let log = gitd.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(log.contains("paas-gitd stopped"), "{log}");
    assert!(closed_by_server(&mut idle), "the idle connection is closed");
}

#[test]
fn build_output_is_kept_without_terminal_escapes() {
    let platform = crate::platform::Platform::for_pushes();
    let app = platform.create_app("escout");
    let repo = crate::util::git_repo();
    crate::util::commit_files(
        repo.path(),
        &[(
            "Dockerfile",
            "FROM paas/busybox:latest\n\
             RUN printf 'tenant \\033[2J\\033]0;owned\\007 \\033[31msays\\033[0m hi\\n' && exit 3\n",
        )],
        "a build that prints escapes",
    );
    let pushed = platform.push(&app, repo.path());
    assert_ne!(pushed.code, Some(0), "{pushed}");
    // What is kept for `builds:output` (read in pipes and files too) has no escapes, on a
    // terminal and in a pipe alike. A failed build makes no release.
    let screen = platform
        .cli
        .cmd(&["builds:output", "1", "-a", &app])
        .spawn_in_terminal()
        .finish();
    assert_eq!(screen.code, Some(0), "{screen}");
    let piped = platform.paas(&["builds:output", "1", "-a", &app]).success();
    for shown in [&piped.stdout, &screen.stdout] {
        assert!(shown.contains("tenant  says hi"), "{shown:?}");
        assert!(
            !shown.contains('\x1b') && !shown.contains(r"\x1b"),
            "{shown:?}"
        );
    }
}

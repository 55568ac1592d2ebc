//! Sticky sessions end to end, through the real Traefik: with `ps:sticky on`, an app scaled to
//! three instances sets its own cookie (HttpOnly, SameSite=Lax), a client that sends it back
//! stays on one instance, clients without it are still balanced; `ps:sticky off` stops setting
//! it. Turning it on rolls `web` out again without dropping a request.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::platform::{DOMAIN, Platform};
use crate::rollback::load_on;
use crate::util::hello_repo;

/// What one `GET /` answered: the instance (its hostname) and the cookies it set.
struct Answer {
    hostname: String,
    set_cookies: Vec<String>,
}

fn get(platform: &Platform, host: &str, cookie: Option<&str>) -> Answer {
    let mut stream = TcpStream::connect(&platform.traefik().web).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let cookie = cookie
        .map(|cookie| format!("Cookie: {cookie}\r\n"))
        .unwrap_or_default();
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n{cookie}\r\n").unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(
        head.starts_with("HTTP/1.0 200 ") || head.starts_with("HTTP/1.1 200 "),
        "{raw}"
    );
    let set_cookies = head
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("set-cookie")
                .then(|| value.trim().to_owned())
        })
        .collect();
    let hostname = body.trim_end().rsplit(" on ").next().unwrap().to_owned();
    Answer {
        hostname,
        set_cookies,
    }
}

#[test]
fn sticky_sessions_keep_a_cookie_carrying_client_on_one_instance_of_three() {
    let platform = Platform::start();
    let app = platform.create_app("sticky");
    platform.deploy(&app, hello_repo().path());
    platform.paas(&["scale", "web=3", "-a", &app]).success();
    let host = format!("{app}.{DOMAIN}");
    let cookie_name = format!("paas_sticky_{app}=");
    assert_eq!(
        platform.paas(&["ps:sticky", "-a", &app]).success().stdout,
        "off\n"
    );
    assert!(get(&platform, &host, None).set_cookies.is_empty());

    let load = load_on(&platform, &host);
    let on = platform.paas(&["ps:sticky", "on", "-a", &app]).success();
    assert!(
        on.stderr
            .contains(&format!("Turning sticky sessions on for ⬢ {app}... done")),
        "{on}"
    );
    load.finish("turning sticky sessions on");
    assert_eq!(
        platform.paas(&["ps:sticky", "-a", &app]).success().stdout,
        "on\n"
    );
    assert_eq!(platform.containers(&app, "web").len(), 3);

    let first = get(&platform, &host, None);
    let set = first
        .set_cookies
        .iter()
        .find(|cookie| cookie.starts_with(&cookie_name))
        .unwrap_or_else(|| panic!("no {cookie_name} in {:?}", first.set_cookies));
    let attributes = set.to_ascii_lowercase();
    assert!(attributes.contains("; httponly"), "{set}");
    assert!(attributes.contains("; samesite=lax"), "{set}");
    assert!(!attributes.contains("; secure"), "plain HTTP: {set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let kept: BTreeSet<String> = (0..30)
        .map(|_| get(&platform, &host, Some(&cookie)).hostname)
        .collect();
    assert_eq!(
        kept,
        BTreeSet::from([first.hostname.clone()]),
        "a client with the cookie stays on the instance that set it"
    );
    let fresh: BTreeSet<String> = (0..30)
        .map(|_| get(&platform, &host, None).hostname)
        .collect();
    assert!(
        fresh.len() > 1,
        "clients without the cookie are balanced: {fresh:?}"
    );

    platform.paas(&["ps:sticky", "off", "-a", &app]).success();
    assert_eq!(
        platform.paas(&["ps:sticky", "-a", &app]).success().stdout,
        "off\n"
    );
    for _ in 0..10 {
        let answer = get(&platform, &host, Some(&cookie));
        assert!(
            !answer
                .set_cookies
                .iter()
                .any(|c| c.starts_with(&cookie_name)),
            "{:?}",
            answer.set_cookies
        );
    }
    let balanced: BTreeSet<String> = (0..30)
        .map(|_| get(&platform, &host, Some(&cookie)).hostname)
        .collect();
    assert!(
        balanced.len() > 1,
        "the cookie no longer pins: {balanced:?}"
    );
}

//! Add-on services end to end (`paas addons:*`) on the local Postgres and Redis images:
//! `addons:create postgres` sets `DATABASE_URL` in a new release and the app's container
//! reaches the database by the add-on's name; a second app of the same user and another
//! user's app reach it neither by name nor by IP address (`psql` with the URL's password
//! finds no such host, or no answer) until (for the same user's) `addons:attach`, and no
//! longer after `addons:detach`; `addons:info` names both attachments; rows written survive
//! `paas restart`, a restart of the add-on, an agent restart, a redeploy and a rollback;
//! `addons:destroy` without `--confirm` or while attached elsewhere, and `apps:destroy` without
//! confirming the add-on, leave the database dump as it was; a confirmed destroy (forced while
//! attached elsewhere: detached there first) removes container, volume and the var of every
//! app. A Redis add-on, likewise, answers `redis-cli -u $REDIS_URL PING` from the attached app
//! only. Bad input
//! (unknown kind, a taken name, names with `/` or `..`, someone else's app or add-on) gets one
//! line and leaves the database as it was.

use crate::platform::{Platform, docker, docker_lines, ensure_addon_images};
use crate::util::{ADMIN_USER, commit_files, example_repo, wait_for};

/// Postgres's SSLRequest: a server answers one byte, `N` or `S`, on the connection.
const SSL_REQUEST: &str = r"\000\000\000\010\004\322\026\057";

pub(crate) fn addon_container(owner: &str, name: &str) -> String {
    format!("paas-addon-{name}.{owner}")
}

/// Removes the add-ons a test made if it stopped half-way; declared after the platform, so
/// dropped before it (the app networks go once no add-on holds them).
pub(crate) struct Cleanup(pub(crate) Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for container in &self.0 {
            docker_lines(&["rm", "-f", container]);
            docker_lines(&["volume", "rm", container]);
        }
    }
}

/// What a Postgres at `host` answers an SSLRequest sent from inside `container` (empty when
/// nothing answers).
pub(crate) fn postgres_answer(container: &str, host: &str) -> String {
    let script = format!("printf '{SSL_REQUEST}' | nc -w 3 {host} 5432");
    docker_lines(&["exec", container, "sh", "-c", &script]).join("")
}

/// `psql` in the add-on's own container with the URL the app got.
pub(crate) fn psql(addon: &str, url: &str, sql: &str) -> String {
    docker(&["exec", addon, "psql", url, "-tAc", sql])
}

pub(crate) fn web(platform: &Platform, app: &str) -> String {
    platform
        .containers(app, "web")
        .into_iter()
        .next()
        .expect("the app runs a web container")
}

pub(crate) fn config_var(platform: &Platform, app: &str, key: &str) -> Option<String> {
    let vars = platform
        .paas(&["config", "-a", app, "--json"])
        .success()
        .json();
    vars.get(key).and_then(|v| v.as_str()).map(str::to_owned)
}

/// `redis-cli ARGS` in the add-on's own container with the URL the app got.
pub(crate) fn redis_cli(addon: &str, url: &str, args: &[&str]) -> String {
    let (credentials, address) = url.rsplit_once('@').expect("a URL with credentials");
    let (_, port) = address.rsplit_once(':').expect("a URL with a port");
    let local = format!("{credentials}@127.0.0.1:{port}");
    let mut argv = vec![
        "exec",
        addon,
        "redis-cli",
        "-u",
        &local,
        "--no-auth-warning",
    ];
    argv.extend(args);
    docker(&argv)
}

/// `url` with its host replaced by `address`.
fn at_address(url: &str, host: &str, address: &str) -> String {
    url.replace(&format!("@{host}:"), &format!("@{address}:"))
}

/// What [`client_beside`] answers for a client that `timeout` stopped: a connection nothing
/// answered.
const TIMED_OUT: &str = "timed out";

/// A client (`image`, `command`) run in `container`'s network namespace, as the app's own
/// processes would connect: what it wrote on success, else its error ([`TIMED_OUT`] when it
/// did not finish within 10 s).
fn client_beside(container: &str, image: &str, command: &[&str]) -> Result<String, String> {
    let network = format!("container:{container}");
    let out = std::process::Command::new("docker")
        .args(["run", "--rm", "--network", &network, image, "timeout", "10"])
        .args(command)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    match out.status.code() {
        Some(0) => Ok(stdout),
        Some(124) => Err(TIMED_OUT.to_owned()),
        _ => Err(format!("{stdout}{stderr}")),
    }
}

/// `select 1` over `url` from inside `container`: `Ok("1")` when the database answers.
fn select_one_from(container: &str, url: &str) -> Result<String, String> {
    client_beside(
        container,
        "paas/postgres:15",
        &["psql", url, "-tAc", "select 1"],
    )
}

/// `PING` over `url` from inside `container`: `Ok("PONG")` when Redis answers (redis-cli
/// exits 0 on a refused password too, with the refusal as its output).
fn redis_ping_from(container: &str, url: &str) -> Result<String, String> {
    client_beside(
        container,
        "paas/redis:7",
        &["redis-cli", "-u", url, "--no-auth-warning", "PING"],
    )
}

/// The connection failed because `host`, the add-on's name in the URL, resolves to nothing
/// there (not, say, because of a wrong password).
#[track_caller]
fn assert_unresolved(attempt: Result<String, String>, host: &str) {
    let error = attempt.expect_err("connected");
    let postgres = format!("could not translate host name \"{host}\" to address");
    let redis = format!("Could not connect to Redis at {host}:");
    assert!(
        error.contains(&postgres) || (error.contains(&redis) && error.contains("not known")),
        "{error}"
    );
}

/// The variable as the container's processes see it.
fn env_var(container: &str, key: &str) -> String {
    docker(&["exec", container, "sh", "-c", &format!("echo \"${key}\"")])
}

fn ip_on(container: &str, app: &str) -> String {
    let format = format!("{{{{(index .NetworkSettings.Networks \"paas-app-{app}\").IPAddress}}}}");
    docker(&["inspect", "-f", &format, container])
}

/// Waits until the add-on answers queries again and returns what `sql` gives.
pub(crate) fn query_when_up(addon: &str, url: &str, sql: &str) -> String {
    wait_for(&format!("{addon} to answer"), || {
        let out = std::process::Command::new("docker")
            .args(["exec", addon, "psql", url, "-tAc", sql])
            .output()
            .unwrap();
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    })
}

#[test]
fn a_postgres_add_on_serves_attached_apps_only_and_keeps_its_data() {
    ensure_addon_images();
    let mut platform = Platform::for_pushes();
    let repo = example_repo("hello");
    let app = platform.create_app("pg");
    let other = platform.create_app("pg-other");
    let bob = platform.user("bob");
    let bobs = platform.app(&bob, "bobs");
    platform.deploy(&app, repo.path());
    platform.deploy(&other, repo.path());
    platform
        .push_ref(repo.path(), &bob.key, &bobs, "HEAD:main")
        .ok();
    let name = format!("db-{}", std::process::id());
    let addon = addon_container(ADMIN_USER, &name);
    let _cleanup = Cleanup(vec![addon.clone()]);

    let created = platform
        .paas(&["addons:create", "postgres", "-a", &app, "--name", &name])
        .success();
    assert!(
        created
            .stderr
            .contains(&format!("Creating postgres on ⬢ {app}... done")),
        "{created}"
    );
    assert!(
        created.stderr.contains(&format!(
            "Setting DATABASE_URL and restarting ⬢ {app}... done, v2"
        )),
        "{created}"
    );
    assert!(
        created
            .stdout
            .contains(&format!("Created {name} as DATABASE_URL")),
        "{created}"
    );
    let url = config_var(&platform, &app, "DATABASE_URL").expect("DATABASE_URL is set");
    assert!(url.starts_with("postgres://"), "{url}");
    assert!(url.contains(&format!("@{name}:5432/")), "{url}");
    let ports = docker(&["inspect", "-f", "{{json .HostConfig.PortBindings}}", &addon]);
    assert!(ports == "{}" || ports == "null", "published: {ports}");

    // The app's new container has the URL and reaches the database by the add-on's name.
    let app_web = web(&platform, &app);
    assert_eq!(env_var(&app_web, "DATABASE_URL"), url);
    assert_eq!(postgres_answer(&app_web, &name), "N");
    psql(
        &addon,
        &url,
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('kept')",
    );

    let listed = platform.paas(&["addons", "-a", &app]).success();
    let row = listed
        .stdout
        .lines()
        .find(|line| line.starts_with(&name))
        .unwrap_or_else(|| panic!("{listed}"));
    for column in ["postgres", "15.", "available", "MB", "DATABASE"] {
        assert!(row.contains(column), "{column} in {row:?}");
    }

    // Not reachable, by name or by address, from an unattached app of the same user or from
    // another user's app.
    let address = ip_on(&addon, &app);
    let other_web = web(&platform, &other);
    let bobs_web = web(&platform, &bobs);
    let url_by_address = at_address(&url, &name, &address);
    // The same client, URL and password reach it from the attached app.
    assert_eq!(select_one_from(&app_web, &url), Ok("1".to_owned()));
    assert_eq!(
        select_one_from(&app_web, &url_by_address),
        Ok("1".to_owned())
    );
    for container in [&other_web, &bobs_web] {
        assert_eq!(postgres_answer(container, &name), "", "by name");
        assert_eq!(postgres_answer(container, &address), "", "by address");
        assert_unresolved(select_one_from(container, &url), &name);
        assert_eq!(
            select_one_from(container, &url_by_address),
            Err(TIMED_OUT.to_owned())
        );
    }

    let attached = platform
        .paas(&["addons:attach", &name, "-a", &other])
        .success();
    assert!(
        attached
            .stderr
            .contains(&format!("Attaching {name} to ⬢ {other}... done")),
        "{attached}"
    );
    assert!(
        attached.stderr.contains(&format!(
            "Setting DATABASE_URL and restarting ⬢ {other}... done, v2"
        )),
        "{attached}"
    );
    let other_web = web(&platform, &other);
    assert_eq!(postgres_answer(&other_web, &name), "N");
    assert_eq!(env_var(&other_web, "DATABASE_URL"), url);
    assert_eq!(select_one_from(&other_web, &url), Ok("1".to_owned()));
    let bobs_web = web(&platform, &bobs);
    assert_eq!(postgres_answer(&bobs_web, &address), "");
    assert_eq!(
        select_one_from(&bobs_web, &url_by_address),
        Err(TIMED_OUT.to_owned())
    );
    let info = platform.paas(&["addons:info", &name, "-a", &app]).success();
    let lines: Vec<&str> = info.stdout.lines().collect();
    assert_eq!(
        lines[..5],
        [
            format!("=== {name}"),
            "Kind:        postgres".to_owned(),
            format!("App:         {app}"),
            format!("Attachments: {app}::DATABASE, {other}::DATABASE"),
            "State:       available".to_owned(),
        ],
        "{info}"
    );
    assert!(lines[5].starts_with("Version:     15."), "{info}");
    assert!(
        lines[6].starts_with("Size:        ") && lines[6].ends_with(" MB"),
        "{info}"
    );
    assert_eq!(lines.len(), 7, "{info}");

    // The data survives the app's restart, the add-on's, the agent's, a redeploy, a rollback.
    let select = "SELECT body FROM notes";
    platform.paas(&["restart", "-a", &app]).success();
    assert_eq!(query_when_up(&addon, &url, select), "kept");
    docker(&["restart", &addon]);
    assert_eq!(query_when_up(&addon, &url, select), "kept");
    platform.agent_mut().restart();
    assert_eq!(query_when_up(&addon, &url, select), "kept");
    assert_eq!(
        postgres_answer(&web(&platform, &app), &name),
        "N",
        "the agent's convergence left the add-on on the app's network"
    );
    commit_files(repo.path(), &[("VERSION", "2\n")], "two");
    platform.deploy(&app, repo.path());
    assert_eq!(query_when_up(&addon, &url, select), "kept");
    platform.paas(&["rollback", "v2", "-a", &app]).success();
    assert_eq!(query_when_up(&addon, &url, select), "kept");
    assert_eq!(
        config_var(&platform, &app, "DATABASE_URL"),
        Some(url.clone())
    );
    // v1 is from before the add-on: a rollback does not roll the add-on back with the code.
    platform.paas(&["rollback", "v1", "-a", &app]).success();
    assert_eq!(
        config_var(&platform, &app, "DATABASE_URL"),
        Some(url.clone()),
        "the attached add-on's var stays"
    );
    assert_eq!(postgres_answer(&web(&platform, &app), &name), "N");

    // Refusals change nothing.
    let before = platform.gitd.db_dump();
    platform
        .paas(&["addons:destroy", &name, "-a", &app])
        .error(&format!("Re-run with --confirm {name}"));
    platform
        .paas(&["addons:destroy", &name, "-a", &app, "--confirm", &name])
        .error(&format!("is attached to {other} too"));
    platform
        .paas(&["apps:destroy", &app, "--confirm", &app])
        .error(&format!("--confirm-addons {name}"));
    assert_eq!(platform.gitd.db_dump(), before);
    assert_eq!(query_when_up(&addon, &url, select), "kept");

    let detached = platform
        .paas(&["addons:detach", &name, "-a", &other])
        .success();
    assert!(
        detached.stderr.contains(&format!(
            "Unsetting DATABASE_URL and restarting ⬢ {other}... done, v3"
        )),
        "{detached}"
    );
    assert_eq!(config_var(&platform, &other, "DATABASE_URL"), None);
    let other_web = web(&platform, &other);
    assert_eq!(postgres_answer(&other_web, &name), "");
    assert_eq!(postgres_answer(&other_web, &address), "");

    // Attached elsewhere again, a forced destroy detaches it there first.
    platform
        .paas(&["addons:attach", &name, "-a", &other])
        .success();
    let destroyed = platform
        .paas(&[
            "addons:destroy",
            &name,
            "-a",
            &app,
            "--confirm",
            &name,
            "--force",
        ])
        .success();
    assert_eq!(
        config_var(&platform, &other, "DATABASE_URL"),
        None,
        "{destroyed}"
    );
    assert!(docker_lines(&["ps", "-aq", "--filter", &format!("name=^{addon}$")]).is_empty());
    assert!(
        docker_lines(&["volume", "ls", "-q", "--filter", &format!("name=^{addon}$")]).is_empty()
    );
    assert_eq!(config_var(&platform, &app, "DATABASE_URL"), None);
    let listed = platform.paas(&["addons", "-a", &app]).success();
    assert_eq!(listed.stdout, format!("No add-ons for app {app}.\n"));

    // A Redis add-on answers the attached app with its URL's password, and no other app.
    let cache = format!("cache-{}", std::process::id());
    let _cache_cleanup = Cleanup(vec![addon_container(ADMIN_USER, &cache)]);
    platform
        .paas(&["addons:create", "redis", "-a", &app, "--name", &cache])
        .success();
    let redis_url = config_var(&platform, &app, "REDIS_URL").expect("REDIS_URL is set");
    let redis_address = ip_on(&addon_container(ADMIN_USER, &cache), &app);
    let redis_by_address = at_address(&redis_url, &cache, &redis_address);
    let app_web = web(&platform, &app);
    assert_eq!(redis_ping_from(&app_web, &redis_url), Ok("PONG".to_owned()));
    assert_eq!(
        redis_ping_from(&app_web, &redis_by_address),
        Ok("PONG".to_owned())
    );
    for container in [&web(&platform, &other), &web(&platform, &bobs)] {
        assert_unresolved(redis_ping_from(container, &redis_url), &cache);
        assert_eq!(
            redis_ping_from(container, &redis_by_address),
            Err(TIMED_OUT.to_owned())
        );
    }
    platform
        .paas(&["addons:destroy", &cache, "-a", &app, "--confirm", &cache])
        .success();
}

#[test]
fn bad_add_on_requests_get_one_line_and_change_nothing() {
    ensure_addon_images();
    let platform = Platform::for_pushes();
    let app = platform.create_app("addon-bad");
    let bob = platform.user("bob");
    let bobs = platform.app(&bob, "bobs");
    let name = format!("cache-{}", std::process::id());
    let _cleanup = Cleanup(vec![addon_container(ADMIN_USER, &name)]);
    let created = platform
        .paas(&["addons:create", "redis", "-a", &app, "--name", &name])
        .success();
    // Nothing runs yet: the release only records the var.
    assert!(
        created.stderr.contains(&format!(
            "Setting REDIS_URL and restarting ⬢ {app}... done, v1"
        )),
        "{created}"
    );
    let listed = platform.paas(&["addons", "-a", &app]).success();
    assert!(listed.stdout.contains("redis"), "{listed}");
    assert!(listed.stdout.contains("available"), "{listed}");
    let url = config_var(&platform, &app, "REDIS_URL").expect("REDIS_URL is set");
    assert_eq!(
        redis_cli(&addon_container(ADMIN_USER, &name), &url, &["PING"]),
        "PONG"
    );

    let before = platform.gitd.db_dump();
    let bad: [(&[&str], &str); 7] = [
        (
            &["addons:create", "mysql", "-a", &app],
            "unknown add-on kind \"mysql\": use one of postgres, redis",
        ),
        (
            &[
                "addons:create",
                "redis",
                "-a",
                &app,
                "--name",
                &name,
                "--as",
                "OTHER",
            ],
            &format!("Name {name} is already taken"),
        ),
        (
            &["addons:create", "redis", "-a", &app, "--name", "a/b"],
            "invalid add-on name \"a/b\"",
        ),
        (
            &["addons:create", "redis", "-a", &app, "--name", ".."],
            "invalid add-on name \"..\"",
        ),
        (
            &["addons:create", "redis", "-a", &app],
            "already has an attachment named REDIS",
        ),
        // The admin sees bob's app, but the add-on is not among bob's.
        (
            &["addons:attach", &name, "-a", &bobs],
            "Couldn't find that add-on.",
        ),
        (
            &["addons:info", "../x", "-a", &app],
            "invalid add-on name \"../x\"",
        ),
    ];
    for (args, needle) in bad {
        platform.paas(args).error(needle);
    }
    // Bob cannot reach the admin's add-on through an app of his own.
    let attach = platform.api(
        "POST",
        &format!("/v1/apps/{bobs}/addons/{name}/attachment"),
        &bob.token,
        "{}",
    );
    assert_eq!(attach.status, 404, "{}", attach.text());
    let raw = platform.api(
        "POST",
        &format!("/v1/apps/{app}/addons"),
        platform.admin_token(),
        r#"{"kind":"redis","name":"../etc"}"#,
    );
    assert_eq!(raw.status, 400, "{}", raw.text());
    assert_eq!(platform.gitd.db_dump(), before);

    platform
        .paas(&[
            "apps:destroy",
            &app,
            "--confirm",
            &app,
            "--confirm-addons",
            &name,
        ])
        .success();
    assert!(
        docker_lines(&[
            "ps",
            "-aq",
            "--filter",
            &format!("name=^{}$", addon_container(ADMIN_USER, &name))
        ])
        .is_empty(),
        "the app's add-on went with it"
    );
}

//! Add-on consoles end to end (`paas pg:psql`, `paas redis:cli`, `paas pg:info`) on the local
//! Postgres and Redis images: `pg:psql -c` writes and reads rows, SQL piped on stdin runs as a
//! script that stops at its first error with psql's status, `redis:cli` takes commands on
//! stdin, and `pg:info` shows the server's version and connections. Another user gets one
//! line for the admin's add-on and changes nothing; an unknown add-on, one of the other kind
//! and an app without one get one line each.

use crate::addons::{Cleanup, addon_container};
use crate::platform::{Platform, ensure_addon_images};
use crate::util::ADMIN_USER;

#[test]
fn consoles_run_psql_and_redis_cli_in_the_add_on_for_who_may_see_it() {
    ensure_addon_images();
    let platform = Platform::for_pushes();
    let app = platform.create_app("consoles");
    let bare = platform.create_app("consoles-bare");
    let db = format!("db-{}", std::process::id());
    let cache = format!("cache-{}", std::process::id());
    let _cleanup = Cleanup(vec![
        addon_container(ADMIN_USER, &db),
        addon_container(ADMIN_USER, &cache),
    ]);
    platform
        .paas(&["addons:create", "postgres", "-a", &app, "--name", &db])
        .success();
    platform
        .paas(&["addons:create", "redis", "-a", &app, "--name", &cache])
        .success();

    // The app's only postgres add-on is the default.
    platform
        .paas(&[
            "pg:psql",
            "-a",
            &app,
            "-c",
            "create table t(x int); insert into t values (42)",
        ])
        .success();
    let selected = platform
        .paas(&["pg:psql", &db, "-a", &app, "-c", "select x from t"])
        .success();
    assert!(
        selected.stdout.lines().any(|line| line.trim() == "42"),
        "{selected}"
    );
    let piped = platform
        .cli
        .cmd(&["pg:psql", "-a", &app])
        .stdin("select x * 2 as doubled from t;\n")
        .run()
        .success();
    assert!(
        piped.stdout.lines().any(|line| line.trim() == "84"),
        "{piped}"
    );

    let failed = platform.paas(&["pg:psql", "-a", &app, "-c", "select * from missing"]);
    assert_eq!(failed.code, Some(1), "psql's status: {failed}");
    assert!(
        failed
            .stderr
            .contains("relation \"missing\" does not exist"),
        "{failed}"
    );
    let script = platform
        .cli
        .cmd(&["pg:psql", "-a", &app])
        .stdin("select 1/0;\ninsert into t values (7);\n")
        .run();
    assert_eq!(script.code, Some(3), "stopped at the first error: {script}");
    assert!(script.stderr.contains("division by zero"), "{script}");
    let count = platform
        .paas(&[
            "pg:psql",
            "-a",
            &app,
            "-c",
            "select count(*) as rows from t",
        ])
        .success();
    assert!(
        count.stdout.lines().any(|line| line.trim() == "1"),
        "the script's later statement never ran: {count}"
    );

    let redis = platform
        .cli
        .cmd(&["redis:cli", "-a", &app])
        .stdin("SET k v\nGET k\n")
        .run()
        .success();
    assert_eq!(redis.stdout, "OK\nv\n", "{redis}");

    let info = platform.paas(&["pg:info", "-a", &app]).success();
    assert!(info.stdout.starts_with(&format!("=== {db}\n")), "{info}");
    for line in ["PG Version:  15.", "Connections: ", "Tables:      1"] {
        assert!(info.stdout.contains(line), "{line:?} in {info}");
    }
    let json = platform
        .paas(&["pg:info", &db, "-a", &app, "--json"])
        .success()
        .json();
    assert!(
        json["version"]
            .as_str()
            .is_some_and(|v| v.starts_with("15.")),
        "{json}"
    );
    assert!(
        json["connections"].as_u64().is_some_and(|n| n >= 1),
        "{json}"
    );
    assert!(
        json["max_connections"].as_u64().is_some_and(|n| n >= 1),
        "{json}"
    );
    assert_eq!(json["tables"], 1, "{json}");
    assert_eq!(json["app"], app.as_str(), "{json}");

    // Bad names and kinds: one line each.
    let bad: [(&[&str], &str); 6] = [
        (
            &["pg:psql", "nope", "-a", &app, "-c", "select 1"],
            "Couldn't find that add-on.",
        ),
        (
            &["pg:info", "nope", "-a", &app],
            "Couldn't find that add-on.",
        ),
        (
            &["redis:cli", "nope", "-a", &app],
            "Couldn't find that add-on.",
        ),
        (
            &["redis:cli", &db, "-a", &app],
            &format!("{db} is a postgres add-on, not redis: use `paas pg:psql`."),
        ),
        (
            &["pg:psql", "-a", &bare, "-c", "select 1"],
            &format!("{bare} has no postgres add-on"),
        ),
        (
            &["pg:info", "../x", "-a", &app],
            "invalid add-on name \"../x\"",
        ),
    ];
    for (args, needle) in bad {
        platform.paas(args).error(needle);
    }

    // Another user: neither the admin's app nor, through an app of their own, its add-on.
    let bob = platform.user("bob");
    let bobs = platform.app(&bob, "bobs");
    let bob_cli = platform.gitd.login("bob", "bob-password-1");
    let before = platform.gitd.db_dump();
    let refused: [(&[&str], &str); 5] = [
        (
            &["pg:psql", &db, "-a", &app, "-c", "drop table t"],
            "Couldn't find that app.",
        ),
        (&["pg:info", &db, "-a", &app], "Couldn't find that app."),
        (
            &["redis:cli", &cache, "-a", &app],
            "Couldn't find that app.",
        ),
        (
            &["pg:psql", &db, "-a", &bobs, "-c", "drop table t"],
            "Couldn't find that add-on.",
        ),
        (
            &["pg:info", "-a", &bobs],
            &format!("{bobs} has no postgres add-on"),
        ),
    ];
    for (args, needle) in refused {
        bob_cli.run(args).error(needle);
    }
    assert_eq!(platform.gitd.db_dump(), before, "bob changed nothing");
    let kept = platform
        .paas(&["pg:psql", &db, "-a", &app, "-c", "select x from t"])
        .success();
    assert!(
        kept.stdout.lines().any(|line| line.trim() == "42"),
        "{kept}"
    );
}

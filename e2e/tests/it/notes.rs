//! examples/notes on add-ons, as docs/deploying.md walks through it: `addons:create postgres`
//! and `addons:create redis`, then `git push`: the release phase migrates the schema (its
//! output in the push), a note written through Traefik is read back from Postgres; written
//! while no worker runs, its job waits on the Redis queue until `scale worker=1`, and the
//! worker takes it from there and stores the note's word count. A redeploy runs the release
//! phase again with nothing to migrate, and the note is still there.

use std::net::SocketAddr;

use crate::addons::{Cleanup, addon_container, config_var, redis_cli};
use crate::platform::{DOMAIN, Platform, ensure_addon_images};
use crate::util::{ADMIN_USER, HttpResponse, commit_files, example_repo, http_request, wait_for};

/// The list examples/notes/notes/jobs.py queues its jobs on.
const QUEUE: &str = "notes:jobs";

fn request(platform: &Platform, app: &str, method: &str, path: &str, body: &str) -> HttpResponse {
    let web: SocketAddr = ([127, 0, 0, 1], platform.traefik().web_port()).into();
    let host = format!("{app}.{DOMAIN}");
    http_request(
        web,
        method,
        path,
        &[("Host", &host), ("Content-Type", "application/json")],
        body.as_bytes(),
    )
}

#[test]
fn notes_migrates_in_its_release_phase_and_keeps_notes_in_postgres_with_a_redis_worker() {
    ensure_addon_images();
    let platform = Platform::start();
    let app = platform.create_app("notes");
    let (pg, redis) = (
        format!("notes-pg-{}", std::process::id()),
        format!("notes-redis-{}", std::process::id()),
    );
    let redis_addon = addon_container(ADMIN_USER, &redis);
    let _cleanup = Cleanup(vec![addon_container(ADMIN_USER, &pg), redis_addon.clone()]);
    for (kind, name) in [("postgres", &pg), ("redis", &redis)] {
        platform
            .paas(&["addons:create", kind, "-a", &app, "--name", name])
            .success();
    }

    let repo = example_repo("notes");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}\n{}", platform.logs());
    assert!(
        pushed
            .stderr
            .contains("migrated the schema from version 0 to 2"),
        "the release phase's output is in the push:\n{pushed}"
    );
    let redis_url = config_var(&platform, &app, "REDIS_URL").expect("REDIS_URL is set");
    let queue = |args: &[&str]| redis_cli(&redis_addon, &redis_url, args);

    // No worker yet: the note's job waits on the queue.
    assert_eq!(platform.containers(&app, "worker"), Vec::<String>::new());
    let created = request(
        &platform,
        &app,
        "POST",
        "/notes",
        r#"{"body": "three little words"}"#,
    );
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_i64().expect("the note's id");
    assert_eq!(queue(&["LLEN", QUEUE]), "1");
    assert_eq!(
        queue(&["LRANGE", QUEUE, "0", "-1"]),
        format!(r#"{{"count_words": {id}}}"#)
    );
    let uncounted = request(&platform, &app, "GET", &format!("/notes/{id}"), "");
    assert_eq!(
        uncounted.json()["words"],
        serde_json::Value::Null,
        "{}",
        uncounted.text()
    );

    platform.paas(&["scale", "worker=1", "-a", &app]).success();

    let note = wait_for("the worker to count the note's words", || {
        let answer = request(&platform, &app, "GET", &format!("/notes/{id}"), "");
        let note = (answer.status == 200).then(|| answer.json())?;
        (note["words"] == 3).then_some(note)
    });
    assert_eq!(note["body"], "three little words");
    assert_eq!(queue(&["LLEN", QUEUE]), "0", "the worker took the job");
    let list = request(&platform, &app, "GET", "/notes", "");
    assert!(
        list.text().contains("three little words"),
        "{}",
        list.text()
    );

    // A redeploy migrates nothing and keeps the note.
    commit_files(repo.path(), &[("VERSION", "2\n")], "two");
    let pushed = platform.push(&app, repo.path());
    assert_eq!(pushed.code, Some(0), "{pushed}");
    assert!(
        pushed
            .stderr
            .contains("schema is at version 2, nothing to migrate"),
        "{pushed}"
    );
    let answer = request(&platform, &app, "GET", &format!("/notes/{id}"), "");
    assert_eq!(answer.json()["words"], 3, "{}", answer.text());
}

//! Postgres backups end to end (`paas pg:backups*`) on the local Postgres image: a capture,
//! a `DROP TABLE`, and a restore brings the rows back, into the same add-on and into another
//! Postgres of the same owner; a restore without `--confirm` or with a wrong one changes nothing; a download is a custom-format dump `pg_restore -l` reads, and
//! is not written over an existing file without `--force`; another user can neither list,
//! capture, download nor restore them, nor restore into an add-on of someone else; bad ids
//! (`../x`, `b999`) get one line; the agent keeps only `[addons] backups_keep` captures.

use std::path::Path;
use std::process::{Command, Stdio};

use crate::addons::{Cleanup, addon_container, config_var, psql};
use crate::platform::{BACKUPS_KEEP, Platform, ensure_addon_images};
use crate::util::ADMIN_USER;

/// The backup files the agent keeps for the add-on, sorted.
fn files(platform: &Platform, name: &str) -> Vec<String> {
    let dir = platform
        .agent()
        .state_dir()
        .join("backups")
        .join(ADMIN_USER)
        .join(name);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// The ids `pg:backups --json` lists.
fn listed_ids(platform: &Platform, app: &str) -> Vec<String> {
    let listed = platform
        .paas(&["pg:backups", "-a", app, "--json"])
        .success()
        .json();
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|backup| backup["id"].as_str().unwrap().to_owned())
        .collect()
}

/// `pg_restore -l` of `dump`, run in the add-on's container with the file on stdin.
fn restore_list(addon: &str, dump: &Path) -> String {
    let out = Command::new("docker")
        .args(["exec", "-i", addon, "pg_restore", "-l"])
        .stdin(Stdio::from(std::fs::File::open(dump).unwrap()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_capture_restores_dropped_rows_and_only_the_newest_are_kept() {
    ensure_addon_images();
    let platform = Platform::for_pushes();
    let app = platform.create_app("pgb");
    let bob = platform.user("bob");
    let bobs = platform.app(&bob, "bobs");
    let name = format!("db-{}", std::process::id());
    let addon = addon_container(ADMIN_USER, &name);
    let _cleanup = Cleanup(vec![addon.clone()]);
    platform
        .paas(&["addons:create", "postgres", "-a", &app, "--name", &name])
        .success();
    let url = config_var(&platform, &app, "DATABASE_URL").expect("DATABASE_URL is set");
    psql(
        &addon,
        &url,
        "CREATE TABLE notes (body text); INSERT INTO notes VALUES ('a'), ('b'), ('c')",
    );
    let none = platform.paas(&["pg:backups", "-a", &app]).success();
    assert!(none.stdout.starts_with("No backups."), "{none}");

    let captured = platform.paas(&["pg:backups:capture", "-a", &app]).success();
    assert!(
        captured
            .stdout
            .contains(&format!("Backed up {name} to b001")),
        "{captured}"
    );
    let listed = platform.paas(&["pg:backups", "-a", &app]).success();
    let row = listed.stdout.lines().nth(1).unwrap_or_default().to_owned();
    assert!(row.starts_with("b001 "), "{listed}");
    assert!(row.contains(" UTC "), "{listed}");
    assert!(row.contains("Completed"), "{listed}");
    assert!(row.ends_with(&name), "{listed}");
    assert_eq!(files(&platform, &name), ["b001.dump"]);

    psql(&addon, &url, "DROP TABLE notes");
    let tables = "SELECT count(*) FROM pg_tables WHERE tablename = 'notes'";
    // Unconfirmed or wrongly confirmed: nothing is restored.
    platform
        .paas(&["pg:backups:restore", "-a", &app])
        .error(&format!(
            "Re-run with --confirm {app}. Nothing was changed."
        ));
    platform
        .paas(&[
            "pg:backups:restore",
            "b001",
            "-a",
            &app,
            "--confirm",
            "other",
        ])
        .error("did not match");
    let unconfirmed = platform.api(
        "POST",
        &format!("/v1/apps/{app}/addons/{name}/restores"),
        platform.admin_token(),
        r#"{"backup":"b001"}"#,
    );
    assert_eq!(unconfirmed.status, 400, "{}", unconfirmed.text());
    assert_eq!(psql(&addon, &url, tables), "0");

    let restored = platform
        .paas(&["pg:backups:restore", "-a", &app, "--confirm", &app])
        .success();
    assert!(
        restored
            .stdout
            .contains(&format!("Restored {name}::b001 into {name}")),
        "{restored}"
    );
    assert_eq!(
        psql(
            &addon,
            &url,
            "SELECT string_agg(body, ',' ORDER BY body) FROM notes"
        ),
        "a,b,c"
    );

    // The same capture, restored into another Postgres of the app.
    let copy = format!("copy-{}", std::process::id());
    let copy_addon = addon_container(ADMIN_USER, &copy);
    let _copy_cleanup = Cleanup(vec![copy_addon.clone()]);
    platform
        .paas(&[
            "addons:create",
            "postgres",
            "-a",
            &app,
            "--name",
            &copy,
            "--as",
            "COPY",
        ])
        .success();
    let copy_url = config_var(&platform, &app, "COPY_URL").expect("COPY_URL is set");
    assert_eq!(psql(&copy_addon, &copy_url, tables), "0");
    let backup = format!("{name}::b001");
    let restored = platform
        .paas(&[
            "pg:backups:restore",
            &backup,
            &copy,
            "-a",
            &app,
            "--confirm",
            &app,
        ])
        .success();
    assert!(
        restored
            .stdout
            .contains(&format!("Restored {backup} into {copy}")),
        "{restored}"
    );
    assert_eq!(
        psql(
            &copy_addon,
            &copy_url,
            "SELECT string_agg(body, ',' ORDER BY body) FROM notes"
        ),
        "a,b,c"
    );

    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("latest.dump");
    let dump_arg = dump.to_str().unwrap();
    platform
        .paas(&["pg:backups:download", "-a", &app, "-o", dump_arg])
        .success();
    let bytes = std::fs::read(&dump).unwrap();
    assert!(bytes.starts_with(b"PGDMP"), "not a custom-format dump");
    assert!(restore_list(&addon, &dump).contains("TABLE public notes"));
    platform
        .paas(&["pg:backups:download", "b001", "-a", &app, "-o", dump_arg])
        .error("exists; choose another file with -o or overwrite it with --force");
    platform
        .paas(&[
            "pg:backups:download",
            &format!("{name}::b001"),
            "-a",
            &app,
            "-o",
            dump_arg,
            "--force",
        ])
        .success();
    assert_eq!(std::fs::read(&dump).unwrap(), bytes);

    // Bad ids: one line, nothing written or changed.
    let missing = dir.path().join("missing.dump");
    let missing_arg = missing.to_str().unwrap();
    let bad: [(&[&str], &str); 5] = [
        (
            &["pg:backups:restore", "../x", "-a", &app, "--confirm", &app],
            "invalid backup id \"../x\"",
        ),
        (
            &["pg:backups:restore", "b999", "-a", &app, "--confirm", &app],
            &format!("Couldn't find backup b999 of {name}."),
        ),
        (
            &["pg:backups:download", "b999", "-a", &app, "-o", missing_arg],
            &format!("Couldn't find backup b999 of {name}."),
        ),
        (
            &["pg:backups:download", "../x", "-a", &app, "-o", missing_arg],
            "invalid backup id \"../x\"",
        ),
        (
            &["pg:backups:delete", "b999", "-a", &app, "--confirm", &app],
            &format!("Couldn't find backup b999 of {name}."),
        ),
    ];
    for (args, needle) in bad {
        platform.paas(args).error(needle);
    }
    assert!(!missing.exists());
    let traversal = platform.api(
        "GET",
        &format!("/v1/apps/{app}/addons/{name}/backups/..%2Fx"),
        platform.admin_token(),
        "",
    );
    assert_eq!(traversal.status, 404, "{}", traversal.text());

    // Bob finds neither the app's backups nor the add-on through an app of his own; the
    // admin cannot restore into bob's app from its own add-on's backup either.
    let backups = format!("/v1/apps/{app}/addons/{name}/backups");
    let restore = format!(r#"{{"backup":"{name}::b001","confirm":"{app}"}}"#);
    let admin = platform.admin_token().to_owned();
    let attempts = [
        ("GET", backups.clone(), &bob.token, String::new()),
        ("POST", backups.clone(), &bob.token, String::new()),
        ("GET", format!("{backups}/b001"), &bob.token, String::new()),
        (
            "POST",
            format!("/v1/apps/{app}/addons/{name}/restores"),
            &bob.token,
            restore.clone(),
        ),
        (
            "GET",
            format!("/v1/apps/{bobs}/addons/{name}/backups"),
            &bob.token,
            String::new(),
        ),
        (
            "POST",
            format!("/v1/apps/{bobs}/addons/{name}/restores"),
            &admin,
            format!(r#"{{"backup":"{name}::b001","confirm":"{bobs}"}}"#),
        ),
    ];
    for (method, path, token, body) in &attempts {
        let answer = platform.api(method, path, token, body);
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text());
    }
    assert_eq!(listed_ids(&platform, &app), ["b001"]);

    // Retention: after each capture only the newest `backups_keep` remain.
    for _ in 0..BACKUPS_KEEP {
        platform
            .paas(&["pg:backups:capture", &name, "-a", &app])
            .success();
    }
    let kept: Vec<String> = (2..=BACKUPS_KEEP + 1).map(|n| format!("b{n:03}")).collect();
    assert_eq!(listed_ids(&platform, &app), kept);
    let kept_files: Vec<String> = kept.iter().map(|id| format!("{id}.dump")).collect();
    assert_eq!(files(&platform, &name), kept_files);

    platform
        .paas(&["pg:backups:delete", &kept[0], "-a", &app])
        .error("Re-run with --confirm");
    platform
        .paas(&["pg:backups:delete", &kept[0], "-a", &app, "--confirm", &app])
        .success();
    assert_eq!(listed_ids(&platform, &app), kept[1..]);
}

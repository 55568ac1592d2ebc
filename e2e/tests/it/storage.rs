//! Persistent storage end to end (`paas storage:*`) with `examples/counter`: a volume mounted
//! at `/data` is written by the release phase and by a one-off, and what they wrote survives
//! two deploys and a restart; the second deploy, under a load loop, loses no request (old and
//! new containers mount the volume at once); bad mounts (`/proc`, `../x`, a host path) are
//! refused with one line and change nothing; `storage:destroy` without `--confirm`, or of a
//! mounted volume, is refused and changes nothing; an unmounted volume is destroyed with
//! `--confirm`, and `apps:destroy` removes the rest and says so.

use crate::platform::{DOMAIN, Platform, docker};
use crate::rollback::load_on;
use crate::util::{commit_files, example_repo, wait_for};

fn volume_exists(app: &str, volume: &str) -> bool {
    std::process::Command::new("docker")
        .args(["volume", "inspect", &format!("paas-vol-{app}.{volume}")])
        .output()
        .unwrap()
        .status
        .success()
}

fn release_count(platform: &Platform, app: &str) -> usize {
    let releases = platform
        .paas(&["releases", "-a", app, "--json"])
        .success()
        .json();
    releases.as_array().unwrap().len()
}

fn body(platform: &Platform, app: &str) -> String {
    let answer = platform.get(app, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    answer.body
}

#[test]
fn a_volume_keeps_its_files_across_deploys_and_restarts_and_goes_with_the_app() {
    let platform = Platform::start();
    let app = platform.create_app("store");
    let repo = example_repo("counter");
    platform.deploy(&app, repo.path());
    assert!(
        body(&platform, &app).contains("(no volume at /data)"),
        "nothing is mounted before storage:mount"
    );
    assert!(!volume_exists(&app, "data"));

    let mounted = platform
        .paas(&["storage:mount", "data:/data/", "-a", &app])
        .success();
    assert!(
        mounted
            .stderr
            .contains(&format!("Mounting data at /data in ⬢ {app}... done, v2")),
        "{mounted}"
    );
    assert!(volume_exists(&app, "data"));
    let web = platform.containers(&app, "web");
    let mounts = docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{.Type}} {{.Name}} {{.Destination}};{{end}}",
        &web[0],
    ]);
    assert!(
        mounts.contains(&format!("volume paas-vol-{app}.data /data;")),
        "{mounts}"
    );
    // The release phase of v2 ran with the volume mounted.
    platform.wait_for_body(&app, "migrations: v2 ");
    platform
        .paas(&[
            "run:detached",
            "-a",
            &app,
            "--",
            "echo kept-in-the-volume > /data/note",
        ])
        .success();
    platform.wait_for_body(&app, "note: kept-in-the-volume");

    commit_files(repo.path(), &[("VERSION", "3\n")], "three");
    platform.deploy(&app, repo.path());
    commit_files(repo.path(), &[("VERSION", "4\n")], "four");
    let load = load_on(&platform, &format!("{app}.{DOMAIN}"));
    platform.deploy(&app, repo.path());
    load.finish("a deploy of an app with a volume");
    platform.paas(&["restart", "-a", &app]).success();
    let after = body(&platform, &app);
    assert!(after.contains("note: kept-in-the-volume"), "{after}");
    assert!(after.contains("migrations: v2 v3 v4 "), "{after}");

    let listed = platform.paas(&["storage", "-a", &app]).success();
    assert!(listed.stdout.contains("data  /data\n"), "{listed}");
    let json = platform
        .paas(&["storage", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        json,
        serde_json::json!([{"name": "data", "paths": ["/data"]}])
    );

    // Bad mounts: one line each, nothing changes.
    let releases = release_count(&platform, &app);
    for (mount, needle) in [
        ("data:/proc", "cannot mount a volume at /proc"),
        ("data:/etc/app", "cannot mount a volume at /etc/app"),
        ("data:/", "cannot mount a volume at /"),
        ("data:../x", "invalid mount path \"../x\""),
        ("data:/app/../etc", "invalid mount path"),
        ("/srv:/data", "invalid volume name \"/srv\""),
        ("data", "use NAME:/path"),
    ] {
        platform
            .paas(&["storage:mount", mount, "-a", &app])
            .error(needle);
    }
    platform
        .paas(&["storage:mount", "data:/data", "-a", &app])
        .error("data is mounted at /data already");
    // The server refuses what the CLI would not send.
    let refused = platform.api(
        "POST",
        &format!("/v1/apps/{app}/storage/mounts"),
        platform.admin_token(),
        r#"{"name":"data","path":"/sys/x"}"#,
    );
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert_eq!(release_count(&platform, &app), releases);

    // storage:destroy: refused without --confirm and while mounted; nothing changes.
    platform
        .paas(&["storage:destroy", "data", "-a", &app])
        .error("Re-run with --confirm");
    platform
        .paas(&["storage:destroy", "data", "--confirm", &app, "-a", &app])
        .error("unmount it first");
    assert!(volume_exists(&app, "data"));
    assert!(body(&platform, &app).contains("note: kept-in-the-volume"));

    // A second volume, unmounted, is destroyed with --confirm.
    platform
        .paas(&["storage:mount", "scratch:/scratch", "-a", &app])
        .success();
    assert!(volume_exists(&app, "scratch"));
    platform
        .paas(&["storage:unmount", "scratch:/scratch", "-a", &app])
        .success();
    let listed = platform.paas(&["storage", "-a", &app]).success();
    assert!(listed.stdout.contains("scratch  (not mounted)"), "{listed}");
    assert!(volume_exists(&app, "scratch"), "an unmount keeps the files");
    platform
        .paas(&["storage:destroy", "scratch", "--confirm", &app, "-a", &app])
        .success();
    wait_for("the scratch volume to go", || {
        (!volume_exists(&app, "scratch")).then_some(())
    });

    let destroyed = platform
        .paas(&["apps:destroy", &app, "--confirm", &app])
        .success();
    assert!(
        destroyed
            .stderr
            .contains("removed volumes data and their files"),
        "{destroyed}"
    );
    assert!(!volume_exists(&app, "data"));
}

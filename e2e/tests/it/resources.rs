//! Process sizes end to end (`paas ps:resize`): the new limits reach Docker (`HostConfig.Memory`,
//! `NanoCpus`) and `paas ps`; sizes above the host's maximum are refused and change nothing; a
//! process that allocates past its limit is reported `crashed (out of memory)`; a rollback
//! brings back the sizes of the release it returns to.

use crate::platform::{Platform, docker};
use crate::util::{commit_files, hello_repo, wait_for};

/// `web` as the example serves it, and `hog`, which doubles a shell variable until the kernel's
/// OOM killer ends it (after a pause, so it is seen running first).
const PROCFILE: &str = "web: httpd -f -p ${PORT:-5000} -h /www\n\
                        hog: sleep 2; x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done\n";

/// `Memory NanoCpus` of the container, as `docker inspect` reports them.
fn limits(container: &str) -> String {
    docker(&[
        "inspect",
        "-f",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
        container,
    ])
    .trim()
    .to_owned()
}

fn web_limits(platform: &Platform, app: &str) -> String {
    let web = platform.containers(app, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    limits(&web[0])
}

#[test]
fn resized_processes_run_with_their_limits_and_an_oom_kill_shows_in_ps() {
    let platform = Platform::start();
    let app = platform.create_app("sized");
    let repo = hello_repo();
    commit_files(repo.path(), &[("Procfile", PROCFILE)], "a hog");
    platform.deploy(&app, repo.path());
    let defaults = web_limits(&platform, &app);
    assert_eq!(
        defaults, "536870912 0",
        "the agent's default: 512M, no CPU quota"
    );

    let resized = platform
        .paas(&[
            "ps:resize",
            "web",
            "--memory",
            "256M",
            "--cpus",
            "0.5",
            "-a",
            &app,
        ])
        .success();
    assert!(
        resized.stderr.contains(&format!(
            "Resizing web of ⬢ {app} to 256M, 0.5 CPU... done, v2"
        )),
        "{resized}"
    );
    assert_eq!(web_limits(&platform, &app), "268435456 500000000");
    let ps = platform.paas(&["ps", "-a", &app]).success();
    assert!(
        ps.stdout
            .contains("=== web (256M, 0.5 CPU): httpd -f -p ${PORT:-5000} -h /www (1)\nweb.1: up "),
        "{ps}"
    );
    assert_eq!(platform.get(&app, "/").unwrap().status, 200);

    // Above the host's maximum (the agent's default, 4G): refused, nothing changes.
    let before = platform.containers(&app, "web");
    platform
        .paas(&["ps:resize", "web", "--memory", "64G", "-a", &app])
        .error("web: memory 64G is above this host's maximum of 4G");
    platform
        .paas(&["ps:resize", "web", "--cpus", "abc", "-a", &app])
        .error("invalid CPU count \"abc\"");
    platform
        .paas(&["ps:resize", "--memory", "128M", "-a", &app])
        .error("name the process type to resize");
    assert_eq!(platform.containers(&app, "web"), before);
    assert_eq!(limits(&before[0]), "268435456 500000000");

    // 16M is far less than the hog asks for: the kernel kills it, and ps says why.
    platform
        .paas(&["ps:resize", "hog", "--memory", "16M", "-a", &app])
        .success();
    platform.paas(&["scale", "hog=1", "-a", &app]).success();
    let hog = platform.containers(&app, "hog");
    assert_eq!(limits(&hog[0]), "16777216 0");
    wait_for("ps to report the hog out of memory", || {
        let ps = platform.paas(&["ps", "-a", &app]).success();
        ps.stdout
            .contains("hog.1: crashed (out of memory")
            .then_some(())
    });
    // Docker's restart policy starts it again, and ps counts the loop.
    wait_for("ps to count the hog's restarts", || {
        let ps = platform.paas(&["ps", "-a", &app]).success();
        ps.stdout
            .lines()
            .any(|line| line.starts_with("hog.1: ") && line.contains(" restart"))
            .then_some(())
    });
    // The logs say so too, in Heroku's words, before the exit the kill causes.
    let logs = platform
        .paas(&["logs", "-s", "paas", "-p", "hog", "-n", "100", "-a", &app])
        .success();
    let out_of_memory = format!("paas[hog.1]: {}", paas_api::agent::OUT_OF_MEMORY);
    let told = logs.stdout.find(&out_of_memory);
    let exited = logs
        .stdout
        .find("paas[hog.1]: Process exited with status 137");
    assert!(
        told.is_some() && exited.is_some() && told < exited,
        "{logs}"
    );
    platform.paas(&["scale", "hog=0", "-a", &app]).success();

    // v1 had no sizes of its own: a rollback to it brings the defaults back.
    platform.paas(&["rollback", "v1", "-a", &app]).success();
    assert_eq!(web_limits(&platform, &app), defaults);
    let sizes = platform
        .paas(&["ps:resize", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(
        sizes,
        serde_json::json!([{"process": "hog"}, {"process": "web"}])
    );
}

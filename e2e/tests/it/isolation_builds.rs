//! Builds cannot reach the host or other tenants, through real pushes (git over SSH to gitd,
//! builds by the agent against the real engine): `ADD` of a loopback URL however spelled, a
//! base image from a loopback "registry",
//! another app's image by tag, `COPY --from`, id prefix or build arg, a pack builder naming
//! one, config vars steering pack, a `.dockerignore` linking out of the tree, and each
//! `[build]` limit (context size, memory, pids, time) failing the push while the previous
//! release keeps serving.

use std::net::TcpListener;
use std::path::Path;

use crate::git_push::ls_remote;
use crate::platform::{Platform, Pushed, User, docker, image_field};
use crate::util::{commit_files, git, git_repo, head, hello_repo};

/// A loopback port whose listener never accepts: any connection a build makes to it waits in
/// the backlog, where [`Canary::was_contacted`] finds it.
struct Canary {
    listener: TcpListener,
}

impl Canary {
    fn start() -> Canary {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        Canary { listener }
    }

    fn url(&self) -> String {
        format!(
            "http://127.0.0.1:{}/canary",
            self.listener.local_addr().unwrap().port()
        )
    }

    fn was_contacted(&self) -> bool {
        match self.listener.accept() {
            Ok(_) => true,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => false,
            Err(err) => panic!("canary: {err}"),
        }
    }
}

fn set_config(platform: &Platform, user: &User, app: &str, vars: serde_json::Value) {
    let set = platform.api(
        "PATCH",
        &format!("/v1/apps/{app}/config"),
        &user.token,
        &serde_json::json!({ "vars": vars }).to_string(),
    );
    assert!(set.status / 100 == 2, "{}", set.text());
}

/// Pushes `files` as a new commit and expects the push refused with `needle`, the app's refs
/// and releases unchanged, a failed build and no image for the release it would have made.
#[track_caller]
fn refused(
    platform: &Platform,
    user: &User,
    app: &str,
    repo: &Path,
    files: &[(&str, &str)],
    needle: &str,
) -> Pushed {
    let refs_before = ls_remote(platform, user, app);
    let releases_before = platform.releases(user, app);
    commit_files(repo, files, needle);
    let pushed = platform
        .push_ref(repo, &user.key, app, "+HEAD:main")
        .rejected(needle);
    assert_eq!(
        ls_remote(platform, user, app),
        refs_before,
        "the branch moved"
    );
    assert_eq!(
        platform.releases(user, app),
        releases_before,
        "a refused build makes no release"
    );
    let builds = platform.builds(user, app);
    let last = builds.last().expect("the push made a build");
    assert_eq!(last["status"], "failed", "{builds:?}");
    let version = releases_before.len() + 1;
    assert_eq!(
        image_field(&format!("paas/{app}:v{version}"), "{{.Id}}"),
        None
    );
    pushed
}

#[test]
fn add_of_a_loopback_url_is_refused_and_the_canary_hears_nothing() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "canary");
    let canary = Canary::start();
    let url = canary.url();
    let repo = git_repo();
    commit_files(repo.path(), &[("README", "canary\n")], "start");

    let pushed = refused(
        &platform,
        &alice,
        &app,
        repo.path(),
        &[(
            "Dockerfile",
            &format!("FROM paas/busybox:latest\nADD {url} /canary\n"),
        )],
        "ADD of a URL",
    );
    assert!(
        pushed.stderr.contains(&format!(
            "Dockerfile line 2: ADD of a URL (`{url}`) is not allowed: the build host would fetch it from its own network; download it in a RUN step instead"
        )),
        "{}",
        pushed.stderr
    );
    refused(
        &platform,
        &alice,
        &app,
        repo.path(),
        &[(
            "Dockerfile",
            &format!("FROM paas/busybox:latest\nARG CANARY={url}\nADD $CANARY /canary\n"),
        )],
        "ADD of a URL",
    );
    // The URL arrives as a build arg from a config var, split over a continuation line.
    set_config(
        &platform,
        &alice,
        &app,
        serde_json::json!({ "SOURCE": url }),
    );
    refused(
        &platform,
        &alice,
        &app,
        repo.path(),
        &[(
            "Dockerfile",
            "FROM paas/busybox:latest\nARG SOURCE=local.txt\nADD \\\n  ${SOURCE} /canary\n",
        )],
        "ADD of a URL",
    );
    // A base image "pulled" from the canary as a registry.
    let registry = url
        .trim_start_matches("http://")
        .trim_end_matches("/canary");
    refused(
        &platform,
        &alice,
        &app,
        repo.path(),
        &[("Dockerfile", &format!("FROM {registry}/base:1\n"))],
        "names its registry by address or as localhost",
    );
    assert!(!canary.was_contacted(), "a build reached the canary");
}

#[test]
fn another_apps_image_is_refused_by_tag_copy_from_id_prefix_and_build_arg() {
    let platform = Platform::for_pushes();
    let victim_user = platform.user("victim");
    let victim = platform.app(&victim_user, "victim");
    platform
        .push_ref(hello_repo().path(), &victim_user.key, &victim, "main")
        .ok();
    let victim_image = format!("paas/{victim}:v1");
    let victim_id = image_field(&victim_image, "{{.Id}}").expect("the victim's image exists");
    let prefix = &victim_id.trim_start_matches("sha256:")[..12];

    let mallory = platform.user("mallory");
    let app = platform.app(&mallory, "mallory");
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &mallory.key, &app, "main")
        .ok();

    let other_app = format!("`{victim_image}` is the image of another app ({victim})");
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[("Dockerfile", &format!("FROM {victim_image}\n"))],
        &other_app,
    );
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[(
            "Dockerfile",
            &format!("FROM paas/busybox:latest\nCOPY --from={victim_image} /www /www\n"),
        )],
        &other_app,
    );
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[(
            "Dockerfile",
            &format!("ARG BASE={victim_image}\nFROM $BASE\n"),
        )],
        &other_app,
    );
    set_config(
        &platform,
        &mallory,
        &app,
        serde_json::json!({ "BASE": victim_image }),
    );
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[("Dockerfile", "ARG BASE=paas/busybox:latest\nFROM ${BASE}\n")],
        &other_app,
    );
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[("Dockerfile", &format!("FROM {prefix}\n"))],
        &format!("`{prefix}` names an image by its id; name base images by repository:tag"),
    );

    // A pack builder naming the victim's image is refused the same way.
    git(repo.path(), &["rm", "-q", "Dockerfile"]);
    refused(
        &platform,
        &mallory,
        &app,
        repo.path(),
        &[(
            "buildpacks.yaml",
            &format!("buildpacks:\n  path: \".\"\n  builder: \"{victim_image}\"\n"),
        )],
        &format!("pack builder: {other_app}"),
    );

    // The app's own earlier image is fine.
    git(repo.path(), &["rm", "-q", "buildpacks.yaml"]);
    let own = format!("FROM paas/{app}:v1\nRUN test -x /www/cgi-bin/index.cgi\n");
    commit_files(repo.path(), &[("Dockerfile", &own)], "build on v1");
    platform
        .push_ref(repo.path(), &mallory.key, &app, "+HEAD:main")
        .ok();
}

#[test]
fn config_vars_reach_pack_only_through_its_env_file() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "packenv");
    set_config(
        &platform,
        &alice,
        &app,
        serde_json::json!({
            "PACK_HOME": "/tmp/paas-e2e-tenant-pack-home",
            "DOCKER_HOST": "tcp://127.0.0.1:9",
            "GREETING": "hi there",
            "MULTI": "two\nlines",
        }),
    );
    let repo = git_repo();
    commit_files(
        repo.path(),
        &[
            (
                "buildpacks.yaml",
                "buildpacks:\n  path: \"web\"\n  builder: \"paketobuildpacks/builder-jammy-base\"\n  env:\n    - \"HTTPS_PROXY=http://127.0.0.1:9\"\n",
            ),
            (
                "web/Dockerfile",
                "FROM paas/busybox:latest\nRUN mkdir -p /www && echo built > /www/index.html\n",
            ),
            ("Procfile", "web: httpd -f -p $PORT -h /www\n"),
        ],
        "pack app",
    );
    // pack reaching the engine at all proves DOCKER_HOST did not steer it.
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    assert!(
        pushed.stderr.contains(
            "remote:        Not passing MULTI to the build: its value has a line break (the app still gets it)"
        ),
        "{}",
        pushed.stderr
    );
    let env = platform.agent().pack_env();
    for tenant_value in [
        "PACK_HOME=/tmp/paas-e2e-tenant-pack-home",
        "DOCKER_HOST=tcp://127.0.0.1:9",
        "HTTPS_PROXY=http://127.0.0.1:9",
        "GREETING=",
        "MULTI=",
    ] {
        assert!(
            env.iter().all(|entry| !entry.starts_with(tenant_value)),
            "pack's environment carries {tenant_value}: {env:?}"
        );
    }
    assert!(
        env.iter().any(|entry| entry.starts_with("PATH=")),
        "{env:?}"
    );
    assert_eq!(
        platform.agent().pack_env_file().as_deref(),
        Some(
            "DOCKER_HOST=tcp://127.0.0.1:9\nGREETING=hi there\nHTTPS_PROXY=http://127.0.0.1:9\nPACK_HOME=/tmp/paas-e2e-tenant-pack-home\n"
        )
    );
    let argv = platform.agent().pack_argv();
    assert!(
        argv.iter().all(|arg| !arg.contains("127.0.0.1")),
        "{argv:?}"
    );
}

#[test]
fn a_dockerignore_linking_out_of_the_tree_is_refused() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "ignorelink");
    let repo = hello_repo();
    std::os::unix::fs::symlink("/etc/passwd", repo.path().join(".dockerignore")).unwrap();
    refused(
        &platform,
        &alice,
        &app,
        repo.path(),
        &[],
        ".dockerignore is a link to something outside the pushed tree",
    );
}

/// `len` letters that barely compress, so the context really is that large.
fn noise_file(len: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b'a' + (state % 26) as u8)
        })
        .collect()
}

#[test]
fn each_build_limit_fails_the_push_clearly_and_the_previous_release_keeps_serving() {
    let mut platform = Platform::start();
    let mut limits = toml::Table::new();
    limits.insert("memory_mb".into(), 64.into());
    limits.insert("pids".into(), 64.into());
    limits.insert("timeout_secs".into(), 30.into());
    limits.insert("context_mb".into(), 1.into());
    platform.agent_mut().reconfigure("build", limits);

    let alice = platform.user("alice");
    let app = platform.app(&alice, "limits");
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    platform.wait_for_body(&app, &format!("Hello from {app} v1"));
    let serving = platform.containers(&app, "web");
    assert!(!serving.is_empty());
    let good = head(repo.path());

    let attempts: [(&str, String, &str); 4] = [
        (
            "big.txt",
            noise_file(2 * 1024 * 1024),
            "build context exceeds the 1 MiB limit",
        ),
        (
            "Dockerfile",
            "FROM paas/busybox:latest\nRUN x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}\n"
                .to_owned(),
            "the build ran out of memory (limit 64 MiB)",
        ),
        (
            "Dockerfile",
            "FROM paas/busybox:latest\nRUN for i in $(seq 1 200); do sleep 30 & done; wait\n"
                .to_owned(),
            "the build ran out of processes (limit 64)",
        ),
        (
            "Dockerfile",
            "FROM paas/busybox:latest\nRUN sleep 300\n".to_owned(),
            "build timed out after 30 s",
        ),
    ];
    for (path, contents, message) in &attempts {
        git(repo.path(), &["reset", "-q", "--hard", &good]);
        let pushed = refused(
            &platform,
            &alice,
            &app,
            repo.path(),
            &[(path, contents)],
            message,
        );
        assert!(pushed.stderr.contains("failed: "), "{}", pushed.stderr);
        assert_eq!(platform.containers(&app, "web"), serving, "{message}");
        platform.wait_for_body(&app, &format!("Hello from {app} v1"));
    }
}

#[test]
fn build_steps_run_on_the_build_network_with_no_inter_container_traffic() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "buildnet");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "Dockerfile",
            // The app's name keeps the engine's cache from skipping the step.
            &format!(
                "FROM paas/busybox:latest\nRUN echo {app} && ip route | grep default\nCOPY www /www\n"
            ),
        )],
        "show the route",
    );
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    let gateway = docker(&[
        "network",
        "inspect",
        "paas-builds",
        "--format",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
    ]);
    assert!(
        pushed
            .stderr
            .contains(&format!("default via {}", gateway.trim())),
        "{}",
        pushed.stderr
    );
    let options = docker(&[
        "network",
        "inspect",
        "paas-builds",
        "--format",
        "{{json .Options}}",
    ]);
    assert!(
        options.contains(r#""com.docker.network.bridge.enable_icc":"false""#)
            && options.contains(r#""com.docker.network.bridge.name":"paas-builds0""#),
        "{options}"
    );
}

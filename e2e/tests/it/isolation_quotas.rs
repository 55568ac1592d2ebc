//! Issue 9's quotas and features through the real platform: gitd's `[quotas]` refuse one app,
//! one process type, one instance and one byte too many with one line and nothing changed, git
//! itself refuses a push over `receive.maxInputSize` (also in repositories made before the
//! limit was set), and `paas features:enable` rolls a deployed app out with the new container
//! options while it keeps serving.

use crate::platform::{AgentSetup, Platform, docker};
use crate::util::{GitdInit, commit_files, db_dump, git, head, hello_repo};

fn with_quotas(quotas: toml::Table) -> impl FnOnce(GitdInit) -> GitdInit {
    move |init| init.set_config("quotas", quotas)
}

fn table(pairs: &[(&str, i64)]) -> toml::Table {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), toml::Value::from(*value)))
        .collect()
}

/// The `remote:` lines of a push that carry a refusal (` !     …`).
fn refusals(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|line| line.starts_with("remote:  !"))
        .collect()
}

#[test]
fn an_app_over_the_users_quota_is_refused_and_nothing_is_created() {
    let platform = Platform::configured(
        false,
        AgentSetup::Absent,
        with_quotas(table(&[("apps_per_user", 2)])),
    );
    let bob = platform.gitd.user("bob");
    let pid = std::process::id();
    for n in 1..=2 {
        bob.run(&["apps:create", &format!("p{pid}-bob-{n}")])
            .success();
    }
    let before = db_dump(platform.gitd.data_dir());
    let third = format!("p{pid}-bob-3");
    bob.run(&["apps:create", &third])
        .error("You have reached your quota of 2 apps");
    assert_eq!(db_dump(platform.gitd.data_dir()), before);
    let repo = platform
        .gitd
        .data_dir()
        .join("repos")
        .join(format!("{third}.git"));
    assert!(!repo.exists(), "{} was made", repo.display());
    // A generated name is counted the same way.
    bob.run(&["apps:create"])
        .error("You have reached your quota of 2 apps");

    // Destroying one frees a place; admins are not bound by the quota.
    let first = format!("p{pid}-bob-1");
    bob.run(&["apps:destroy", &first, "--confirm", &first])
        .success();
    bob.run(&["apps:create", &third]).success();
    for n in 1..=3 {
        platform
            .paas(&["apps:create", &format!("p{pid}-admin-{n}")])
            .success();
    }
}

#[test]
fn a_procfile_over_the_process_types_quota_is_rejected_and_the_old_release_serves() {
    let platform = Platform::configured(
        true,
        AgentSetup::Running,
        with_quotas(table(&[("process_types_per_app", 2)])),
    );
    let app = platform.create_app("qtypes");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: httpd -f -p ${PORT:-5000} -h /www\nworker: sleep 3600\n",
        )],
        "two types",
    );
    platform.deploy(&app, repo.path());
    platform.wait_for_body(&app, &format!("Hello from {app} v1 on "));

    let deployed = head(repo.path());
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: httpd -f -p ${PORT:-5000} -h /www\nworker: sleep 3600\nclock: sleep 3600\n",
        )],
        "three types",
    );
    let pushed = platform.push_ref(repo.path(), &platform.key, &app, "HEAD:main");
    let pushed = pushed.rejected(
        "remote:  !     The Procfile defines 3 process types; the quota is 2 per app (process_types_per_app).",
    );
    assert_eq!(
        refusals(&pushed.stderr).len(),
        2,
        "the reason and the rejection:\n{}",
        pushed.stderr
    );
    let releases = platform
        .paas(&["releases", "-a", &app, "--json"])
        .success()
        .json();
    assert_eq!(releases.as_array().unwrap().len(), 1, "{releases}");
    let refs = git(
        repo.path(),
        &[
            "ls-remote",
            &platform
                .gitd
                .data_dir()
                .join("repos")
                .join(format!("{app}.git"))
                .display()
                .to_string(),
            "refs/heads/main",
        ],
    );
    assert!(refs.starts_with(&deployed), "{refs}");
    let answer = platform.get(&app, "/").unwrap();
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body.starts_with(&format!("Hello from {app} v1 on ")),
        "{answer:?}"
    );
}

#[test]
fn scaling_past_the_instance_quotas_is_refused_and_the_formation_stays() {
    let platform = Platform::configured(
        false,
        AgentSetup::Running,
        with_quotas(table(&[
            ("instances_per_process", 2),
            ("instances_per_app", 3),
        ])),
    );
    let app = platform.create_app("qinst");
    let repo = hello_repo();
    commit_files(
        repo.path(),
        &[(
            "Procfile",
            "web: httpd -f -p ${PORT:-5000} -h /www\nworker: sleep 3600\n",
        )],
        "two types",
    );
    platform.deploy(&app, repo.path());
    let formation = |platform: &Platform| {
        let info = platform
            .paas(&["apps:info", "-a", &app, "--json"])
            .success()
            .json();
        info["formation"].clone()
    };
    let before = formation(&platform);
    assert_eq!(before, serde_json::json!({"web": 1, "worker": 0}));

    platform.paas(&["scale", "web=3", "-a", &app]).error(
        "web would have 3 instances; the quota is 2 per process type (instances_per_process).",
    );
    platform
        .paas(&["scale", "web=2", "worker=2", "-a", &app])
        .error("The app would run 4 instances; the quota is 3 per app (instances_per_app).");
    platform
        .paas(&["scale", "worker+3", "-a", &app])
        .error("worker would have 3 instances");
    assert_eq!(formation(&platform), before);
    assert_eq!(platform.containers(&app, "web").len(), 1);
    assert!(platform.containers(&app, "worker").is_empty());

    // Up to the quotas is fine.
    platform
        .paas(&["scale", "web=2", "worker=1", "-a", &app])
        .success();
    assert_eq!(
        formation(&platform),
        serde_json::json!({"web": 2, "worker": 1})
    );
    assert_eq!(platform.containers(&app, "web").len(), 2);
    assert_eq!(platform.containers(&app, "worker").len(), 1);
}

/// `len` bytes no compressor shrinks (xorshift), so the pack is at least that big.
fn incompressible(len: usize) -> String {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ u64::from(std::process::id());
    let mut text = String::with_capacity(len * 2);
    while text.len() < len * 2 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&format!("{state:016x}"));
    }
    text
}

#[test]
fn a_push_over_max_push_bytes_is_refused_by_git_also_in_an_existing_repository() {
    let mut platform = Platform::for_pushes();
    let app = platform.create_app("qsize");
    let repo = hello_repo();
    platform.deploy(&app, repo.path());
    let repo_dir = platform
        .gitd
        .data_dir()
        .join("repos")
        .join(format!("{app}.git"));
    let max_input_size = || {
        git(
            &repo_dir,
            &["config", "--file", "config", "receive.maxInputSize"],
        )
        .trim()
        .to_owned()
    };
    assert_eq!(max_input_size(), (1u64 << 30).to_string());

    // Lower the limit after the app exists: the restart writes it into its repository.
    let config_path = platform.gitd.data_dir().join("gitd.toml");
    let mut config: toml::Table = std::fs::read_to_string(&config_path)
        .unwrap()
        .parse()
        .unwrap();
    config.insert(
        "quotas".into(),
        toml::Value::Table(table(&[("max_push_bytes", 256 * 1024)])),
    );
    std::fs::write(&config_path, toml::to_string(&config).unwrap()).unwrap();
    platform.gitd.restart();
    assert_eq!(max_input_size(), (256 * 1024).to_string());

    let deployed = head(repo.path());
    let before = db_dump(platform.gitd.data_dir());
    commit_files(
        repo.path(),
        &[("www/big.txt", &incompressible(512 * 1024))],
        "too big",
    );
    let refused = platform.push_ref(repo.path(), &platform.key, &app, "HEAD:main");
    refused.rejected("pack exceeds maximum allowed size");
    let refs = git(
        repo.path(),
        &[
            "ls-remote",
            &repo_dir.display().to_string(),
            "refs/heads/main",
        ],
    );
    assert!(refs.starts_with(&deployed), "{refs}");
    assert_eq!(
        db_dump(platform.gitd.data_dir()),
        before,
        "no release, no event"
    );

    // Pushes under the limit still deploy.
    git(repo.path(), &["reset", "-q", "--hard", &deployed]);
    commit_files(repo.path(), &[("www/small.txt", "small\n")], "small");
    platform
        .push_ref(repo.path(), &platform.key, &app, "HEAD:main")
        .ok();
}

/// The container options gitd sent the agent in each rollout of `app`, from gitd's log.
fn rolled_out_options(platform: &Platform, app: &str) -> Vec<(bool, bool)> {
    let app_field = format!("app={app} ");
    platform
        .gitd
        .log()
        .lines()
        .filter(|line| line.contains("rolling out") && line.contains(&app_field))
        .map(|line| {
            (
                line.contains("non_root=true"),
                line.contains("read_only_root_fs=true"),
            )
        })
        .collect()
}

#[test]
fn features_roll_a_deployed_app_out_and_it_keeps_serving() {
    let platform = Platform::start();
    let app = platform.create_app("feat");
    let listed = platform
        .paas(&["features", "-a", &app, "--json"])
        .success()
        .json();
    let states: Vec<(&str, bool)> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["enabled"].as_bool().unwrap()))
        .collect();
    assert_eq!(states, [("non-root", false), ("read-only-fs", false)]);
    platform
        .paas(&["features:enable", "root", "-a", &app])
        .error("unknown feature \"root\"; the features are: non-root, read-only-fs");

    // Before the first deploy it is only stored; the first deploy applies it.
    let enabled = platform
        .paas(&["features:enable", "non-root", "-a", &app])
        .success();
    assert!(
        enabled
            .stderr
            .contains(&format!("Enabling non-root for ⬢ {app}... done")),
        "{enabled}"
    );
    assert!(rolled_out_options(&platform, &app).is_empty());
    platform.deploy(&app, hello_repo().path());
    assert_eq!(rolled_out_options(&platform, &app), [(true, false)]);
    platform.wait_for_body(&app, &format!("Hello from {app} v1 on "));

    // On a running app it rolls the current release out again, which keeps serving.
    platform
        .paas(&["features:enable", "read-only-fs", "-a", &app])
        .success();
    assert_eq!(
        rolled_out_options(&platform, &app),
        [(true, false), (true, true)]
    );
    platform.wait_for_body(&app, &format!("Hello from {app} v1 on "));
    // And Docker runs the container that way.
    let web = platform.containers(&app, "web");
    assert_eq!(web.len(), 1, "{web:?}");
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
            &web[0]
        ])
        .trim(),
        "65534:65534 true"
    );
    // Enabling what is on already changes nothing.
    platform
        .paas(&["features:enable", "read-only-fs", "-a", &app])
        .success();
    assert_eq!(rolled_out_options(&platform, &app).len(), 2);

    let shown = platform.paas(&["features", "-a", &app]).success();
    assert_eq!(
        shown.stdout,
        format!(
            "=== App Features ⬢ {app}\n\
             [+] non-root      Run the app's processes as the unprivileged user nobody\n\
             [+] read-only-fs  Mount the root filesystem read-only (/tmp stays writable)\n"
        )
    );

    // Other users see no such app and change nothing.
    let eve = platform.user(&format!("eve{}", std::process::id()));
    let before = db_dump(platform.gitd.data_dir());
    let path = format!("/v1/apps/{app}/features");
    assert_eq!(platform.api("GET", &path, &eve.token, "").status, 404);
    let patched = platform.api(
        "PATCH",
        &format!("{path}/non-root"),
        &eve.token,
        r#"{"enabled": false}"#,
    );
    assert_eq!(patched.status, 404, "{}", patched.text());
    assert_eq!(db_dump(platform.gitd.data_dir()), before);

    platform
        .paas(&["features:disable", "non-root", "-a", &app])
        .success();
    assert_eq!(
        rolled_out_options(&platform, &app).last(),
        Some(&(false, true))
    );
    platform.wait_for_body(&app, &format!("Hello from {app} v1 on "));
    // Later rollouts (a scale here) keep the stored features.
    platform.paas(&["scale", "web=2", "-a", &app]).success();
    assert_eq!(
        rolled_out_options(&platform, &app).last(),
        Some(&(false, true))
    );

    let logs = platform
        .paas(&["logs", "-a", &app, "--source", "paas"])
        .success();
    for event in [
        "paas[feature]: Enabled feature non-root by user admin",
        "paas[feature]: Enabled feature read-only-fs by user admin",
        "paas[feature]: Disabled feature non-root by user admin",
    ] {
        assert!(logs.stdout.contains(event), "{event:?} missing:\n{logs}");
    }
}

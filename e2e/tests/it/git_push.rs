//! `git push` end to end: the real git client over real SSH to a real paas-gitd, builds by a
//! real paas-agent against the real Docker engine (pack through the stand-in
//! `fixtures/pack`), on [`Platform::for_pushes`]. Also home to [`ls_remote`], which
//! `ssh_security` uses.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};

use crate::platform::{AgentSetup, Platform, Pushed, User, image_field};
use crate::util::{commit_files, git, git_command, git_repo, head, hello_repo, wait_for};

/// The refs of the app's repository as `git ls-remote` shows them.
pub fn ls_remote(platform: &Platform, user: &User, app: &str) -> String {
    let scratch = tempfile::tempdir().unwrap();
    let out = git_command(scratch.path(), &user.key, platform.gitd.ssh_addr.port())
        .args(["ls-remote", &platform.git_url(app)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A push started in the background whose stderr is collected as it arrives.
struct BackgroundPush {
    child: Child,
    stderr: Arc<Mutex<String>>,
    reader: std::thread::JoinHandle<()>,
}

impl BackgroundPush {
    fn start(platform: &Platform, repo: &Path, key: &Path, app: &str, refspec: &str) -> Self {
        let mut child = git_command(repo, key, platform.gitd.ssh_addr.port())
            .args(["push", "--progress", &platform.git_url(app), refspec])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&line));
                line.clear();
            }
        });
        BackgroundPush {
            child,
            stderr,
            reader,
        }
    }

    fn output_so_far(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn finish(mut self) -> Pushed {
        let status = self.child.wait().unwrap();
        self.reader.join().unwrap();
        Pushed {
            success: status.success(),
            stderr: self.stderr.lock().unwrap().clone(),
        }
    }
}

#[test]
fn pushing_hello_builds_v1_then_v2_and_the_owner_can_clone() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "hello");
    let repo = hello_repo();
    let first = head(repo.path());

    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    for expected in [
        format!("remote: -----> Building {app} from {}…", &first[..7]),
        "remote: -----> Building with Dockerfile".to_owned(),
        "remote:        Step 1/".to_owned(),
        "remote:        Successfully tagged".to_owned(),
        "remote: -----> Release v1 created".to_owned(),
        format!("remote: =====> Application deployed: http://{app}.paas.localhost"),
    ] {
        assert!(
            pushed.stderr.contains(&expected),
            "{expected:?} missing:\n{}",
            pushed.stderr
        );
    }
    let image = format!("paas/{app}:v1");
    assert_eq!(
        image_field(&image, "{{index .Config.Labels \"paas.commit\"}}").as_deref(),
        Some(first.as_str())
    );
    assert_eq!(
        image_field(&image, "{{index .Config.Labels \"paas.app\"}}").as_deref(),
        Some(app.as_str())
    );
    let releases = platform.releases(&alice, &app);
    assert_eq!(releases.len(), 1, "{releases:?}");
    let v1 = &releases[0];
    assert_eq!(v1["version"], 1);
    assert_eq!(v1["status"], "succeeded");
    assert_eq!(v1["image"], image.as_str());
    assert_eq!(v1["commit"], first.as_str());
    assert_eq!(v1["user"], "alice");
    assert_eq!(
        v1["description"],
        format!("Deploy {}", &first[..7]).as_str()
    );
    assert!(
        v1["processes"]["web"]
            .as_str()
            .is_some_and(|c| c.contains("httpd")),
        "the Procfile's web command: {v1}"
    );

    let second = commit_files(repo.path(), &[("www/extra.txt", "two\n")], "second");
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok()
        .rejected_not();
    let releases = platform.releases(&alice, &app);
    assert_eq!(releases.len(), 2);
    assert_eq!(releases[1]["version"], 2);
    assert_eq!(releases[1]["status"], "succeeded");
    assert_eq!(releases[1]["commit"], second.as_str());
    assert!(image_field(&format!("paas/{app}:v2"), "{{.Id}}").is_some());

    let clones = tempfile::tempdir().unwrap();
    let out = git_command(clones.path(), &alice.key, platform.gitd.ssh_addr.port())
        .args(["clone", "-q", &platform.git_url(&app), "copy"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(head(&clones.path().join("copy")), second);
    assert_eq!(
        std::fs::read_to_string(clones.path().join("copy/www/extra.txt")).unwrap(),
        "two\n"
    );
}

impl Pushed {
    /// A successful push shows no rejection line.
    #[track_caller]
    fn rejected_not(self) -> Pushed {
        assert!(!self.stderr.contains(" !     "), "{}", self.stderr);
        self
    }
}

#[test]
fn a_failing_dockerfile_rejects_the_push_and_the_branch_stays() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "failing");
    let repo = hello_repo();
    let good = head(repo.path());
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();

    commit_files(
        repo.path(),
        &[(
            "Dockerfile",
            "FROM paas/busybox:latest\nRUN echo about to fail && exit 3\n",
        )],
        "break the build",
    );
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("pre-receive hook declined");
    assert!(
        pushed.stderr.contains("remote:        about to fail"),
        "{}",
        pushed.stderr
    );
    assert!(
        pushed.stderr.contains("remote:  !     Build 2 failed: "),
        "{}",
        pushed.stderr
    );
    assert!(
        ls_remote(&platform, &alice, &app).contains(&format!("{good}\trefs/heads/main")),
        "the branch moved"
    );
    assert_eq!(
        platform.releases(&alice, &app).len(),
        1,
        "a failed build makes no release"
    );
    let builds = platform.builds(&alice, &app);
    assert_eq!(builds.len(), 2);
    assert_eq!(builds[1]["status"], "failed");
    assert_eq!(builds[1]["release"], serde_json::Value::Null);
    assert_eq!(image_field(&format!("paas/{app}:v2"), "{{.Id}}"), None);
}

#[test]
fn a_bad_buildpacks_yaml_rejects_the_push_naming_the_line_and_changes_nothing() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "badyaml");
    let repo = git_repo();
    commit_files(
        repo.path(),
        &[(
            "buildpacks.yaml",
            "buildpacks:\n  path: \".\"\n  bulder: \"x/y\"\n",
        )],
        "typo",
    );
    let before = platform.gitd.db_dump();
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("unknown field `bulder`");
    assert!(pushed.stderr.contains("line 3"), "{}", pushed.stderr);
    assert_eq!(platform.gitd.db_dump(), before);
    assert_eq!(ls_remote(&platform, &alice, &app), "");
}

#[test]
fn a_second_push_waits_for_the_first_and_both_land_in_order() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "serial");
    let first_repo = hello_repo();
    let second_repo = tempfile::tempdir().unwrap();
    git(
        second_repo.path(),
        &["clone", "-q", first_repo.path().to_str().unwrap(), "."],
    );

    // A push that holds the lock: the next one must say it waits, then go through.
    let held = platform.hold_push(&alice, &app);
    let waiting = BackgroundPush::start(&platform, first_repo.path(), &alice.key, &app, "main");
    let notice = format!("-----> Waiting for another deploy of {app} to finish");
    wait_for("the second push to report that it waits", || {
        waiting.output_so_far().contains(&notice).then_some(())
    });
    assert!(platform.releases(&alice, &app).is_empty());
    held.release();
    waiting.finish().ok();

    // Two forced pushes of sibling commits at once: both deploy, one after the other, and the
    // branch ends at the commit of the newer release.
    commit_files(first_repo.path(), &[("www/a.txt", "a\n")], "a");
    commit_files(second_repo.path(), &[("www/b.txt", "b\n")], "b");
    let a = BackgroundPush::start(&platform, first_repo.path(), &alice.key, &app, "+main");
    let b = BackgroundPush::start(&platform, second_repo.path(), &alice.key, &app, "+main");
    a.finish().ok();
    b.finish().ok();
    let releases = platform.releases(&alice, &app);
    let versions: Vec<_> = releases
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2, 3]);
    assert!(
        releases.iter().all(|r| r["status"] == "succeeded"),
        "{releases:?}"
    );
    let tip = ls_remote(&platform, &alice, &app);
    let newest = releases[2]["commit"].as_str().unwrap();
    assert!(
        tip.contains(&format!("{newest}\trefs/heads/main")),
        "{tip} vs {newest}"
    );
}

#[test]
fn two_apps_build_at_the_same_time() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let one = platform.app(&alice, "one");
    let two = platform.app(&alice, "two");
    let repo = hello_repo();

    // While one app's deploy lock is held, another app deploys to the end.
    let held = platform.hold_push(&alice, &one);
    platform
        .push_ref(repo.path(), &alice.key, &two, "main")
        .ok();
    held.release();

    commit_files(repo.path(), &[("www/c.txt", "c\n")], "c");
    let a = BackgroundPush::start(&platform, repo.path(), &alice.key, &one, "main");
    let b = BackgroundPush::start(&platform, repo.path(), &alice.key, &two, "main");
    let (a, b) = (a.finish().ok(), b.finish().ok());
    assert!(
        !a.stderr.contains("Waiting for another deploy"),
        "{}",
        a.stderr
    );
    assert!(
        !b.stderr.contains("Waiting for another deploy"),
        "{}",
        b.stderr
    );
    assert!(image_field(&format!("paas/{one}:v1"), "{{.Id}}").is_some());
    assert!(image_field(&format!("paas/{two}:v2"), "{{.Id}}").is_some());
}

#[test]
fn buildpacks_yaml_builds_with_pack_and_config_stays_out_of_argv() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "pack");
    let secret = "s3cret value";
    let set = platform.api(
        "PATCH",
        &format!("/v1/apps/{app}/config"),
        &alice.token,
        &serde_json::json!({"vars": {"API_TOKEN": secret}}).to_string(),
    );
    assert!(set.status / 100 == 2, "{}", set.text());

    let repo = git_repo();
    commit_files(
        repo.path(),
        &[
            (
                "buildpacks.yaml",
                "buildpacks:\n  path: \"web\"\n  builder: \"paketobuildpacks/builder-jammy-base\"\n  buildpack: \"paketo-buildpacks/web-servers\"\n  env:\n    - \"BP_WEB_SERVER=nginx\"\n",
            ),
            (
                "web/Dockerfile",
                "FROM paas/busybox:latest\nRUN mkdir -p /www && echo built by pack > /www/index.html\n",
            ),
            ("Procfile", "web: httpd -f -p $PORT -h /www\n"),
        ],
        "pack app",
    );
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    assert!(
        pushed.stderr.contains(
            "-----> Using buildpacks: builder paketobuildpacks/builder-jammy-base, buildpacks paketo-buildpacks/web-servers, path web"
        ),
        "{}",
        pushed.stderr
    );
    assert!(
        pushed.stderr.contains("remote:        ===> DETECTING"),
        "{}",
        pushed.stderr
    );
    assert!(
        pushed.stderr.contains("-----> Release v2 created"),
        "{}",
        pushed.stderr
    );
    let argv = platform.agent().pack_argv();
    let env_file = argv.get(13).cloned().unwrap_or_default();
    assert!(env_file.ends_with("/pack.env"), "{argv:?}");
    assert_eq!(
        argv,
        [
            "build",
            &format!("paas/{app}:v2"),
            "--builder",
            "paketobuildpacks/builder-jammy-base",
            "--path",
            "web",
            "--pull-policy",
            "if-not-present",
            "--network",
            "paas-builds",
            "--buildpack",
            "paketo-buildpacks/web-servers",
            "--env-file",
            &env_file,
            "--cache",
            &format!("type=build;format=volume;name=paas-pack-cache-{app}"),
        ]
    );
    assert!(argv.iter().all(|arg| !arg.contains("s3cret")), "{argv:?}");
    let env_file = platform.agent().pack_env_file().unwrap_or_default();
    assert!(
        env_file.contains(&format!("API_TOKEN={secret}\n")),
        "{env_file}"
    );
    assert!(env_file.contains("BP_WEB_SERVER=nginx\n"), "{env_file}");
    let env = platform.agent().pack_env();
    assert!(env.iter().all(|entry| !entry.contains("s3cret")), "{env:?}");
    assert!(image_field(&format!("paas/{app}:v2"), "{{.Id}}").is_some());

    // pack failing rejects the push and shows its last lines.
    let tip = head(repo.path());
    commit_files(repo.path(), &[("web/FAIL_PACK", "")], "make pack fail");
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("pre-receive hook declined");
    assert!(
        pushed
            .stderr
            .contains("remote:        ERROR: stand-in build failure requested by FAIL_PACK"),
        "{}",
        pushed.stderr
    );
    assert!(
        pushed.stderr.contains("Build 2 failed"),
        "{}",
        pushed.stderr
    );
    assert!(ls_remote(&platform, &alice, &app).contains(&format!("{tip}\trefs/heads/main")));
}

#[test]
fn without_buildpacks_yaml_or_dockerfile_pack_uses_the_default_builder() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "default");
    let repo = git_repo();
    commit_files(
        repo.path(),
        &[
            ("Procfile", "web: httpd -f -p $PORT\n"),
            ("index.html", "hi\n"),
        ],
        "no dockerfile",
    );
    // The stand-in builds from a Dockerfile at --path; with none there, its build fails after
    // pack was called, which is what this test looks at.
    let pushed = platform.push_ref(repo.path(), &alice.key, &app, "main");
    assert!(
        pushed
            .stderr
            .contains("-----> Using buildpacks: builder heroku/builder:24"),
        "{}",
        pushed.stderr
    );
    assert_eq!(
        platform.agent().pack_argv(),
        [
            "build",
            &format!("paas/{app}:v1"),
            "--builder",
            "heroku/builder:24",
            "--path",
            ".",
            "--pull-policy",
            "if-not-present",
            "--network",
            "paas-builds",
            "--cache",
            &format!("type=build;format=volume;name=paas-pack-cache-{app}"),
            "--trust-builder",
        ]
    );
}

/// Resident memory of a process, in KiB, from `/proc/<pid>/status`.
fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The pid of the `paas-gitd serve` running on `data_dir`.
fn gitd_pid(data_dir: &Path) -> u32 {
    let wanted = data_dir.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
                args.contains(&b"serve".as_slice()) && args.contains(&wanted)
            })
        })
        .expect("paas-gitd serve is running")
}

/// Incompressible bytes (xorshift), so git cannot shrink the pack.
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut bytes = Vec::with_capacity(len);
    while bytes.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        bytes.extend_from_slice(&state.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

#[test]
fn a_50_mb_push_keeps_gitds_memory_flat() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "big");
    let repo = hello_repo();
    // Warm up every code path with a small push first, so the baseline is a working daemon.
    let warmup = platform.app(&alice, "warm");
    platform
        .push_ref(repo.path(), &alice.key, &warmup, "main")
        .ok();

    std::fs::write(repo.path().join("noise.bin"), noise(50 * 1024 * 1024)).unwrap();
    std::fs::write(repo.path().join(".dockerignore"), "noise.bin\n").unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "50 MB of noise"]);

    let pid = gitd_pid(platform.gitd.data_dir());
    let idle_rss = memory_kib(pid, "VmRSS:");
    let idle_hwm = memory_kib(pid, "VmHWM:");
    let peak_rss = Arc::new(Mutex::new(idle_rss));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak_rss, done) = (peak_rss.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let rss = memory_kib(pid, "VmRSS:");
                let mut peak = peak_rss.lock().unwrap();
                *peak = (*peak).max(rss);
                drop(peak);
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        })
    };
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().unwrap();
    let peak_rss = *peak_rss.lock().unwrap();
    let after_hwm = memory_kib(pid, "VmHWM:");
    eprintln!(
        "gitd memory during a 50 MB push: idle VmRSS {idle_rss} KiB, sampled peak VmRSS {peak_rss} KiB (+{} KiB), VmHWM {idle_hwm} -> {after_hwm} KiB (+{} KiB)",
        peak_rss - idle_rss,
        after_hwm - idle_hwm
    );
    assert!(
        after_hwm - idle_hwm < 20 * 1024,
        "gitd's peak RSS grew by {} KiB during a 50 MB push",
        after_hwm - idle_hwm
    );
    assert!(image_field(&format!("paas/{app}:v1"), "{{.Id}}").is_some());
}

#[test]
fn without_a_reachable_agent_the_push_is_rejected_and_says_why() {
    let platform = Platform::without_agent(AgentSetup::Absent);
    let alice = platform.user("alice");
    let app = platform.app(&alice, "noagent");
    let repo = hello_repo();
    let before = platform.gitd.db_dump();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("no build agent is configured: set [agent] url and token in gitd.toml");
    assert_eq!(platform.gitd.db_dump(), before);
    assert_eq!(ls_remote(&platform, &alice, &app), "");

    // A port nothing listens on: taken from the OS, then released.
    let platform = Platform::without_agent(AgentSetup::Unreachable);
    let alice = platform.user("alice");
    let app = platform.app(&alice, "deadagent");
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .rejected("Build 1 failed: cannot reach the agent");
    assert!(platform.releases(&alice, &app).is_empty());
    let builds = platform.builds(&alice, &app);
    assert_eq!(builds.len(), 1);
    assert_eq!(builds[0]["status"], "failed");
    assert_eq!(ls_remote(&platform, &alice, &app), "");
}

#[test]
fn a_build_cut_short_by_a_restart_is_marked_failed() {
    let mut platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "restart");
    platform
        .push_ref(hello_repo().path(), &alice.key, &app, "main")
        .ok();
    // What a daemon killed mid-build leaves behind.
    let db = rusqlite::Connection::open(platform.gitd.data_dir().join("paas.db")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    db.execute("UPDATE releases SET status = 'building'", [])
        .unwrap();
    drop(db);
    assert_eq!(platform.releases(&alice, &app)[0]["status"], "building");
    platform.gitd.restart();
    let alice_token = platform.gitd.token("alice", "alice-password-1");
    let listed = platform.api("GET", &format!("/v1/apps/{app}/releases"), &alice_token, "");
    assert_eq!(listed.json()[0]["status"], "failed", "{}", listed.text());
}

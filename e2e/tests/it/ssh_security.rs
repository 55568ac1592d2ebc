//! What the SSH endpoint refuses: unknown keys, other users' apps, commands off the allow-list,
//! path tricks, shells, ptys and subsystems, and pushes to anything but the deploy branch. Each
//! refusal is a clear message and a non-zero exit, and leaves the database, the repositories
//! and the file system as they were.

use std::path::Path;

use crate::git_push::ls_remote;
use crate::platform::Platform;
use crate::util::{commit_files, git, git_command, hello_repo, new_key};

/// Every file under `dir` with its size: equal snapshots mean nothing was written.
fn snapshot(dir: &Path) -> Vec<(String, u64)> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).unwrap() {
            let entry = entry.unwrap();
            let meta = entry.metadata().unwrap();
            if meta.is_dir() {
                pending.push(entry.path());
            } else {
                files.push((entry.path().display().to_string(), meta.len()));
            }
        }
    }
    files.sort();
    files
}

#[test]
fn an_unregistered_key_gets_nothing() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "keys");
    let stranger = tempfile::tempdir().unwrap();
    let stranger_key = new_key(stranger.path());
    let repos = platform.gitd.data_dir().join("repos");
    let (db, files) = (platform.gitd.db_dump(), snapshot(&repos));

    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &stranger_key, &app, "main")
        .rejected("Permission denied (publickey)");
    let (code, stderr) = platform.ssh(&stranger_key, &[&format!("git-upload-pack '{app}.git'")]);
    assert_eq!(code, Some(255), "{stderr}");
    assert!(stderr.contains("Permission denied (publickey)"), "{stderr}");
    assert_eq!(platform.gitd.db_dump(), db);
    assert_eq!(snapshot(&repos), files);
}

#[test]
fn another_users_app_looks_exactly_like_a_missing_one() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let bob = platform.user("bob");
    let app = platform.app(&alice, "private");
    let repos = platform.gitd.data_dir().join("repos");
    let (db, files) = (platform.gitd.db_dump(), snapshot(&repos));
    let repo = hello_repo();

    let foreign = platform
        .push_ref(repo.path(), &bob.key, &app, "main")
        .rejected(&format!("paas: Couldn't find that app: {app}"));
    let missing = platform
        .push_ref(repo.path(), &bob.key, "nosuchapp", "main")
        .rejected("paas: Couldn't find that app: nosuchapp");
    assert_eq!(
        foreign.stderr.replace(&app, "APP"),
        missing.stderr.replace("nosuchapp", "APP")
    );
    let scratch = tempfile::tempdir().unwrap();
    let clone = git_command(scratch.path(), &bob.key, platform.gitd.ssh_addr.port())
        .args(["clone", "-q", &platform.git_url(&app), "copy"])
        .output()
        .unwrap();
    assert!(!clone.status.success());
    assert!(
        String::from_utf8_lossy(&clone.stderr).contains("Couldn't find that app"),
        "{}",
        String::from_utf8_lossy(&clone.stderr)
    );
    assert!(!scratch.path().join("copy/.git/objects/pack").exists());
    assert_eq!(platform.gitd.db_dump(), db);
    assert_eq!(snapshot(&repos), files);
}

#[test]
fn commands_off_the_allow_list_and_path_tricks_are_refused() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "tricks");
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("pwned");
    let touch = format!("touch {}", marker.display());
    let repos = platform.gitd.data_dir().join("repos");
    let (db, files) = (platform.gitd.db_dump(), snapshot(&repos));

    let refused = [
        (touch.clone(), "only `git-receive-pack"),
        (format!("sh -c '{touch}'"), "only `git-receive-pack"),
        (
            format!("git-upload-archive '{app}.git'"),
            "only `git-receive-pack",
        ),
        (
            format!("git receive-pack '{app}.git'"),
            "only `git-receive-pack",
        ),
        (
            "git-receive-pack '../x.git'".to_owned(),
            "invalid repository path",
        ),
        (
            "git-receive-pack '/etc/passwd'".to_owned(),
            "invalid repository path",
        ),
        (
            format!("git-upload-pack '/{app}/../{app}.git'"),
            "invalid repository path",
        ),
        (format!("git-receive-pack 'x.git'; {touch}"), "quotes"),
        (format!("git-receive-pack \"x.git'; {touch}\""), "quotes"),
        (
            format!("git-receive-pack '{app}.git' '{app}.git'"),
            "quotes",
        ),
        (
            format!("git-receive-pack {app}.git {app}.git"),
            "exactly one argument",
        ),
        (
            format!("git-receive-pack '{app}\n.git'"),
            "control character",
        ),
        (
            format!("git-receive-pack '{app}.git'\n{touch}"),
            "control character",
        ),
    ];
    for (command, reason) in refused {
        let (code, stderr) = platform.ssh(&alice.key, &[&command]);
        assert_eq!(code, Some(1), "{command:?}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{command:?}: want one line, got {stderr:?}");
        assert!(
            lines[0].starts_with("paas: ") && lines[0].contains(reason),
            "{command:?}: {stderr:?}"
        );
    }
    assert!(!marker.exists(), "a refused command ran");
    assert_eq!(platform.gitd.db_dump(), db);
    assert_eq!(snapshot(&repos), files);
}

#[test]
fn shells_ptys_and_subsystems_are_refused() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let (code, stderr) = platform.ssh(&alice.key, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("paas: no shell here"), "{stderr}");
    let (code, stderr) = platform.ssh(&alice.key, &["-s", "sftp"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("paas: subsystem \"sftp\" is not available"),
        "{stderr}"
    );
    let (code, stderr) = platform.ssh(&alice.key, &["-tt"]);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("PTY allocation request failed"), "{stderr}");
}

#[test]
fn only_the_deploy_branch_deploys_and_it_cannot_be_deleted() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "branches");
    let repo = hello_repo();
    platform
        .push_ref(repo.path(), &alice.key, &app, "main")
        .ok();
    let refs = ls_remote(&platform, &alice, &app);
    let db = platform.gitd.db_dump();

    git(repo.path(), &["checkout", "-q", "-b", "feature"]);
    commit_files(repo.path(), &[("www/f.txt", "f\n")], "feature");
    let pushed = platform
        .push_ref(repo.path(), &alice.key, &app, "feature")
        .rejected("Refusing to update refs/heads/feature: only the `main` branch deploys");
    assert!(
        pushed.stderr.contains("pre-receive hook declined"),
        "{}",
        pushed.stderr
    );
    // `main:feature` pushed the local `main` to the remote `feature`: the hint must not swap
    // the two (it once said `git push paas feature:main`, a local branch that may not exist).
    let swapped = platform
        .push_ref(repo.path(), &alice.key, &app, "main:feature")
        .rejected("to deploy a local branch push it to `main`: `git push paas BRANCH:main` (the checked-out one: `git push paas HEAD:main`)");
    assert!(
        !swapped.stderr.contains("feature:main"),
        "{}",
        swapped.stderr
    );
    platform
        .push_ref(repo.path(), &alice.key, &app, "feature:master")
        .rejected("Refusing to update refs/heads/master");
    git(repo.path(), &["tag", "v1.0"]);
    platform
        .push_ref(repo.path(), &alice.key, &app, "refs/tags/v1.0")
        .rejected("Refusing to update refs/tags/v1.0");
    platform
        .push_ref(repo.path(), &alice.key, &app, ":main")
        .rejected("Refusing to delete the deploy branch `main`");
    assert_eq!(ls_remote(&platform, &alice, &app), refs);
    assert_eq!(platform.gitd.db_dump(), db);
}

#[test]
fn master_deploys_while_an_app_has_no_main_branch() {
    let platform = Platform::for_pushes();
    let alice = platform.user("alice");
    let app = platform.app(&alice, "master");
    let repo = hello_repo();
    git(repo.path(), &["branch", "-m", "main", "master"]);
    platform
        .push_ref(repo.path(), &alice.key, &app, "master")
        .ok();
    let scratch = tempfile::tempdir().unwrap();
    let clone = git_command(scratch.path(), &alice.key, platform.gitd.ssh_addr.port())
        .args(["clone", "-q", &platform.git_url(&app), "copy"])
        .output()
        .unwrap();
    assert!(
        clone.status.success(),
        "{}",
        String::from_utf8_lossy(&clone.stderr)
    );
    assert_eq!(
        git(
            &scratch.path().join("copy"),
            &["rev-parse", "--abbrev-ref", "HEAD"]
        )
        .trim(),
        "master"
    );
}

//! Which app a command acts on inside a repository, through the real CLI, git and SSH:
//! `-r/--remote`, a lone remote on the server found without `-a`, several refused by name,
//! `paas git:clone`, and `apps:create` refusing to repoint a remote that names another app.

use crate::platform::Platform;
use crate::util::{git, git_repo, git_ssh_command, hello_repo};

#[test]
fn remotes_name_the_app_and_git_clone_sets_one_up() {
    let platform = Platform::for_pushes();
    let deployed = platform.create_app("remote-live");
    let empty = platform.create_app("remote-empty");
    platform.deploy(&deployed, hello_repo().path());
    let info = |dir: &std::path::Path, args: &[&str]| {
        let mut full = vec!["info", "--json"];
        full.extend_from_slice(args);
        platform.cli.cmd(&full).dir(dir).run()
    };

    // A lone remote named `staging` on this server is found without -a.
    let repo = git_repo();
    git(
        repo.path(),
        &["remote", "add", "staging", &platform.git_url(&deployed)],
    );
    git(
        repo.path(),
        &[
            "remote",
            "add",
            "github",
            "git@github.com:someone/elsewhere.git",
        ],
    );
    let found = info(repo.path(), &[]).success().json();
    assert_eq!(found["name"], deployed.as_str());

    // A second one, for another app, makes the choice the user's.
    git(
        repo.path(),
        &["remote", "add", "prod", &platform.git_url(&empty)],
    );
    info(repo.path(), &[]).error(&format!(
        "Several git remotes point at paas apps: prod ({empty}), staging ({deployed}). Use -a NAME or -r REMOTE."
    ));
    let picked = info(repo.path(), &["-r", "prod"]).success().json();
    assert_eq!(picked["name"], empty.as_str());
    let picked = info(repo.path(), &["--remote", "staging"]).success().json();
    assert_eq!(picked["name"], deployed.as_str());
    info(repo.path(), &["-r", "nope"]).error("No git remote named 'nope'");
    let both = info(repo.path(), &["-a", &deployed, "-r", "staging"]);
    assert_eq!(both.code, Some(2), "-a and -r together:\n{both}");
    platform
        .cli
        .cmd(&["ps", "-r", "staging"])
        .dir(repo.path())
        .run()
        .success();

    // git:clone: the code, a `paas` remote, and commands that need no -a inside.
    let scratch = tempfile::tempdir().unwrap();
    let ssh = git_ssh_command(&platform.key, platform.gitd.ssh_addr.port());
    platform
        .cli
        .cmd(&["git:clone", "-a", &deployed])
        .dir(scratch.path())
        .env("GIT_SSH_COMMAND", &ssh)
        .run()
        .success();
    let clone = scratch.path().join(&deployed);
    assert!(clone.join("Procfile").exists(), "the code was cloned");
    assert_eq!(
        git(&clone, &["remote"]).trim(),
        "paas",
        "the clone's one remote is paas"
    );
    let found = info(&clone, &[]).success().json();
    assert_eq!(found["name"], deployed.as_str());
    platform
        .cli
        .cmd(&["git:clone", "-a", &empty])
        .dir(scratch.path())
        .env("GIT_SSH_COMMAND", &ssh)
        .run()
        .error(&format!("{empty} has no code yet"));
    assert!(!scratch.path().join(&empty).exists());

    // A plain `git clone` names the remote origin: found all the same.
    let plain = scratch.path().join("plain");
    let cloned = std::process::Command::new("git")
        .args(["clone", "-q", &platform.git_url(&deployed)])
        .arg(&plain)
        .env("GIT_SSH_COMMAND", &ssh)
        .status()
        .unwrap();
    assert!(cloned.success());
    let found = info(&plain, &[]).success().json();
    assert_eq!(found["name"], deployed.as_str());

    // apps:create where the remote names another app: refused, and nothing created.
    let before = platform.paas(&["apps", "--json"]).success().json();
    platform
        .cli
        .cmd(&["apps:create"])
        .dir(&clone)
        .run()
        .error(&format!(
            "The 'paas' git remote already points at {deployed}. Name another remote with --remote NAME"
        ));
    let after = platform.paas(&["apps", "--json"]).success().json();
    assert_eq!(
        before.as_array().map(Vec::len),
        after.as_array().map(Vec::len),
        "no app was created"
    );
    assert_eq!(
        git(&clone, &["remote", "get-url", "paas"]).trim(),
        platform.git_url(&deployed),
        "the remote still points where it did"
    );
}

//! Accounts, apps, keys, config vars, releases and access, driven through the real `paas`
//! binary against a real `paas-gitd` (issue 2).

use std::process::Command;

use crate::util::{ADMIN_PASSWORD, ADMIN_USER, Cli, Gitd, GitdInit, git, git_repo, wait_for};

fn login_cmd(gitd: &Gitd, cli: &Cli, username: &str, password: &str) -> crate::util::Output {
    cli.cmd(&[
        "login",
        "--server",
        &gitd.url(),
        "--username",
        username,
        "--password-stdin",
    ])
    .stdin(format!("{password}\n"))
    .run()
}

#[test]
fn login_with_the_right_password_and_not_with_a_wrong_one() {
    let gitd = Gitd::start();
    let cli = Cli::new();

    login_cmd(&gitd, &cli, ADMIN_USER, "wrong-password").error("Invalid username or password.");
    login_cmd(&gitd, &cli, "nobody", ADMIN_PASSWORD).error("Invalid username or password.");
    assert!(
        !cli.credentials_file().exists(),
        "a failed login stored a token"
    );
    cli.run(&["whoami"]).error("Not logged in");

    // Without a terminal the CLI refuses to prompt.
    cli.run(&["login", "--server", &gitd.url(), "--username", ADMIN_USER])
        .error("--password-stdin");

    let out = login_cmd(&gitd, &cli, ADMIN_USER, ADMIN_PASSWORD).success();
    assert_eq!(out.stdout, "Logged in as admin\n");
    assert_eq!(cli.run(&["whoami"]).success().stdout, "admin\n");
    let me = cli.run(&["whoami", "--json"]).success().json();
    assert_eq!(me["username"], "admin");
    assert_eq!(me["is_admin"], true);

    let config = std::fs::read_to_string(cli.config_dir().join("config.toml")).unwrap();
    assert!(
        config.contains(&gitd.url()) && config.contains("admin"),
        "{config}"
    );
    let token = cli.stored_token(&gitd.url()).unwrap();
    assert!(
        !config.contains(&token),
        "the token leaked into config.toml"
    );
}

#[test]
fn tokens_expire() {
    let gitd = GitdInit::new().set_config("token_ttl_seconds", 1).serve();
    let cli = gitd.admin();
    let out = wait_for("the 1-second token to be rejected", || {
        let out = cli.run(&["whoami"]);
        (out.code != Some(0)).then_some(out)
    });
    out.error("Invalid or expired token");
    // The expiry is the server's decision: the client still holds the token.
    assert!(cli.stored_token(&gitd.url()).is_some());
}

#[test]
fn logout_revokes_the_token_on_the_server() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    let token = cli.stored_token(&gitd.url()).unwrap();
    let other_session = gitd.admin();

    let out = cli.run(&["logout"]).success();
    assert_eq!(out.stderr, "Logging out... done\n");
    assert_eq!(cli.stored_token(&gitd.url()), None);
    cli.run(&["whoami"]).error("Not logged in");
    // Logged out already: the wanted state holds, so it is no failure (as `heroku logout`).
    let again = cli.run(&["logout"]).success();
    assert_eq!(again.stderr, format!("Not logged in to {}.\n", gitd.url()));

    let reused = Cli::new()
        .cmd(&["whoami"])
        .env("PAAS_SERVER", gitd.url())
        .env("PAAS_TOKEN", &token)
        .run();
    reused.error("Invalid or expired token");
    assert_eq!(
        gitd.request("GET", "/v1/whoami", Some(&token), None).status,
        401
    );
    // Only the token used was revoked.
    assert_eq!(other_session.run(&["whoami"]).success().stdout, "admin\n");
}

#[test]
fn apps_are_created_listed_shown_and_destroyed() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    let ssh_port = gitd.ssh_addr.port();

    assert_eq!(cli.run(&["apps"]).success().stdout, "You have no apps.\n");
    let out = cli.run(&["apps:create", "web"]).success();
    assert_eq!(out.stderr, "Creating ⬢ web... done\n");
    let git_url = format!("ssh://git@127.0.0.1:{ssh_port}/web.git");
    assert_eq!(
        out.stdout,
        format!("http://web.paas.localhost | {git_url}\n")
    );
    assert!(gitd.data_dir().join("repos/web.git").is_dir());

    let out = cli.run(&["apps:create"]).success();
    let generated = out.stderr.trim().rsplit("⬢ ").next().unwrap().to_owned();
    generated.parse::<paas_api::AppName>().unwrap();

    cli.run(&["apps:create", "web"])
        .error("Name web is already taken.");

    let out = cli.run(&["apps"]).success();
    assert_eq!(out.stdout, {
        let mut names = ["web".to_owned(), generated.clone()];
        names.sort();
        format!("=== admin Apps\n{}\n{}\n", names[0], names[1])
    });
    let listed = cli.run(&["apps", "--json"]).success().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    // A negative count is refused before anything is asked of the server, saying why.
    cli.run(&["scale", "web=-1", "-a", "web"])
        .error("invalid scale argument \"web=-1\": the count must be 0 to 100");

    let out = cli.run(&["apps:info", "-a", "web"]).success();
    assert!(out.stdout.starts_with("=== web\n"), "{out}");
    assert!(
        out.stdout.contains(&format!("Git URL:       {git_url}\n")),
        "{out}"
    );
    assert!(out.stdout.contains("Owner:         admin\n"), "{out}");
    let info = cli
        .run(&["apps:info", "-a", "web", "--json"])
        .success()
        .json();
    assert_eq!(info["name"], "web");
    assert_eq!(info["git_url"], git_url.as_str());
    assert_eq!(info["deploy_branch"], "main");
    assert_eq!(info["current_release"], serde_json::Value::Null);

    // Destroying needs the name confirmed; without a terminal only --confirm does it.
    cli.run(&["apps:destroy", "-a", "web"])
        .error("--confirm web");
    cli.run(&["apps:destroy", "-a", "web", "--confirm", "wbe"])
        .error("did not match");
    cli.run(&["apps:info", "-a", "web"]).success();

    let out = cli
        .run(&["apps:destroy", "web", "--confirm", "web"])
        .success();
    assert_eq!(out.stderr, "Destroying ⬢ web... done\n");
    cli.run(&["apps:info", "-a", "web"])
        .error("Couldn't find that app.");
    assert!(!gitd.data_dir().join("repos/web.git").exists());
    let listed = cli.run(&["apps", "--json"]).success().json();
    assert_eq!(listed[0]["name"], generated.as_str());
}

#[test]
fn apps_create_in_a_git_repo_adds_the_paas_remote_that_picks_the_app() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    let repo = git_repo();
    let git_url = format!("ssh://git@127.0.0.1:{}/shop.git", gitd.ssh_addr.port());

    let out = cli
        .cmd(&["apps:create", "shop"])
        .dir(repo.path())
        .run()
        .success();
    assert!(
        out.stderr
            .contains(&format!("set git remote paas to {git_url}")),
        "{out}"
    );
    assert_eq!(
        git(repo.path(), &["config", "--get", "remote.paas.url"]).trim(),
        git_url
    );

    // Inside the repo the remote names the app; outside, nothing does.
    let out = cli
        .cmd(&["config:set", "MODE=repo"])
        .dir(repo.path())
        .run()
        .success();
    assert_eq!(out.stderr, "Setting MODE on ⬢ shop... done, v1\n");
    assert!(
        cli.cmd(&["apps:info"])
            .dir(repo.path())
            .run()
            .success()
            .stdout
            .starts_with("=== shop\n")
    );
    cli.run(&["config"]).error(
        "No app specified. Use -a NAME, -r REMOTE or run inside a repo with a 'paas' remote.",
    );

    // git:remote fixes a remote that points elsewhere, and adds a missing one.
    git(
        repo.path(),
        &["remote", "set-url", "paas", "https://example.com/other.git"],
    );
    cli.cmd(&["config"])
        .dir(repo.path())
        .run()
        .error("does not point at a paas app");
    let out = cli
        .cmd(&["git:remote", "-a", "shop"])
        .dir(repo.path())
        .run()
        .success();
    assert_eq!(out.stdout, format!("set git remote paas to {git_url}\n"));
    assert_eq!(
        git(repo.path(), &["config", "--get", "remote.paas.url"]).trim(),
        git_url
    );
    let fresh = git_repo();
    cli.cmd(&["git:remote", "-a", "shop"])
        .dir(fresh.path())
        .run()
        .success();
    assert_eq!(
        git(fresh.path(), &["config", "--get", "remote.paas.url"]).trim(),
        git_url
    );
    cli.cmd(&["git:remote", "-a", "nope"])
        .dir(fresh.path())
        .run()
        .error("Couldn't find that app.");

    // Destroying the app from its repo removes the remote too.
    cli.cmd(&["apps:destroy", "--confirm", "shop"])
        .dir(repo.path())
        .run()
        .success();
    let remotes = git(repo.path(), &["remote"]);
    assert!(!remotes.contains("paas"), "{remotes}");
}

/// Makes an SSH key pair with ssh-keygen; returns the public key path and its fingerprint.
fn ssh_keygen(dir: &std::path::Path, name: &str, key_type: &str) -> (std::path::PathBuf, String) {
    let private = dir.join(name);
    let out = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            key_type,
            "-N",
            "",
            "-C",
            &format!("{name}@e2e"),
            "-f",
        ])
        .arg(&private)
        .output()
        .expect("running ssh-keygen");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let public = dir.join(format!("{name}.pub"));
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(&public)
        .output()
        .unwrap();
    let fingerprint = String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_owned();
    (public, fingerprint)
}

#[test]
fn ssh_keys_are_added_listed_and_removed() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    let keys_dir = tempfile::tempdir().unwrap();
    let (ed25519, ed25519_fp) = ssh_keygen(keys_dir.path(), "laptop", "ed25519");
    let (rsa, rsa_fp) = ssh_keygen(keys_dir.path(), "desktop", "rsa");

    assert_eq!(
        cli.run(&["keys"]).success().stdout,
        "You have no SSH keys.\n"
    );
    let out = cli.run(&["keys:add", ed25519.to_str().unwrap()]).success();
    assert_eq!(
        out.stderr,
        format!("Uploading {} SSH key... done\n", ed25519.display())
    );
    assert_eq!(
        out.stdout,
        format!("{ed25519_fp}  ssh-ed25519  laptop@e2e\n")
    );

    // The default key is the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub.
    cli.run(&["keys:add"]).error("No public key found");
    let ssh_dir = cli.home().join(".ssh");
    std::fs::create_dir_all(&ssh_dir).unwrap();
    std::fs::copy(&rsa, ssh_dir.join("id_rsa.pub")).unwrap();
    std::fs::copy(rsa.with_extension(""), ssh_dir.join("id_rsa")).unwrap();
    let out = cli.run(&["keys:add"]).success();
    assert!(
        out.stdout.starts_with(&format!("{rsa_fp}  ssh-rsa")),
        "{out}"
    );

    let keys = cli.run(&["keys", "--json"]).success().json();
    let fingerprints: Vec<&str> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints.len(), 2);
    assert!(fingerprints.contains(&ed25519_fp.as_str()) && fingerprints.contains(&rsa_fp.as_str()));
    let listing = cli.run(&["keys"]).success().stdout;
    assert!(listing.starts_with("=== admin Keys\n"), "{listing}");
    assert!(
        listing.contains(&ed25519_fp) && listing.contains("laptop@e2e"),
        "{listing}"
    );

    // A duplicate is refused, also for another user: fingerprints are unique.
    cli.run(&["keys:add", ed25519.to_str().unwrap()])
        .error("already registered");
    let bob = gitd.user("bob");
    let before = gitd.db_dump();
    bob.run(&["keys:add", ed25519.to_str().unwrap()])
        .error("already registered");

    // Malformed keys and private keys are refused.
    let junk = keys_dir.path().join("junk.pub");
    std::fs::write(&junk, "ssh-ed25519 not-base64!! x@y\n").unwrap();
    bob.run(&["keys:add", junk.to_str().unwrap()])
        .error("Not a valid OpenSSH public key");
    std::fs::write(&junk, "hello\n").unwrap();
    bob.run(&["keys:add", junk.to_str().unwrap()])
        .error("Not a valid OpenSSH public key");
    let private = keys_dir.path().join("laptop");
    bob.run(&["keys:add", private.to_str().unwrap()])
        .error("is a private key");
    assert_eq!(gitd.db_dump(), before);
    assert_eq!(
        bob.run(&["keys"]).success().stdout,
        "You have no SSH keys.\n"
    );

    // Others' keys cannot be removed; own keys by fingerprint or id.
    bob.run(&["keys:remove", &ed25519_fp])
        .error("You have no key");
    assert_eq!(gitd.db_dump(), before);
    let out = cli.run(&["keys:remove", &ed25519_fp]).success();
    assert_eq!(
        out.stderr,
        format!("Removing {ed25519_fp} SSH key... done\n")
    );
    let keys = cli.run(&["keys", "--json"]).success().json();
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let rsa_id = keys[0]["id"].as_i64().unwrap().to_string();
    let out = cli.run(&["keys:remove", &rsa_id]).success();
    assert_eq!(out.stderr, format!("Removing SSH key {rsa_id}... done\n"));
    assert_eq!(
        cli.run(&["keys"]).success().stdout,
        "You have no SSH keys.\n"
    );
    cli.run(&["keys:remove", &rsa_id]).error("You have no key");
}

#[test]
fn config_changes_make_releases_v1_to_vn() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    cli.run(&["apps:create", "web"]).success();
    let app = ["-a", "web"];
    let with_app = |args: &[&'static str]| -> Vec<&'static str> { [args, &app[..]].concat() };

    assert_eq!(
        cli.run(&with_app(&["config"])).success().stdout,
        "web has no config vars.\n"
    );
    let out = cli
        .run(&with_app(&["config:set", "GREETING=hello world", "A=1"]))
        .success();
    assert_eq!(out.stderr, "Setting GREETING and A on ⬢ web... done, v1\n");
    assert_eq!(out.stdout, "GREETING: hello world\nA:        1\n");
    let out = cli
        .run(&with_app(&["config:set", "URL=postgres://u:p@h/db?x=y"]))
        .success();
    assert_eq!(out.stderr, "Setting URL on ⬢ web... done, v2\n");
    let out = cli.run(&with_app(&["config:unset", "A"])).success();
    assert_eq!(out.stderr, "Unsetting A on ⬢ web... done, v3\n");
    // Nothing to change: no release, nothing restarted (the release count below stays 3).
    let out = cli.run(&with_app(&["config:unset", "NOPE"])).success();
    assert_eq!(out.stderr, "Unsetting NOPE on ⬢ web... done, no change\n");
    let out = cli
        .run(&with_app(&["config:set", "GREETING=hello world"]))
        .success();
    assert_eq!(out.stderr, "Setting GREETING on ⬢ web... done, no change\n");

    assert_eq!(
        cli.run(&with_app(&["config"])).success().stdout,
        "=== web Config Vars\nGREETING: hello world\nURL:      postgres://u:p@h/db?x=y\n"
    );
    assert_eq!(
        cli.run(&with_app(&["config:get", "URL"])).success().stdout,
        "postgres://u:p@h/db?x=y\n"
    );
    assert_eq!(
        cli.run(&with_app(&["config:get", "A"])).success().stdout,
        "\n"
    );
    let vars = cli.run(&with_app(&["config", "--json"])).success().json();
    assert_eq!(
        vars,
        serde_json::json!({"GREETING": "hello world", "URL": "postgres://u:p@h/db?x=y"})
    );
    assert_eq!(
        cli.run(&with_app(&["config", "--shell"])).success().stdout,
        "GREETING='hello world'\nURL='postgres://u:p@h/db?x=y'\n"
    );

    let releases = cli.run(&with_app(&["releases", "--json"])).success().json();
    let summary: Vec<(u64, &str, &str)> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_u64().unwrap(),
                r["description"].as_str().unwrap(),
                r["user"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(summary.len(), 3);
    assert_eq!(
        summary.iter().map(|r| r.0).collect::<Vec<_>>(),
        [3, 2, 1],
        "{releases}"
    );
    assert!(summary.iter().all(|r| r.2 == "admin"));
    assert!(
        summary[2].1.contains("GREETING") && summary[2].1.contains('A'),
        "{releases}"
    );
    assert!(summary[0].1.starts_with("Unset A"), "{releases}");
    // Every release keeps the config it was made with.
    assert_eq!(
        releases[2]["config"],
        serde_json::json!({"GREETING": "hello world", "A": "1"})
    );
    assert_eq!(releases[0]["config"], vars);

    let text = cli.run(&with_app(&["releases"])).success().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "=== web Releases - Current: v3");
    assert!(lines[1].starts_with("v3  Unset A"), "{text}");
    assert!(lines[3].starts_with("v1  Set "), "{text}");
    let one = cli
        .run(&with_app(&["releases", "-n", "1", "--json"]))
        .success()
        .json();
    assert_eq!(one.as_array().unwrap().len(), 1);
    assert_eq!(one[0]["version"], 3);
    let text = cli
        .run(&with_app(&["releases", "-n", "1"]))
        .success()
        .stdout;
    assert!(
        text.starts_with("=== web Releases - Current: v3\nv3  Unset A"),
        "{text}"
    );
    let out = cli.run(&with_app(&["releases", "-n", "0"]));
    assert_ne!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("0 is not in 1.."), "{}", out.stderr);
    let latest = cli.run(&with_app(&["releases:info"])).success().stdout;
    assert!(latest.starts_with("=== Release v3\n"), "{latest}");
}

#[test]
fn collaborators_get_access_and_lose_it() {
    let gitd = Gitd::start();
    let alice = gitd.user("alice");
    let bob = gitd.user("bob");
    gitd.user("carol");
    alice.run(&["apps:create", "shop"]).success();

    assert_eq!(
        alice.run(&["access", "-a", "shop"]).success().stdout,
        "=== shop Access List\nalice  owner\n"
    );
    let out = alice.run(&["access:add", "bob", "-a", "shop"]).success();
    assert_eq!(out.stderr, "Adding bob access to ⬢ shop... done\n");
    alice
        .run(&["access:add", "bob", "-a", "shop"])
        .error("already a collaborator");
    alice
        .run(&["access:add", "nobody", "-a", "shop"])
        .error("No user named nobody.");
    assert_eq!(
        alice.run(&["access", "-a", "shop"]).success().stdout,
        "=== shop Access List\nalice  owner\nbob    collaborator\n"
    );
    let listed = alice
        .run(&["access", "-a", "shop", "--json"])
        .success()
        .json();
    assert_eq!(
        listed,
        serde_json::json!([
            {"username": "alice", "role": "owner"},
            {"username": "bob", "role": "collaborator"}
        ])
    );

    // A collaborator sees and configures the app but does not manage access or destroy it.
    assert_eq!(
        bob.run(&["apps"]).success().stdout,
        "=== Collaborated Apps\nshop  alice\n"
    );
    bob.run(&["config:set", "FROM=bob", "-a", "shop"]).success();
    let before = gitd.db_dump();
    bob.run(&["access:add", "carol", "-a", "shop"])
        .error("Only the owner");
    bob.run(&["apps:destroy", "shop", "--confirm", "shop"])
        .error("Only the owner");
    assert_eq!(gitd.db_dump(), before);

    let out = alice.run(&["access:remove", "bob", "-a", "shop"]).success();
    assert_eq!(out.stderr, "Removing bob access from ⬢ shop... done\n");
    bob.run(&["apps:info", "-a", "shop"])
        .error("Couldn't find that app.");
    assert_eq!(bob.run(&["apps"]).success().stdout, "You have no apps.\n");
}

#[test]
fn a_second_user_can_neither_see_nor_change_the_first_users_app() {
    let gitd = Gitd::start();
    let alice = gitd.user("alice");
    let mallory = gitd.user("mallory");
    alice.run(&["apps:create", "secret"]).success();
    alice
        .run(&["config:set", "KEY=alice-only", "-a", "secret"])
        .success();
    let before = gitd.db_dump();

    assert_eq!(
        mallory.run(&["apps"]).success().stdout,
        "You have no apps.\n"
    );
    assert_eq!(
        mallory.run(&["apps", "--json"]).success().json(),
        serde_json::json!([])
    );
    let not_found = "Couldn't find that app.";
    for args in [
        &["apps:info", "-a", "secret"][..],
        &["config", "-a", "secret"],
        &["config:get", "KEY", "-a", "secret"],
        &["config:set", "KEY=mallory", "-a", "secret"],
        &["config:unset", "KEY", "-a", "secret"],
        &["releases", "-a", "secret"],
        &["access", "-a", "secret"],
        &["access:add", "mallory", "-a", "secret"],
        &["access:remove", "alice", "-a", "secret"],
        &["apps:destroy", "secret", "--confirm", "secret"],
    ] {
        mallory.run(args).error(not_found);
    }
    // The same answer as for an app that does not exist: names do not leak.
    mallory
        .run(&["apps:info", "-a", "nothing"])
        .error(not_found);
    // Not an admin either.
    mallory.run(&["users"]).error("Only admins");
    mallory
        .cmd(&["users:add", "eve", "--password-stdin"])
        .stdin("eve-password\n")
        .run()
        .error("Only admins");

    assert_eq!(gitd.db_dump(), before);
    assert_eq!(
        alice
            .run(&["config:get", "KEY", "-a", "secret"])
            .success()
            .stdout,
        "alice-only\n"
    );
}

#[test]
fn admins_add_and_remove_users() {
    let gitd = Gitd::start();
    let admin = gitd.admin();
    let out = admin
        .cmd(&["users:add", "dave", "--password-stdin"])
        .stdin("dave-password\n")
        .run()
        .success();
    assert_eq!(out.stderr, "Adding user dave... done\n");
    admin
        .cmd(&["users:add", "dave", "--password-stdin"])
        .stdin("dave-password\n")
        .run()
        .error("User dave already exists.");
    admin
        .cmd(&["users:add", "erin", "--password-stdin"])
        .stdin("short\n")
        .run()
        .error("Password too short");
    admin.run(&["users:add", "erin"]).error("--password-stdin");

    let text = admin.run(&["users"]).success().stdout;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "=== Users");
    assert!(lines[1].starts_with("admin  admin  "), "{text}");
    assert!(lines[2].starts_with("dave   user   "), "{text}");
    let users = admin.run(&["users", "--json"]).success().json();
    assert_eq!(users[1]["username"], "dave");
    assert_eq!(users[1]["is_admin"], false);

    let dave = gitd.login("dave", "dave-password");
    assert_eq!(dave.run(&["whoami"]).success().stdout, "dave\n");
    let out = admin.run(&["users:remove", "dave"]).success();
    assert_eq!(out.stderr, "Removing user dave... done\n");
    dave.run(&["whoami"]).error("Invalid or expired token");
    let cli = Cli::new();
    login_cmd(&gitd, &cli, "dave", "dave-password").error("Invalid username or password.");
    admin
        .run(&["users:remove", "dave"])
        .error("No user named dave.");
    admin.run(&["users:remove", "admin"]).error("last admin");
}

#[test]
fn on_a_terminal_login_prompts_and_destroy_asks_for_the_name() {
    let gitd = Gitd::start();
    let cli = Cli::new();

    let mut login = cli
        .cmd(&["login", "--server", &gitd.url()])
        .spawn_in_terminal();
    login.expect("Username");
    login.send(&format!("{ADMIN_USER}\r"));
    login.expect("Password");
    login.send(&format!("{ADMIN_PASSWORD}\r"));
    let out = login.finish().success();
    assert!(out.stdout.contains("Logged in as admin"), "{out}");
    assert!(
        !out.stdout.contains(ADMIN_PASSWORD),
        "the password was echoed:\n{out}"
    );
    cli.run(&["apps:create", "web"]).success();

    let mut destroy = cli.cmd(&["apps:destroy", "-a", "web"]).spawn_in_terminal();
    destroy.expect("To proceed, type web");
    destroy.send("wbe\r");
    destroy
        .finish()
        .code
        .filter(|&c| c == 1)
        .expect("a wrong name fails");
    cli.run(&["apps:info", "-a", "web"]).success();

    let mut destroy = cli
        .cmd(&["apps:destroy", "-a", "web"])
        .env("NO_COLOR", "1")
        .spawn_in_terminal();
    destroy.expect("To proceed, type web");
    destroy.send("web\r");
    let out = destroy.finish().success();
    assert!(out.stdout.contains("Destroying ⬢ web... done"), "{out}");
    cli.run(&["apps:info", "-a", "web"])
        .error("Couldn't find that app.");
}

#[test]
fn colour_only_on_a_terminal_and_never_with_no_color() {
    let gitd = Gitd::start();
    let cli = gitd.admin();
    cli.run(&["apps:create", "web"]).success();
    let bold_header = "\x1b[1m=== admin Apps\x1b[0m";

    let out = cli.cmd(&["apps"]).spawn_in_terminal().finish().success();
    assert!(out.stdout.contains(bold_header), "{out:?}");
    let out = cli
        .cmd(&["apps"])
        .env("NO_COLOR", "1")
        .spawn_in_terminal()
        .finish()
        .success();
    assert!(
        out.stdout.contains("=== admin Apps") && !out.stdout.contains('\x1b'),
        "{out:?}"
    );
    let out = cli.run(&["apps"]).success();
    assert_eq!(out.stdout, "=== admin Apps\nweb\n");
}

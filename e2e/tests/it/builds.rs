//! Image builds through a real `paas-agent` against the real Docker engine, driven by the agent
//! client gitd uses (`paas-agent-client`): Dockerfile builds (examples/hello, `.dockerignore`, a failing step), the pack
//! path through the stand-in `fixtures/pack`, and the API's refusals (token, spec, tar paths).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::platform::{Agent, AgentOptions, remove_from_docker};
use crate::util::{bin, workspace_root};
use paas_agent_client::{AgentClient, AgentError, BuiltImage};
use paas_api::agent::{BuildEvent, BuildSpec, Builder};

/// A unique app name per test process; what it left in Docker is removed when the test ends.
struct TestApp {
    name: String,
}

impl TestApp {
    fn new(label: &str) -> TestApp {
        TestApp {
            name: format!("b{}-{label}", std::process::id()),
        }
    }

    fn spec(&self, release: u32, builder: Builder) -> BuildSpec {
        BuildSpec {
            app: self.name.clone(),
            release,
            commit: "0123456789abcdef".to_owned(),
            builder,
        }
    }

    fn image(&self, release: u32) -> String {
        format!("paas/{}:v{release}", self.name)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        remove_from_docker(&self.name);
    }
}

fn dockerfile_builder() -> Builder {
    Builder::Dockerfile {
        dockerfile: "Dockerfile".to_owned(),
        build_args: BTreeMap::new(),
    }
}

/// A tar of `dir` made by the tar CLI, which, like `git archive` in gitd, pads the archive
/// with zeros well past its end-of-archive marker.
fn tar_of_dir(dir: &Path) -> Vec<u8> {
    let output = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .args(["-cf", "-", "."])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A tar holding `files` (path, contents, mode).
fn tar_of_files(files: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(*mode);
        builder
            .append_data(&mut header, path, contents.as_bytes())
            .unwrap();
    }
    builder.into_inner().unwrap()
}

/// Runs a build, returning every event received and the client's result.
async fn build(
    agent: &Agent,
    spec: &BuildSpec,
    context: Vec<u8>,
) -> (Vec<BuildEvent>, Result<BuiltImage, AgentError>) {
    build_with(&agent.client(), spec, context).await
}

async fn build_with(
    client: &AgentClient,
    spec: &BuildSpec,
    context: Vec<u8>,
) -> (Vec<BuildEvent>, Result<BuiltImage, AgentError>) {
    let mut events = Vec::new();
    let result = client
        .build(spec, std::io::Cursor::new(context), |event| {
            events.push(event)
        })
        .await;
    (events, result)
}

fn lines(events: &[BuildEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|event| match event {
            BuildEvent::Line(line) => Some(line.as_str()),
            _ => None,
        })
        .collect()
}

fn docker_inspect(image: &str, format: &str) -> Option<String> {
    let output = Command::new("docker")
        .args(["image", "inspect", "--format", format, image])
        .output()
        .unwrap();
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn image_labels(image: &str) -> BTreeMap<String, String> {
    let json = docker_inspect(image, "{{json .Config.Labels}}")
        .unwrap_or_else(|| panic!("image {image} does not exist"));
    serde_json::from_str(&json).unwrap()
}

/// Exactly one terminal event, and it is the last one.
fn assert_one_terminal_last(events: &[BuildEvent]) {
    let terminals = events
        .iter()
        .filter(|e| !matches!(e, BuildEvent::Line(_)))
        .count();
    assert_eq!(terminals, 1, "{events:?}");
    assert!(
        !matches!(events.last(), Some(BuildEvent::Line(_))),
        "{events:?}"
    );
}

#[tokio::test]
async fn hello_builds_with_streamed_lines_and_a_labelled_image() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("hello");
    let spec = app.spec(1, dockerfile_builder());
    let (events, result) = build(
        &agent,
        &spec,
        tar_of_dir(&workspace_root().join("examples/hello")),
    )
    .await;

    let built = result.unwrap_or_else(|err| panic!("{err}\n{events:?}\n{}", agent.log()));
    assert_eq!(built.image, app.image(1));
    assert_one_terminal_last(&events);
    let lines = lines(&events);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Step 1/") && l.contains("FROM paas/busybox:latest")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.contains("COPY www /www")),
        "{lines:?}"
    );

    assert_eq!(
        docker_inspect(&built.image, "{{.Id}}"),
        Some(built.image_id.clone())
    );
    let labels = image_labels(&built.image);
    assert_eq!(labels.get("paas.app"), Some(&app.name));
    assert_eq!(labels.get("paas.release").map(String::as_str), Some("v1"));
    assert_eq!(
        labels.get("paas.commit").map(String::as_str),
        Some("0123456789abcdef")
    );
}

#[tokio::test]
async fn dockerignore_and_build_args_reach_the_engine() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("ignore");
    let context = tar_of_files(&[
        (
            "Dockerfile",
            "FROM paas/busybox:latest\nARG FLAVOUR\nARG RUN_ID\nCOPY . /app\n\
             RUN test -e /app/keep.txt && test ! -e /app/secret.txt && test ! -e /app/logs/a.log \
             && test -e /app/logs/keep.log && test \"$FLAVOUR\" = mint && echo context-checked\n",
            0o644,
        ),
        (".dockerignore", "secret.txt\nlogs\n!logs/keep.log\n", 0o644),
        ("keep.txt", "keep\n", 0o644),
        ("secret.txt", "secret\n", 0o644),
        ("logs/a.log", "a\n", 0o644),
        ("logs/keep.log", "k\n", 0o644),
    ]);
    let spec = app.spec(
        1,
        Builder::Dockerfile {
            dockerfile: "Dockerfile".to_owned(),
            // RUN_ID makes the checking step's cache key unique, so it runs and prints.
            build_args: BTreeMap::from([
                ("FLAVOUR".to_owned(), "mint".to_owned()),
                ("RUN_ID".to_owned(), app.name.clone()),
            ]),
        },
    );
    let (events, result) = build(&agent, &spec, context).await;
    result.unwrap_or_else(|err| panic!("{err}\n{events:?}"));
    assert!(lines(&events).contains(&"context-checked"), "{events:?}");
}

#[tokio::test]
async fn a_failing_dockerfile_fails_with_the_daemons_message() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("broken");
    let context = tar_of_files(&[(
        "Dockerfile",
        "FROM paas/busybox:latest\nRUN echo about to fail && exit 3\n",
        0o644,
    )]);
    let (events, result) = build(&agent, &app.spec(1, dockerfile_builder()), context).await;

    match result {
        Err(AgentError::BuildFailed(reason)) => {
            assert!(reason.contains("returned a non-zero code: 3"), "{reason}");
            assert!(!reason.contains('\n'), "{reason}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert_one_terminal_last(&events);
    assert!(lines(&events).contains(&"about to fail"), "{events:?}");
    assert_eq!(docker_inspect(&app.image(1), "{{.Id}}"), None);
}

#[tokio::test]
async fn a_missing_dockerfile_fails_with_a_clear_reason() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("nodockerfile");
    let context = tar_of_files(&[("README", "no Dockerfile here\n", 0o644)]);
    let (_, result) = build(&agent, &app.spec(1, dockerfile_builder()), context).await;
    match result {
        Err(AgentError::BuildFailed(reason)) => {
            assert_eq!(reason, "no Dockerfile at `Dockerfile` in the pushed tree");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_and_builds_nothing() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("token");
    let spec = app.spec(1, dockerfile_builder());
    let context = tar_of_dir(&workspace_root().join("examples/hello"));

    let wrong = AgentClient::new(agent.url.clone(), "0".repeat(64));
    let (events, result) = build_with(&wrong, &spec, context.clone()).await;
    assert!(
        matches!(result, Err(AgentError::Unauthorized)),
        "{result:?}"
    );
    assert!(events.is_empty());

    let response = reqwest::Client::new()
        .post(format!("{}/v1/builds", agent.url))
        .body(context)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::UNAUTHORIZED);
    let body: paas_api::ErrorBody = response.json().await.unwrap();
    assert_eq!(body.error.code, paas_api::ErrorCode::Unauthorized);
    assert_eq!(docker_inspect(&app.image(1), "{{.Id}}"), None);
}

#[tokio::test]
async fn a_bad_spec_is_refused_before_building() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("badspec");
    let mut spec = app.spec(1, dockerfile_builder());
    // A label value that would close its quote in the Dockerfile's LABEL line.
    spec.commit = "0123\" \"paas.app\"=\"busybox".to_owned();
    let (events, result) = build(
        &agent,
        &spec,
        tar_of_dir(&workspace_root().join("examples/hello")),
    )
    .await;
    match result {
        Err(AgentError::Rejected(message)) => {
            assert!(message.contains("must be a hex object id"), "{message}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(events.is_empty());
    assert_eq!(docker_inspect(&app.image(1), "{{.Id}}"), None);
}

#[tokio::test]
async fn a_tar_entry_climbing_out_of_the_tree_fails_the_build() {
    let agent = Agent::with(AgentOptions::default());
    let app = TestApp::new("climb");
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("planted");
    // The tar crate refuses to write such names itself; patch the header like a hostile client.
    let mut header = tar::Header::new_old();
    header.set_size(1);
    header.set_mode(0o644);
    header.set_entry_type(tar::EntryType::Regular);
    let name = format!("../../../../../../..{}", target.display());
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_cksum();
    let mut context = header.as_bytes().to_vec();
    context.extend_from_slice(&[b'x'; 1]);
    context.resize(1024, 0);
    context.extend_from_slice(&[0; 1024]);

    let (_, result) = build(&agent, &app.spec(1, dockerfile_builder()), context).await;
    match result {
        Err(AgentError::BuildFailed(reason)) => {
            assert!(reason.contains("points outside the tree"), "{reason}");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert!(!target.exists());
}

/// An agent that finds the stand-in `pack` first on its PATH, with `env` added.
fn pack_agent(env: Vec<(&'static str, PathBuf)>) -> Agent {
    Agent::with(AgentOptions {
        pack_standin: true,
        env,
        ..AgentOptions::default()
    })
}

const SECRET: &str = "s3cret value with spaces";

fn pack_builder(path: &str) -> Builder {
    Builder::Pack {
        builder: "heroku/builder:24".to_owned(),
        buildpacks: vec!["heroku/procfile".to_owned()],
        path: path.to_owned(),
        env: BTreeMap::from([("API_TOKEN".to_owned(), SECRET.to_owned())]),
        trust_builder: true,
    }
}

fn pack_app_context(extra: &[(&str, &str, u32)]) -> Vec<u8> {
    let mut files = vec![
        (
            "web/Dockerfile",
            "FROM paas/busybox:latest\nCOPY Procfile /app/Procfile\n",
            0o644,
        ),
        ("web/Procfile", "web: httpd -f -p $PORT\n", 0o644),
        ("README", "the app lives in web/\n", 0o644),
    ];
    files.extend_from_slice(extra);
    tar_of_files(&files)
}

#[tokio::test]
async fn pack_builds_get_exact_argv_env_values_in_an_env_file_and_labels() {
    let agent = pack_agent(Vec::new());
    let app = TestApp::new("pack");
    let spec = app.spec(2, pack_builder("web"));
    let (events, result) = build(&agent, &spec, pack_app_context(&[])).await;

    let built = result.unwrap_or_else(|err| panic!("{err}\n{events:?}\n{}", agent.log()));
    assert_one_terminal_last(&events);
    let cache = format!("type=build;format=volume;name=paas-pack-cache-{}", app.name);
    let argv = agent.pack_argv();
    let env_file = argv.get(13).cloned().unwrap_or_default();
    assert!(
        env_file.starts_with('/') && env_file.ends_with("/pack.env"),
        "{argv:?}"
    );
    assert_eq!(
        argv,
        [
            "build",
            &app.image(2),
            "--builder",
            "heroku/builder:24",
            "--path",
            "web",
            "--pull-policy",
            "if-not-present",
            "--network",
            "paas-builds",
            "--buildpack",
            "heroku/procfile",
            "--env-file",
            &env_file,
            "--cache",
            &cache,
            "--trust-builder",
        ]
    );
    assert!(argv.iter().all(|arg| !arg.contains("s3cret")));
    assert_eq!(
        agent.pack_env_file().as_deref(),
        Some(format!("API_TOKEN={SECRET}\n").as_str())
    );
    assert!(
        agent
            .pack_env()
            .iter()
            .all(|entry| !entry.contains("s3cret")),
        "{:?}",
        agent.pack_env()
    );

    let lines = lines(&events);
    assert!(lines.contains(&"===> DETECTING"), "{lines:?}");
    assert!(lines.contains(&"===> EXPORTING"), "{lines:?}");
    let labels = image_labels(&built.image);
    assert_eq!(labels.get("paas.app"), Some(&app.name));
    assert_eq!(labels.get("paas.release").map(String::as_str), Some("v2"));
    assert_eq!(
        labels.get("paas.commit").map(String::as_str),
        Some("0123456789abcdef")
    );
    assert_eq!(
        docker_inspect(&built.image, "{{.Id}}"),
        Some(built.image_id)
    );
}

#[tokio::test]
async fn pack_output_reaches_the_client_while_pack_still_runs() {
    let scratch = tempfile::tempdir().unwrap();
    let go_ahead = scratch.path().join("go-ahead");
    // The stand-in pauses after this line until the client has seen it; a buffering agent or
    // client would never let it continue.
    let agent = pack_agent(vec![("PACK_STANDIN_GO_AHEAD", go_ahead.clone())]);
    let app = TestApp::new("packstream");
    let mut seen = Vec::new();
    let result = agent
        .client()
        .build(
            &app.spec(1, pack_builder("web")),
            std::io::Cursor::new(pack_app_context(&[])),
            |event| {
                if event == BuildEvent::Line("waiting for the go-ahead".to_owned()) {
                    std::fs::write(&go_ahead, "").unwrap();
                }
                seen.push(event);
            },
        )
        .await;
    result.unwrap_or_else(|err| panic!("{err}\n{seen:?}"));
    let lines = lines(&seen);
    let waiting = lines.iter().position(|l| *l == "waiting for the go-ahead");
    let exporting = lines.iter().position(|l| *l == "===> EXPORTING");
    assert!(waiting.is_some() && waiting < exporting, "{lines:?}");
}

#[tokio::test]
async fn a_failing_pack_fails_the_build_after_showing_its_last_lines() {
    let agent = pack_agent(Vec::new());
    let app = TestApp::new("packfail");
    let context = pack_app_context(&[("web/FAIL_PACK", "", 0o644)]);
    let (events, result) = build(&agent, &app.spec(1, pack_builder("web")), context).await;

    match result {
        Err(AgentError::BuildFailed(reason)) => {
            assert_eq!(reason, "pack build failed (exit status 1)");
        }
        other => panic!("expected a failed build, got {other:?}"),
    }
    assert_one_terminal_last(&events);
    let lines = lines(&events);
    assert!(
        lines.contains(&"ERROR: stand-in build failure requested by FAIL_PACK"),
        "{lines:?}"
    );
    assert_eq!(docker_inspect(&app.image(1), "{{.Id}}"), None);
}

#[tokio::test]
async fn without_pack_the_build_says_how_to_fix_it() {
    // An empty directory as the whole PATH: no `pack`, even on a host that has one.
    let empty = tempfile::tempdir().unwrap();
    let agent = Agent::with(AgentOptions {
        path: Some(empty.path().into()),
        ..AgentOptions::default()
    });
    let app = TestApp::new("nopack");
    let (_, result) = build(
        &agent,
        &app.spec(1, pack_builder("web")),
        pack_app_context(&[]),
    )
    .await;
    match result {
        Err(AgentError::BuildFailed(reason)) => assert_eq!(
            reason,
            "pack is not installed on the build host; add a Dockerfile to the app or install pack (https://buildpacks.io/docs/tools/pack/)"
        ),
        other => panic!("expected a failed build, got {other:?}"),
    }
}

#[test]
fn init_refuses_to_overwrite_and_serve_refuses_to_run_without_a_token() {
    let binary = bin("paas-agent");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("agent.toml");
    let run = |args: &[&str]| Command::new(&binary).args(args).output().unwrap();
    let config_arg = config.to_str().unwrap();

    assert!(run(&["init", "--config", config_arg]).status.success());
    let written = std::fs::read_to_string(&config).unwrap();
    let again = run(&["init", "--config", config_arg]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert_eq!(
        stderr.trim(),
        format!("error: config {config_arg} exists; pass --force to overwrite it")
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), written);

    std::fs::write(&config, "token = \"\"\n").unwrap();
    let serve = run(&["serve", "--listen", "127.0.0.1:0", "--config", config_arg]);
    assert!(!serve.status.success());
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(
        stderr.trim().starts_with("error: config") && stderr.contains("has no token"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn sigterm_stops_the_agent_cleanly() {
    let mut agent = Agent::with(AgentOptions::default());
    let pid = agent.pid().to_string();
    let kill = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(kill.success());
    let status = agent.wait();
    assert!(status.success(), "{status}\n{}", agent.log());
    assert!(
        agent.log().contains("paas-agent stopped"),
        "{}",
        agent.log()
    );
}

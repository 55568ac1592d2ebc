//! One-off containers (contract in `paas_api::oneoff`): `POST /v1/apps/{app}/oneoff` runs a
//! command to completion in a container of a release's image and config, and streams its
//! output and outcome as NDJSON. The release phase runs the Procfile's `release` command so.
//!
//! A one-off container is on the app's network, with the app's config and the same hardening
//! and limits as the app's processes, named and labelled through [`crate::naming`]
//! (`paas.app`/`paas.release`/`paas.process`), and marked as the agent's by [`LABEL_ONEOFF`]
//! carrying the instance key. It does not carry
//! `paas.instance`: Traefik (constrained to that label) never sees it, and the rollout and
//! convergence of the app's processes (which list by that label) never take it for one of
//! theirs and retire it. It is removed when it ends, when it runs past its timeout (killed,
//! reported `timed_out`), and when the client hangs up first.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::Response;
use axum::routing::post;
use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::models::{ContainerCreateBody, RestartPolicyNameEnum};
use bollard::query_parameters::{CreateContainerOptions, LogsOptions, WaitContainerOptions};
use futures::StreamExt;
use paas_api::agent::LogStream;
use paas_api::oneoff::{MAX_TIMEOUT_SECS, OneOffEvent, OneOffKind, OneOffSpec};
use paas_api::{AppName, ErrorCode};
use tokio::sync::mpsc;
use tracing::{info, warn};

use crate::config::RuntimeConfig;
use crate::error::{ApiError, Path};
use crate::logs::lines::LineAssembler;
use crate::naming::{
    self, InstanceKey, LABEL_APP, LABEL_INDEX, LABEL_ONEOFF, LABEL_PROCESS, LABEL_RELEASE,
    release_label,
};
use crate::runtime::container::{APP_PORT, HostSettings, NON_ROOT_USER, host_config};
use crate::runtime::resources::{check_size, limits};
use crate::runtime::{DockerEngine, Engine, EngineError};
use crate::state::AgentState;
/// Events buffered for a slow reader before the container's output waits for it.
const EVENT_BUFFER: usize = 64;

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/apps/{app}/oneoff", post(run_oneoff))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidInput, message)
}

/// Refuses what could not run, could break out of its container's settings, or is sized
/// above this host's maximums.
pub(crate) fn validate(spec: &OneOffSpec, config: &RuntimeConfig) -> Result<(), ApiError> {
    if spec.release == 0 {
        return Err(invalid("release must be 1 or more"));
    }
    if spec.image.is_empty() || spec.image.len() > 255 || spec.image.contains(char::is_whitespace) {
        return Err(invalid(format!("invalid image {:?}", spec.image)));
    }
    if spec.command.trim().is_empty() || spec.command.contains('\0') {
        return Err(invalid("the command is empty or has a NUL byte"));
    }
    if !(1..=MAX_TIMEOUT_SECS).contains(&spec.timeout_secs) {
        return Err(invalid(format!(
            "timeout_secs must be 1 to {MAX_TIMEOUT_SECS}"
        )));
    }
    crate::runtime::check_env(&spec.env)?;
    crate::runtime::check_volumes(&spec.volumes)?;
    check_size(spec.kind.as_str(), &spec.resources, config).map_err(invalid)
}

/// Docker's name of one-off `index` of `spec`'s kind, named as that instance of a process
/// called after its kind (`paas-<app>-v<N>-run-2`).
pub fn container_name(app: &str, spec: &OneOffSpec, index: u32) -> String {
    naming::container_name(app, spec.release, spec.kind.as_str(), index)
}

/// Held while a one-off is numbered and created, so two never take the same number.
static NUMBERING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The lowest number from 1 that `taken` lacks.
fn lowest_free(taken: &[u32]) -> u32 {
    (1..).find(|index| !taken.contains(index)).unwrap_or(1)
}

/// The numbers of the app's running one-offs of `spec`'s kind.
async fn running_indexes(
    engine: &DockerEngine,
    app: &str,
    spec: &OneOffSpec,
) -> Result<Vec<u32>, EngineError> {
    Ok(engine
        .oneoffs(app, Some(spec.kind.as_str()), false)
        .await?
        .into_iter()
        .filter_map(|(_, labels)| labels.get(LABEL_INDEX)?.parse().ok())
        .collect())
}

async fn run_oneoff(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: OneOffSpec = serde_json::from_slice(&body)
        .map_err(|err| invalid(format!("invalid one-off spec: {err}")))?;
    validate(&spec, &state.config.runtime)?;
    let app = String::from(app);
    info!(%app, release = spec.release, kind = spec.kind.as_str(), "one-off requested");
    let (sender, mut receiver) = mpsc::channel(EVENT_BUFFER);
    tokio::spawn(async move {
        let mut created = None;
        let outcome = tokio::select! {
            outcome = run(&state, &app, &spec, &mut created, &sender) => outcome,
            () = sender.closed() => {
                info!(%app, "one-off abandoned by its client");
                OneOffEvent::Failed { reason: "the client hung up".to_owned() }
            }
        };
        if let Some(name) = &created {
            let engine = DockerEngine::new(state.docker.clone(), state.config.clone());
            if let Err(err) = engine.remove(name).await {
                warn!(%app, %name, error = %err, "cannot remove a one-off container");
            }
        }
        info!(%app, name = ?created, ?outcome, "one-off ended");
        let _ = sender.send(outcome).await;
    });
    let events = futures::stream::poll_fn(move |cx| receiver.poll_recv(cx)).map(|event| {
        let mut line = serde_json::to_vec(&event).expect("one-off events always serialize");
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(events))
        .expect("static headers are valid"))
}

/// Numbers, creates and starts the container (its name goes to `created` as soon as it may
/// exist), relays its output, and gives its outcome.
async fn run(
    state: &AgentState,
    app: &str,
    spec: &OneOffSpec,
    created: &mut Option<String>,
    events: &mpsc::Sender<OneOffEvent>,
) -> OneOffEvent {
    let docker = &state.docker;
    let failed = |err: &dyn std::fmt::Display| OneOffEvent::Failed {
        reason: format!("Docker: {err}"),
    };
    let index = match create(state, app, spec, created, |_| {}).await {
        Ok(index) => index,
        Err(outcome) => return outcome,
    };
    let name = created.as_deref().expect("created names its container");
    let started = docker
        .start_container(
            name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await;
    if let Err(err) = started {
        return failed(&err);
    }
    let _ = events
        .send(OneOffEvent::Started {
            name: name.to_owned(),
            index,
        })
        .await;
    let timeout = Duration::from_secs(spec.timeout_secs);
    match tokio::time::timeout(timeout, follow(docker, name, events)).await {
        Ok(outcome) => outcome,
        Err(_) => OneOffEvent::TimedOut {
            after_secs: spec.timeout_secs,
        },
    }
}

/// Numbers and creates the container of `spec`, as `adjust` changes it (an attached run
/// opens its stdin); its name goes to `created` as soon as it may exist. Gives its number.
pub(crate) async fn create(
    state: &AgentState,
    app: &str,
    spec: &OneOffSpec,
    created: &mut Option<String>,
    adjust: impl FnOnce(&mut ContainerCreateBody),
) -> Result<u32, OneOffEvent> {
    let docker = &state.docker;
    let config = &state.config.runtime;
    let engine = DockerEngine::new(docker.clone(), state.config.clone());
    let failed = |err: &dyn std::fmt::Display| OneOffEvent::Failed {
        reason: format!("Docker: {err}"),
    };
    engine
        .prepare_app(app, &spec.volumes)
        .await
        .map_err(|err| failed(&err))?;
    let numbering = NUMBERING.lock().await;
    let key = state.config.instance_key();
    let index = match spec.kind {
        OneOffKind::Release => 1,
        OneOffKind::Run | OneOffKind::Cron => lowest_free(
            &running_indexes(&engine, app, spec)
                .await
                .map_err(|err| failed(&err))?,
        ),
    };
    let name = container_name(app, spec, index);
    // A stopped container of the same name is one an agent stopped half-way left behind.
    engine.remove(&name).await.map_err(|err| failed(&err))?;
    *created = Some(name.clone());
    let mut body = create_body(app, spec, index, config, key);
    adjust(&mut body);
    let result = docker
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name),
                ..Default::default()
            }),
            body,
        )
        .await;
    drop(numbering);
    result.map_err(|err| failed(&err))?;
    Ok(index)
}

/// Relays the container's output until it ends, then gives its exit status.
async fn follow(docker: &Docker, name: &str, events: &mpsc::Sender<OneOffEvent>) -> OneOffEvent {
    let mut output = docker.logs(
        name,
        Some(LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            timestamps: true,
            ..Default::default()
        }),
    );
    let (mut out, mut err) = (LineAssembler::default(), LineAssembler::default());
    while let Some(Ok(frame)) = output.next().await {
        let (stream, assembler, bytes) = match frame {
            LogOutput::StdOut { message } => (LogStream::Stdout, &mut out, message),
            LogOutput::StdErr { message } => (LogStream::Stderr, &mut err, message),
            _ => continue,
        };
        for (_, line) in assembler.push(&bytes) {
            let _ = events.send(OneOffEvent::Output { stream, line }).await;
        }
    }
    for (stream, assembler) in [(LogStream::Stdout, &mut out), (LogStream::Stderr, &mut err)] {
        if let Some((_, line)) = assembler.finish() {
            let _ = events.send(OneOffEvent::Output { stream, line }).await;
        }
    }
    let mut waited = docker.wait_container(name, None::<WaitContainerOptions>);
    match waited.next().await {
        Some(Ok(exit)) => OneOffEvent::Exited {
            status: exit.status_code,
        },
        // bollard reports a non-zero exit as an error.
        Some(Err(DockerError::DockerContainerWaitError { code, .. })) => {
            OneOffEvent::Exited { status: code }
        }
        Some(Err(err)) => OneOffEvent::Failed {
            reason: format!("Docker: {err}"),
        },
        None => OneOffEvent::Failed {
            reason: "Docker did not report the exit status".to_owned(),
        },
    }
}

/// The container: the release's image and config, hardened and limited as the app's
/// processes are, without routing, health check or restart policy.
fn create_body(
    app: &str,
    spec: &OneOffSpec,
    index: u32,
    config: &RuntimeConfig,
    key: &InstanceKey,
) -> ContainerCreateBody {
    let process = spec.kind.as_str();
    let labels = HashMap::from([
        (LABEL_APP.to_owned(), app.to_owned()),
        (LABEL_RELEASE.to_owned(), release_label(spec.release)),
        (LABEL_PROCESS.to_owned(), process.to_owned()),
        (LABEL_INDEX.to_owned(), index.to_string()),
        (LABEL_ONEOFF.to_owned(), key.as_str().to_owned()),
    ]);
    let mut env = spec.env.clone();
    env.insert("PORT".into(), APP_PORT.to_string());
    env.insert("PAAS_APP".into(), app.to_owned());
    env.insert("PAAS_RELEASE".into(), release_label(spec.release));
    env.insert("PAAS_PROCESS".into(), process.to_owned());
    let host_config = host_config(
        &HostSettings {
            app,
            limits: limits(&spec.resources, config),
            container: spec.container,
            restart: RestartPolicyNameEnum::NO,
            volumes: &spec.volumes,
        },
        config,
    );
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(
            env.into_iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect(),
        ),
        cmd: Some(vec![
            "/bin/sh".to_owned(),
            "-c".to_owned(),
            spec.command.clone(),
        ]),
        labels: Some(labels),
        user: spec.container.non_root.then(|| NON_ROOT_USER.to_owned()),
        host_config: Some(host_config),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use paas_api::agent::ContainerOptions;

    use super::*;
    use crate::naming::{LABEL_INSTANCE, test_key};

    fn spec() -> OneOffSpec {
        OneOffSpec {
            kind: OneOffKind::Release,
            release: 3,
            image: "paas/hello:v3".into(),
            env: BTreeMap::from([("DATABASE_URL".into(), "postgres://db".into())]),
            command: "./migrate".into(),
            timeout_secs: 60,
            container: ContainerOptions {
                non_root: true,
                read_only_root_fs: true,
            },
            volumes: vec!["data:/app/data".parse().unwrap()],
            resources: Default::default(),
        }
    }

    #[test]
    fn a_oneoff_is_the_apps_but_never_routed_nor_an_instance() {
        let body = create_body("hello", &spec(), 1, &RuntimeConfig::default(), &test_key());
        let labels = body.labels.unwrap();
        assert_eq!(labels[LABEL_APP], "hello");
        assert_eq!(labels[LABEL_RELEASE], "v3");
        assert_eq!(labels[LABEL_PROCESS], "release");
        assert_eq!(labels[LABEL_ONEOFF], test_key().as_str());
        assert!(!labels.contains_key(LABEL_INSTANCE), "{labels:?}");
        assert!(
            labels.keys().all(|label| !label.starts_with("traefik.")),
            "{labels:?}"
        );
        assert!(body.healthcheck.is_none());
        let env = body.env.unwrap();
        for expected in [
            "DATABASE_URL=postgres://db",
            "PORT=5000",
            "PAAS_PROCESS=release",
        ] {
            assert!(env.iter().any(|e| e == expected), "{expected}: {env:?}");
        }
        assert_eq!(body.cmd.unwrap()[2], "./migrate");
        assert_eq!(body.user.as_deref(), Some(NON_ROOT_USER));
        let host = body.host_config.unwrap();
        assert_eq!(host.network_mode.as_deref(), Some("paas-app-hello"));
        assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(
            host.restart_policy.unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].source.as_deref(), Some("paas-vol-hello.data"));
        assert_eq!(mounts[0].target.as_deref(), Some("/app/data"));
        assert_eq!(
            container_name("hello", &spec(), 1),
            "paas-hello-v3-release-1"
        );
    }

    #[test]
    fn runs_take_the_lowest_free_number() {
        assert_eq!(lowest_free(&[]), 1);
        assert_eq!(lowest_free(&[1, 2, 4]), 3);
        assert_eq!(lowest_free(&[2]), 1);
        let run = OneOffSpec {
            kind: OneOffKind::Run,
            ..spec()
        };
        let body = create_body("hello", &run, 3, &RuntimeConfig::default(), &test_key());
        let labels = body.labels.unwrap();
        assert_eq!(
            (labels[LABEL_PROCESS].as_str(), labels[LABEL_INDEX].as_str()),
            ("run", "3")
        );
        assert_eq!(container_name("hello", &run, 3), "paas-hello-v3-run-3");
    }

    #[test]
    fn refuses_what_cannot_run() {
        let config = RuntimeConfig {
            max_memory_mb: 1024,
            ..RuntimeConfig::default()
        };
        assert!(validate(&spec(), &config).is_ok());
        let refused = |change: fn(&mut OneOffSpec)| {
            let mut spec = spec();
            change(&mut spec);
            validate(&spec, &config).unwrap_err().message
        };
        assert_eq!(
            refused(|s| s.resources.memory = Some("2G".parse().unwrap())),
            "release: memory 2G is above this host's maximum of 1G"
        );
        assert!(refused(|s| s.command = "  ".into()).contains("command"));
        assert!(refused(|s| s.command = "a\0b".into()).contains("NUL"));
        assert!(refused(|s| s.timeout_secs = 0).contains("timeout"));
        assert!(refused(|s| s.timeout_secs = MAX_TIMEOUT_SECS + 1).contains("timeout"));
        assert!(refused(|s| s.image = "a b".into()).contains("image"));
        assert!(refused(|s| s.release = 0).contains("release"));
        assert!(
            refused(|s| {
                s.env.insert("A-B".into(), "x".into());
            })
            .contains("config key")
        );
    }
}

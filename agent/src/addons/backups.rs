//! Postgres backups (contract in `paas_api::backups`): captures, their files, downloads and
//! restores. Files are kept at `<state dir>/backups/<owner>/<add-on>/bNNN.dump`, the custom
//! format of `pg_dump -Fc --no-owner --no-acl` run inside the add-on's own container (its
//! `pg_dump` matches its server), the password in the exec's environment. The dump streams
//! out of the exec into `bNNN.dump.partial`, renamed only once `pg_dump` exits 0, so a file
//! without the suffix is always whole; a failed capture leaves nothing. After a capture the
//! oldest beyond `[addons] backups_keep` are deleted.
//!
//! A restore streams a file into `pg_restore --clean --if-exists --no-owner --no-acl
//! --single-transaction` through the exec's stdin: it replaces the data in one transaction,
//! so one that fails changes nothing. Captures, deletes and restores of an add-on hold its
//! lock and run to their end even if the requester goes away.

use std::io;
use std::path::PathBuf;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::exec::StartExecResults;
use futures::StreamExt;
use paas_api::addons::{AddonKind, AddonName};
use paas_api::backups::{Backup, BackupId, BackupStatus, RestoreSpec};
use paas_api::{ErrorCode, Username};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio_util::io::ReaderStream;
use tracing::{info, warn};

use super::service::{Credentials, Exec};
use super::{docker, lock};
use crate::error::{ApiError, Path};
use crate::state::AgentState;

/// The suffix of every backup file.
const DUMP: &str = ".dump";
/// Added to the file `pg_dump` is still writing.
const PARTIAL: &str = ".partial";
/// Bytes of a failing command's stderr kept for its error.
const STDERR_KEPT: usize = 2048;
const PG_DUMP: &str = "pg_dump";
const PG_RESTORE: &str = "pg_restore";

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/addons/{owner}/{name}/backups", get(list).post(capture))
        .route(
            "/v1/addons/{owner}/{name}/backups/{id}",
            get(download).delete(remove),
        )
        .route("/v1/addons/{owner}/{name}/restores", post(restore))
}

#[derive(Debug, thiserror::Error)]
enum BackupFailure {
    #[error("Docker: {0}")]
    Docker(#[from] DockerError),
    #[error("backup file: {0}")]
    File(#[from] io::Error),
    #[error("{command} failed ({status}): {stderr}")]
    Command {
        command: &'static str,
        status: String,
        stderr: String,
    },
}

impl From<BackupFailure> for ApiError {
    fn from(failure: BackupFailure) -> ApiError {
        let code = match failure {
            BackupFailure::Command { .. } => ErrorCode::DeployFailed,
            BackupFailure::Docker(_) | BackupFailure::File(_) => ErrorCode::Internal,
        };
        ApiError::new(code, failure.to_string())
    }
}

fn file_error(err: io::Error) -> ApiError {
    BackupFailure::File(err).into()
}

/// One add-on's backup files.
struct BackupDir {
    path: PathBuf,
    addon: AddonName,
}

impl BackupDir {
    fn new(state: &AgentState, owner: &Username, addon: &AddonName) -> BackupDir {
        BackupDir {
            path: state
                .config
                .state_dir()
                .join("backups")
                .join(owner.as_str())
                .join(addon.as_str()),
            addon: addon.clone(),
        }
    }

    fn file(&self, id: &BackupId) -> PathBuf {
        self.path.join(format!("{id}{DUMP}"))
    }

    fn partial(&self, id: &BackupId) -> PathBuf {
        self.path.join(format!("{id}{DUMP}{PARTIAL}"))
    }

    /// Every capture there, completed or being written, oldest first.
    async fn list(&self) -> io::Result<Vec<Backup>> {
        let mut entries = match tokio::fs::read_dir(&self.path).await {
            Ok(entries) => entries,
            Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(err) => return Err(err),
        };
        let mut backups = Vec::new();
        while let Some(entry) = entries.next_entry().await? {
            let Some((id, status)) = entry.file_name().to_str().and_then(parse_file_name) else {
                continue;
            };
            let metadata = entry.metadata().await?;
            backups.push(Backup {
                id,
                addon: self.addon.clone(),
                created_at: metadata.modified()?.into(),
                size_bytes: metadata.len(),
                status,
            });
        }
        backups.sort_by_key(|backup| backup.id.number());
        Ok(backups)
    }

    /// A completed capture's file, opened.
    async fn open(&self, id: &BackupId) -> Result<tokio::fs::File, ApiError> {
        match tokio::fs::File::open(self.file(id)).await {
            Ok(file) => Ok(file),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("there is no backup {id} of {}", self.addon),
            )),
            Err(err) => Err(file_error(err)),
        }
    }
}

/// `b007.dump` is completed, `b007.dump.partial` being written; anything else is not ours.
fn parse_file_name(name: &str) -> Option<(BackupId, BackupStatus)> {
    if let Some(id) = name
        .strip_suffix(PARTIAL)
        .and_then(|name| name.strip_suffix(DUMP))
    {
        return Some((id.parse().ok()?, BackupStatus::Capturing));
    }
    Some((
        name.strip_suffix(DUMP)?.parse().ok()?,
        BackupStatus::Completed,
    ))
}

/// The completed captures beyond the newest `keep`, oldest first.
fn beyond_retention(backups: &[Backup], keep: usize) -> Vec<&Backup> {
    let completed: Vec<&Backup> = backups
        .iter()
        .filter(|backup| backup.status == BackupStatus::Completed)
        .collect();
    let excess = completed.len().saturating_sub(keep);
    completed[..excess].to_vec()
}

/// The add-on's container and credentials; refused unless it is a Postgres.
async fn postgres(
    state: &AgentState,
    owner: &Username,
    name: &AddonName,
) -> Result<(String, Credentials), ApiError> {
    let (kind, details) = super::existing(state, owner, name).await?;
    if kind != AddonKind::Postgres {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{name} is a {kind} add-on; only postgres add-ons have backups"),
        ));
    }
    let credentials = docker::credentials(kind, &details)?;
    Ok((details.id.unwrap_or_default(), credentials))
}

fn dump_command(credentials: &Credentials) -> Exec {
    Exec::postgres_client(
        PG_DUMP,
        &["-Fc", "--no-owner", "--no-acl"],
        credentials,
        &[],
    )
}

fn restore_command(credentials: &Credentials) -> Exec {
    Exec::postgres_client(
        PG_RESTORE,
        &[
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-acl",
            "--single-transaction",
        ],
        credentials,
        &[],
    )
}

/// Runs `exec` (`command`, for its errors) in `container` as root: `stdin`, if given, is
/// copied to its input to the end, then the input is closed; its output goes to `stdout` as
/// it arrives. Done if it exits 0.
async fn stream_exec(
    docker: &Docker,
    container: &str,
    (command, exec): (&'static str, Exec),
    stdin: Option<tokio::fs::File>,
    stdout: &mut (impl tokio::io::AsyncWrite + Unpin),
) -> Result<(), BackupFailure> {
    let created = docker
        .create_exec(container, docker::as_root(exec, stdin.is_some()))
        .await?;
    let StartExecResults::Attached { mut output, input } =
        docker.start_exec(&created.id, None).await?
    else {
        return Err(BackupFailure::Command {
            command,
            status: "started detached".to_owned(),
            stderr: String::new(),
        });
    };
    let feed = async move {
        if let Some(mut file) = stdin {
            let mut input = input;
            tokio::io::copy(&mut file, &mut input).await?;
            input.shutdown().await?;
        }
        Ok::<(), io::Error>(())
    };
    let drain = async {
        let mut stderr = Vec::new();
        while let Some(chunk) = output.next().await {
            match chunk? {
                bollard::container::LogOutput::StdOut { message } => {
                    stdout.write_all(&message).await?
                }
                bollard::container::LogOutput::StdErr { message } => {
                    let room = STDERR_KEPT.saturating_sub(stderr.len());
                    stderr.extend_from_slice(&message[..message.len().min(room)]);
                }
                _ => {}
            }
        }
        stdout.flush().await?;
        Ok::<Vec<u8>, BackupFailure>(stderr)
    };
    let (fed, stderr) = tokio::join!(feed, drain);
    let stderr = stderr?;
    let exit_code = docker.inspect_exec(&created.id).await?.exit_code;
    let stderr = String::from_utf8_lossy(&stderr)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" | ");
    match exit_code {
        Some(0) => fed.map_err(BackupFailure::from),
        other => Err(BackupFailure::Command {
            command,
            status: other.map_or("no exit status".to_owned(), |code| format!("exit {code}")),
            stderr,
        }),
    }
}

async fn list(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
) -> Result<Json<Vec<Backup>>, ApiError> {
    let backups = BackupDir::new(&state, &owner, &name).list().await;
    Ok(Json(backups.map_err(file_error)?))
}

async fn capture(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
) -> Result<Json<Backup>, ApiError> {
    // Detached: a requester that goes away leaves neither a half-written file nor a lock.
    let task = tokio::spawn(async move {
        let _guard = lock(&state, &owner, &name).await;
        let (container, credentials) = postgres(&state, &owner, &name).await?;
        let dir = BackupDir::new(&state, &owner, &name);
        tokio::fs::create_dir_all(&dir.path)
            .await
            .map_err(file_error)?;
        let existing = dir.list().await.map_err(file_error)?;
        // Left by a capture cut off by an agent restart: no capture runs now, we hold the lock.
        for leftover in existing
            .iter()
            .filter(|backup| backup.status == BackupStatus::Capturing)
        {
            tokio::fs::remove_file(dir.partial(&leftover.id))
                .await
                .map_err(file_error)?;
        }
        let next = existing.last().map_or(1, |backup| backup.id.number() + 1);
        let id = BackupId::from_number(next).ok_or_else(|| {
            ApiError::new(
                ErrorCode::Conflict,
                format!("{name} has used up its backup ids; delete its backups directory"),
            )
        })?;
        let partial = dir.partial(&id);
        let file = tokio::fs::File::create(&partial)
            .await
            .map_err(file_error)?;
        let mut writer = BufWriter::new(file);
        let dumped = stream_exec(
            &state.docker,
            &container,
            (PG_DUMP, dump_command(&credentials)),
            None,
            &mut writer,
        )
        .await;
        let finished = match dumped {
            Ok(()) => finish(writer.into_inner(), &partial, &dir.file(&id)).await,
            Err(err) => Err(err),
        };
        if let Err(err) = finished {
            if let Err(cleanup) = tokio::fs::remove_file(&partial).await {
                warn!(%owner, %name, error = %cleanup, "cannot remove a failed capture");
            }
            warn!(%owner, %name, error = %err, "capture failed");
            return Err(err.into());
        }
        let backups = dir.list().await.map_err(file_error)?;
        for old in beyond_retention(&backups, state.config.addons.backups_keep.get()) {
            tokio::fs::remove_file(dir.file(&old.id))
                .await
                .map_err(file_error)?;
            info!(%owner, %name, id = %old.id, "backup beyond retention deleted");
        }
        let backup = backups
            .into_iter()
            .find(|backup| backup.id == id)
            .expect("the capture was just renamed into place");
        info!(%owner, %name, %id, bytes = backup.size_bytes, "backup captured");
        Ok(Json(backup))
    });
    task.await.unwrap_or_else(|err| {
        Err(ApiError::new(
            ErrorCode::Internal,
            format!("the capture panicked: {err}"),
        ))
    })
}

/// Makes the written dump durable, then gives it its final name.
async fn finish(
    file: tokio::fs::File,
    partial: &std::path::Path,
    done: &std::path::Path,
) -> Result<(), BackupFailure> {
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(partial, done).await?;
    Ok(())
}

async fn download(
    State(state): State<AgentState>,
    Path((owner, name, id)): Path<(Username, AddonName, BackupId)>,
) -> Result<Response, ApiError> {
    let file = BackupDir::new(&state, &owner, &name).open(&id).await?;
    let length = file.metadata().await.map_err(file_error)?.len();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(ReaderStream::new(file)),
    )
        .into_response())
}

async fn remove(
    State(state): State<AgentState>,
    Path((owner, name, id)): Path<(Username, AddonName, BackupId)>,
) -> Result<Response, ApiError> {
    let _guard = lock(&state, &owner, &name).await;
    let dir = BackupDir::new(&state, &owner, &name);
    // Opened first only to answer a missing one as such.
    drop(dir.open(&id).await?);
    tokio::fs::remove_file(dir.file(&id))
        .await
        .map_err(file_error)?;
    info!(%owner, %name, %id, "backup deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn restore(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let spec: RestoreSpec = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid restore spec: {err}"),
        )
    })?;
    let task = tokio::spawn(async move {
        let _guard = lock(&state, &owner, &name).await;
        let (container, credentials) = postgres(&state, &owner, &name).await?;
        let file = BackupDir::new(&state, &owner, &spec.from)
            .open(&spec.backup)
            .await?;
        let mut output = tokio::io::sink();
        stream_exec(
            &state.docker,
            &container,
            (PG_RESTORE, restore_command(&credentials)),
            Some(file),
            &mut output,
        )
        .await
        .inspect_err(|err| warn!(%owner, %name, error = %err, "restore failed"))?;
        info!(%owner, %name, from = %spec.from, backup = %spec.backup, "backup restored");
        Ok(StatusCode::NO_CONTENT.into_response())
    });
    task.await.unwrap_or_else(|err| {
        Err(ApiError::new(
            ErrorCode::Internal,
            format!("the restore panicked: {err}"),
        ))
    })
}

#[cfg(test)]
mod tests {
    use chrono::DateTime;

    use super::*;

    fn backup(id: &str, status: BackupStatus) -> Backup {
        Backup {
            id: id.parse().unwrap(),
            addon: "db".parse().unwrap(),
            created_at: DateTime::UNIX_EPOCH,
            size_bytes: 1,
            status,
        }
    }

    #[test]
    fn only_dump_files_with_an_id_are_backups() {
        assert_eq!(
            parse_file_name("b007.dump"),
            Some(("b007".parse().unwrap(), BackupStatus::Completed))
        );
        assert_eq!(
            parse_file_name("b1000.dump.partial"),
            Some(("b1000".parse().unwrap(), BackupStatus::Capturing))
        );
        for other in [
            "b007",
            "b7.dump",
            "x.dump",
            "b007.dump.tmp",
            ".dump",
            "latest.dump",
        ] {
            assert_eq!(parse_file_name(other), None, "{other}");
        }
    }

    #[test]
    fn retention_deletes_the_oldest_completed_beyond_keep() {
        let backups = [
            backup("b001", BackupStatus::Completed),
            backup("b002", BackupStatus::Completed),
            backup("b003", BackupStatus::Completed),
            backup("b004", BackupStatus::Capturing),
        ];
        let ids = |kept: Vec<&Backup>| kept.iter().map(|b| b.id.to_string()).collect::<Vec<_>>();
        assert_eq!(ids(beyond_retention(&backups, 2)), ["b001"]);
        assert_eq!(ids(beyond_retention(&backups, 1)), ["b001", "b002"]);
        assert!(beyond_retention(&backups, 7).is_empty());
    }

    #[test]
    fn dumps_and_restores_keep_the_password_off_the_command_line() {
        let credentials = Credentials::generate();
        for exec in [dump_command(&credentials), restore_command(&credentials)] {
            assert!(
                exec.cmd
                    .iter()
                    .all(|arg| !arg.contains(&credentials.password))
            );
            assert_eq!(exec.env, [format!("PGPASSWORD={}", credentials.password)]);
            assert!(exec.cmd.contains(&credentials.database));
        }
        let dump = dump_command(&credentials).cmd;
        assert_eq!(dump[..4], ["pg_dump", "-Fc", "--no-owner", "--no-acl"]);
        assert!(
            restore_command(&credentials)
                .cmd
                .contains(&"--single-transaction".to_owned())
        );
    }
}

//! Attached sessions (`paas run`, `paas ps:exec`): the agent's side of the session opened for
//! the requester, to copy bytes to and from. Like `run:detached` they change nothing the app
//! runs, so they take no lock and go on beside deploys: `run` is a one-off of the current
//! release (as [`super::run::detached`] builds it), `ps:exec` a command in a running
//! instance, as that instance's user and with its environment.

use paas_agent_client::AttachStream;
use paas_api::attach::{AgentAttach, AgentExec, AttachExec, AttachRun, parse_dyno};
use paas_api::oneoff::RunRequest;

use super::OpsError;
use super::rollout::RolloutFailure;
use super::run::{check_quota, oneoff_spec};
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

fn refused(reason: String) -> OpsError {
    OpsError::agent(
        "Could not start the session",
        RolloutFailure {
            reason,
            logs: Vec::new(),
        },
    )
}

/// Opens an attached one-off of `request` on the agent.
pub async fn run(
    state: &SharedState,
    app: &AppRow,
    by: &UserRow,
    request: AttachRun,
) -> Result<AttachStream, OpsError> {
    let tty = request.tty;
    let run = RunRequest {
        command: request.command,
        env: request.env,
        size: request.size,
    };
    let (oneoff, command) = oneoff_spec(state, app, run).await?;
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    check_quota(state, app).await?;
    tracing::info!(app = %app.name, %command, tty, by = %by.username, "attached one-off");
    agent
        .attach_oneoff(&app.name, &AgentAttach { oneoff, tty })
        .await
        .map_err(|err| refused(err.to_string()))
}

/// Opens `request`'s command in the running instance it names on the agent.
pub async fn exec(
    state: &SharedState,
    app: &AppRow,
    by: &UserRow,
    request: AttachExec,
) -> Result<AttachStream, OpsError> {
    let (process, index) = parse_dyno(&request.dyno).map_err(OpsError::Invalid)?;
    if request.command.is_empty() || request.command.iter().any(|word| word.contains('\0')) {
        return Err(OpsError::invalid(
            "The command is empty or contains a NUL byte.",
        ));
    }
    let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
    tracing::info!(app = %app.name, dyno = %request.dyno, by = %by.username, "exec");
    let exec = AgentExec {
        process,
        index,
        command: request.command,
        tty: request.tty,
    };
    agent
        .attach_exec(&app.name, &exec)
        .await
        .map_err(|err| refused(err.to_string()))
}

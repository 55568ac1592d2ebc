//! `paas ps:stop web.1` / `ps:stop web`: the agent stops the named instances and keeps them
//! down (a one-off named so, `run.1`, is stopped and removed), under the app's lock so no
//! rollout runs meanwhile. No release is made: a restart of them, a scale or a new release
//! starts them again, as the agent records.

use paas_api::types::StopRequest;

use super::{Op, OpsError};
use crate::events;
use crate::state::SharedState;
use crate::store::{AppRow, UserRow};

pub fn stop(state: &SharedState, app: AppRow, by: &UserRow, request: StopRequest) -> Op<()> {
    let (op_state, by, name) = (state.clone(), by.username.clone(), app.name.clone());
    super::spawn(state, &name, None, move |_reporter| async move {
        let state = op_state;
        let agent = state.agent.as_ref().ok_or(OpsError::NoAgent)?;
        let what = match request.index {
            Some(index) => format!("{}.{index}", request.process),
            None => format!("{} processes", request.process),
        };
        let running = agent
            .instances(&app.name)
            .await
            .map_err(|err| agent_failed(&what, err))?;
        let matches = running.iter().any(|instance| {
            instance.process == request.process
                && request.index.is_none_or(|index| index == instance.index)
        });
        if !matches {
            return Err(OpsError::NotFound(format!("{} has no {what}.", app.name)));
        }
        agent
            .stop(&app.name, &request)
            .await
            .map_err(|err| agent_failed(&what, err))?;
        tracing::info!(app = %app.name, %what, %by, "stopped");
        let message = format!("Stopped {what} by user {by}");
        events::record(&state, app.id, "stop", message).await;
        Ok(())
    })
}

fn agent_failed(what: &str, err: paas_agent_client::RuntimeError) -> OpsError {
    OpsError::Agent {
        what: format!("Stopping {what} failed"),
        reason: err.to_string(),
        logs: Vec::new(),
    }
}

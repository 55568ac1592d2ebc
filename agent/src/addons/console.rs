//! `GET /v1/addons/{owner}/{name}/console` (upgraded to `paas-attach/1`, an
//! [`AddonConsole`] first): `psql` or `redis-cli` run inside the add-on's own container,
//! signed in with its credentials, attached as `paas ps:exec` is ([`crate::attach`]). The
//! program and its arguments are the agent's; the client gives only the SQL of `psql -c`, as
//! one argument. The password travels in the exec's environment, never on its command line.
//! A console takes no lock: it may stay open for as long as its user types.

use axum::extract::{Request, State};
use axum::response::Response;
use bollard::models::ExecConfig;
use paas_api::Username;
use paas_api::addons::{AddonConsole, AddonKind, AddonName};
use paas_api::attach::Frame;
use tracing::info;

use super::docker;
use super::service::{Credentials, Exec};
use crate::attach::{Started, attach_exec, upgrade};
use crate::error::{ApiError, Path};
use crate::state::AgentState;

pub async fn open(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
    request: Request,
) -> Result<Response, ApiError> {
    upgrade(
        request,
        state,
        move |state, console: AddonConsole| async move { start(&state, &owner, &name, console).await },
    )
}

/// Starts the console's program in the add-on's running container.
async fn start(
    state: &AgentState,
    owner: &str,
    name: &str,
    console: AddonConsole,
) -> Result<Started, Frame> {
    let found = super::placement::find(state, owner, name)
        .await
        .map_err(|err| Frame::Error(err.to_string()))?;
    let Some((kind, details)) = found else {
        return Err(Frame::Error(format!(
            "there is no add-on {name} of {owner}"
        )));
    };
    if let Some(refusal) = console.refusal(name, kind) {
        return Err(Frame::Error(refusal));
    }
    if !docker::running(&details) {
        return Err(Frame::Error(format!(
            "{name} is not running; see `paas addons:info {name}`."
        )));
    }
    let credentials =
        docker::credentials(kind, &details).map_err(|err| Frame::Error(err.to_string()))?;
    let Exec { cmd, env } = program(kind, &credentials, console.sql);
    let command = ExecConfig {
        cmd: Some(cmd),
        env: Some(env),
        user: Some("0".to_owned()),
        ..Default::default()
    };
    let container = details.id.unwrap_or_default();
    let started = attach_exec(&state.docker, &container, command, console.tty).await?;
    info!(%owner, %name, %kind, tty = console.tty, "add-on console started");
    Ok(started)
}

/// The console program for `kind`, on the loopback address inside the container.
fn program(kind: AddonKind, credentials: &Credentials, sql: Option<String>) -> Exec {
    match kind {
        AddonKind::Postgres => psql(credentials, &[], sql),
        AddonKind::Redis => Exec {
            cmd: ["redis-cli", "--no-auth-warning"]
                .map(str::to_owned)
                .to_vec(),
            env: vec![format!("REDISCLI_AUTH={}", credentials.password)],
        },
    }
}

/// `psql` signed in as the add-on's user to its database, stopping at the first error, with
/// `options` before the connection's and `sql` as `-c`.
pub(super) fn psql(credentials: &Credentials, options: &[&str], sql: Option<String>) -> Exec {
    let options: Vec<&str> = ["-X", "-v", "ON_ERROR_STOP=1"]
        .into_iter()
        .chain(options.iter().copied())
        .collect();
    let sql: Vec<&str> = sql
        .as_deref()
        .map(|sql| ["-c", sql])
        .into_iter()
        .flatten()
        .collect();
    Exec::postgres_client("psql", &options, credentials, &sql)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consoles_sign_in_from_the_environment_and_take_sql_as_one_argument() {
        let credentials = Credentials::generate();
        let sql = "select 1; select 'a b' -- $(reboot)";
        let psql = program(AddonKind::Postgres, &credentials, Some(sql.to_owned()));
        assert_eq!(psql.cmd[..5], ["psql", "-X", "-v", "ON_ERROR_STOP=1", "-h"]);
        assert_eq!(psql.cmd[psql.cmd.len() - 2..], ["-c", sql]);
        assert!(psql.cmd.contains(&credentials.user));
        assert!(psql.cmd.contains(&credentials.database));
        assert_eq!(psql.env, [format!("PGPASSWORD={}", credentials.password)]);
        let redis = program(AddonKind::Redis, &credentials, None);
        assert_eq!(redis.cmd, ["redis-cli", "--no-auth-warning"]);
        assert_eq!(
            redis.env,
            [format!("REDISCLI_AUTH={}", credentials.password)]
        );
        for exec in [psql, redis] {
            assert!(
                exec.cmd
                    .iter()
                    .all(|arg| !arg.contains(&credentials.password))
            );
        }
        let interactive = program(AddonKind::Postgres, &credentials, None);
        assert!(!interactive.cmd.contains(&"-c".to_owned()));
    }
}

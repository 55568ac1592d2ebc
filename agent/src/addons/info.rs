//! `GET /v1/addons/{owner}/{name}/pg-info` → [`PostgresStats`]: what a running Postgres
//! add-on says about its database (version, size, tables, connections and their limit), asked
//! with one query through `psql` in its own container, and when the container was made.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use paas_api::addons::{AddonKind, AddonName, PostgresStats};
use paas_api::{ErrorCode, Username};

use super::console::psql;
use super::docker;
use crate::error::{ApiError, Path};
use crate::state::AgentState;

/// One row: version, database size, user tables, connections to it, their limit.
const STATS_QUERY: &str = "SELECT current_setting('server_version'), \
     pg_database_size(current_database()), \
     (SELECT count(*) FROM pg_stat_user_tables), \
     (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()), \
     current_setting('max_connections')";

/// Between the columns of [`STATS_QUERY`]'s answer; none of them can hold it.
const SEPARATOR: char = '|';

pub async fn stats(
    State(state): State<AgentState>,
    Path((owner, name)): Path<(Username, AddonName)>,
) -> Result<Json<PostgresStats>, ApiError> {
    let (kind, details) = super::existing(&state, &owner, &name).await?;
    if kind != AddonKind::Postgres {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            format!("{name} is a {kind} add-on, not postgres"),
        ));
    }
    let not_answering = || {
        ApiError::new(
            ErrorCode::Conflict,
            format!("{name} is not answering; see `paas addons:info {name}`"),
        )
    };
    if !docker::running(&details) {
        return Err(not_answering());
    }
    let credentials = docker::credentials(kind, &details)?;
    let separator = format!("--field-separator={SEPARATOR}");
    let query = psql(
        &credentials,
        &["--tuples-only", "--no-align", &separator],
        Some(STATS_QUERY.to_owned()),
    );
    let container = details.id.clone().unwrap_or_default();
    let output = docker::run(&state.docker, &container, query)
        .await
        .map_err(super::docker_error)?
        .ok_or_else(not_answering)?;
    let created_at = details
        .created
        .as_deref()
        .and_then(|at| DateTime::parse_from_rfc3339(at).ok())
        .map(|at| at.with_timezone(&Utc))
        .unwrap_or_default();
    parse_stats(&output, created_at).map(Json).ok_or_else(|| {
        ApiError::new(
            ErrorCode::Internal,
            format!("{name} answered the statistics query with {output:?}"),
        )
    })
}

/// [`STATS_QUERY`]'s unaligned answer.
fn parse_stats(output: &str, created_at: DateTime<Utc>) -> Option<PostgresStats> {
    let columns: Vec<&str> = output.trim().split(SEPARATOR).collect();
    let [version, size, tables, connections, max_connections] = columns[..] else {
        return None;
    };
    let number = |column: &str| column.trim().parse::<u64>().ok();
    Some(PostgresStats {
        // "15.10 (Debian 15.10-0+deb12u1)"
        version: version.split_whitespace().next()?.to_owned(),
        data_size_bytes: number(size)?,
        tables: number(tables)?,
        connections: number(connections)?,
        max_connections: number(max_connections)?,
        created_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statistics_row_parses_and_anything_else_does_not() {
        let at = DateTime::parse_from_rfc3339("2026-12-01T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_stats("15.10 (Debian 15.10-0+deb12u1)|7717379|2|1|100\n", at),
            Some(PostgresStats {
                version: "15.10".to_owned(),
                data_size_bytes: 7_717_379,
                tables: 2,
                connections: 1,
                max_connections: 100,
                created_at: at,
            })
        );
        for bad in [
            "",
            "15.10|1|2|3",
            "15.10|x|2|3|4",
            "15.10|1|2|3|4|5",
            "|1|2|3|4",
        ] {
            assert_eq!(parse_stats(bad, at), None, "{bad:?}");
        }
    }
}

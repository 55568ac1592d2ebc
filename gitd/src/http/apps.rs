//! Apps and their collaborators.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{
    AddCollaboratorRequest, App, Collaborator, CollaboratorRole, CreateAppRequest, LastDeploy,
};
use rand::Rng;
use serde::Deserialize;

use super::formation::{current_formation, detached};
use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::db::{is_constraint_violation, queries};
use crate::repos;
use crate::state::SharedState;
use paas_api::{AppName, Username};

pub async fn list(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<Json<Vec<App>>> {
    let user = auth.user.clone();
    let apps = state
        .db
        .call(move |conn| -> rusqlite::Result<Vec<_>> {
            queries::apps_for_user(conn, &user)?
                .into_iter()
                .map(|app| {
                    let current = queries::current_release(conn, app.id)?.map(|r| r.version);
                    Ok((app, current))
                })
                .collect()
        })
        .await?;
    Ok(Json(
        apps.iter()
            .map(|(app, current)| state.app_to_api(app, *current))
            .collect(),
    ))
}

pub async fn create(
    State(state): State<SharedState>,
    auth: AuthUser,
    Json(request): Json<CreateAppRequest>,
) -> ApiResult<(StatusCode, Json<App>)> {
    let name = match request.name {
        Some(name) => String::from(name),
        None => generated_name(),
    };
    let owner = auth.user.clone();
    let repos_dir = state.repos_dir();
    let quotas = state.config.quotas.clone();
    let app_name = name.clone();
    let created = state
        .db
        .call(move |conn| -> ApiResult<_> {
            let tx = conn.transaction()?;
            // Counted in the transaction that inserts, so parallel creates cannot overshoot.
            let owned = queries::apps_owned_by(&tx, owner.id)?.len();
            quotas.check_new_app(owned, owner.is_admin)?;
            let app = match queries::insert_app(&tx, &app_name, &owner) {
                Err(err) if is_constraint_violation(&err) => {
                    return Err(ApiError::new(
                        ErrorCode::Conflict,
                        format!("Name {app_name} is already taken."),
                    ));
                }
                other => other?,
            };
            // The repository is made while the row is uncommitted: if either fails, neither stays.
            let repo =
                repos::create(&repos_dir, &app_name, quotas.max_push_bytes).map_err(|err| {
                    tracing::error!(app = %app_name, error = %err, "cannot create repository");
                    ApiError::new(
                        ErrorCode::Internal,
                        "Could not create the app's repository.",
                    )
                })?;
            if let Err(err) = tx.commit() {
                let _ = std::fs::remove_dir_all(repo);
                return Err(err.into());
            }
            Ok(app)
        })
        .await?;
    tracing::info!(app = %created.name, owner = %created.owner, "app created");
    Ok((StatusCode::CREATED, Json(state.app_to_api(&created, None))))
}

/// A Heroku-style name for an app created without one.
fn generated_name() -> String {
    const ADJECTIVES: &[&str] = &[
        "autumn",
        "billowing",
        "calm",
        "crimson",
        "damp",
        "floral",
        "gentle",
        "hidden",
        "lively",
        "misty",
        "quiet",
        "rapid",
        "shy",
        "still",
        "sunny",
        "twilight",
        "wild",
        "young",
    ];
    const NOUNS: &[&str] = &[
        "brook", "cloud", "dawn", "dust", "field", "forest", "glade", "harbor", "lake", "meadow",
        "moon", "river", "shadow", "sky", "snow", "sun", "wave", "wind",
    ];
    let mut rng = rand::rng();
    format!(
        "{}-{}-{:04}",
        ADJECTIVES[rng.random_range(0..ADJECTIVES.len())],
        NOUNS[rng.random_range(0..NOUNS.len())],
        rng.random_range(0..10_000)
    )
}

pub async fn info(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<App>> {
    let app = auth.app(&state, &name).await?;
    let app_id = app.id;
    let (current, domains, last_deploy) = state
        .db
        .call(move |conn| -> rusqlite::Result<_> {
            Ok((
                queries::current_release(conn, app_id)?.map(|r| r.version),
                queries::domains(conn, app_id)?,
                queries::last_deploy(conn, app_id)?,
            ))
        })
        .await?;
    let (_, formation) = current_formation(&state, &app).await?;
    Ok(Json(App {
        formation,
        domains: domains.into_iter().map(|(hostname, _)| hostname).collect(),
        last_deploy: last_deploy.map(|release| LastDeploy {
            version: release.version,
            description: release.description,
            user: release.user,
            created_at: release.created_at,
        }),
        ..state.app_to_api(&app, current)
    }))
}

#[derive(Deserialize)]
pub struct DestroyQuery {
    confirm: Option<String>,
}

pub async fn destroy(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<DestroyQuery>,
) -> ApiResult<StatusCode> {
    detached(async move {
        let app = auth.app(&state, &name).await?;
        auth.require_owner(&app)?;
        if query.confirm.as_deref() != Some(app.name.as_str()) {
            return Err(ApiError::invalid(format!(
                "Confirmation required: destroying {0} is permanent; confirm with the app name ({0}).",
                app.name
            )));
        }
        let lock = state.app_locks.for_app(&app.name);
        let _held = lock.lock().await;
        // Containers and images go first: if the agent cannot remove them, the app stays whole.
        if let Some(agent) = state.agent.as_ref() {
            agent.delete_app(&app.name).await.map_err(|err| {
                ApiError::new(
                    ErrorCode::DeployFailed,
                    format!(
                        "Could not remove {}'s containers and images, so nothing was destroyed: {err}",
                        app.name
                    ),
                )
            })?;
        }
        let repos_dir = state.repos_dir();
        let app_name = app.name.clone();
        state
            .db
            .call(move |conn| -> ApiResult<()> {
                let aside = repos::set_aside(&repos_dir, &app_name).map_err(|err| {
                    tracing::error!(app = %app_name, error = %err, "cannot move repository aside");
                    ApiError::new(ErrorCode::Internal, "Could not remove the app's repository.")
                })?;
                let removed = conn
                    .transaction()
                    .and_then(|tx| queries::delete_app(&tx, app.id).and_then(|()| tx.commit()));
                match (removed, aside) {
                    (Ok(()), Some(aside)) => {
                        if let Err(err) = std::fs::remove_dir_all(&aside) {
                            tracing::warn!(path = %aside.display(), error = %err, "leftover repository");
                        }
                        Ok(())
                    }
                    (Ok(()), None) => Ok(()),
                    (Err(err), aside) => {
                        if let Some(aside) = aside {
                            let _ = repos::restore(&repos_dir, &app_name, &aside);
                        }
                        Err(err.into())
                    }
                }
            })
            .await?;
        state.ssh_access.bump();
        tracing::info!(app = %name, by = %auth.user.username, "app destroyed");
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

pub async fn list_collaborators(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Collaborator>>> {
    let app = auth.app(&state, &name).await?;
    let app_id = app.id;
    let names = state
        .db
        .call(move |conn| queries::collaborators(conn, app_id))
        .await?;
    let mut all = vec![Collaborator {
        username: app.owner.clone(),
        role: CollaboratorRole::Owner,
    }];
    all.extend(names.into_iter().map(|username| Collaborator {
        username,
        role: CollaboratorRole::Collaborator,
    }));
    Ok(Json(all))
}

pub async fn add_collaborator(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Json(request): Json<AddCollaboratorRequest>,
) -> ApiResult<(StatusCode, Json<Collaborator>)> {
    let app = auth.app(&state, &name).await?;
    auth.require_owner(&app)?;
    let username = request.username.clone();
    state
        .db
        .call(move |conn| -> ApiResult<()> {
            let user = queries::user_by_name(conn, &username)?.ok_or_else(|| {
                ApiError::new(ErrorCode::NotFound, format!("No user named {username}."))
            })?;
            if user.id == app.owner_id {
                return Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{username} owns {}.", app.name),
                ));
            }
            match queries::insert_collaborator(conn, app.id, user.id) {
                Err(err) if is_constraint_violation(&err) => Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("{username} is already a collaborator on {}.", app.name),
                )),
                other => Ok(other?),
            }
        })
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Collaborator {
            username: request.username.into(),
            role: CollaboratorRole::Collaborator,
        }),
    ))
}

pub async fn remove_collaborator(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path((name, username)): Path<(AppName, Username)>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    auth.require_owner(&app)?;
    state
        .db
        .call(move |conn| -> ApiResult<()> {
            let removed = match queries::user_by_name(conn, &username)? {
                Some(user) => queries::delete_collaborator(conn, app.id, user.id)?,
                None => false,
            };
            if removed {
                Ok(())
            } else {
                Err(ApiError::new(
                    ErrorCode::NotFound,
                    format!("{username} is not a collaborator on {}.", app.name),
                ))
            }
        })
        .await?;
    state.ssh_access.bump();
    Ok(StatusCode::NO_CONTENT)
}

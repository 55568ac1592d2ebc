//! Apps and their collaborators.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{
    AddCollaboratorRequest, App, Collaborator, CollaboratorRole, CreateAppRequest, LastDeploy,
    Release,
};
use paas_api::{AppName, Username};
use rand::Rng;
use serde::Deserialize;

use super::{ApiError, ApiResult, AuthUser, Json, Path};
use crate::ops::changes::{current_formation, running_formation};
use crate::repos;
use crate::state::SharedState;
use crate::store::{CollaboratorAdded, CreateAppError};

pub async fn list(State(state): State<SharedState>, auth: AuthUser) -> ApiResult<Json<Vec<App>>> {
    let apps = state.store.apps_for_user(&auth.user).await?;
    Ok(Json(
        apps.into_iter()
            .map(|listing| {
                let current = listing.deployed.current.as_ref().map(|r| r.version);
                let (_, formation) = running_formation(listing.deployed);
                App {
                    formation,
                    last_deploy: listing.last_deploy.map(last_deploy),
                    ..state.app_to_api(&listing.app, current)
                }
            })
            .collect(),
    ))
}

fn last_deploy(release: Release) -> LastDeploy {
    LastDeploy {
        version: release.version,
        description: release.description,
        user: release.user,
        created_at: release.created_at,
    }
}

pub async fn create(
    State(state): State<SharedState>,
    auth: AuthUser,
    Json(request): Json<CreateAppRequest>,
) -> ApiResult<(StatusCode, Json<App>)> {
    let name = match request.name {
        Some(name) => name,
        None => generated_name(),
    };
    let quotas = state.config.quotas.clone();
    let is_admin = auth.user.is_admin;
    let created = match state
        .store
        .create_app(&name, &auth.user, move |owned| {
            quotas.check_new_app(owned, is_admin)
        })
        .await
    {
        Ok(app) => app,
        Err(CreateAppError::NameTaken) => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("Name {name} is already taken."),
            ));
        }
        Err(CreateAppError::OverQuota(exceeded)) => return Err(exceeded.into()),
        Err(CreateAppError::Store(err)) => return Err(err.into()),
    };
    // The repository follows the row, which settled who gets the name; if it cannot be made,
    // the row goes again, so neither stays.
    let repos_dir = state.repos_dir();
    let max_push_bytes = state.config.quotas.max_push_bytes;
    let made =
        tokio::task::spawn_blocking(move || repos::create(&repos_dir, &name, max_push_bytes))
            .await
            .expect("creating a repository panicked");
    if let Err(err) = made {
        tracing::error!(app = %created.name, error = %err, "cannot create repository");
        state.store.delete_app(created.id).await?;
        return Err(ApiError::new(
            ErrorCode::Internal,
            "Could not create the app's repository.",
        ));
    }
    tracing::info!(app = %created.name, owner = %created.owner, "app created");
    Ok((StatusCode::CREATED, Json(state.app_to_api(&created, None))))
}

/// A Heroku-style name for an app created without one.
fn generated_name() -> AppName {
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
    .parse()
    .expect("the words are lowercase letters, so every generated name follows the rule")
}

pub async fn info(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<App>> {
    let app = auth.app(&state, &name).await?;
    let current = state
        .store
        .current_release(app.id)
        .await?
        .map(|release| release.version);
    let domains = state.store.domains(app.id).await?;
    let last_deploy = state.store.last_deploy(app.id).await?;
    let (_, formation) = current_formation(&state, &app).await?;
    Ok(Json(App {
        formation,
        domains: domains.into_iter().map(|domain| domain.hostname).collect(),
        last_deploy: last_deploy.map(self::last_deploy),
        ..state.app_to_api(&app, current)
    }))
}

#[derive(Deserialize)]
pub struct DestroyQuery {
    confirm: Option<String>,
    /// The app's add-ons, comma-separated, confirmed to go with it.
    addons: Option<String>,
}

pub async fn destroy(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
    Query(query): Query<DestroyQuery>,
) -> ApiResult<StatusCode> {
    let app = auth.app(&state, &name).await?;
    auth.require_owner(&app)?;
    if query.confirm.as_deref() != Some(app.name.as_str()) {
        return Err(ApiError::invalid(format!(
            "Confirmation required: destroying {0} is permanent; confirm with the app name ({0}).",
            app.name
        )));
    }
    let addons = query
        .addons
        .iter()
        .flat_map(|names| names.split(',').filter(|name| !name.is_empty()))
        .map(str::parse)
        .collect::<Result<Vec<paas_api::addons::AddonName>, _>>()
        .map_err(|err| ApiError::invalid(err.to_string()))?;
    crate::ops::apps::destroy(&state, app, &auth.user, addons)
        .finished()
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn list_collaborators(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(name): Path<AppName>,
) -> ApiResult<Json<Vec<Collaborator>>> {
    let app = auth.app(&state, &name).await?;
    let names = state.store.collaborators(app.id).await?;
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
    let username = &request.username;
    match state
        .store
        .add_collaborator(app.id, app.owner_id, username)
        .await?
    {
        CollaboratorAdded::Added => {}
        CollaboratorAdded::NoSuchUser => {
            return Err(ApiError::new(
                ErrorCode::NotFound,
                format!("No user named {username}."),
            ));
        }
        CollaboratorAdded::IsOwner => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{username} owns {}.", app.name),
            ));
        }
        CollaboratorAdded::AlreadyCollaborator => {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("{username} is already a collaborator on {}.", app.name),
            ));
        }
    }
    Ok((
        StatusCode::CREATED,
        Json(Collaborator {
            username: request.username,
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
    if !state.store.remove_collaborator(app.id, &username).await? {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("{username} is not a collaborator on {}.", app.name),
        ));
    }
    state.ssh_access.bump();
    Ok(StatusCode::NO_CONTENT)
}

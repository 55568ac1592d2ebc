//! An app's images (`paas/<app>:v<N>`): which are still on this host, so gitd can refuse a
//! rollback to a release whose image is gone, and pruning all but the ones gitd keeps (the last
//! successful releases). An image a container still uses is never removed; gitd prunes under
//! the app's lock, so no rollout of the app is choosing an image meanwhile.
//!
//! Routes: `GET /v1/apps/{app}/images` → `Vec<String>`, `POST /v1/apps/{app}/prune`
//! ([`PruneRequest`] → [`PruneResult`]).

use std::collections::{HashMap, HashSet};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{ListContainersOptions, ListImagesOptions, RemoveImageOptions};
use paas_api::agent::{PruneRequest, PruneResult};
use paas_api::{AppName, ErrorCode};
use tracing::info;

use crate::error::{ApiError, Path};
use crate::naming::{self, InstanceKey, docker_filters};
use crate::state::AgentState;

pub fn routes() -> Router<AgentState> {
    Router::new()
        .route("/v1/apps/{app}/images", get(list))
        .route("/v1/apps/{app}/prune", post(prune))
}

fn docker_error(err: DockerError) -> ApiError {
    ApiError::new(ErrorCode::Internal, format!("Docker: {err}"))
}

async fn list(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
) -> Result<Json<Vec<String>>, ApiError> {
    app_tags(&state.docker, &app)
        .await
        .map(Json)
        .map_err(docker_error)
}

async fn prune(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
    body: Bytes,
) -> Result<Json<PruneResult>, ApiError> {
    let request: PruneRequest = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid prune request: {err}"),
        )
    })?;
    let in_use = images_in_use(&state.docker, state.config.instance_key(), &app)
        .await
        .map_err(docker_error)?;
    let keep: HashSet<&str> = request.keep.iter().map(String::as_str).collect();
    let mut removed = Vec::new();
    for tag in app_tags(&state.docker, &app).await.map_err(docker_error)? {
        if keep.contains(tag.as_str()) || in_use.contains(&tag) {
            continue;
        }
        match remove_tag(&state.docker, &tag).await {
            Ok(true) => removed.push(tag),
            // Gone already, or still used by a container created meanwhile: keep going.
            Ok(false)
            | Err(DockerError::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(err) => return Err(docker_error(err)),
        }
    }
    if !removed.is_empty() {
        info!(%app, ?removed, "pruned images");
    }
    Ok(Json(PruneResult { removed }))
}

/// Removes one tag; `false` when it was gone already.
///
/// `noprune`: the untagged parents are build-cache layers another app's build may be reusing
/// right now; removing them under it fails that build. They are left to `docker image prune`.
pub(crate) async fn remove_tag(docker: &Docker, tag: &str) -> Result<bool, DockerError> {
    let options = RemoveImageOptions {
        noprune: true,
        ..Default::default()
    };
    match docker.remove_image(tag, Some(options), None).await {
        Ok(_) => Ok(true),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The app's `paas/<app>:*` tags, sorted.
pub(crate) async fn app_tags(docker: &Docker, app: &str) -> Result<Vec<String>, DockerError> {
    let repository = naming::image_repository(app);
    let filters = HashMap::from([("reference".to_owned(), vec![repository.clone()])]);
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let mut tags: Vec<String> = images
        .into_iter()
        .flat_map(|image| image.repo_tags)
        .filter(|tag| naming::parse_image_tag(tag).is_some_and(|(owner, _)| owner == app))
        .collect();
    tags.sort();
    Ok(tags)
}

/// Images named by the app's containers (the agent's own), stopped ones included.
async fn images_in_use(
    docker: &Docker,
    key: &InstanceKey,
    app: &str,
) -> Result<HashSet<String>, DockerError> {
    let filters = docker_filters(key, Some(app), None);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    Ok(containers
        .into_iter()
        .filter_map(|container| container.image)
        .collect())
}

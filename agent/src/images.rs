//! An app's images (`paas/<app>:v<N>`, and with `[registry]` also the pushed digest a release
//! runs, `<registry>/paas/<app>@sha256:…`): which are still on this host, so gitd can refuse a
//! rollback to a release whose image is gone, and pruning all but the ones gitd keeps (the last
//! successful releases), from this host and from the registry. An image a container still
//! uses is never removed; gitd prunes under the app's lock, so no rollout of the app is
//! choosing an image meanwhile.
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
use tracing::{info, warn};

use crate::error::{ApiError, Path};
use crate::naming::registry::Registry;
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

/// Every name the app's images on this host answer to: their tags and pushed digests.
async fn list(
    State(state): State<AgentState>,
    Path(app): Path<AppName>,
) -> Result<Json<Vec<String>>, ApiError> {
    let images = app_images(&state.docker, registry(&state), &app)
        .await
        .map_err(docker_error)?;
    let mut names: Vec<String> = images.iter().flat_map(AppImage::names).collect();
    names.sort();
    names.dedup();
    Ok(Json(names))
}

fn registry(state: &AgentState) -> Option<&Registry> {
    state.config.registry.as_ref().map(|registry| &registry.url)
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
    let registry = registry(&state);
    let mut removed = Vec::new();
    let images = app_images(&state.docker, registry, &app)
        .await
        .map_err(docker_error)?;
    for image in images {
        let wanted = image
            .names()
            .any(|name| keep.contains(name.as_str()) || in_use.contains(&name));
        if wanted {
            continue;
        }
        match remove_image(&state.docker, registry, &app, &image).await {
            Ok(true) => removed.extend(image.names()),
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

/// One of the app's images on this host: its tag and, once pushed, the digest the registry
/// holds it under.
pub(crate) struct AppImage {
    pub(crate) tag: String,
    pinned: Option<String>,
}

impl AppImage {
    fn names(&self) -> impl Iterator<Item = String> + '_ {
        std::iter::once(self.tag.clone()).chain(self.pinned.clone())
    }
}

/// Removes the image from this host (its tag, and the registry's tag it was pushed as) and
/// then from the registry; `false` when it was gone already. A registry that cannot delete
/// only keeps the bytes: that is logged, the local removal stands.
pub(crate) async fn remove_image(
    docker: &Docker,
    registry: Option<&Registry>,
    app: &str,
    image: &AppImage,
) -> Result<bool, DockerError> {
    let removed = remove_tag(docker, &image.tag).await?;
    let (Some(registry), Some((_, release))) = (registry, naming::parse_image_tag(&image.tag))
    else {
        return Ok(removed);
    };
    remove_tag(docker, &registry.push_tag(app, release)).await?;
    if let Some(pinned) = &image.pinned
        && let Err(reason) = delete_from_registry(registry, app, pinned).await
    {
        warn!(%app, %pinned, %reason, "cannot delete the image from the registry");
    }
    Ok(removed)
}

/// `DELETE /v2/<repository>/manifests/<digest>`: the registry drops the manifest (its blobs go
/// at the registry's next garbage collection); one it does not have is gone already.
async fn delete_from_registry(registry: &Registry, app: &str, pinned: &str) -> Result<(), String> {
    let url = registry
        .manifest_url(app, pinned)
        .ok_or_else(|| format!("{pinned} is not one of {app}'s images in the registry"))?;
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(|err| err.to_string())?;
    let response = client
        .delete(&url)
        .send()
        .await
        .map_err(|err| err.to_string())?;
    match response.status() {
        status if status.is_success() || status == reqwest::StatusCode::NOT_FOUND => Ok(()),
        status => Err(format!("DELETE {url}: HTTP {status}")),
    }
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

/// The app's `paas/<app>:*` images, by tag, with their digests in `registry`.
pub(crate) async fn app_images(
    docker: &Docker,
    registry: Option<&Registry>,
    app: &str,
) -> Result<Vec<AppImage>, DockerError> {
    let repository = naming::image_repository(app);
    let filters = HashMap::from([("reference".to_owned(), vec![repository.clone()])]);
    let images = docker
        .list_images(Some(ListImagesOptions {
            filters: Some(filters),
            ..Default::default()
        }))
        .await?;
    let mut found = Vec::new();
    for image in images {
        let pinned = match registry {
            Some(registry) => registry.pinned(app, &repo_digests(docker, &image.id).await?),
            None => None,
        };
        found.extend(
            image
                .repo_tags
                .into_iter()
                .filter(|tag| naming::parse_image_tag(tag).is_some_and(|(owner, _)| owner == app))
                .map(|tag| AppImage {
                    tag,
                    pinned: pinned.clone(),
                }),
        );
    }
    found.sort_by(|a, b| a.tag.cmp(&b.tag));
    Ok(found)
}

/// An image's digest references. A listing filtered by reference leaves out those of other
/// repositories, so the registry's are read by inspecting the image.
async fn repo_digests(docker: &Docker, id: &str) -> Result<Vec<String>, DockerError> {
    match docker.inspect_image(id).await {
        Ok(image) => Ok(image.repo_digests.unwrap_or_default()),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(Vec::new()),
        Err(err) => Err(err),
    }
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

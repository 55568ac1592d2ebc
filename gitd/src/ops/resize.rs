//! `paas ps:resize`: new memory and CPU limits for one process type. The sizes are kept in the
//! release, so a resize makes one (the current image, config and process types with the new
//! sizes) through the release lifecycle, and a rollback brings back the sizes its target ran
//! with. The agent refuses sizes above the host's maximums before it starts anything, so a
//! refused resize is a failed release and the app runs on as it was.

use paas_api::resources::{ProcessSize, ResizeRequest, describe};
use paas_api::types::{Release, ReleaseStatus};

use super::release::{self, ReleaseKind};
use super::{Op, OpsError};
use crate::state::SharedState;
use crate::store::NewRelease;
use crate::store::{AppRow, UserRow};

/// Gives `request.process` its new sizes, detached; the answer is the new release.
pub fn resize(
    state: &SharedState,
    app: AppRow,
    by: &UserRow,
    request: ResizeRequest,
) -> Op<Release> {
    let (op_state, by) = (state.clone(), by.username.clone());
    let name = app.name.clone();
    super::spawn(state, &name, None, move |reporter| async move {
        let state = op_state;
        let current = state.store.current_release(app.id).await?;
        let Some(current) = current.filter(|release| release.image.is_some()) else {
            return Err(OpsError::invalid(format!(
                "{} has no running release: deploy it first.",
                app.name
            )));
        };
        let process = &request.process;
        if !current.processes.contains_key(process.as_str()) {
            let known = current
                .processes
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            return Err(OpsError::invalid(format!(
                "unknown process type {process:?}; this app has: {known}"
            )));
        }
        let mut resources = current.resources.clone();
        let sized = resources
            .get(process)
            .copied()
            .unwrap_or_default()
            .merged(request.resources);
        resources.insert(process.clone(), sized);
        let description = format!("Resize {process} to {}", describe(sized.memory, sized.cpus));
        let release = release::begin(
            &state,
            NewRelease {
                app_id: app.id,
                kind: ReleaseKind::Resize,
                description,
                username: by,
                image: current.image,
                commit: current.commit,
                processes: current.processes,
                config: current.config,
                resources,
                app_json: current.app_json,
            },
        )
        .await?;
        release::go_live(
            &state,
            &app,
            &release,
            ReleaseKind::Resize,
            &reporter,
            |_| {},
        )
        .await?;
        tracing::info!(app = %app.name, version = release.version, %process, "resized");
        Ok(Release {
            status: ReleaseStatus::Succeeded,
            ..release
        })
    })
}

/// The sizes every process type of `release` asks for (`None`: the host's default).
pub fn sizes(release: &Release) -> Vec<ProcessSize> {
    release
        .processes
        .keys()
        .filter_map(|process| process.parse().ok())
        .map(|process| ProcessSize {
            resources: release.resources.get(&process).copied().unwrap_or_default(),
            process,
        })
        .collect()
}

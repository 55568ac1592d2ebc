//! `/`: the user's apps, as `paas apps` lists them, with how many of each app's instances are
//! up (`paas ps`).

use axum::extract::State;
use futures::future::join_all;
use maud::{Markup, html};
use paas_api::types::{App, InstanceState, ProcessInstance};

use super::page::{self, PageResult};
use super::session::Session;
use crate::http::{AuthUser, Path, handlers};
use crate::state::SharedState;

pub async fn list(State(state): State<SharedState>, session: Session) -> PageResult {
    let auth = session.auth();
    let crate::http::Json(apps) = handlers::apps(State(state.clone()), auth).await?;
    let instances = join_all(
        apps.iter()
            .map(|app| formation_instances(&state, session.auth(), app)),
    )
    .await;
    let body = html! {
        main {
            h1 { "Apps" }
            @if apps.is_empty() {
                p { "No apps yet: create one with " code { "paas apps:create NAME" } "." }
            } @else {
                div class="scroll" {
                    table {
                        caption class="visually-hidden" { "Your apps" }
                        (page::column_heads(&[
                            "App", "State", "Web URL", "Release", "Last deploy", "Instances up",
                        ]))
                        tbody {
                            @for (app, instances) in apps.iter().zip(&instances) {
                                (app_row(app, instances.as_deref()))
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::document("Apps", Some(&session.0), body))
}

fn app_row(app: &App, instances: Option<&[ProcessInstance]>) -> Markup {
    let state = AppState::of(app, instances);
    html! {
        tr {
            th scope="row" { a href={ "/apps/" (app.name) } { (app.name) } }
            td { span class={ "state " (state.as_str().replace(' ', "-")) } { (state.as_str()) } }
            td { a href=(app.web_url) rel="noreferrer" { (app.web_url) } }
            td { @if let Some(version) = app.current_release { "v" (version) } @else { "—" } }
            td {
                @if let Some(deploy) = &app.last_deploy {
                    (page::time(deploy.created_at)) " by " (deploy.user)
                } @else { "never" }
            }
            td {
                @match instances {
                    Some(instances) => { (up_count(instances)) "/" (instances.len()) },
                    None => { "unknown" },
                }
            }
        }
    }
}

/// The app's formation instances (not its one-offs), or none when the agent cannot be asked.
pub async fn formation_instances(
    state: &SharedState,
    auth: AuthUser,
    app: &App,
) -> Option<Vec<ProcessInstance>> {
    let crate::http::Json(listed) =
        handlers::ps(State(state.clone()), auth, Path(app.name.clone()))
            .await
            .ok()?;
    Some(
        listed
            .into_iter()
            .filter(|instance| !instance.oneoff)
            .collect(),
    )
}

/// `web.1 up v2 since …`, as `paas ps` says it, and `on paascl-2` on a cluster.
pub fn instance_line(instance: &ProcessInstance) -> Markup {
    html! {
        (instance.process) "." (instance.index) " "
        span class={ "state " (instance.state.as_str()) } { (instance.state.as_str()) }
        " v" (instance.release)
        @if let Some(since) = instance.since {
            " since " (page::time(since))
        }
        @if let Some(node) = &instance.node {
            " on " (node)
        }
    }
}

pub fn up_count(instances: &[ProcessInstance]) -> usize {
    instances
        .iter()
        .filter(|instance| instance.state == InstanceState::Up)
        .count()
}

/// An app at a glance, from its release and its instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppState {
    /// Never released.
    New,
    /// Released, scaled to nothing.
    Idle,
    /// Every instance up.
    Up,
    /// Some instance crashed.
    Crashed,
    /// Some instance is on its way up (or down).
    Changing,
    /// The agent could not be asked.
    Unknown,
}

impl AppState {
    pub fn of(app: &App, instances: Option<&[ProcessInstance]>) -> AppState {
        let Some(instances) = instances else {
            return AppState::Unknown;
        };
        if app.current_release.is_none() {
            AppState::New
        } else if instances.is_empty() {
            AppState::Idle
        } else if instances.iter().any(|i| i.state == InstanceState::Crashed) {
            AppState::Crashed
        } else if up_count(instances) == instances.len() {
            AppState::Up
        } else {
            AppState::Changing
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            AppState::New => "not deployed",
            AppState::Idle => "idle",
            AppState::Up => "up",
            AppState::Crashed => "crashed",
            AppState::Changing => "changing",
            AppState::Unknown => "unknown",
        }
    }
}

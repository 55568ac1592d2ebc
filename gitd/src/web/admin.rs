//! `/admin`, for admins only (the API's own check): the infrastructure, this host's agent and
//! the instances of every app on it (`paas ps` of each), and the users with their access to
//! each app (`paas users`, `paas access`).

use axum::extract::State;
use futures::future::join_all;
use maud::html;
use paas_api::types::CollaboratorRole;

use super::apps::{formation_instances, instance_line, up_count};
use super::page::{self, PageResult};
use super::session::Session;
use crate::http::{Json, Path, handlers};
use crate::state::SharedState;

pub async fn show(State(state): State<SharedState>, session: Session) -> PageResult {
    session.auth().require_admin()?;
    let Json(apps) = handlers::apps(State(state.clone()), session.auth()).await?;
    let Json(users) = handlers::users(State(state.clone()), session.auth()).await?;
    let instances = join_all(
        apps.iter()
            .map(|app| formation_instances(&state, session.auth(), app)),
    )
    .await;
    let access = join_all(apps.iter().map(|app| {
        handlers::collaborators(State(state.clone()), session.auth(), Path(app.name.clone()))
    }))
    .await;
    let host = state
        .config
        .agent
        .as_ref()
        .map(|agent| agent.url.as_str())
        .unwrap_or("no agent configured");
    let body = html! {
        main {
            h1 { "Admin" }
            section aria-labelledby="infrastructure" {
                h2 id="infrastructure" { "Infrastructure" }
                div class="host" {
                    h3 { "This host " span class="muted" { "(agent " code { (host) } ")" } }
                    @if apps.is_empty() { p { "No apps." } }
                    ul class="host-apps" {
                        @for (app, instances) in apps.iter().zip(&instances) {
                            li {
                                a href={ "/apps/" (app.name) } { (app.name) }
                                @match instances {
                                    Some(instances) => {
                                        " " (up_count(instances)) "/" (instances.len()) " up"
                                        ul class="instances" {
                                            @for instance in instances {
                                                li {
                                                    (instance_line(instance)) " "
                                                    code { (instance.container) }
                                                }
                                            }
                                        }
                                    },
                                    None => " instances unknown",
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="users" {
                h2 id="users" { "Users" }
                div class="scroll" {
                    table {
                        (page::column_heads(&["User", "Role", "Since", "Apps"]))
                        tbody {
                            @for user in &users {
                                tr {
                                    th scope="row" { (user.username) }
                                    td { @if user.is_admin { "admin" } @else { "user" } }
                                    td { (page::time(user.created_at)) }
                                    td {
                                        @for (app, access) in apps.iter().zip(&access) {
                                            @if let Ok(Json(members)) = access {
                                                @for member in members.iter().filter(|m| m.username == user.username) {
                                                    a href={ "/apps/" (app.name) } { (app.name) }
                                                    @if member.role == CollaboratorRole::Owner { " (owner) " } @else { " (collaborator) " }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page::document("Admin", Some(&session.0), body))
}

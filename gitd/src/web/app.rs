//! `/apps/<name>`: one app as `paas apps:info`, `paas ps`, `paas releases`, `paas config`,
//! `paas domains`, `paas addons` and `paas storage` show it, with a scale control per process
//! type (`paas scale`) and a rollback button per earlier release (`paas rollback`). Config
//! values are left out of the page until asked for, one or all (`?reveal=KEY`, `?reveal=all`).

use std::collections::BTreeMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Redirect;
use maud::{Markup, html};
use paas_api::AppName;
use paas_api::addons::Addon;
use paas_api::formation::{ScaleArg, ScaleChanges};
use paas_api::storage::Volume;
use paas_api::types::{App, ProcessInstance, Release, ReleaseStatus};
use serde::Deserialize;

use super::apps::{AppState, formation_instances, instance_line};
use super::csrf::ChangeForm;
use super::page::{self, PageError, PageResult};
use super::session::Session;
use crate::http::{Json, Path, handlers};
use crate::ops;
use crate::state::SharedState;
use crate::store::SessionRow;

/// Releases listed, newest first.
const RELEASES_SHOWN: u32 = 20;

#[derive(Deserialize)]
pub struct ShowQuery {
    /// A config key whose value to show, or `all`.
    reveal: Option<String>,
}

pub async fn show(
    State(state): State<SharedState>,
    session: Session,
    Path(name): Path<AppName>,
    Query(query): Query<ShowQuery>,
) -> PageResult {
    let Json(app) = handlers::app(State(state.clone()), session.auth(), Path(name.clone())).await?;
    let row = session.auth().app(&state, &name).await?;
    let releases = state.store.releases(row.id, RELEASES_SHOWN).await?;
    let Json(config) =
        handlers::config_vars(State(state.clone()), session.auth(), Path(name.clone())).await?;
    let instances = formation_instances(&state, session.auth(), &app).await;
    // Add-ons and storage are shown when there are any; the agent being away hides neither.
    let addons = handlers::addons(State(state.clone()), session.auth(), Path(name.clone()))
        .await
        .map(|Json(addons)| addons)
        .unwrap_or_default();
    let volumes = handlers::storage(State(state.clone()), session.auth(), Path(name.clone()))
        .await
        .map(|Json(volumes)| volumes)
        .unwrap_or_default();
    let deploy_output = match &app.last_deploy {
        Some(deploy) => handlers::release_output(
            State(state.clone()),
            session.auth(),
            Path((name.clone(), deploy.version.to_string())),
        )
        .await
        .ok()
        .map(|Json(output)| output),
        None => None,
    };
    let app_state = AppState::of(&app, instances.as_deref());
    let body = html! {
        main {
            h1 { (app.name) " " span class="state" { (app_state.as_str()) } }
            (page::app_tabs(&app.name, page::AppTab::Overview))
            (overview(&app))
            (formation(&session.0, &app, instances.as_deref()))
            (release_list(&session.0, &app, &releases))
            (config_vars(&app, &config.vars, query.reveal.as_deref()))
            (domains(&app))
            @if !addons.is_empty() { (addon_list(&addons)) }
            @if !volumes.is_empty() { (volume_list(&volumes)) }
            @if let Some(output) = deploy_output {
                section aria-labelledby="deploy-output" {
                    h2 id="deploy-output" { "Output of v" (output.version) }
                    pre class="output" tabindex="0" { (output.output) }
                }
            }
        }
    };
    Ok(page::document(app.name.as_str(), Some(&session.0), body))
}

fn overview(app: &App) -> Markup {
    html! {
        dl class="facts" {
            dt { "Web URL" } dd { a href=(app.web_url) rel="noreferrer" { (app.web_url) } }
            dt { "Git URL" } dd { code { (app.git_url) } }
            dt { "Owner" } dd { (app.owner) }
            dt { "Release" } dd {
                @if let Some(version) = app.current_release { "v" (version) } @else { "none yet" }
            }
            dt { "Last deploy" } dd {
                @if let Some(deploy) = &app.last_deploy {
                    "v" (deploy.version) ", " (deploy.description) ", " (page::time(deploy.created_at))
                    " by " (deploy.user)
                } @else { "never" }
            }
        }
    }
}

fn formation(session: &SessionRow, app: &App, instances: Option<&[ProcessInstance]>) -> Markup {
    html! {
        section aria-labelledby="formation" {
            h2 id="formation" { "Formation" }
            @if app.formation.is_empty() {
                p { "Nothing runs before the first deploy." }
            }
            @for (process, quantity) in &app.formation {
                div class="process" {
                    h3 { (process) }
                    form method="post" action={ "/apps/" (app.name) "/scale" } class="inline" {
                        (page::csrf_field(session))
                        input type="hidden" name="process" value=(process);
                        label for={ "scale-" (process) } { "Instances of " (process) }
                        input id={ "scale-" (process) } name="quantity" type="number" min="0"
                            max="100" value=(quantity) required;
                        button type="submit" { "Scale" }
                    }
                    @match instances {
                        Some(instances) => ul class="instances" {
                            @for instance in instances.iter().filter(|i| &i.process == process) {
                                li { (instance_line(instance)) }
                            }
                        },
                        None => p { "The agent cannot be asked about instances right now." },
                    }
                }
            }
        }
    }
}

fn release_list(session: &SessionRow, app: &App, releases: &[Release]) -> Markup {
    html! {
        section aria-labelledby="releases" {
            h2 id="releases" { "Releases" }
            div class="scroll" {
                table {
                    (page::column_heads(&["Version", "Description", "By", "When", "Status", "Rollback"]))
                    tbody {
                        @for release in releases {
                            tr {
                                th scope="row" { "v" (release.version) }
                                td { (release.description) }
                                td { (release.user) }
                                td { (page::time(release.created_at)) }
                                td { (status(release.status)) }
                                td {
                                    @if release.status == ReleaseStatus::Succeeded
                                        && app.current_release != Some(release.version) {
                                        form method="post" action={ "/apps/" (app.name) "/rollback" } {
                                            (page::csrf_field(session))
                                            input type="hidden" name="version" value=(release.version);
                                            button type="submit" { "Roll back to v" (release.version) }
                                        }
                                    } @else if app.current_release == Some(release.version) {
                                        "current"
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

fn status(status: ReleaseStatus) -> &'static str {
    match status {
        ReleaseStatus::Building => "building",
        ReleaseStatus::Failed => "failed",
        ReleaseStatus::Succeeded => "succeeded",
    }
}

fn config_vars<K: AsRef<str> + Ord>(
    app: &App,
    vars: &BTreeMap<K, String>,
    reveal: Option<&str>,
) -> Markup {
    let revealed = |key: &str| reveal == Some("all") || reveal == Some(key);
    html! {
        section aria-labelledby="config" {
            h2 id="config" { "Config vars" }
            @if vars.is_empty() {
                p { "None set." }
            } @else {
                p { a href={ "/apps/" (app.name) "?reveal=all#config" } { "Reveal all values" } }
                dl class="config" {
                    @for (key, value) in vars {
                        dt { code { (key.as_ref()) } }
                        dd {
                            @if revealed(key.as_ref()) {
                                code { (value) }
                            } @else {
                                span class="hidden-value" { "••••••" } " "
                                a href={ "/apps/" (app.name) "?reveal=" (key.as_ref()) "#config" }
                                    aria-label={ "Reveal " (key.as_ref()) } { "Reveal" }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn domains(app: &App) -> Markup {
    html! {
        section aria-labelledby="domains" {
            h2 id="domains" { "Domains" }
            ul {
                li { a href=(app.web_url) rel="noreferrer" { (app.web_url) } " (default)" }
                @for domain in &app.domains { li { (domain) } }
            }
        }
    }
}

fn addon_list(addons: &[Addon]) -> Markup {
    html! {
        section aria-labelledby="addons" {
            h2 id="addons" { "Add-ons" }
            ul {
                @for addon in addons {
                    li {
                        strong { (addon.name) } " (" (addon.kind) ") "
                        @match &addon.status {
                            Some(status) => (status.state),
                            None => "status unknown",
                        }
                        @for attachment in &addon.attachments {
                            " · attached to " (attachment.app) " as " (attachment.name)
                        }
                    }
                }
            }
        }
    }
}

fn volume_list(volumes: &[Volume]) -> Markup {
    html! {
        section aria-labelledby="storage" {
            h2 id="storage" { "Storage" }
            ul {
                @for volume in volumes {
                    li {
                        strong { (volume.name) }
                        @for path in &volume.paths { " " code { (path) } }
                    }
                }
            }
        }
    }
}

/// `paas scale PROCESS=QUANTITY`, from the formation's form.
pub async fn scale(
    State(state): State<SharedState>,
    Path(name): Path<AppName>,
    form: ChangeForm,
) -> PageResult<Redirect> {
    let change: ScaleArg = format!("{}={}", form.field("process"), form.field("quantity"))
        .parse()
        .map_err(|err: paas_api::formation::FormationError| invalid(err.to_string()))?;
    let changes = ScaleChanges::try_from(vec![change]).map_err(|err| invalid(err.to_string()))?;
    let auth = session_auth(&form);
    let app = auth.app(&state, &name).await?;
    ops::changes::scale(&state, app, &auth.user, changes)
        .finished()
        .await
        .map_err(crate::http::ApiError::from)?;
    Ok(Redirect::to(&format!("/apps/{name}#formation")))
}

/// `paas rollback vN`, from a release's button.
pub async fn rollback(
    State(state): State<SharedState>,
    Path(name): Path<AppName>,
    form: ChangeForm,
) -> PageResult<Redirect> {
    let version: u32 = form
        .field("version")
        .parse()
        .map_err(|_| invalid("Pick a release to roll back to."))?;
    let auth = session_auth(&form);
    let app = auth.app(&state, &name).await?;
    ops::rollback::rollback(&state, app, &auth.user, Some(version))
        .finished()
        .await
        .map_err(crate::http::ApiError::from)?;
    Ok(Redirect::to(&format!("/apps/{name}#releases")))
}

fn session_auth(form: &ChangeForm) -> crate::http::AuthUser {
    Session(form.session.clone()).auth()
}

fn invalid(message: impl Into<String>) -> PageError {
    PageError::new(StatusCode::BAD_REQUEST, message)
}

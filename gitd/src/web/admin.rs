//! `/admin`, for admins only (the API's own check): the infrastructure, this host's agent and
//! the instances of every app on it (`paas ps` of each) — on a cluster by the node they run
//! on — and the users with their access to each app (`paas users`, `paas access`).

use std::collections::BTreeMap;

use axum::extract::State;
use futures::future::join_all;
use maud::{Markup, html};
use paas_api::types::{App, CollaboratorRole, ProcessInstance};

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
            (infrastructure(host, &apps, &instances))
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

/// The apps on one host with their instances there (`None`: the agent cannot be asked).
type HostApps<'a> = Vec<(&'a App, Option<Vec<ProcessInstance>>)>;

/// The apps under each node their instances run on, once per node. `None` holds what no node
/// is named for: every app on a single host; on a cluster the instances not placed and the
/// apps without instances or whose instances are unknown.
fn by_node<'a>(
    apps: &'a [App],
    instances: &[Option<Vec<ProcessInstance>>],
) -> BTreeMap<Option<String>, HostApps<'a>> {
    let mut hosts: BTreeMap<Option<String>, HostApps<'a>> = BTreeMap::new();
    for (app, instances) in apps.iter().zip(instances) {
        let Some(listed) = instances.as_ref().filter(|listed| !listed.is_empty()) else {
            hosts
                .entry(None)
                .or_default()
                .push((app, instances.clone()));
            continue;
        };
        let mut on_node: BTreeMap<Option<String>, Vec<ProcessInstance>> = BTreeMap::new();
        for instance in listed {
            on_node
                .entry(instance.node.clone())
                .or_default()
                .push(instance.clone());
        }
        for (node, instances) in on_node {
            hosts.entry(node).or_default().push((app, Some(instances)));
        }
    }
    hosts
}

/// This host and its apps, or on a cluster each node and the apps running there.
fn infrastructure(agent: &str, apps: &[App], instances: &[Option<Vec<ProcessInstance>>]) -> Markup {
    let hosts = by_node(apps, instances);
    let unplaced = hosts.get(&None);
    html! {
        section aria-labelledby="infrastructure" {
            h2 id="infrastructure" { "Infrastructure" }
            @if hosts.keys().all(Option::is_none) {
                div class="host" {
                    h3 { "This host " span class="muted" { "(agent " code { (agent) } ")" } }
                    @if apps.is_empty() { p { "No apps." } }
                    (host_apps(unplaced.map(Vec::as_slice).unwrap_or_default()))
                }
            } @else {
                p { "A cluster, run by the agent " code { (agent) } "." }
                @for (node, apps) in &hosts {
                    @if let Some(node) = node {
                        div class="host" {
                            h3 { "Node " (node) }
                            (host_apps(apps))
                        }
                    }
                }
                @if let Some(apps) = unplaced {
                    div class="host" {
                        h3 { "On no node " span class="muted" { "(not placed, idle or unknown)" } }
                        (host_apps(apps))
                    }
                }
            }
        }
    }
}

fn host_apps(apps: &[(&App, Option<Vec<ProcessInstance>>)]) -> Markup {
    html! {
        ul class="host-apps" {
            @for (app, instances) in apps {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> App {
        serde_json::from_value(serde_json::json!({
            "name": name,
            "owner": "alice",
            "created_at": "2026-12-07T10:00:00Z",
            "git_url": format!("ssh://git@paas.test:2222/{name}.git"),
            "web_url": format!("http://{name}.paas.test"),
            "deploy_branch": "main",
            "current_release": 4,
        }))
        .unwrap()
    }

    /// An up instance of release 4 as gitd's `ps` answers it.
    fn instance(process: &str, index: u32, node: Option<&str>) -> ProcessInstance {
        serde_json::from_value(serde_json::json!({
            "process": process,
            "index": index,
            "release": 4,
            "state": "up",
            "since": null,
            "container": format!("paas-hello-v4-{process}-{index}"),
            "node": node,
        }))
        .unwrap()
    }

    #[test]
    fn a_single_host_lists_every_app_under_this_host() {
        let apps = [app("hello"), app("idle")];
        let instances = [Some(vec![instance("web", 1, None)]), Some(Vec::new())];
        let page = infrastructure("http://agent:7000", &apps, &instances).into_string();
        assert!(page.contains("This host"), "{page}");
        assert!(!page.contains("Node ") && !page.contains(" on "), "{page}");
        assert!(page.contains("hello</a> 1/1 up") && page.contains("idle</a> 0/0 up"));
    }

    #[test]
    fn a_cluster_lists_each_app_under_the_nodes_its_instances_run_on() {
        let apps = [app("hello"), app("idle"), app("lost")];
        let instances = [
            Some(vec![
                instance("web", 1, Some("paascl-2")),
                instance("web", 2, Some("paascl-1")),
                instance("worker", 1, Some("paascl-2")),
            ]),
            Some(Vec::new()),
            None,
        ];
        let hosts = by_node(&apps, &instances);
        let listed: Vec<String> = hosts
            .iter()
            .map(|(node, apps)| {
                let apps: Vec<String> = apps
                    .iter()
                    .map(|(app, instances)| match instances {
                        Some(instances) => format!("{} {}", app.name, instances.len()),
                        None => format!("{} unknown", app.name),
                    })
                    .collect();
                format!("{}: {}", node.as_deref().unwrap_or("-"), apps.join(", "))
            })
            .collect();
        assert_eq!(
            listed,
            [
                "-: idle 0, lost unknown",
                "paascl-1: hello 1",
                "paascl-2: hello 2"
            ]
        );
        let page = infrastructure("http://agent:7000", &apps, &instances).into_string();
        assert!(!page.contains("This host"), "{page}");
        let nodes: Vec<usize> = ["Node paascl-1", "Node paascl-2", "On no node"]
            .iter()
            .map(|heading| page.find(heading).expect(heading))
            .collect();
        assert!(
            nodes.is_sorted(),
            "nodes in order, the unplaced last: {page}"
        );
        assert!(
            page.contains("web.2 <span class=\"state up\">up</span> v4 on paascl-1"),
            "{page}"
        );
        assert!(page.contains("lost</a> instances unknown"), "{page}");
    }

    #[test]
    fn a_node_name_is_escaped() {
        let line = instance_line(&instance("web", 1, Some("<b>x</b>"))).into_string();
        assert!(line.ends_with(" on &lt;b&gt;x&lt;/b&gt;"), "{line}");
    }
}

//! `nodes`, `nodes:drain`, `nodes:activate` (admins only; the server enforces it): the hosts
//! the platform runs on with the app instances on each, and taking a Swarm node out of
//! service and back. A single host has nothing to drain to; the server says so.

use clap::Args;
use paas_api::nodes::{Availability, Node, NodeMap, NodeName, NodeRole, Topology};

use super::Context;
use super::addons::human_size;
use crate::JsonArg;
use crate::output::{Style, action, print_json, table};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AvailabilityArgs {
    /// The node's name (as `paas nodes` lists it) or its Swarm id
    pub node: String,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn list(ctx: &Context, ListArgs { json }: &ListArgs) -> anyhow::Result<()> {
    let map = ctx.client()?.nodes()?;
    if json.json {
        return print_json(&map);
    }
    print!("{}", render(&map, Style::stdout()));
    Ok(())
}

pub fn drain(ctx: &Context, args: &AvailabilityArgs) -> anyhow::Result<()> {
    set_availability(ctx, args, Availability::Drain, "Draining")
}

pub fn activate(ctx: &Context, args: &AvailabilityArgs) -> anyhow::Result<()> {
    set_availability(ctx, args, Availability::Active, "Activating")
}

fn set_availability(
    ctx: &Context,
    AvailabilityArgs { node, json }: &AvailabilityArgs,
    availability: Availability,
    verb: &str,
) -> anyhow::Result<()> {
    let node: NodeName = node.parse()?;
    let client = ctx.client()?;
    let updated = action(&format!("{verb} node {node}"), || {
        Ok((
            client.set_node_availability(&node, availability)?,
            String::new(),
        ))
    })?;
    if json.json {
        print_json(&updated)?;
    }
    Ok(())
}

fn role(node: &Node) -> String {
    match (node.role, node.leader) {
        (NodeRole::Manager, true) => "manager (leader)".to_owned(),
        (role, _) => role.as_str().to_owned(),
    }
}

fn render(map: &NodeMap, style: Style) -> String {
    let topology = match map.topology {
        Topology::SingleHost => "single host",
        Topology::Swarm => "Swarm",
    };
    let mut rows = vec![
        [
            "Name",
            "Role",
            "State",
            "Availability",
            "Address",
            "Engine",
            "CPUs",
            "Memory",
            "Instances",
        ]
        .map(str::to_owned)
        .to_vec(),
    ];
    rows.extend(map.nodes.iter().map(|node| {
        vec![
            node.name.clone(),
            role(node),
            node.state.as_str().to_owned(),
            node.availability.as_str().to_owned(),
            node.address.clone().unwrap_or_else(|| "-".to_owned()),
            node.engine_version.clone(),
            node.cpus.to_string(),
            human_size(node.memory_bytes),
            node.instances.len().to_string(),
        ]
    }));
    let mut out = format!(
        "{}\n{}",
        style.header(&format!("Nodes ({topology})")),
        table(&rows)
    );
    let instances: Vec<Vec<String>> = map
        .nodes
        .iter()
        .flat_map(|node| {
            node.instances.iter().map(|instance| {
                vec![
                    node.name.clone(),
                    instance.app.clone(),
                    format!("{}.{}", instance.process, instance.index),
                    format!("v{}", instance.release),
                    if instance.running {
                        "running"
                    } else {
                        "stopped"
                    }
                    .to_owned(),
                ]
            })
        })
        .collect();
    if !instances.is_empty() {
        out.push_str(&format!(
            "\n{}\n{}",
            style.header("Instances"),
            table(&instances)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use paas_api::nodes::{NodeInstance, NodeState};

    use super::*;

    fn node(name: &str, role: NodeRole, availability: Availability) -> Node {
        Node {
            name: name.to_owned(),
            id: format!("id-{name}"),
            role,
            leader: role == NodeRole::Manager,
            state: NodeState::Ready,
            availability,
            address: Some(format!("10.231.0.{}", &name[name.len() - 1..])),
            engine_version: "20.10.24+dfsg1".to_owned(),
            cpus: 2,
            memory_bytes: 25_273_356_288,
            instances: Vec::new(),
        }
    }

    fn instance(app: &str, process: &str, index: u32, running: bool) -> NodeInstance {
        NodeInstance {
            app: app.to_owned(),
            process: process.to_owned(),
            index,
            release: 3,
            running,
        }
    }

    #[test]
    fn nodes_render_with_their_instances() {
        let mut manager = node("paascl-1", NodeRole::Manager, Availability::Active);
        manager.instances = vec![
            instance("hello", "web", 1, true),
            instance("hello", "worker", 1, false),
        ];
        let map = NodeMap {
            topology: Topology::Swarm,
            nodes: vec![
                manager,
                node("paascl-2", NodeRole::Worker, Availability::Drain),
                node("paascl-3", NodeRole::Worker, Availability::Active),
            ],
        };
        insta::assert_snapshot!("nodes_swarm", render(&map, Style { colour: false }));
    }

    #[test]
    fn a_single_host_renders_without_an_address() {
        let mut host = node("vm1", NodeRole::Host, Availability::Active);
        host.address = None;
        let map = NodeMap {
            topology: Topology::SingleHost,
            nodes: vec![host],
        };
        insta::assert_snapshot!("nodes_single_host", render(&map, Style { colour: false }));
    }
}

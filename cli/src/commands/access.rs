//! `access`, `access:add`, `access:remove`: an app's collaborators.

use clap::Args;
use paas_api::Username;
use paas_api::types::{Collaborator, CollaboratorRole};

use super::Context;
use crate::output::{Style, action, print_json, table};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `access:add` and `access:remove`.
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(flatten)]
    pub app: AppArg,
    pub username: String,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let json = json.json;
    let name = ctx.app(app)?;
    let mut collaborators = ctx.client()?.collaborators(&name)?;
    // The owner first, then collaborators by name.
    collaborators.sort_by_key(|c| (c.role != CollaboratorRole::Owner, c.username.clone()));
    if json {
        return print_json(&collaborators);
    }
    print!("{}", render_access(&name, &collaborators, Style::stdout()));
    Ok(())
}

fn render_access(app: &str, collaborators: &[Collaborator], style: Style) -> String {
    let rows: Vec<Vec<String>> = collaborators
        .iter()
        .map(|c| {
            let role = match c.role {
                CollaboratorRole::Owner => "owner",
                CollaboratorRole::Collaborator => "collaborator",
            };
            vec![c.username.to_string(), role.to_owned()]
        })
        .collect();
    format!(
        "{}\n{}",
        style.header(&format!("{app} Access List")),
        table(&rows)
    )
}

pub fn add(ctx: &Context, UserArgs { app, username }: &UserArgs) -> anyhow::Result<()> {
    let username: Username = username.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Adding {username} access to {}", Style::stderr().app(&name));
    action(&message, || {
        client.add_collaborator(&name, &username)?;
        Ok(((), String::new()))
    })
}

pub fn remove(ctx: &Context, UserArgs { app, username }: &UserArgs) -> anyhow::Result<()> {
    let username: Username = username.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!(
        "Removing {username} access from {}",
        Style::stderr().app(&name)
    );
    action(&message, || {
        client.remove_collaborator(&name, &username)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_lists_show_roles() {
        let list = [
            Collaborator {
                username: "alice".parse().unwrap(),
                role: CollaboratorRole::Owner,
            },
            Collaborator {
                username: "bob".parse().unwrap(),
                role: CollaboratorRole::Collaborator,
            },
        ];
        assert_eq!(
            render_access("web", &list, Style { colour: false }),
            "=== web Access List\nalice  owner\nbob    collaborator\n"
        );
    }
}

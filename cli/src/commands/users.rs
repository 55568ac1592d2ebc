//! `users`, `users:add`, `users:remove` (admins only; the server enforces it).

use anyhow::bail;
use clap::Args;
use dialoguer::Password;
use paas_api::Username;
use paas_api::types::{CreateUserRequest, User};

use super::{Context, interactive, read_secret_from_stdin};
use crate::JsonArg;
use crate::output::{Style, action, print_json, table, timestamp};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    pub username: String,
    /// Make the user an admin
    #[arg(long)]
    pub admin: bool,
    /// Read the new user's password from standard input
    #[arg(long)]
    pub password_stdin: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    pub username: String,
}

pub fn list(ctx: &Context, ListArgs { json }: &ListArgs) -> anyhow::Result<()> {
    let json = json.json;
    let mut users = ctx.client()?.users()?;
    users.sort_by(|a, b| a.username.cmp(&b.username));
    if json {
        return print_json(&users);
    }
    print!("{}", render_users(&users, Style::stdout()));
    Ok(())
}

fn render_users(users: &[User], style: Style) -> String {
    let rows: Vec<Vec<String>> = users
        .iter()
        .map(|u| {
            vec![
                u.username.to_string(),
                if u.is_admin { "admin" } else { "user" }.to_owned(),
                timestamp(u.created_at),
            ]
        })
        .collect();
    format!("{}\n{}", style.header("Users"), table(&rows))
}

pub fn add(
    ctx: &Context,
    AddArgs {
        username,
        admin,
        password_stdin,
        json,
    }: &AddArgs,
) -> anyhow::Result<()> {
    let (admin, password_stdin, json) = (*admin, *password_stdin, json.json);
    let username: Username = username.parse()?;
    let client = ctx.client()?;
    let password = if password_stdin {
        read_secret_from_stdin()?
    } else if interactive() {
        Password::new()
            .with_prompt(format!("Password for {username}"))
            .with_confirmation("Repeat the password", "The passwords do not match.")
            .interact()?
    } else {
        bail!("Cannot prompt for a password without a terminal. Use --password-stdin.");
    };
    let request = CreateUserRequest {
        username: username.clone(),
        password,
        is_admin: admin,
    };
    let role = if admin { "admin" } else { "user" };
    let user = action(&format!("Adding {role} {username}"), || {
        Ok((client.create_user(&request)?, String::new()))
    })?;
    if json {
        print_json(&user)?;
    }
    Ok(())
}

pub fn remove(ctx: &Context, RemoveArgs { username }: &RemoveArgs) -> anyhow::Result<()> {
    let username: Username = username.parse()?;
    let client = ctx.client()?;
    action(&format!("Removing user {username}"), || {
        client.remove_user(&username)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn users_render_with_their_role() {
        let at = chrono::Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let users = [
            User {
                username: "admin".parse().unwrap(),
                is_admin: true,
                created_at: at,
            },
            User {
                username: "bob".parse().unwrap(),
                is_admin: false,
                created_at: at,
            },
        ];
        assert_eq!(
            render_users(&users, Style { colour: false }),
            "=== Users\n\
             admin  admin  2026/01/02 03:04:05 UTC\n\
             bob    user   2026/01/02 03:04:05 UTC\n"
        );
    }
}

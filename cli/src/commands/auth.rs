//! `login`, `logout`, `whoami`.

use anyhow::{Context as _, bail};
use dialoguer::{Input, Password};
use paas_api::ErrorCode;
use paas_api::types::LoginRequest;

use super::{Context, TokenSource, interactive, read_secret_from_stdin};
use crate::client::{Client, ClientError};
use crate::config::normalize_server;
use crate::output::{action, print_json};

pub fn login(
    ctx: &mut Context,
    server: Option<String>,
    username: Option<String>,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let server = match server {
        Some(server) => normalize_server(&server)?,
        None => ctx.server.clone(),
    };
    let prompt = interactive();
    let username = match username {
        Some(username) => username,
        None if prompt && !password_stdin => {
            let mut input = Input::<String>::new().with_prompt("Username");
            if let Some(last) = &ctx.settings.username {
                input = input.default(last.clone());
            }
            input.interact_text()?
        }
        None => ctx.settings.username.clone().context(
            "No username given. Use --username USER (there is no terminal to prompt on).",
        )?,
    };
    let password = if password_stdin {
        read_secret_from_stdin()?
    } else if prompt {
        Password::new().with_prompt("Password").interact()?
    } else {
        bail!("Cannot prompt for a password without a terminal. Use --password-stdin.");
    };

    let response = Client::new(&server, None)?.login(&LoginRequest {
        username: username.trim().to_owned(),
        password,
    })?;
    ctx.settings.server = Some(server.clone());
    ctx.settings.username = Some(response.user.username.clone());
    ctx.settings.save(&ctx.config_dir)?;
    ctx.credentials.save(&server, &response.token)?;
    println!("Logged in as {}", response.user.username);
    Ok(())
}

pub fn logout(ctx: &mut Context) -> anyhow::Result<()> {
    let Some((token, source)) = ctx.token()? else {
        bail!("Not logged in to {}.", ctx.server);
    };
    let client = Client::new(&ctx.server, Some(token))?;
    action("Logging out", || {
        match client.logout() {
            // An expired or already revoked token is as logged out as it gets.
            Ok(()) => {}
            Err(ClientError::Api {
                code: Some(ErrorCode::Unauthorized),
                ..
            }) => {}
            Err(e) => return Err(e.into()),
        }
        if source == TokenSource::Store {
            ctx.credentials.forget(&ctx.server)?;
        }
        Ok(((), String::new()))
    })
}

pub fn whoami(ctx: &Context, json: bool) -> anyhow::Result<()> {
    let user = ctx.client()?.whoami()?;
    if json {
        print_json(&user)
    } else {
        println!("{}", user.username);
        Ok(())
    }
}

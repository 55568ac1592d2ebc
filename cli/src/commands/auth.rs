//! `login`, `logout`, `whoami`.

use anyhow::{Context as _, bail};
use clap::Args;
use dialoguer::{Input, Password};
use paas_api::ErrorCode;
use paas_api::types::LoginRequest;

use super::{Context, TokenSource, interactive, read_secret_from_stdin};
use crate::JsonArg;
use crate::client::{Client, ClientError};
use crate::config::normalize_server;
use crate::output::{action, print_json};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Server URL [default: PAAS_SERVER, the last server, or http://127.0.0.1:8750]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// Username [prompted for on a terminal]
    #[arg(long, short = 'u', value_name = "USER")]
    pub username: Option<String>,
    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Debug, Args)]
pub struct WhoamiArgs {
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn login(ctx: &mut Context, args: LoginArgs) -> anyhow::Result<()> {
    let LoginArgs {
        server,
        username,
        password_stdin,
    } = args;
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

    if let Some(warning) = cleartext_warning(&server) {
        eprintln!("{warning}");
    }
    let response = Client::new(&server, None)?.login(&LoginRequest {
        username: username.trim().to_owned(),
        password,
    })?;
    ctx.settings.server = Some(server.clone());
    ctx.settings.username = Some(response.user.username.to_string());
    ctx.settings.save(&ctx.config_dir)?;
    ctx.credentials.save(&server, &response.token)?;
    println!("Logged in as {}", response.user.username);
    Ok(())
}

/// One line for a login to a plain `http://` server that is not on this machine: the password
/// (and then the token) would cross the network unencrypted.
fn cleartext_warning(server: &str) -> Option<String> {
    let url = reqwest::Url::parse(server).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str()?;
    let loopback = match host.trim_start_matches('[').trim_end_matches(']').parse() {
        Ok(std::net::IpAddr::V4(ip)) => ip.is_loopback(),
        Ok(std::net::IpAddr::V6(ip)) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    };
    (!loopback).then(|| {
        format!(
            "warning: {server} is plain http: your password and token cross the network unencrypted; use https://"
        )
    })
}

pub fn logout(ctx: &mut Context) -> anyhow::Result<()> {
    let Some((token, source)) = ctx.token()? else {
        // As `heroku logout`: the wanted state holds already, so it is no failure.
        eprintln!("Not logged in to {}.", ctx.server);
        return Ok(());
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

pub fn whoami(ctx: &Context, WhoamiArgs { json }: &WhoamiArgs) -> anyhow::Result<()> {
    let json = json.json;
    let user = ctx.client()?.whoami()?;
    if json {
        print_json(&user)
    } else {
        println!("{}", user.username);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_off_this_machine_is_warned_about() {
        for remote in [
            "http://paas.example.com",
            "http://10.0.0.5:8750",
            "http://[2001:db8::1]:8750",
        ] {
            let warning = cleartext_warning(remote).expect(remote);
            assert!(warning.starts_with("warning: "), "{warning}");
            assert!(!warning.contains('\n'));
        }
        for fine in [
            "https://paas.example.com",
            "http://127.0.0.1:8750",
            "http://127.0.0.2:8750",
            "http://localhost:8750",
            "http://api.localhost",
            "http://[::1]:8750",
        ] {
            assert_eq!(cleartext_warning(fine), None, "{fine}");
        }
    }
}

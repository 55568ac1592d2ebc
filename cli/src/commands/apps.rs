//! `apps`, `apps:create`, `apps:info`, `apps:destroy`, `git:remote`, `git:clone`.

use anyhow::bail;
use clap::Args;
use dialoguer::Input;
use paas_api::AppName;
use paas_api::addons::AddonName;
use paas_api::types::{App, CreateAppRequest};

use super::{Context, interactive};
use crate::git::{self, RemoteChange};
use crate::output::{
    Style, action, key_values, print_json, stdout_is_terminal, table, tenant_text, timestamp,
    word_list,
};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Name of the app [default: the server picks one]
    pub name: Option<String>,
    /// Git remote to add
    #[arg(short, long, default_value = git::DEFAULT_REMOTE)]
    pub remote: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// App to destroy (same as -a)
    #[arg(value_name = "NAME", conflicts_with = "app")]
    pub name: Option<String>,
    #[command(flatten)]
    pub app: AppArg,
    /// Skip the prompt by repeating the app's name
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// The app's add-ons, comma-separated: they are destroyed with it, their data too
    #[arg(long, value_name = "NAMES", value_delimiter = ',')]
    pub confirm_addons: Vec<String>,
}

#[derive(Debug, Args)]
pub struct GitRemoteArgs {
    /// App the remote points at [default: the app of the `paas` git remote]
    #[arg(short, long, value_name = "NAME")]
    pub app: Option<String>,
    /// Git remote to set
    #[arg(short, long, default_value = git::DEFAULT_REMOTE)]
    pub remote: String,
}

#[derive(Debug, Args)]
pub struct GitCloneArgs {
    /// App whose repository to clone
    #[arg(short, long, value_name = "NAME")]
    pub app: String,
    /// Directory to clone into [default: the app's name]
    pub directory: Option<std::path::PathBuf>,
    /// Name of the clone's remote
    #[arg(short, long, default_value = git::DEFAULT_REMOTE)]
    pub remote: String,
}

pub fn list(ctx: &Context, ListArgs { json }: &ListArgs) -> anyhow::Result<()> {
    let json = json.json;
    let client = ctx.client()?;
    let mut apps = client.apps()?;
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        return print_json(&apps);
    }
    let me = client.whoami()?.username;
    print!("{}", render_list(&me, &apps, Style::stdout()));
    Ok(())
}

/// Heroku's layout: your apps, then the ones you collaborate on with their owners.
fn render_list(me: &str, apps: &[App], style: Style) -> String {
    if apps.is_empty() {
        return "You have no apps.\n".to_owned();
    }
    let (own, others): (Vec<&App>, Vec<&App>) = apps.iter().partition(|a| a.owner == me);
    let mut out = String::new();
    if !own.is_empty() {
        out.push_str(&style.header(&format!("{me} Apps")));
        out.push('\n');
        for app in &own {
            out.push_str(&app.name);
            out.push('\n');
        }
    }
    if !others.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&style.header("Collaborated Apps"));
        out.push('\n');
        let rows: Vec<Vec<String>> = others
            .iter()
            .map(|a| vec![a.name.to_string(), a.owner.to_string()])
            .collect();
        out.push_str(&table(&rows));
    }
    out
}

pub fn create(ctx: &Context, CreateArgs { name, remote, json }: &CreateArgs) -> anyhow::Result<()> {
    let name: Option<AppName> = name.as_deref().map(str::parse).transpose()?;
    let json = json.json;
    let in_repository = git::inside_repository();
    if in_repository
        && let Some(current) =
            git::remote_url(remote).and_then(|url| git::app_from_remote_url(&url))
        && name.as_ref() != Some(&current)
    {
        bail!(
            "The '{remote}' git remote already points at {current}. Name another remote with --remote NAME, or repoint it with `paas git:remote -a APP -r {remote}`. Nothing was created."
        );
    }
    let client = ctx.client()?;
    let err_style = Style::stderr();
    let message = match &name {
        Some(name) => format!("Creating {}", err_style.app(name)),
        None => "Creating app".to_owned(),
    };
    let app = action(&message, || {
        let app = client.create_app(&CreateAppRequest { name: name.clone() })?;
        let suffix = if name.is_none() {
            format!(", {}", err_style.app(&app.name))
        } else {
            String::new()
        };
        Ok((app, suffix))
    })?;
    if in_repository {
        let change = git::set_remote(remote, &app.git_url)?;
        if change != RemoteChange::Unchanged {
            eprintln!("set git remote {remote} to {}", app.git_url);
        }
    }
    if json {
        print_json(&app)
    } else {
        println!("{} | {}", app.web_url, app.git_url);
        Ok(())
    }
}

pub fn info(ctx: &Context, InfoArgs { app, json }: &InfoArgs) -> anyhow::Result<()> {
    let json = json.json;
    let name = ctx.app(app)?;
    let mut app = ctx.client()?.app(&name)?;
    if json {
        print_json(&app)
    } else {
        if let Some(deploy) = app.last_deploy.as_mut() {
            deploy.description =
                tenant_text(&deploy.description, stdout_is_terminal()).into_owned();
        }
        print!("{}", render_info(&app, Style::stdout()));
        Ok(())
    }
}

fn render_info(app: &App, style: Style) -> String {
    let release = app
        .current_release
        .map(|v| format!("v{v}"))
        .unwrap_or_else(|| "none".to_owned());
    let created = timestamp(app.created_at);
    let dynos = if app.formation.is_empty() {
        "none".to_owned()
    } else {
        app.formation
            .iter()
            .map(|(process, count)| format!("{process}: {count}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let domains = if app.domains.is_empty() {
        "none".to_owned()
    } else {
        app.domains.join("\n")
    };
    let last_deploy = app
        .last_deploy
        .as_ref()
        .map(|deploy| {
            format!(
                "v{} {} by {} at {}",
                deploy.version,
                deploy.description,
                deploy.user,
                timestamp(deploy.created_at)
            )
        })
        .unwrap_or_else(|| "never".to_owned());
    format!(
        "{}\n{}",
        style.header(&app.name),
        key_values(&[
            ("Created", created.as_str()),
            ("Deploy Branch", &app.deploy_branch),
            ("Domains", &domains),
            ("Dynos", &dynos),
            ("Git URL", &app.git_url),
            ("Last Deploy", &last_deploy),
            ("Owner", &app.owner),
            ("Release", &release),
            ("Web URL", &app.web_url),
        ])
    )
}

pub fn destroy(
    ctx: &Context,
    DestroyArgs {
        name,
        app,
        confirm,
        confirm_addons,
    }: &DestroyArgs,
) -> anyhow::Result<()> {
    let app = AppArg {
        app: name.clone().or_else(|| app.app.clone()),
        remote: app.remote.clone(),
    };
    let name = ctx.app(&app)?;
    let err_style = Style::stderr();
    let client = ctx.client()?;
    let addons: Vec<AddonName> = client
        .addons(&name)?
        .into_iter()
        .filter(|addon| addon.app == name)
        .map(|addon| addon.name)
        .collect();
    let unconfirmed: Vec<String> = addons
        .iter()
        .filter(|addon| !confirm_addons.iter().any(|c| c == addon.as_str()))
        .map(|addon| addon.to_string())
        .collect();
    if !unconfirmed.is_empty() {
        bail!(
            "Destroying {name} also destroys its add-ons {} and their data. Re-run with --confirm-addons {}. Nothing was destroyed.",
            word_list(&unconfirmed),
            unconfirmed.join(",")
        );
    }
    match confirm {
        Some(confirm) if name == confirm.as_str() => {}
        Some(confirm) => {
            bail!("Confirmation {confirm:?} did not match {name:?}. Nothing was destroyed.")
        }
        None if interactive() => {
            eprintln!(
                " ▸    WARNING: This will permanently delete {} with its repository and config.",
                err_style.app(&name)
            );
            eprintln!(" ▸    To proceed, type {name} or re-run this command with --confirm {name}");
            let typed: String = Input::new()
                .with_prompt(format!("Type {name} to confirm"))
                .allow_empty(true)
                .interact_text()?;
            if name != typed.trim() {
                bail!("Confirmation did not match {name:?}. Nothing was destroyed.");
            }
        }
        None => bail!(
            "Destroying {name} needs confirmation and there is no terminal to ask on. Re-run with --confirm {name}."
        ),
    }
    // Asked first: once the app is gone, so is the list.
    let volumes = client.volumes(&name)?;
    action(&format!("Destroying {}", err_style.app(&name)), || {
        client.destroy_app(&name, &addons)?;
        Ok(((), String::new()))
    })?;
    if !addons.is_empty() {
        let names: Vec<String> = addons.iter().map(ToString::to_string).collect();
        eprintln!("removed add-ons {} and their data", word_list(&names));
    }
    if !volumes.is_empty() {
        let names: Vec<String> = volumes.iter().map(|v| v.name.to_string()).collect();
        eprintln!("removed volumes {} and their files", names.join(", "));
    }
    let remote_points_here = git::remote_url(git::DEFAULT_REMOTE)
        .and_then(|url| git::app_from_remote_url(&url))
        .is_some_and(|app| app == name);
    if remote_points_here {
        git::remove_remote(git::DEFAULT_REMOTE)?;
        eprintln!("removed git remote {}", git::DEFAULT_REMOTE);
    }
    Ok(())
}

pub fn git_remote(
    ctx: &Context,
    GitRemoteArgs { app, remote }: &GitRemoteArgs,
) -> anyhow::Result<()> {
    if !git::inside_repository() {
        bail!("Not inside a git repository. Run `git init` first, or cd into your app.");
    }
    let name = ctx.app(&AppArg {
        app: app.clone(),
        remote: None,
    })?;
    let app = ctx.client()?.app(&name)?;
    git::set_remote(remote, &app.git_url)?;
    println!("set git remote {remote} to {}", app.git_url);
    Ok(())
}

pub fn git_clone(
    ctx: &Context,
    GitCloneArgs {
        app,
        directory,
        remote,
    }: &GitCloneArgs,
) -> anyhow::Result<()> {
    let name: AppName = app.parse()?;
    let app = ctx.client()?.app(&name)?;
    // Only a push that deployed updates the branch, so without one the repository is empty.
    if app.last_deploy.is_none() {
        bail!(
            "{name} has no code yet: nothing was deployed to it. Add its remote in your code's repository with `paas git:remote -a {name}` and push."
        );
    }
    let directory = directory.clone().unwrap_or_else(|| name.as_str().into());
    git::clone(&app.git_url, &directory, remote)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn app(name: &str, owner: &str) -> App {
        App {
            name: name.parse().unwrap(),
            owner: owner.parse().unwrap(),
            created_at: chrono::Utc.with_ymd_and_hms(2026, 11, 22, 1, 2, 3).unwrap(),
            git_url: format!("ssh://git@127.0.0.1:2222/{name}.git"),
            web_url: format!("http://{name}.paas.localhost"),
            deploy_branch: "main".into(),
            current_release: Some(3),
            formation: Default::default(),
            domains: Vec::new(),
            last_deploy: None,
        }
    }

    const PLAIN: Style = Style { colour: false };

    #[test]
    fn app_lists_split_own_and_collaborated_apps() {
        let apps = [app("api", "alice"), app("shop", "bob"), app("web", "alice")];
        assert_eq!(
            render_list("alice", &apps, PLAIN),
            "=== alice Apps\napi\nweb\n\n=== Collaborated Apps\nshop  bob\n"
        );
        assert_eq!(render_list("alice", &[], PLAIN), "You have no apps.\n");
        assert_eq!(
            render_list("carol", &apps[1..2], PLAIN),
            "=== Collaborated Apps\nshop  bob\n"
        );
    }

    #[test]
    fn app_info_is_a_header_and_aligned_fields() {
        assert_eq!(
            render_info(&app("web", "alice"), PLAIN),
            "=== web\n\
             Created:       2026/11/22 01:02:03 UTC\n\
             Deploy Branch: main\n\
             Domains:       none\n\
             Dynos:         none\n\
             Git URL:       ssh://git@127.0.0.1:2222/web.git\n\
             Last Deploy:   never\n\
             Owner:         alice\n\
             Release:       v3\n\
             Web URL:       http://web.paas.localhost\n"
        );
        let mut scaled = app("web", "alice");
        scaled.formation = [("web".parse().unwrap(), 2), ("worker".parse().unwrap(), 1)].into();
        assert!(
            render_info(&scaled, PLAIN).contains("\nDynos:         web: 2, worker: 1\n"),
            "{}",
            render_info(&scaled, PLAIN)
        );
    }
}

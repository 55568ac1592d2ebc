//! `addons`, `addons:create`, `addons:info`, `addons:attach`, `addons:detach`,
//! `addons:destroy` (Heroku's add-ons, with Postgres and Redis run by paas itself): managed
//! services whose URL an app gets as a config var (`DATABASE_URL`, `REDIS_URL`, `<AS>_URL`).
//! Creating, attaching and detaching set or unset that var through a release.

use anyhow::bail;
use clap::Args;
use paas_api::addons::{
    Addon, AddonChange, AddonKind, AddonName, AttachAddon, Attachment, AttachmentName, CreateAddon,
};

use super::Context;
use crate::output::{Style, action, key_values, print_json, table};
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// What to run: postgres or redis
    pub kind: String,
    /// The add-on's name, unique among your add-ons [default: KIND-<random>]
    #[arg(long)]
    pub name: Option<String>,
    /// The attachment's name: DATABASE sets DATABASE_URL [default: DATABASE for postgres,
    /// REDIS for redis]
    #[arg(long = "as", value_name = "ATTACHMENT")]
    pub attachment: Option<String>,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The add-on
    pub name: String,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AttachArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The add-on, one of the same owner's
    pub name: String,
    /// The attachment's name [default: the kind's, DATABASE or REDIS]
    #[arg(long = "as", value_name = "ATTACHMENT")]
    pub attachment: Option<String>,
}

#[derive(Debug, Args)]
pub struct DetachArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The add-on
    pub name: String,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The add-on to destroy, with all its data
    pub name: String,
    /// The add-on's name again, to confirm
    #[arg(long, value_name = "NAME")]
    pub confirm: Option<String>,
    /// Detach it from the other apps it is attached to first
    #[arg(long)]
    pub force: bool,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let addons = ctx.client()?.addons(&name)?;
    if json.json {
        return print_json(&addons);
    }
    print!("{}", render(&name, &addons));
    Ok(())
}

/// `7.9 MB`: decimal units, as Heroku's `pg:info` shows sizes.
pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn state_columns(addon: &Addon) -> [String; 3] {
    match &addon.status {
        Some(status) => [
            status.version.clone().unwrap_or_else(|| "-".to_owned()),
            status.state.to_string(),
            status
                .size_bytes
                .map(human_size)
                .unwrap_or_else(|| "-".to_owned()),
        ],
        None => ["-".to_owned(), "unknown".to_owned(), "-".to_owned()],
    }
}

/// One row per add-on, with the name the app knows it as.
fn render(app: &str, addons: &[Addon]) -> String {
    if addons.is_empty() {
        return format!("No add-ons for app {app}.\n");
    }
    let mut rows = vec![
        ["Add-on", "Kind", "Version", "State", "Size", "As"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for addon in addons {
        let [version, state, size] = state_columns(addon);
        let owned = if addon.app == app {
            addon.name.to_string()
        } else {
            format!("{} (from {})", addon.name, addon.app)
        };
        let attachment = addon
            .attachments
            .iter()
            .find(|attachment| attachment.app == app)
            .map(|attachment| attachment.name.to_string())
            .unwrap_or_default();
        rows.push(vec![
            owned,
            addon.kind.to_string(),
            version,
            state,
            size,
            attachment,
        ]);
    }
    table(&rows)
}

/// ", v5", or what happens without a running release.
fn suffix(release: Option<u32>) -> String {
    match release {
        Some(version) => format!(", v{version}"),
        None => ", effective on the first deploy".to_owned(),
    }
}

/// Heroku's second line, after the change itself.
fn report_var(verb: &str, change: &AddonChange, app: &str) {
    eprintln!(
        "{verb} {} and restarting {}... done{}",
        change.config_var,
        Style::stderr().app(app),
        suffix(change.release)
    );
}

pub fn create(
    ctx: &Context,
    CreateArgs {
        app,
        kind,
        name,
        attachment,
    }: &CreateArgs,
) -> anyhow::Result<()> {
    let request = CreateAddon {
        kind: kind.parse::<AddonKind>()?,
        name: name.as_deref().map(str::parse).transpose()?,
        attachment: attachment.as_deref().map(str::parse).transpose()?,
    };
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Creating {} on {}", request.kind, Style::stderr().app(&app));
    let change = crate::progress::action(&message, |on_progress| {
        Ok((
            client.create_addon(&app, &request, on_progress)?,
            String::new(),
        ))
    })?;
    report_var("Setting", &change, &app);
    println!("Created {} as {}", change.addon, change.config_var);
    Ok(())
}

pub fn info(ctx: &Context, InfoArgs { app, name, json }: &InfoArgs) -> anyhow::Result<()> {
    let addon_name: AddonName = name.parse()?;
    let app = ctx.app(app)?;
    let addon = ctx.client()?.addon(&app, &addon_name)?;
    if json.json {
        return print_json(&addon);
    }
    print!("{}", render_info(&addon, Style::stdout()));
    Ok(())
}

/// `app::NAME` of each attachment, comma-separated, as `addons:info` and `pg:info` show them.
pub(super) fn attachment_list(attachments: &[Attachment]) -> String {
    attachments
        .iter()
        .map(|attachment| format!("{}::{}", attachment.app, attachment.name))
        .collect::<Vec<_>>()
        .join(", ")
}

fn render_info(addon: &Addon, style: Style) -> String {
    let [version, state, size] = state_columns(addon);
    format!(
        "{}\n{}",
        style.header(&addon.name),
        key_values(&[
            ("Kind", addon.kind.to_string()),
            ("App", addon.app.to_string()),
            ("Attachments", attachment_list(&addon.attachments)),
            ("State", state),
            ("Version", version),
            ("Size", size),
        ])
    )
}

pub fn attach(
    ctx: &Context,
    AttachArgs {
        app,
        name,
        attachment,
    }: &AttachArgs,
) -> anyhow::Result<()> {
    let addon: AddonName = name.parse()?;
    let request = AttachAddon {
        attachment: attachment
            .as_deref()
            .map(str::parse::<AttachmentName>)
            .transpose()?,
    };
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Attaching {addon} to {}", Style::stderr().app(&app));
    let change = action(&message, || {
        Ok((client.attach_addon(&app, &addon, &request)?, String::new()))
    })?;
    report_var("Setting", &change, &app);
    Ok(())
}

pub fn detach(ctx: &Context, DetachArgs { app, name }: &DetachArgs) -> anyhow::Result<()> {
    let addon: AddonName = name.parse()?;
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Detaching {addon} from {}", Style::stderr().app(&app));
    let change = action(&message, || {
        Ok((client.detach_addon(&app, &addon)?, String::new()))
    })?;
    report_var("Unsetting", &change, &app);
    Ok(())
}

pub fn destroy(
    ctx: &Context,
    DestroyArgs {
        app,
        name,
        confirm,
        force,
    }: &DestroyArgs,
) -> anyhow::Result<()> {
    let addon: AddonName = name.parse()?;
    match confirm {
        Some(confirm) if addon == confirm.as_str() => {}
        Some(confirm) => {
            bail!("Confirmation {confirm:?} did not match {addon:?}. Nothing was destroyed.")
        }
        None => bail!(
            "Destroying {addon} deletes all its data. Re-run with --confirm {addon}. Nothing was destroyed."
        ),
    }
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Destroying {addon} on {}", Style::stderr().app(&app));
    action(&message, || {
        client.destroy_addon(&app, &addon, *force)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use paas_api::addons::{Attachment, ServiceState, ServiceStatus};

    use super::*;

    fn addon(
        name: &str,
        app: &str,
        attachments: &[(&str, &str)],
        status: Option<ServiceStatus>,
    ) -> Addon {
        Addon {
            name: name.parse().unwrap(),
            kind: AddonKind::Postgres,
            app: app.parse().unwrap(),
            attachments: attachments
                .iter()
                .map(|(app, name)| Attachment {
                    app: app.parse().unwrap(),
                    name: name.parse().unwrap(),
                })
                .collect(),
            status,
        }
    }

    #[test]
    fn the_list_shows_version_state_size_and_the_apps_attachment() {
        let up = ServiceStatus {
            state: ServiceState::Available,
            version: Some("15.10".to_owned()),
            size_bytes: Some(7_900_000),
        };
        let addons = [
            addon("db", "web", &[("web", "DATABASE")], Some(up)),
            addon(
                "shared",
                "api",
                &[("api", "DATABASE"), ("web", "MAIN")],
                None,
            ),
        ];
        assert_eq!(
            render("web", &addons),
            "Add-on             Kind      Version  State      Size    As\n\
             db                 postgres  15.10    available  7.9 MB  DATABASE\n\
             shared (from api)  postgres  -        unknown    -       MAIN\n"
        );
        assert_eq!(render("web", &[]), "No add-ons for app web.\n");
    }

    #[test]
    fn sizes_are_decimal_like_herokus() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(7_900_000), "7.9 MB");
        assert_eq!(human_size(1_500_000_000), "1.5 GB");
    }
}

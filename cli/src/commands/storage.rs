//! `storage`, `storage:mount`, `storage:unmount`, `storage:destroy` (Dokku's storage plugin,
//! with named volumes only): the app's persistent volumes and where its containers mount
//! them. A mount or an unmount makes a release and rolls it out; a volume keeps its files
//! until `storage:destroy --confirm APP` or `apps:destroy`.

use anyhow::bail;
use clap::Args;
use paas_api::storage::{Mount, Volume, VolumeName};

use super::Context;
use crate::output::{Style, action, print_json, table};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct MountArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// NAME:/path: the app's volume NAME (made on first use) at /path in every container
    #[arg(value_name = "NAME:/PATH")]
    pub mount: String,
}

#[derive(Debug, Args)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The volume to destroy, with every file in it
    pub volume: String,
    /// The app's name, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let volumes = ctx.client()?.volumes(&name)?;
    if json.json {
        return print_json(&volumes);
    }
    print!("{}", render(&name, &volumes, Style::stdout()));
    Ok(())
}

/// One row per mount, and one per volume that is mounted nowhere.
fn render(app: &str, volumes: &[Volume], style: Style) -> String {
    if volumes.is_empty() {
        return format!("{app} has no volumes.\n");
    }
    let rows: Vec<Vec<String>> = volumes
        .iter()
        .flat_map(|volume| {
            let name = volume.name.to_string();
            if volume.paths.is_empty() {
                return vec![vec![name, "(not mounted)".to_owned()]];
            }
            volume
                .paths
                .iter()
                .map(|path| vec![name.clone(), path.to_string()])
                .collect()
        })
        .collect();
    format!(
        "{}\n{}",
        style.header(&format!("{} volumes", style.app(app))),
        table(&rows)
    )
}

pub fn mount(ctx: &Context, MountArgs { app, mount }: &MountArgs) -> anyhow::Result<()> {
    let mount: Mount = mount.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!(
        "Mounting {} at {} in {}",
        mount.name,
        mount.path,
        Style::stderr().app(&name)
    );
    progress::action(&message, |on_progress| {
        let change = client.mount(&name, &mount, on_progress)?;
        Ok(((), suffix(change.release)))
    })
}

pub fn unmount(ctx: &Context, MountArgs { app, mount }: &MountArgs) -> anyhow::Result<()> {
    let mount: Mount = mount.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!(
        "Unmounting {} from {} in {} (its files stay)",
        mount.name,
        mount.path,
        Style::stderr().app(&name)
    );
    progress::action(&message, |on_progress| {
        let change = client.unmount(&name, &mount, on_progress)?;
        Ok(((), suffix(change.release)))
    })
}

fn suffix(release: Option<u32>) -> String {
    match release {
        Some(version) => format!(", v{version}"),
        None => ", effective on the first deploy".to_owned(),
    }
}

pub fn destroy(
    ctx: &Context,
    DestroyArgs {
        app,
        volume,
        confirm,
    }: &DestroyArgs,
) -> anyhow::Result<()> {
    let volume: VolumeName = volume.parse()?;
    let name = ctx.app(app)?;
    match confirm {
        Some(confirm) if name == confirm.as_str() => {}
        Some(confirm) => {
            bail!("Confirmation {confirm:?} did not match {name:?}. Nothing was destroyed.")
        }
        None => bail!(
            "Destroying volume {volume} deletes its files. Re-run with --confirm {name}. Nothing was destroyed."
        ),
    }
    let client = ctx.client()?;
    let message = format!(
        "Destroying volume {volume} of {}",
        Style::stderr().app(&name)
    );
    action(&message, || {
        client.destroy_volume(&name, &volume)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volumes_list_one_row_per_mount() {
        let volumes = [
            Volume {
                name: "data".parse().unwrap(),
                paths: vec!["/app/data".parse().unwrap(), "/srv/x".parse().unwrap()],
            },
            Volume {
                name: "old".parse().unwrap(),
                paths: Vec::new(),
            },
        ];
        assert_eq!(
            render("hello", &volumes, Style { colour: false }),
            "=== ⬢ hello volumes\n\
             data  /app/data\n\
             data  /srv/x\n\
             old   (not mounted)\n"
        );
        assert_eq!(
            render("hello", &[], Style { colour: false }),
            "hello has no volumes.\n"
        );
    }
}

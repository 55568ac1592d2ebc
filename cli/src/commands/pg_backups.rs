//! `pg:backups`, `pg:backups:capture`, `pg:backups:restore`, `pg:backups:download`,
//! `pg:backups:delete` (Heroku's PG Backups): captures of a Postgres add-on's database as
//! `pg_dump` custom-format files kept on the server, numbered `b001`, `b002`, … per add-on.
//! Without a NAME a command takes the app's Postgres attached as DATABASE, else its only
//! one. A backup of another add-on of the same owner is named `ADDON::bNNN`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::Args;
use paas_api::AppName;
use paas_api::addons::{AddonKind, AddonName};
use paas_api::backups::{Backup, BackupRef, RestoreRequest};

use super::Context;
use super::addon_console::choose;
use super::addons::human_size;
use crate::client::Client;
use crate::output::{Style, action, print_json, table, timestamp};
use crate::{AppArg, JsonArg};

/// Where a download goes unless `-o` says otherwise: Heroku's name.
const DEFAULT_DOWNLOAD: &str = "latest.dump";

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Only this Postgres add-on's backups [default: every Postgres attached to the app]
    pub name: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct CaptureArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The Postgres add-on [default: the app's DATABASE]
    pub name: Option<String>,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The backup to load: bNNN, or ADDON::bNNN for another add-on's [default: the newest
    /// completed backup of NAME]
    pub backup: Option<String>,
    /// The Postgres add-on whose data is replaced [default: the app's DATABASE]
    pub name: Option<String>,
    /// The app's name, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The backup: bNNN (of the app's DATABASE), or ADDON::bNNN [default: the newest
    /// completed backup of the app's DATABASE]
    pub backup: Option<String>,
    /// The file to write the dump to
    #[arg(short, long, value_name = "FILE", default_value = DEFAULT_DOWNLOAD)]
    pub output: PathBuf,
    /// Overwrite FILE if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The backup: bNNN (of the app's DATABASE), or ADDON::bNNN
    pub backup: String,
    /// The app's name, to confirm
    #[arg(long, value_name = "APP")]
    pub confirm: Option<String>,
}

/// The Postgres add-ons attached to `app`.
fn postgres_addons(client: &Client, app: &AppName) -> anyhow::Result<Vec<AddonName>> {
    Ok(client
        .addons(app)?
        .into_iter()
        .filter(|addon| addon.kind == AddonKind::Postgres)
        .map(|addon| addon.name)
        .collect())
}

/// NAME if given, else the app's default Postgres; `command` is named in the hint to name one.
fn addon_or_default(
    client: &Client,
    app: &AppName,
    name: Option<AddonName>,
    command: &str,
) -> anyhow::Result<AddonName> {
    choose(
        client,
        app,
        name.as_ref().map(AddonName::as_str),
        AddonKind::Postgres,
        command,
    )
}

pub fn list(ctx: &Context, ListArgs { app, name, json }: &ListArgs) -> anyhow::Result<()> {
    let name: Option<AddonName> = name.as_deref().map(str::parse).transpose()?;
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let addons = match name {
        Some(name) => vec![name],
        None => postgres_addons(&client, &app)?,
    };
    let mut backups = Vec::new();
    for addon in &addons {
        backups.extend(client.backups(&app, addon)?);
    }
    if json.json {
        return print_json(&backups);
    }
    print!("{}", render(&app, &backups));
    Ok(())
}

/// One row per backup, as Heroku's `pg:backups` lists them.
fn render(app: &str, backups: &[Backup]) -> String {
    if backups.is_empty() {
        return format!("No backups. Capture one with: paas pg:backups:capture -a {app}\n");
    }
    let mut rows = vec![
        ["ID", "Created", "Size", "Status", "Add-on"]
            .map(str::to_owned)
            .to_vec(),
    ];
    for backup in backups {
        rows.push(vec![
            backup.id.to_string(),
            timestamp(backup.created_at),
            human_size(backup.size_bytes),
            backup.status.to_string(),
            backup.addon.to_string(),
        ]);
    }
    table(&rows)
}

pub fn capture(ctx: &Context, CaptureArgs { app, name }: &CaptureArgs) -> anyhow::Result<()> {
    let name: Option<AddonName> = name.as_deref().map(str::parse).transpose()?;
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let addon = addon_or_default(&client, &app, name, "pg:backups:capture")?;
    let message = format!("Capturing {addon} on {}", Style::stderr().app(&app));
    let backup = action(&message, || {
        Ok((client.capture_backup(&app, &addon)?, String::new()))
    })?;
    println!(
        "Backed up {addon} to {} ({})",
        backup.id,
        human_size(backup.size_bytes)
    );
    Ok(())
}

/// `[BACKUP] [NAME]`: a single word is the backup if it is spelled like one (`b` and digits,
/// or `ADDON::…`), else the add-on if it is a name, else a bad backup id.
fn restore_target(
    first: Option<&str>,
    second: Option<&str>,
) -> anyhow::Result<(Option<BackupRef>, Option<AddonName>)> {
    match (first, second) {
        (None, _) => Ok((None, None)),
        (Some(backup), Some(name)) => Ok((Some(backup.parse()?), Some(name.parse()?))),
        (Some(word), None) => {
            let spelled_as_backup = word.contains("::")
                || word.strip_prefix('b').is_some_and(|digits| {
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                });
            match word.parse::<AddonName>() {
                Ok(name) if !spelled_as_backup => Ok((None, Some(name))),
                _ => Ok((Some(word.parse()?), None)),
            }
        }
    }
}

/// Refuses a missing or wrong `--confirm APP` before anything is asked of the server.
fn check_confirm(confirm: Option<&str>, app: &AppName, what: &str) -> anyhow::Result<()> {
    match confirm {
        Some(confirm) if app == confirm => Ok(()),
        Some(confirm) => {
            bail!(
                "Confirmation {confirm:?} did not match {:?}. Nothing was changed.",
                app.as_str()
            )
        }
        None => bail!("{what} Re-run with --confirm {app}. Nothing was changed."),
    }
}

pub fn restore(
    ctx: &Context,
    RestoreArgs {
        app,
        backup,
        name,
        confirm,
    }: &RestoreArgs,
) -> anyhow::Result<()> {
    let (backup, name) = restore_target(backup.as_deref(), name.as_deref())?;
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let addon = addon_or_default(&client, &app, name, "pg:backups:restore")?;
    check_confirm(
        confirm.as_deref(),
        &app,
        &format!("Restoring replaces all data in {addon}."),
    )?;
    let which = backup
        .as_ref()
        .map_or_else(|| "the latest backup".to_owned(), BackupRef::to_string);
    let request = RestoreRequest {
        backup,
        confirm: confirm.clone(),
    };
    let message = format!(
        "Restoring {which} into {addon} on {}",
        Style::stderr().app(&app)
    );
    let restored = action(&message, || {
        Ok((
            client.restore_backup(&app, &addon, &request)?,
            String::new(),
        ))
    })?;
    println!(
        "Restored {}::{} into {}",
        restored.from, restored.backup, restored.into
    );
    Ok(())
}

/// The add-on and the backup a `[BACKUP]` names: its own add-on or the app's default one.
fn named_backup(
    client: &Client,
    app: &AppName,
    backup: BackupRef,
    command: &str,
) -> anyhow::Result<(AddonName, paas_api::backups::BackupId)> {
    let addon = addon_or_default(client, app, backup.addon, command)?;
    Ok((addon, backup.id))
}

pub fn download(
    ctx: &Context,
    DownloadArgs {
        app,
        backup,
        output,
        force,
    }: &DownloadArgs,
) -> anyhow::Result<()> {
    let backup: Option<BackupRef> = backup.as_deref().map(str::parse).transpose()?;
    if output.exists() && !force {
        bail!(
            "{} exists; choose another file with -o or overwrite it with --force.",
            output.display()
        );
    }
    let app = ctx.app(app)?;
    let client = ctx.client()?;
    let (addon, id) = match backup {
        Some(backup) => named_backup(&client, &app, backup, "pg:backups:download")?,
        None => {
            let addon = addon_or_default(&client, &app, None, "pg:backups:download")?;
            let backups = client.backups(&app, &addon)?;
            let Some(latest) = Backup::latest(&backups) else {
                bail!(
                    "{addon} has no completed backups; capture one with paas pg:backups:capture -a {app}."
                );
            };
            let id = latest.id.clone();
            (addon, id)
        }
    };
    let message = format!("Downloading {addon}::{id} to {}", output.display());
    let bytes = action(&message, || {
        let body = client.download_backup(&app, &addon, &id)?;
        Ok((write_atomically(output, body)?, String::new()))
    })?;
    println!("Wrote {} ({})", output.display(), human_size(bytes));
    Ok(())
}

/// Copies `body` into `path` through `path.partial`, renamed once whole; a failed copy
/// leaves `path` as it was. The bytes written.
fn write_atomically(path: &Path, mut body: impl std::io::Read) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = (|| {
        let mut file = File::create(&partial)?;
        let bytes = std::io::copy(&mut body, &mut file)?;
        file.flush()?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        Ok::<u64, std::io::Error>(bytes)
    })();
    written
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
        .with_context(|| format!("could not write {}", path.display()))
}

pub fn delete(
    ctx: &Context,
    DeleteArgs {
        app,
        backup,
        confirm,
    }: &DeleteArgs,
) -> anyhow::Result<()> {
    let backup: BackupRef = backup.parse()?;
    let app = ctx.app(app)?;
    check_confirm(
        confirm.as_deref(),
        &app,
        &format!("Deleting backup {backup} cannot be undone."),
    )?;
    let client = ctx.client()?;
    let (addon, id) = named_backup(&client, &app, backup, "pg:backups:delete")?;
    let message = format!("Deleting {addon}::{id} on {}", Style::stderr().app(&app));
    action(&message, || {
        client.delete_backup(&app, &addon, &id)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use paas_api::backups::BackupStatus;

    use super::*;

    fn backup(id: &str, addon: &str, size_bytes: u64, status: BackupStatus) -> Backup {
        Backup {
            id: id.parse().unwrap(),
            addon: addon.parse().unwrap(),
            created_at: Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap(),
            size_bytes,
            status,
        }
    }

    #[test]
    fn the_list_shows_id_time_size_status_and_add_on() {
        let backups = [
            backup("b001", "db", 7_900_000, BackupStatus::Completed),
            backup("b002", "db", 512, BackupStatus::Capturing),
            backup("b001", "reports", 1_500_000_000, BackupStatus::Completed),
        ];
        insta::assert_snapshot!("pg_backups_list", render("myapp", &backups));
        insta::assert_snapshot!("pg_backups_list_empty", render("myapp", &[]));
    }

    #[test]
    fn a_single_word_is_the_backup_if_it_reads_as_one() {
        let (backup, name) = restore_target(Some("b003"), None).unwrap();
        assert_eq!(backup.unwrap().to_string(), "b003");
        assert_eq!(name, None);
        let (backup, name) = restore_target(Some("db"), None).unwrap();
        assert_eq!((backup, name.unwrap().as_str()), (None, "db"));
        let (backup, name) = restore_target(Some("old::b001"), Some("db")).unwrap();
        assert_eq!(backup.unwrap().to_string(), "old::b001");
        assert_eq!(name.unwrap().as_str(), "db");
        for bad in ["../x", "b01", "db::x", "b1"] {
            let err = restore_target(Some(bad), None).unwrap_err().to_string();
            assert!(err.starts_with("invalid backup id"), "{bad}: {err}");
        }
        assert!(restore_target(Some("db"), Some("b001")).is_err());
    }

    #[test]
    fn a_restore_or_delete_needs_the_app_name() {
        let app: AppName = "myapp".parse().unwrap();
        assert!(check_confirm(Some("myapp"), &app, "x").is_ok());
        let err = check_confirm(Some("other"), &app, "x")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            r#"Confirmation "other" did not match "myapp". Nothing was changed."#
        );
        let err = check_confirm(None, &app, "Restoring replaces all data in db.")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "Restoring replaces all data in db. Re-run with --confirm myapp. Nothing was changed."
        );
    }

    #[test]
    fn a_download_replaces_the_file_only_once_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("latest.dump");
        std::fs::write(&path, "old").unwrap();
        assert_eq!(write_atomically(&path, &b"PGDMPnew"[..]).unwrap(), 8);
        assert_eq!(std::fs::read(&path).unwrap(), b"PGDMPnew");
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("the stream broke"))
            }
        }
        assert!(write_atomically(&path, Broken).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"PGDMPnew");
        assert!(!dir.path().join("latest.dump.partial").exists());
    }
}

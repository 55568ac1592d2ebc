//! `paas-gitd init`: creates a data dir, or completes one with `--force` without wiping it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use russh::keys::ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use crate::auth;
use crate::config::{CONFIG_FILE, GitdConfig};
use crate::store::{DB_FILE, Store};

pub const HOST_KEY_FILE: &str = "ssh_host_ed25519_key";

#[derive(clap::Args)]
pub struct InitArgs {
    #[arg(long, env = "PAAS_DATA")]
    pub data: PathBuf,
    /// Name of the first admin user.
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    /// File holding the admin's password; without it a password is generated and printed once.
    #[arg(long)]
    pub admin_password_file: Option<PathBuf>,
    /// Complete an existing data dir: keeps the database, config and host key, applies
    /// migrations, adds what is missing. Never deletes anything.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: InitArgs) -> anyhow::Result<()> {
    let admin: paas_api::Username = args.admin_user.parse()?;
    let password = match &args.admin_password_file {
        Some(path) => Some(read_password_file(path)?),
        None => None,
    };
    let data = &args.data;
    let existing = data.join(DB_FILE).exists() || data.join(CONFIG_FILE).exists();
    if existing && !args.force {
        bail!(
            "{} already holds a paas data dir; pass --force to complete it (nothing is deleted)",
            data.display()
        );
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .with_context(|| format!("cannot create {}", data.display()))?;
    std::fs::create_dir_all(data.join("repos"))?;

    if !GitdConfig::path(data).exists() {
        write_new_file(
            &GitdConfig::path(data),
            &format!(
                "# paas-gitd settings; see docs/operations.md.\n{}",
                toml::to_string_pretty(&GitdConfig::default())?
            ),
            0o600,
        )?;
        println!("Wrote {}", GitdConfig::path(data).display());
    }
    GitdConfig::load(data)?;

    let host_key_path = data.join(HOST_KEY_FILE);
    if !host_key_path.exists() {
        let key = PrivateKey::random(
            &mut argon2::password_hash::rand_core::OsRng,
            Algorithm::Ed25519,
        )
        .context("cannot generate the SSH host key")?;
        let pem = key.to_openssh(LineEnding::LF)?;
        write_new_file(&host_key_path, &pem, 0o600)?;
        println!(
            "Generated SSH host key {}",
            key.public_key().fingerprint(HashAlg::Sha256)
        );
    }

    let store = Store::open(data)?;
    let store = store.blocking();
    let existing_admin = store.user_by_name(&admin)?;
    match (existing_admin, password) {
        (None, password) => {
            let generated = password.is_none();
            let password = password.unwrap_or_else(auth::generate_password);
            let hash = auth::hash_password(&password);
            store.create_user(&admin, &hash, true)?;
            if generated {
                println!("Created admin user {admin} with password: {password}");
                println!("(shown once; log in with `paas login --username {admin}`)");
            } else {
                println!("Created admin user {admin}");
            }
        }
        (Some(_), Some(password)) => {
            let hash = auth::hash_password(&password);
            store.reset_admin(&admin, &hash)?;
            println!("Reset the password of admin user {admin}");
        }
        (Some(_), None) => println!("Admin user {admin} exists; left as it is"),
    }
    println!("Data dir ready: {}", data.display());
    Ok(())
}

fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    if password.chars().count() < crate::http::MIN_PASSWORD_CHARS {
        bail!(
            "the admin password in {} is shorter than {} characters",
            path.display(),
            crate::http::MIN_PASSWORD_CHARS
        );
    }
    Ok(password)
}

/// Creates `path` with `mode` from the first byte on: secrets are never briefly world-readable.
fn write_new_file(path: &Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

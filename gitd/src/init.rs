//! `paas-gitd init`: creates a data dir, or completes one with `--force` without wiping it.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

use crate::auth;
use crate::config::{CONFIG_FILE, ConfigError, GitdConfig};
use crate::store::{DB_FILE, OpenError, Store, StoreError};

/// Why `init` stopped; what it did before stays (it never deletes anything).
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(transparent)]
    AdminName(#[from] paas_api::ValidationError),
    #[error("cannot read {}: {source}", path.display())]
    ReadPassword {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the admin password in {} is shorter than {min} characters", path.display())]
    ShortPassword { path: PathBuf, min: usize },
    #[error("{} already holds a paas data dir; pass --force to complete it (nothing is deleted)", .0.display())]
    Exists(PathBuf),
    #[error("cannot create {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot generate the SSH host key: {0}")]
    HostKey(#[from] russh::keys::ssh_key::Error),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn create_error(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::Create {
        path: path.to_owned(),
        source,
    }
}

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

pub fn run(args: InitArgs) -> Result<(), InitError> {
    let admin: paas_api::Username = args.admin_user.parse()?;
    let password = match &args.admin_password_file {
        Some(path) => Some(read_password_file(path)?),
        None => None,
    };
    let data = &args.data;
    let existing = data.join(DB_FILE).exists() || data.join(CONFIG_FILE).exists();
    if existing && !args.force {
        return Err(InitError::Exists(data.clone()));
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(data)
        .map_err(create_error(data))?;
    let repos = data.join("repos");
    std::fs::create_dir_all(&repos).map_err(create_error(&repos))?;

    if !GitdConfig::path(data).exists() {
        write_new_file(
            &GitdConfig::path(data),
            &format!(
                "# paas-gitd settings; see docs/operations.md.\n{}",
                toml::to_string_pretty(&GitdConfig::default())
                    .expect("the default settings always serialize")
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
        )?;
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

fn read_password_file(path: &Path) -> Result<String, InitError> {
    let text = std::fs::read_to_string(path).map_err(|source| InitError::ReadPassword {
        path: path.to_owned(),
        source,
    })?;
    let password = text.trim_end_matches(['\n', '\r']).to_owned();
    if password.chars().count() < crate::http::MIN_PASSWORD_CHARS {
        return Err(InitError::ShortPassword {
            path: path.to_owned(),
            min: crate::http::MIN_PASSWORD_CHARS,
        });
    }
    Ok(password)
}

/// Creates `path` with `mode` from the first byte on: secrets are never briefly world-readable.
fn write_new_file(path: &Path, contents: &str, mode: u32) -> Result<(), InitError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(create_error(path))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(create_error(path))
}

//! The CLI's own settings: `$XDG_CONFIG_HOME/paas/config.toml` (default `~/.config/paas`)
//! holds the server URL and the username of the last login. Tokens never go here (see
//! `credentials`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// The server used when neither `--server`, `PAAS_SERVER` nor the config file names one.
pub const DEFAULT_SERVER: &str = "http://127.0.0.1:8750";

/// The directory holding `config.toml` and, without a keyring, `credentials.toml`.
pub fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(xdg) = std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        let xdg = PathBuf::from(xdg);
        if xdg.is_absolute() {
            return Ok(xdg.join("paas"));
        }
    }
    match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".config").join("paas")),
        None => bail!("neither XDG_CONFIG_HOME nor HOME is set; cannot locate the paas config"),
    }
}

/// Creates the config directory readable by its owner only.
pub fn ensure_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create {}", dir.display()))
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    pub server: Option<String>,
    pub username: Option<String>,
}

impl Settings {
    fn path(dir: &Path) -> PathBuf {
        dir.join("config.toml")
    }

    pub fn load(dir: &Path) -> anyhow::Result<Settings> {
        let path = Settings::path(dir);
        match fs::read_to_string(&path) {
            Ok(text) => {
                toml::from_str(&text).with_context(|| format!("cannot parse {}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }

    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        ensure_private_dir(dir)?;
        let path = Settings::path(dir);
        let text = toml::to_string(self)?;
        let tmp = dir.join("config.toml.tmp");
        fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))
    }
}

/// Normalises a server URL (`http(s)://host[:port][/prefix]`, no trailing slash) or explains
/// what is wrong with it.
pub fn normalize_server(raw: &str) -> anyhow::Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(trimmed)
        .with_context(|| format!("invalid server URL {raw:?}: expected http(s)://HOST[:PORT]"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        bail!("invalid server URL {raw:?}: expected http(s)://HOST[:PORT]");
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().join("paas");
        assert_eq!(Settings::load(&dir).unwrap(), Settings::default());
        let settings = Settings {
            server: Some("http://127.0.0.1:9000".into()),
            username: Some("alice".into()),
        };
        settings.save(&dir).unwrap();
        assert_eq!(Settings::load(&dir).unwrap(), settings);
    }

    #[test]
    fn server_urls_are_normalised_or_rejected() {
        assert_eq!(
            normalize_server("http://127.0.0.1:8750/").unwrap(),
            "http://127.0.0.1:8750"
        );
        assert_eq!(
            normalize_server("https://paas.example.com").unwrap(),
            "https://paas.example.com"
        );
        for bad in ["", "127.0.0.1:8750", "ftp://x", "http://"] {
            assert!(normalize_server(bad).is_err(), "{bad:?}");
        }
    }
}

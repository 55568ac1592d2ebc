//! `keys`, `keys:add`, `keys:remove`.
//!
//! `keys:add` proves possession of the key: it signs a challenge from the server with the
//! private key (`ssh-keygen -Y sign`), found beside the `.pub` file or held by ssh-agent.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context as _, bail};
use clap::Args;
use paas_api::types::{KeyChallenge, SshKey};

use super::Context;
use crate::JsonArg;
use crate::output::{Style, action, print_json, table};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Public key file
    pub path: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Key id or `SHA256:…` fingerprint (see `paas keys`)
    pub key: String,
}

/// The public keys `keys:add` looks for in `~/.ssh`, in this order.
const DEFAULT_KEY_FILES: [&str; 3] = ["id_ed25519.pub", "id_ecdsa.pub", "id_rsa.pub"];

pub fn list(ctx: &Context, ListArgs { json }: &ListArgs) -> anyhow::Result<()> {
    let json = json.json;
    let client = ctx.client()?;
    let keys = client.keys()?;
    if json {
        return print_json(&keys);
    }
    let me = client.whoami()?.username;
    print!("{}", render_keys(&me, &keys, Style::stdout()));
    Ok(())
}

fn render_keys(me: &str, keys: &[SshKey], style: Style) -> String {
    if keys.is_empty() {
        return "You have no SSH keys.\n".to_owned();
    }
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                k.id.to_string(),
                k.fingerprint.clone(),
                k.algorithm.clone(),
                k.comment.clone(),
            ]
        })
        .collect();
    format!("{}\n{}", style.header(&format!("{me} Keys")), table(&rows))
}

pub fn add(ctx: &Context, AddArgs { path }: &AddArgs) -> anyhow::Result<()> {
    let path = match path {
        Some(path) => path.clone(),
        None => default_key_file()?,
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.contains("PRIVATE KEY") {
        bail!(
            "{} is a private key; give the public key (the .pub file) instead.",
            path.display()
        );
    }
    let client = ctx.client()?;
    let challenge = client.key_challenge(text.trim())?;
    let signature = sign_challenge(&path, &challenge)?;
    let key = action(&format!("Uploading {} SSH key", path.display()), || {
        Ok((
            client.add_key(text.trim(), &challenge.challenge, &signature)?,
            String::new(),
        ))
    })?;
    println!("{}  {}  {}", key.fingerprint, key.algorithm, key.comment);
    Ok(())
}

/// The private key beside `public` (`id_ed25519` for `id_ed25519.pub`), if there is one.
fn private_key_beside(public: &Path) -> Option<PathBuf> {
    let private = public.with_extension("");
    (public.extension().is_some_and(|ext| ext == "pub") && private.is_file()).then_some(private)
}

/// Signs the challenge as an SSHSIG with the private key beside `public`, else through
/// ssh-agent (which `ssh-keygen -Y sign -f <public key>` asks).
fn sign_challenge(public: &Path, challenge: &KeyChallenge) -> anyhow::Result<String> {
    let signer = private_key_beside(public).unwrap_or_else(|| public.to_owned());
    let mut child = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", &challenge.namespace, "-f"])
        .arg(&signer)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("keys:add signs with ssh-keygen (OpenSSH), which could not be run")?;
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(challenge.challenge.as_bytes())
        .context("cannot hand the challenge to ssh-keygen")?;
    let out = child.wait_with_output().context("ssh-keygen failed")?;
    if !out.status.success() {
        let reason = String::from_utf8_lossy(&out.stderr);
        bail!(
            "cannot prove you hold the private key of {}: {}. Keep the private key beside the .pub file, or load it into ssh-agent (`ssh-add`).",
            public.display(),
            reason.trim().trim_end_matches('.')
        );
    }
    String::from_utf8(out.stdout).context("ssh-keygen printed a signature that is not text")
}

fn default_key_file() -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set; pass the key file's PATH")?;
    let ssh_dir = Path::new(&home).join(".ssh");
    DEFAULT_KEY_FILES
        .iter()
        .map(|name| ssh_dir.join(name))
        .find(|path| path.is_file())
        .with_context(|| {
            format!(
                "No public key found in {} (looked for {}). Pass a PATH or create one with `ssh-keygen -t ed25519`.",
                ssh_dir.display(),
                DEFAULT_KEY_FILES.join(", ")
            )
        })
}

pub fn remove(ctx: &Context, RemoveArgs { key }: &RemoveArgs) -> anyhow::Result<()> {
    let client = ctx.client()?;
    // Heroku's "Removing <key> SSH key" reads well for a fingerprint, not for an ID.
    let message = if key.bytes().all(|b| b.is_ascii_digit()) {
        format!("Removing SSH key {key}")
    } else {
        format!("Removing {key} SSH key")
    };
    action(&message, || {
        client.remove_key(key)?;
        Ok(((), String::new()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn keys_render_as_a_table_under_the_owner() {
        let key = SshKey {
            id: 7,
            fingerprint: "SHA256:abc".into(),
            algorithm: "ssh-ed25519".into(),
            comment: "alice@laptop".into(),
            created_at: chrono::Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        };
        assert_eq!(
            render_keys("alice", &[key], Style { colour: false }),
            "=== alice Keys\n7  SHA256:abc  ssh-ed25519  alice@laptop\n"
        );
        assert_eq!(
            render_keys("alice", &[], Style { colour: false }),
            "You have no SSH keys.\n"
        );
    }
}

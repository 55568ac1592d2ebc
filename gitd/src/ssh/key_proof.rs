//! Proof that whoever adds a public key holds its private key: a public key is public, so
//! without this anyone could register a victim's key first and lock its owner out. The server
//! issues a random challenge bound to the user; the client signs it as an SSHSIG
//! (`ssh-keygen -Y sign -n paas-keys`, which also works through ssh-agent) and the signature
//! is verified before the key is stored. Challenges are single-use, expire, and at most
//! [`MAX_PER_USER`] per user are outstanding, so their memory is bounded.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use russh::keys::ssh_key::{PublicKey, SshSig};

/// The SSHSIG namespace a key-possession signature must carry.
pub const NAMESPACE: &str = "paas-keys";
const TTL: Duration = Duration::from_secs(10 * 60);
const MAX_PER_USER: usize = 4;

#[derive(Default)]
pub struct KeyChallenges {
    outstanding: Mutex<HashMap<i64, VecDeque<(String, Instant)>>>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("The key challenge is unknown or expired; run `paas keys:add` again.")]
    UnknownChallenge,
    #[error("The signature is not an SSH signature (`ssh-keygen -Y sign` output): {0}.")]
    Unreadable(String),
    #[error(
        "The signature does not prove possession of this key: sign the challenge with its private key (`ssh-keygen -Y sign -n {NAMESPACE}`)."
    )]
    Mismatch,
}

impl KeyChallenges {
    /// A fresh challenge for `user_id`, replacing their oldest when too many are outstanding.
    pub fn issue(&self, user_id: i64) -> String {
        let challenge = format!(
            "paas-keys-challenge-{}",
            hex::encode(rand::random::<[u8; 32]>())
        );
        let now = Instant::now();
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        outstanding.retain(|_, issued| {
            issued.retain(|(_, at)| now.duration_since(*at) < TTL);
            !issued.is_empty()
        });
        let issued = outstanding.entry(user_id).or_default();
        if issued.len() >= MAX_PER_USER {
            issued.pop_front();
        }
        issued.push_back((challenge.clone(), now));
        challenge
    }

    /// Checks that `signature` is `key`'s SSHSIG over a challenge issued to `user_id`; the
    /// challenge is used up either way.
    pub fn verify(
        &self,
        user_id: i64,
        key: &PublicKey,
        challenge: &str,
        signature: &str,
    ) -> Result<(), ProofError> {
        self.take(user_id, challenge)?;
        let signature = SshSig::from_pem(signature.trim())
            .map_err(|e| ProofError::Unreadable(e.to_string()))?;
        key.verify(NAMESPACE, challenge.as_bytes(), &signature)
            .map_err(|_| ProofError::Mismatch)
    }

    fn take(&self, user_id: i64, challenge: &str) -> Result<(), ProofError> {
        let mut outstanding = self.outstanding.lock().unwrap_or_else(|p| p.into_inner());
        let issued = outstanding
            .get_mut(&user_id)
            .ok_or(ProofError::UnknownChallenge)?;
        let position = issued
            .iter()
            .position(|(c, _)| c == challenge)
            .ok_or(ProofError::UnknownChallenge)?;
        let (_, at) = issued.remove(position).expect("position is in range");
        if at.elapsed() >= TTL {
            return Err(ProofError::UnknownChallenge);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};

    use super::*;

    fn keygen(dir: &Path, kind: &str) -> (PathBuf, PublicKey) {
        let path = dir.join(kind);
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", kind, "-N", "", "-f"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success());
        let public = std::fs::read_to_string(path.with_extension("pub")).unwrap();
        (path, PublicKey::from_openssh(public.trim()).unwrap())
    }

    fn sign(key: &Path, namespace: &str, data: &str) -> String {
        let mut child = Command::new("ssh-keygen")
            .args(["-Y", "sign", "-n", namespace, "-f"])
            .arg(key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(data.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    }

    #[test]
    fn a_signature_by_the_private_key_proves_possession_once() {
        let dir = tempfile::tempdir().unwrap();
        let challenges = KeyChallenges::default();
        for kind in ["ed25519", "ecdsa", "rsa"] {
            let (private, public) = keygen(dir.path(), kind);
            let challenge = challenges.issue(1);
            let signature = sign(&private, NAMESPACE, &challenge);
            assert_eq!(
                challenges.verify(1, &public, &challenge, &signature),
                Ok(()),
                "{kind}"
            );
            assert_eq!(
                challenges.verify(1, &public, &challenge, &signature),
                Err(ProofError::UnknownChallenge),
                "{kind}: reused"
            );
        }
    }

    #[test]
    fn other_keys_users_namespaces_and_challenges_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let challenges = KeyChallenges::default();
        let (victim, victim_public) = keygen(dir.path(), "ed25519");
        let (mine, _) = keygen(dir.path(), "ecdsa");

        let challenge = challenges.issue(2);
        let by_other_key = sign(&mine, NAMESPACE, &challenge);
        assert_eq!(
            challenges.verify(2, &victim_public, &challenge, &by_other_key),
            Err(ProofError::Mismatch)
        );
        let challenge = challenges.issue(2);
        let other_namespace = sign(&victim, "file", &challenge);
        assert_eq!(
            challenges.verify(2, &victim_public, &challenge, &other_namespace),
            Err(ProofError::Mismatch)
        );
        // Issued to user 3, presented by user 2.
        let challenge = challenges.issue(3);
        let signature = sign(&victim, NAMESPACE, &challenge);
        assert_eq!(
            challenges.verify(2, &victim_public, &challenge, &signature),
            Err(ProofError::UnknownChallenge)
        );
        let made_up = "paas-keys-challenge-00";
        let signature = sign(&victim, NAMESPACE, made_up);
        assert_eq!(
            challenges.verify(3, &victim_public, made_up, &signature),
            Err(ProofError::UnknownChallenge)
        );
        let challenge = challenges.issue(3);
        assert!(matches!(
            challenges.verify(3, &victim_public, &challenge, "junk"),
            Err(ProofError::Unreadable(_))
        ));
    }

    #[test]
    fn outstanding_challenges_are_bounded_per_user() {
        let challenges = KeyChallenges::default();
        let first = challenges.issue(1);
        for _ in 0..MAX_PER_USER {
            challenges.issue(1);
        }
        assert_eq!(
            challenges.take(1, &first),
            Err(ProofError::UnknownChallenge)
        );
        assert_eq!(
            challenges.outstanding.lock().unwrap()[&1].len(),
            MAX_PER_USER
        );
    }
}

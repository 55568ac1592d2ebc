//! The caller's SSH public keys, which authenticate `git push`. A key is only added with
//! proof that the caller holds its private key (see [`crate::ssh::key_proof`]); removing one
//! ends the SSH sessions it opened.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use paas_api::ErrorCode;
use paas_api::types::{AddKeyRequest, KeyChallenge, KeyChallengeRequest, SshKey};
use russh::keys::ssh_key::{HashAlg, PublicKey};

use super::{ApiError, ApiResult, AuthUser, Json};
use crate::ssh::key_proof;
use crate::state::SharedState;
use crate::store::{NewKey, StoreError};

pub async fn list(
    State(state): State<SharedState>,
    auth: AuthUser,
) -> ApiResult<Json<Vec<SshKey>>> {
    Ok(Json(state.store.keys_of(auth.user.id).await?))
}

/// A challenge to sign with `request.public_key`'s private key; a malformed key is refused
/// here, before the client signs anything.
pub async fn challenge(
    State(state): State<SharedState>,
    auth: AuthUser,
    Json(request): Json<KeyChallengeRequest>,
) -> ApiResult<Json<KeyChallenge>> {
    parse_public_key(&request.public_key).map_err(ApiError::invalid)?;
    Ok(Json(KeyChallenge {
        challenge: state.key_challenges.issue(auth.user.id),
        namespace: key_proof::NAMESPACE.to_owned(),
    }))
}

/// A public key as typed into `keys:add`: one line of OpenSSH text.
pub struct ParsedKey {
    pub key: PublicKey,
    pub fingerprint: String,
    pub algorithm: String,
    pub public_key: String,
    pub comment: String,
}

pub fn parse_public_key(text: &str) -> Result<ParsedKey, String> {
    let line = text.trim();
    if line.is_empty() {
        return Err("The public key is empty.".into());
    }
    if line.lines().count() > 1 {
        return Err("Give exactly one public key (one line of OpenSSH text).".into());
    }
    if line.contains("PRIVATE KEY") {
        return Err("That is a private key; give the public one (the .pub file).".into());
    }
    let key = PublicKey::from_openssh(line)
        .map_err(|err| format!("Not a valid OpenSSH public key: {err}."))?;
    Ok(ParsedKey {
        key: key.clone(),
        fingerprint: key.fingerprint(HashAlg::Sha256).to_string(),
        algorithm: key.algorithm().as_str().to_owned(),
        public_key: key
            .to_openssh()
            .map_err(|err| format!("Not a valid OpenSSH public key: {err}."))?,
        comment: key.comment().to_owned(),
    })
}

pub async fn add(
    State(state): State<SharedState>,
    auth: AuthUser,
    Json(request): Json<AddKeyRequest>,
) -> ApiResult<(StatusCode, Json<SshKey>)> {
    let parsed = parse_public_key(&request.public_key).map_err(ApiError::invalid)?;
    let user_id = auth.user.id;
    state
        .key_challenges
        .verify(user_id, &parsed.key, &request.challenge, &request.signature)
        .map_err(|err| ApiError::invalid(err.to_string()))?;
    let fingerprint = parsed.fingerprint.clone();
    let added = state
        .store
        .add_key(
            user_id,
            NewKey {
                fingerprint: parsed.fingerprint,
                algorithm: parsed.algorithm,
                public_key: parsed.public_key,
                comment: parsed.comment,
            },
        )
        .await;
    match added {
        Ok(key) => Ok((StatusCode::CREATED, Json(key))),
        // Whose it is stays unsaid (the caller holds the private key, but may not be its
        // only holder).
        Err(StoreError::Conflict) => Err(ApiError::new(
            ErrorCode::Conflict,
            format!("Key {fingerprint} is already registered."),
        )),
        Err(err) => Err(err.into()),
    }
}

pub async fn remove(
    State(state): State<SharedState>,
    auth: AuthUser,
    Path(key): Path<String>,
) -> ApiResult<StatusCode> {
    let removed = state.store.remove_key(auth.user.id, &key).await?;
    if removed {
        state.ssh_access.bump();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::NotFound,
            format!("You have no key {key}."),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGoSm7kXMtl7bxwHl2GAxyt1ih9EXvqWBd9o3xhQMdSS alice@laptop";

    #[test]
    fn parses_openssh_text() {
        let key = parse_public_key(&format!("  {KEY}\n")).unwrap();
        assert_eq!(key.algorithm, "ssh-ed25519");
        assert_eq!(key.comment, "alice@laptop");
        assert!(
            key.fingerprint.starts_with("SHA256:"),
            "{}",
            key.fingerprint
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-ed25519 notbase64!!",
            "hello world",
            "-----BEGIN OPENSSH PRIVATE KEY-----",
            &format!("{KEY}\n{KEY}"),
        ] {
            assert!(parse_public_key(bad).is_err(), "{bad:?}");
        }
    }
}

//! Passwords, login tokens and the brake on password guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;
use sha2::{Digest, Sha256};

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the user does not exist, so a login for an unknown name
/// costs the same time as one with a wrong password.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password never matches"))
}

/// A fresh login token: 256 random bits, shown to the user once.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("paas_{}", hex::encode(bytes))
}

/// What the database keeps of a token: its SHA-256, so a leaked database holds no live token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A random password for the first admin when none is given.
pub fn generate_password() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Counts failed logins per username and per client address. After `FREE_ATTEMPTS` failures
/// in a row, each further attempt must wait twice as long as the last (up to `MAX_LOCKOUT`);
/// a success clears the username's and the address's counts.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<ThrottleKey, Failures>>,
}

#[derive(Clone, PartialEq, Eq, Hash)]
enum ThrottleKey {
    User(String),
    Address(IpAddr),
}

struct Failures {
    count: u32,
    locked_until: Instant,
}

const FREE_ATTEMPTS: u32 = 5;
const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);

impl LoginThrottle {
    /// `Err(wait)` when this username or address must wait before trying again.
    pub fn check(&self, username: &str, address: IpAddr) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap();
        let now = Instant::now();
        let wait = Self::keys(username, address)
            .iter()
            .filter_map(|key| failures.get(key))
            .filter(|f| f.locked_until > now)
            .map(|f| f.locked_until - now)
            .max();
        match wait {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn record_failure(&self, username: &str, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap();
        let now = Instant::now();
        for key in Self::keys(username, address) {
            let entry = failures.entry(key).or_insert(Failures {
                count: 0,
                locked_until: now,
            });
            entry.count += 1;
            if entry.count >= FREE_ATTEMPTS {
                let doublings = (entry.count - FREE_ATTEMPTS).min(10);
                let lockout = Duration::from_secs(1 << doublings).min(MAX_LOCKOUT);
                entry.locked_until = now + lockout;
            }
        }
    }

    pub fn record_success(&self, username: &str, address: IpAddr) {
        let mut failures = self.failures.lock().unwrap();
        for key in Self::keys(username, address) {
            failures.remove(&key);
        }
    }

    fn keys(username: &str, address: IpAddr) -> [ThrottleKey; 2] {
        [
            ThrottleKey::User(username.to_owned()),
            ThrottleKey::Address(address),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("s3cret");
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret ", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), "paas_".len() + 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
    }

    #[test]
    fn throttle_locks_after_free_attempts_per_user_and_address() {
        let throttle = LoginThrottle::default();
        let here: IpAddr = "127.0.0.1".parse().unwrap();
        let there: IpAddr = "127.0.0.2".parse().unwrap();
        for _ in 0..FREE_ATTEMPTS - 1 {
            throttle.record_failure("alice", here);
        }
        assert!(throttle.check("alice", here).is_ok());
        throttle.record_failure("alice", here);
        assert!(throttle.check("alice", here).is_err());
        assert!(throttle.check("alice", there).is_err(), "per user");
        assert!(throttle.check("bob", here).is_err(), "per address");
        assert!(throttle.check("bob", there).is_ok());
        throttle.record_success("alice", here);
        assert!(throttle.check("alice", here).is_ok());
    }
}

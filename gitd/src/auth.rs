//! Passwords, login tokens and the brake on password guessing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, SaltString};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any input")
        .to_string()
}

/// Whether `password` matches `hash`, with argon2's working memory (about 19 MiB with the
/// default parameters) in `memory`, kept for the next verification: a verifying thread holds
/// one buffer for good instead of leaving the allocator a fresh 19 MiB to keep after each one.
fn verify_password(password: &str, hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        argon2::Algorithm::try_from(parsed.algorithm),
        parsed
            .version
            .map(argon2::Version::try_from)
            .transpose()
            .map(Option::unwrap_or_default),
        argon2::Params::try_from(&parsed),
    ) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    memory.resize(params.block_count(), argon2::Block::default());
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..])
        .is_ok()
        // `Output` compares in constant time.
        && argon2::password_hash::Output::new(&computed).is_ok_and(|computed| computed == expected)
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

/// `[http.login]` in gitd.toml: the brake on password guessing.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginSettings {
    /// Failed logins for one username from one client address before that pair must wait.
    pub attempts_per_user_address: u32,
    /// Failed logins from one client address, whatever the usernames, before it must wait.
    pub attempts_per_address: u32,
    /// The first wait once the free attempts are used; each further failure doubles it.
    pub lockout_secs: u64,
    /// The longest wait.
    pub max_lockout_secs: u64,
    /// A username or address with no login attempt for this long starts afresh.
    pub forget_after_secs: u64,
    /// Usernames and addresses tracked at most; past it the least recently seen is dropped.
    pub max_tracked: usize,
    /// Password verifications (argon2, about 19 MiB each) running at once, server-wide.
    pub password_check_workers: usize,
    /// Logins waiting for a verification; more are answered "busy" without being verified.
    pub password_check_queue: usize,
}

impl Default for LoginSettings {
    fn default() -> Self {
        LoginSettings {
            attempts_per_user_address: 5,
            attempts_per_address: 20,
            lockout_secs: 60,
            max_lockout_secs: 15 * 60,
            forget_after_secs: 3600,
            max_tracked: 10_000,
            password_check_workers: 2,
            password_check_queue: 16,
        }
    }
}

impl LoginSettings {
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        for (name, value) in [
            (
                "attempts_per_user_address",
                u64::from(self.attempts_per_user_address),
            ),
            ("attempts_per_address", u64::from(self.attempts_per_address)),
            ("max_tracked", self.max_tracked as u64),
            ("password_check_workers", self.password_check_workers as u64),
        ] {
            if value == 0 {
                return Err(crate::config::ConfigError::Invalid(format!(
                    "[http.login] {name} must be at least 1"
                )));
            }
        }
        Ok(())
    }
}

/// Counts login attempts per username and client address, and per client address alone. An
/// attempt is counted before its password is verified, so concurrent guesses cannot slip past
/// the limit; a success clears the username's count for that address (and gives back its
/// place in the address's count). Once the free attempts are used, each further attempt must
/// wait `lockout_secs`, doubling per failure up to `max_lockout_secs`. Another client address
/// is counted apart, so a guesser cannot lock the right password out. Verifications run on a
/// fixed pool of threads, which bounds their memory and rate server-wide.
pub struct LoginThrottle {
    settings: LoginSettings,
    tracked: Mutex<HashMap<ThrottleKey, Attempts>>,
    checker: PasswordChecker,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum ThrottleKey {
    UserAddress(String, IpAddr),
    Address(IpAddr),
}

struct Attempts {
    count: u32,
    blocked_until: Instant,
    last: Instant,
}

/// A counted login attempt. Dropped without [`Attempt::succeeded`] or [`Attempt::not_tried`],
/// it stays counted as a failure.
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    keys: Vec<ThrottleKey>,
}

/// The password checks are all taken: the login was not verified.
#[derive(Debug)]
pub struct Busy;

impl LoginThrottle {
    pub fn new(settings: &LoginSettings) -> LoginThrottle {
        LoginThrottle {
            settings: settings.clone(),
            tracked: Mutex::new(HashMap::new()),
            checker: PasswordChecker::start(
                settings.password_check_workers,
                settings.password_check_queue,
            ),
        }
    }

    /// Counts an attempt for `username` (None when it cannot name a user) from `address`, or
    /// `Err(wait)` when either must wait; a refused attempt is not counted.
    pub fn reserve(
        &self,
        username: Option<&str>,
        address: IpAddr,
    ) -> Result<Attempt<'_>, Duration> {
        let address = address_key(address);
        let mut keys = vec![ThrottleKey::Address(address)];
        if let Some(username) = username {
            keys.push(ThrottleKey::UserAddress(username.to_owned(), address));
        }
        let now = Instant::now();
        let mut tracked = self.tracked.lock().unwrap();
        let wait = keys
            .iter()
            .filter_map(|key| tracked.get(key))
            .filter(|attempts| attempts.blocked_until > now)
            .map(|attempts| attempts.blocked_until - now)
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in &keys {
            if !tracked.contains_key(key) {
                self.make_room(&mut tracked, now);
            }
            let limit = self.limit(key);
            let attempts = tracked.entry(key.clone()).or_insert(Attempts {
                count: 0,
                blocked_until: now,
                last: now,
            });
            attempts.count += 1;
            attempts.last = now;
            if attempts.count >= limit {
                attempts.blocked_until = now + self.lockout(attempts.count - limit);
            }
        }
        Ok(Attempt {
            throttle: self,
            keys,
        })
    }

    /// Verifies `password` against `hash` on the verification pool.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        self.checker.verify(password, hash).await
    }

    fn limit(&self, key: &ThrottleKey) -> u32 {
        match key {
            ThrottleKey::UserAddress(..) => self.settings.attempts_per_user_address,
            ThrottleKey::Address(_) => self.settings.attempts_per_address,
        }
    }

    fn lockout(&self, doublings: u32) -> Duration {
        let max = Duration::from_secs(self.settings.max_lockout_secs);
        Duration::from_secs(self.settings.lockout_secs)
            .saturating_mul(1u32 << doublings.min(20))
            .min(max)
    }

    /// Forgets what has expired; when that is not enough, the least recently seen entry.
    fn make_room(&self, tracked: &mut HashMap<ThrottleKey, Attempts>, now: Instant) {
        if tracked.len() < self.settings.max_tracked {
            return;
        }
        let forget_after = Duration::from_secs(self.settings.forget_after_secs);
        tracked.retain(|_, a| a.blocked_until > now || now.duration_since(a.last) < forget_after);
        if tracked.len() >= self.settings.max_tracked {
            tracing::warn!(
                tracked = tracked.len(),
                "login throttle full: forgetting the least recently seen entry"
            );
            let oldest = tracked
                .iter()
                .min_by_key(|(_, a)| a.last)
                .map(|(key, _)| key.clone());
            if let Some(oldest) = oldest {
                tracked.remove(&oldest);
            }
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.tracked.lock().unwrap().len()
    }
}

impl Attempt<'_> {
    /// The password was right: the username starts afresh from this address, and the
    /// attempt does not count against the address.
    pub fn succeeded(self) {
        self.give_back(true);
    }

    /// The password was never checked (the server was busy): the attempt does not count.
    pub fn not_tried(self) {
        self.give_back(false);
    }

    fn give_back(mut self, clear_user: bool) {
        let mut tracked = self.throttle.tracked.lock().unwrap();
        for key in std::mem::take(&mut self.keys) {
            match key {
                ThrottleKey::UserAddress(..) if clear_user => {
                    tracked.remove(&key);
                }
                _ => {
                    let limit = self.throttle.limit(&key);
                    if let Some(attempts) = tracked.get_mut(&key) {
                        attempts.count = attempts.count.saturating_sub(1);
                        // The block this attempt may have started no longer has a cause.
                        if attempts.count < limit {
                            attempts.blocked_until = Instant::now();
                        }
                    }
                }
            }
        }
    }
}

/// IPv6 clients are counted per /64, the block one subscriber gets.
fn address_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
        },
        v4 => v4,
    }
}

/// A username as it may go into a log line: escaped (a newline or ESC in it cannot forge or
/// colour a line) and cut to a readable length.
pub fn loggable(username: &str) -> String {
    const MAX_CHARS: usize = 64;
    let mut shown: String = username.chars().take(MAX_CHARS).collect();
    if shown.len() < username.len() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

/// A fixed pool of threads verifying passwords: at most `workers` argon2 runs at once, and at
/// most `queue` logins waiting for one.
struct PasswordChecker {
    jobs: std::sync::mpsc::SyncSender<PasswordJob>,
}

struct PasswordJob {
    password: String,
    hash: String,
    answer: tokio::sync::oneshot::Sender<bool>,
}

impl PasswordChecker {
    fn start(workers: usize, queue: usize) -> PasswordChecker {
        let (jobs, incoming) = std::sync::mpsc::sync_channel::<PasswordJob>(queue);
        let incoming = std::sync::Arc::new(Mutex::new(incoming));
        for index in 0..workers {
            let incoming = incoming.clone();
            std::thread::Builder::new()
                .name(format!("password-check-{index}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = incoming.lock().unwrap().recv();
                        let Ok(job) = job else { return };
                        let verified = verify_password(&job.password, &job.hash, &mut memory);
                        let _ = job.answer.send(verified);
                    }
                })
                .expect("spawning a password check thread");
        }
        PasswordChecker { jobs }
    }

    async fn verify(&self, password: String, hash: String) -> Result<bool, Busy> {
        let (answer, verified) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(PasswordJob {
                password,
                hash,
                answer,
            })
            .map_err(|_| Busy)?;
        verified.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("s3cret");
        let mut memory = Vec::new();
        assert!(verify_password("s3cret", &hash, &mut memory));
        assert!(!verify_password("s3cret ", &hash, &mut memory));
        assert!(!verify_password("s3cret", "not a hash", &mut memory));
        for _ in 0..2 {
            assert!(verify_password("s3cret", &hash, &mut memory));
            assert!(!verify_password("wrong", &hash, &mut memory));
        }
        let legacy = Argon2::default()
            .hash_password(b"other", &SaltString::from_b64("c2FsdHNhbHRzYWx0").unwrap())
            .unwrap()
            .to_string();
        assert!(verify_password("other", &legacy, &mut memory));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), "paas_".len() + 64);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_ne!(token_hash(&a), a);
    }

    fn throttle(settings: LoginSettings) -> LoginThrottle {
        LoginThrottle::new(&settings)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn attempts_are_counted_before_they_are_verified() {
        let throttle = throttle(LoginSettings::default());
        let here = ip("127.0.0.1");
        // Reserved and still open, as concurrent logins would hold them.
        let open: Vec<Attempt> = (0..5)
            .map(|_| throttle.reserve(Some("alice"), here).unwrap())
            .collect();
        let wait = throttle.reserve(Some("alice"), here).err().unwrap();
        assert!(wait > Duration::from_secs(50), "{wait:?}");
        drop(open);
        assert!(throttle.reserve(Some("alice"), here).is_err());
    }

    #[test]
    fn another_address_keeps_its_own_count() {
        let throttle = throttle(LoginSettings::default());
        let (here, there) = (ip("127.0.0.1"), ip("127.0.0.2"));
        for _ in 0..5 {
            drop(throttle.reserve(Some("admin"), here).unwrap());
        }
        assert!(throttle.reserve(Some("admin"), here).is_err());
        let fresh = throttle.reserve(Some("admin"), there).unwrap();
        fresh.succeeded();
        assert!(throttle.reserve(Some("admin"), there).is_ok());
    }

    #[test]
    fn one_address_is_limited_across_usernames() {
        let throttle = throttle(LoginSettings {
            attempts_per_address: 3,
            ..LoginSettings::default()
        });
        let here = ip("127.0.0.1");
        for name in ["a", "b", "c"] {
            drop(throttle.reserve(Some(name), here).unwrap());
        }
        assert!(throttle.reserve(Some("d"), here).is_err());
        assert!(throttle.reserve(None, here).is_err());
        assert!(throttle.reserve(Some("d"), ip("127.0.0.2")).is_ok());
    }

    #[test]
    fn a_success_clears_the_user_and_gives_back_the_address_place() {
        let throttle = throttle(LoginSettings {
            attempts_per_address: 3,
            ..LoginSettings::default()
        });
        let here = ip("127.0.0.1");
        drop(throttle.reserve(Some("alice"), here).unwrap());
        for _ in 0..10 {
            throttle.reserve(Some("alice"), here).unwrap().succeeded();
            throttle.reserve(Some("bob"), here).unwrap().not_tried();
        }
        drop(throttle.reserve(Some("carol"), here).unwrap());
        assert!(
            throttle.reserve(Some("alice"), here).is_ok(),
            "successes do not fill the address's count"
        );
        assert!(throttle.reserve(Some("alice"), here).is_err());
    }

    #[test]
    fn lockouts_double_up_to_the_maximum() {
        let throttle = throttle(LoginSettings::default());
        assert_eq!(throttle.lockout(0), Duration::from_secs(60));
        assert_eq!(throttle.lockout(2), Duration::from_secs(240));
        assert_eq!(throttle.lockout(40), Duration::from_secs(900));
    }

    #[test]
    fn tracked_entries_are_bounded() {
        let throttle = throttle(LoginSettings {
            max_tracked: 50,
            ..LoginSettings::default()
        });
        for i in 0..500u32 {
            let address = IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i));
            drop(
                throttle
                    .reserve(Some(&format!("user{i}")), address)
                    .unwrap(),
            );
        }
        assert!(throttle.tracked() <= 50, "{}", throttle.tracked());
    }

    #[test]
    fn ipv6_clients_count_per_64_block() {
        assert_eq!(
            address_key(ip("2001:db8::1")),
            address_key(ip("2001:db8::ffff:2"))
        );
        assert_ne!(
            address_key(ip("2001:db8::1")),
            address_key(ip("2001:db8:0:1::1"))
        );
        assert_eq!(address_key(ip("::ffff:127.0.0.1")), ip("127.0.0.1"));
    }

    #[test]
    fn usernames_in_logs_cannot_forge_lines() {
        assert_eq!(loggable("alice"), "alice");
        assert_eq!(
            loggable("x\nINFO login username=admin\x1b[2J"),
            "x\\nINFO login username=admin\\u{1b}[2J"
        );
        assert!(!loggable(&"\n".repeat(1000)).contains('\n'));
        assert!(loggable(&"a".repeat(1000)).chars().count() <= 65);
    }

    #[tokio::test]
    async fn verifications_queue_is_bounded() {
        let throttle = throttle(LoginSettings {
            password_check_workers: 1,
            password_check_queue: 1,
            ..LoginSettings::default()
        });
        let hash = hash_password("right password");
        assert!(
            throttle
                .verify("right password".into(), hash.clone())
                .await
                .unwrap()
        );
        let checks: Vec<_> = (0..20)
            .map(|_| throttle.verify("wrong".into(), hash.clone()))
            .collect();
        let answers = futures::future::join_all(checks).await;
        assert!(
            answers.iter().any(|a| a.is_err()),
            "some are refused as busy"
        );
        assert!(answers.iter().filter_map(|a| a.as_ref().ok()).all(|v| !v));
    }
}

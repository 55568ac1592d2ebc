//! `[ssh]` in gitd.toml: how many connections the SSH endpoint holds and for how long.

use std::num::{NonZeroU64, NonZeroUsize};
use std::time::Duration;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SshSettings {
    /// Connections held at once, authenticated or not. Over it, the oldest unauthenticated
    /// connection makes room, or the new one is refused.
    pub max_connections: NonZeroUsize,
    /// Connections from one client address at once; over it, as for `max_connections`.
    pub max_connections_per_address: NonZeroUsize,
    /// Connections that have not authenticated yet, from all addresses; over it, the oldest
    /// one of the address holding the most is closed.
    pub max_unauthenticated: NonZeroUsize,
    /// Unauthenticated connections from one address; over it, that address's oldest is closed.
    pub max_unauthenticated_per_address: NonZeroUsize,
    /// A connection that has not authenticated this long after it was accepted is closed.
    pub auth_timeout_seconds: NonZeroU64,
    /// A connection that sends nothing (keepalive replies included) this long is closed.
    pub idle_timeout_seconds: NonZeroU64,
}

impl SshSettings {
    pub fn auth_timeout(&self) -> Duration {
        Duration::from_secs(self.auth_timeout_seconds.get())
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_seconds.get())
    }
}

impl Default for SshSettings {
    fn default() -> Self {
        let count = |n: usize| NonZeroUsize::new(n).expect("non-zero");
        let seconds = |n: u64| NonZeroU64::new(n).expect("non-zero");
        SshSettings {
            max_connections: count(256),
            max_connections_per_address: count(32),
            max_unauthenticated: count(64),
            max_unauthenticated_per_address: count(8),
            auth_timeout_seconds: seconds(30),
            idle_timeout_seconds: seconds(600),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Wrapper {
        #[serde(default)]
        ssh: SshSettings,
    }

    #[test]
    fn unset_fields_take_their_defaults_and_zero_is_refused() {
        let parsed: Wrapper = toml::from_str("[ssh]\nauth_timeout_seconds = 2\n").unwrap();
        assert_eq!(parsed.ssh.auth_timeout(), Duration::from_secs(2));
        assert_eq!(parsed.ssh.max_connections.get(), 256);
        assert!(toml::from_str::<Wrapper>("[ssh]\nmax_connections = 0\n").is_err());
        assert!(toml::from_str::<Wrapper>("[ssh]\nmax_conections = 3\n").is_err());
    }
}

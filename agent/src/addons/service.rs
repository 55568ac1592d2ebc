//! What each kind of add-on runs and how it is asked whether it answers: its environment or
//! command line with the generated credentials, where it keeps its data, the URL apps get,
//! and the commands that probe it, read its version and measure its data. No Docker calls
//! here: the container the credentials went into gives them back ([`Credentials::read`]), so
//! the agent keeps no state of its own about add-ons.

use paas_api::addons::AddonKind;
use rand::RngCore;

/// The generated secrets of one add-on. Postgres gets a user, a password and a database;
/// Redis a password only.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
    pub database: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(…)")
    }
}

/// `bytes` random bytes as hex.
fn random_hex(bytes: usize) -> String {
    let mut buffer = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buffer);
    hex::encode(buffer)
}

impl Credentials {
    /// Fresh ones: a 256-bit password; user and database names random too, so nothing about
    /// one add-on tells anything about another's.
    pub fn generate() -> Credentials {
        Credentials {
            user: format!("u{}", random_hex(6)),
            password: random_hex(32),
            database: format!("d{}", random_hex(6)),
        }
    }

    /// The credentials a container of `kind` was created with, from its environment and
    /// command line.
    pub fn read(kind: AddonKind, env: &[String], cmd: &[String]) -> Option<Credentials> {
        match kind {
            AddonKind::Postgres => {
                let var = |name: &str| {
                    env.iter()
                        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
                        .map(str::to_owned)
                };
                Some(Credentials {
                    user: var("POSTGRES_USER")?,
                    password: var("POSTGRES_PASSWORD")?,
                    database: var("POSTGRES_DB")?,
                })
            }
            AddonKind::Redis => {
                let at = cmd.iter().position(|arg| arg == "--requirepass")?;
                Some(Credentials {
                    user: String::new(),
                    password: cmd.get(at + 1)?.clone(),
                    database: String::new(),
                })
            }
        }
    }
}

/// Where the service keeps its data: the add-on's volume is mounted here.
pub fn data_dir(kind: AddonKind) -> &'static str {
    match kind {
        AddonKind::Postgres => "/var/lib/postgresql/data",
        AddonKind::Redis => "/data",
    }
}

/// The container's environment.
pub fn env(kind: AddonKind, credentials: &Credentials) -> Vec<String> {
    match kind {
        AddonKind::Postgres => vec![
            format!("POSTGRES_USER={}", credentials.user),
            format!("POSTGRES_PASSWORD={}", credentials.password),
            format!("POSTGRES_DB={}", credentials.database),
        ],
        AddonKind::Redis => Vec::new(),
    }
}

/// The container's command, if not the image's: Redis is configured on its command line,
/// with an append-only file so a restart loses no acknowledged write.
pub fn cmd(kind: AddonKind, credentials: &Credentials) -> Option<Vec<String>> {
    match kind {
        AddonKind::Postgres => None,
        AddonKind::Redis => Some(
            [
                "redis-server",
                "--requirepass",
                &credentials.password,
                "--appendonly",
                "yes",
                "--dir",
                data_dir(kind),
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
    }
}

/// The URL an attached app connects with: the add-on's name is its host name on every app
/// network it joins.
pub fn url(kind: AddonKind, host: &str, credentials: &Credentials) -> String {
    let port = kind.port();
    match kind {
        AddonKind::Postgres => format!(
            "postgres://{}:{}@{host}:{port}/{}",
            credentials.user, credentials.password, credentials.database
        ),
        // `default` is the user Redis 6 and later authenticate a bare password as; clients
        // (redis-cli among them) send both.
        AddonKind::Redis => format!("redis://default:{}@{host}:{port}", credentials.password),
    }
}

/// A command run in the container, with the environment it needs; the password travels in
/// the environment (`PGPASSWORD`, `REDISCLI_AUTH`), never on a command line.
pub struct Exec {
    pub cmd: Vec<String>,
    pub env: Vec<String>,
}

impl Exec {
    /// A Postgres client `program` signed in over TCP as the add-on's user to its database:
    /// `program`, `options`, the connection's options, then `rest`.
    pub fn postgres_client(
        program: &str,
        options: &[&str],
        credentials: &Credentials,
        rest: &[&str],
    ) -> Exec {
        let connection = [
            "-h",
            "127.0.0.1",
            "-U",
            &credentials.user,
            "-d",
            &credentials.database,
        ];
        Exec {
            cmd: std::iter::once(program)
                .chain(options.iter().copied())
                .chain(connection)
                .chain(rest.iter().copied())
                .map(str::to_owned)
                .collect(),
            env: vec![format!("PGPASSWORD={}", credentials.password)],
        }
    }
}

/// Asks the server for its version over TCP with the add-on's own credentials: it answers
/// only once it accepts the connections apps will make (Postgres's initdb server, which
/// listens on no TCP port, does not count).
pub fn version_probe(kind: AddonKind, credentials: &Credentials) -> Exec {
    match kind {
        AddonKind::Postgres => {
            Exec::postgres_client("psql", &[], credentials, &["-tAc", "SHOW server_version"])
        }
        AddonKind::Redis => Exec {
            cmd: ["redis-cli", "-h", "127.0.0.1", "INFO", "server"]
                .map(str::to_owned)
                .to_vec(),
            env: vec![format!("REDISCLI_AUTH={}", credentials.password)],
        },
    }
}

/// The version in a successful [`version_probe`]'s output.
pub fn parse_version(kind: AddonKind, output: &str) -> Option<String> {
    let version = match kind {
        // "17.2 (Debian 17.2-1.pgdg120+1)"
        AddonKind::Postgres => output.split_whitespace().next()?,
        AddonKind::Redis => output
            .lines()
            .find_map(|line| line.trim().strip_prefix("redis_version:"))?,
    };
    let plausible = !version.is_empty()
        && version.starts_with(|c: char| c.is_ascii_digit())
        && version
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.');
    plausible.then(|| version.to_owned())
}

/// Measures the data directory: `du -sk`.
pub fn size_probe(kind: AddonKind) -> Exec {
    Exec {
        cmd: ["du", "-sk", data_dir(kind)].map(str::to_owned).to_vec(),
        env: Vec::new(),
    }
}

/// Bytes from `du -sk`'s output.
pub fn parse_size(output: &str) -> Option<u64> {
    let kib: u64 = output.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_random_and_read_back_from_the_container() {
        let one = Credentials::generate();
        assert_ne!(one, Credentials::generate());
        assert_eq!(one.password.len(), 64);
        assert!(!format!("{one:?}").contains(&one.password));
        for kind in AddonKind::ALL {
            let env = env(kind, &one);
            let cmd = cmd(kind, &one).unwrap_or_default();
            let read = Credentials::read(kind, &env, &cmd).unwrap();
            assert_eq!(read.password, one.password, "{kind}");
        }
        let postgres = Credentials::read(AddonKind::Postgres, &env(AddonKind::Postgres, &one), &[]);
        assert_eq!(postgres, Some(one.clone()));
        assert_eq!(Credentials::read(AddonKind::Postgres, &[], &[]), None);
        assert_eq!(
            Credentials::read(AddonKind::Redis, &[], &["redis-server".to_owned()]),
            None
        );
    }

    #[test]
    fn urls_name_the_add_on_as_host() {
        let credentials = Credentials {
            user: "u1".into(),
            password: "p".into(),
            database: "d1".into(),
        };
        assert_eq!(
            url(AddonKind::Postgres, "db", &credentials),
            "postgres://u1:p@db:5432/d1"
        );
        assert_eq!(
            url(AddonKind::Redis, "cache", &credentials),
            "redis://default:p@cache:6379"
        );
    }

    #[test]
    fn passwords_stay_off_probe_command_lines() {
        let credentials = Credentials::generate();
        for kind in AddonKind::ALL {
            let probe = version_probe(kind, &credentials);
            assert!(
                probe
                    .cmd
                    .iter()
                    .all(|arg| !arg.contains(&credentials.password)),
                "{kind}"
            );
            assert!(
                probe
                    .env
                    .iter()
                    .any(|var| var.contains(&credentials.password))
            );
        }
    }

    #[test]
    fn versions_and_sizes_parse() {
        assert_eq!(
            parse_version(AddonKind::Postgres, "17.2 (Debian 17.2-1.pgdg120+1)\n"),
            Some("17.2".to_owned())
        );
        assert_eq!(
            parse_version(AddonKind::Postgres, "15.10\n"),
            Some("15.10".to_owned())
        );
        assert_eq!(
            parse_version(
                AddonKind::Redis,
                "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:0\r\n"
            ),
            Some("7.0.15".to_owned())
        );
        assert_eq!(
            parse_version(AddonKind::Redis, "NOAUTH Authentication required."),
            None
        );
        assert_eq!(parse_version(AddonKind::Postgres, "psql: error: x"), None);
        assert_eq!(parse_size("4096\t/data\n"), Some(4096 * 1024));
        assert_eq!(parse_size("du: cannot"), None);
    }
}

//! The names users choose, each a type with one rule: [`AppName`], [`ProcessType`],
//! [`ConfigKey`], [`Username`], [`HealthPath`]. A value of one of these types has passed its
//! rule, so code that holds one never checks it again. Each parses with `FromStr` or
//! `TryFrom<String>`, prints with `Display`, serializes as the plain string and validates when
//! deserialized, so serde (and with it axum's `Json` and `Path` extractors) refuses a bad
//! name with the rule's message.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error(
        "invalid app name {0:?}: use 1 to 30 lowercase letters, digits and dashes, starting with a letter"
    )]
    AppName(String),
    #[error(
        "invalid process type {0:?}: use 1 to 30 lowercase letters, digits, dashes and underscores, starting with a letter or digit"
    )]
    ProcessType(String),
    #[error(
        "invalid config key {0:?}: use letters, digits and underscores, not starting with a digit"
    )]
    ConfigKey(String),
    #[error("config value for {key} is {len} bytes; the limit is {limit} bytes")]
    ConfigValueTooLong {
        key: String,
        len: usize,
        limit: usize,
    },
    #[error("config value for {0} contains a NUL byte, which no process environment can carry")]
    ConfigValueNul(String),
    #[error(
        "invalid username {0:?}: use 1 to 40 lowercase letters, digits, dots, dashes and underscores, starting with a letter or digit"
    )]
    Username(String),
    #[error(
        "invalid health check path {0:?}: it must start with / and use URL characters only (letters, digits and / . _ ~ ? = & % + : @ , ; -), at most 1024 of them"
    )]
    HealthPath(String),
}

/// The longest config value accepted, in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 32 * 1024;

static APP_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,29}$").unwrap());
static PROCESS_TYPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9_-]{0,29}$").unwrap());
static CONFIG_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap());
static USERNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9._-]{0,39}$").unwrap());
/// The path goes single-quoted into the health probe's shell line, so no quotes, spaces,
/// backslashes or `$`.
static HEALTH_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^/[A-Za-z0-9._~/?=&%+:@,;-]{0,1023}$").unwrap());

/// A string type whose values all pass `$check` (`Fn(&str) -> Result<(), $error>`): the
/// traits every name type has, so each differs from the others only by its rule. Domain names
/// ([`crate::domains::DomainName`]) use it with their own rule and error.
macro_rules! string_newtype {
    ($(#[$doc:meta])* $name:ident, $error:ty, $check:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(value: String) -> Result<Self, $error> {
                let check: fn(&str) -> Result<(), $error> = $check;
                check(&value)?;
                Ok($name(value))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $error;

            fn from_str(value: &str) -> Result<Self, $error> {
                Self::try_from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        /// As the string, so `{:?}` in messages reads `"web"`, not a struct.
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                std::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;

            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        /// Lets maps keyed by this type be looked up with a `&str`.
        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                &self.0 == other
            }
        }
    };
}
pub(crate) use string_newtype;

/// A name type whose values all match the regex `$rule`, refused with `ValidationError::$name`.
macro_rules! validated_name {
    ($(#[$doc:meta])* $name:ident, $rule:ident) => {
        string_newtype!($(#[$doc])* $name, ValidationError, |value| {
            if $rule.is_match(value) {
                Ok(())
            } else {
                Err(ValidationError::$name(value.to_owned()))
            }
        });
    };
}

validated_name!(
    /// An app's name, `^[a-z][a-z0-9-]{0,29}$`: it becomes a host name label, a repository
    /// file name and part of container names.
    AppName,
    APP_NAME
);

validated_name!(
    /// A process type (`web`, `worker`, `clock_2`), the Procfile's rule:
    /// `^[a-z0-9][a-z0-9_-]{0,29}$`.
    ProcessType,
    PROCESS_TYPE
);

validated_name!(
    /// A config var's name, `^[A-Za-z_][A-Za-z0-9_]*$`: a valid environment variable name.
    ConfigKey,
    CONFIG_KEY
);

validated_name!(
    /// A user's login name, `^[a-z0-9][a-z0-9._-]{0,39}$`.
    Username,
    USERNAME
);

validated_name!(
    /// The path `web` instances must answer 2xx/3xx on (`/health?full=1`): plain URL
    /// characters only, since it ends up inside the probe command.
    HealthPath,
    HEALTH_PATH
);

impl ProcessType {
    /// `web`, the process type that gets HTTP traffic.
    pub fn web() -> ProcessType {
        ProcessType("web".to_owned())
    }
}

pub fn validate_config_value(key: &str, value: &str) -> Result<(), ValidationError> {
    if value.len() > MAX_CONFIG_VALUE_BYTES {
        return Err(ValidationError::ConfigValueTooLong {
            key: key.to_owned(),
            len: value.len(),
            limit: MAX_CONFIG_VALUE_BYTES,
        });
    }
    if value.contains('\0') {
        return Err(ValidationError::ConfigValueNul(key.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::fmt;
    use std::str::FromStr;

    use super::*;

    fn accepts<T: FromStr<Err = ValidationError>>(good: &str) {
        assert!(good.parse::<T>().is_ok(), "{good:?} should be accepted");
    }

    fn refuses<T: FromStr<Err = ValidationError> + fmt::Debug>(bad: &str) {
        assert!(bad.parse::<T>().is_err(), "{bad:?} should be refused");
    }

    #[test]
    fn app_names() {
        for good in ["a", "hello", "my-app-2", &"a".repeat(30)] {
            accepts::<AppName>(good);
        }
        for bad in [
            "",
            "A",
            "1app",
            "-x",
            "../x",
            "a;b",
            "a b",
            "a.git",
            "a_b",
            &"a".repeat(31),
            "a\n",
        ] {
            refuses::<AppName>(bad);
        }
        assert_eq!(
            "A".parse::<AppName>().unwrap_err().to_string(),
            "invalid app name \"A\": use 1 to 30 lowercase letters, digits and dashes, starting with a letter"
        );
    }

    #[test]
    fn process_types() {
        for good in ["web", "worker", "clock_2", "2nd", "a-b", &"a".repeat(30)] {
            accepts::<ProcessType>(good);
        }
        for bad in [
            "",
            "-web",
            "Web",
            "a b",
            "a.b",
            "a/b",
            "web=",
            &"a".repeat(31),
        ] {
            refuses::<ProcessType>(bad);
        }
        assert_eq!(ProcessType::web(), "web");
        assert!(
            "Web"
                .parse::<ProcessType>()
                .unwrap_err()
                .to_string()
                .starts_with("invalid process type \"Web\": ")
        );
    }

    #[test]
    fn config_keys() {
        for good in ["A", "_X", "DATABASE_URL", "a1"] {
            accepts::<ConfigKey>(good);
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            refuses::<ConfigKey>(bad);
        }
        assert!(
            "1A".parse::<ConfigKey>()
                .unwrap_err()
                .to_string()
                .starts_with("invalid config key \"1A\": ")
        );
    }

    #[test]
    fn config_value_limit() {
        assert!(validate_config_value("K", &"x".repeat(MAX_CONFIG_VALUE_BYTES)).is_ok());
        assert!(validate_config_value("K", &"x".repeat(MAX_CONFIG_VALUE_BYTES + 1)).is_err());
        assert_eq!(
            validate_config_value("K", "a\0b").unwrap_err().to_string(),
            "config value for K contains a NUL byte, which no process environment can carry"
        );
    }

    #[test]
    fn usernames() {
        accepts::<Username>("alice");
        accepts::<Username>("a.b-c_d");
        for bad in ["", "Alice", ".x", "a b", "a/b", &"a".repeat(41)] {
            refuses::<Username>(bad);
        }
        assert!(
            "Eve"
                .parse::<Username>()
                .unwrap_err()
                .to_string()
                .starts_with("invalid username \"Eve\": ")
        );
    }

    #[test]
    fn health_paths() {
        for good in [
            "/",
            "/health",
            "/health?full=1",
            "/a/b.c_d~e%20f&g=h+i:j@k,l;m-n",
            &format!("/{}", "a".repeat(1023)),
        ] {
            accepts::<HealthPath>(good);
        }
        for bad in [
            "",
            "health",
            "/a b",
            "/$(id)",
            "/x'; rm -rf /",
            "/x' ; rm -rf /",
            "/'$(reboot)'",
            "/a\\b",
            "/a\"b",
            "/a`b`",
            "/a\nb",
            &format!("/{}", "a".repeat(1024)),
        ] {
            refuses::<HealthPath>(bad);
        }
        assert!(
            "health"
                .parse::<HealthPath>()
                .unwrap_err()
                .to_string()
                .starts_with("invalid health check path \"health\": it must start with /")
        );
    }

    #[test]
    fn names_serialize_as_plain_strings_and_validate_when_read() {
        let app: AppName = "hello".parse().unwrap();
        assert_eq!(serde_json::to_string(&app).unwrap(), r#""hello""#);
        assert_eq!(serde_json::from_str::<AppName>(r#""hello""#).unwrap(), app);
        let err = serde_json::from_str::<AppName>(r#""../x""#).unwrap_err();
        assert!(
            err.to_string().contains("invalid app name \"../x\""),
            "{err}"
        );
        assert!(serde_json::from_str::<AppName>("5").is_err());

        let path: HealthPath = "/health".parse().unwrap();
        assert_eq!(
            serde_json::from_value::<HealthPath>(serde_json::to_value(&path).unwrap()).unwrap(),
            path
        );
        let err = serde_json::from_str::<HealthPath>(r#""/'; reboot; '""#).unwrap_err();
        assert!(
            err.to_string().contains("invalid health check path"),
            "{err}"
        );
    }

    #[test]
    fn names_validate_as_map_keys() {
        use std::collections::BTreeMap;
        let vars: BTreeMap<ConfigKey, String> =
            serde_json::from_str(r#"{"DATABASE_URL":"x"}"#).unwrap();
        assert_eq!(vars["DATABASE_URL"], "x");
        let err =
            serde_json::from_str::<BTreeMap<ConfigKey, String>>(r#"{"A-B":"x"}"#).unwrap_err();
        assert!(
            err.to_string().contains("invalid config key \"A-B\""),
            "{err}"
        );
        assert_eq!(
            serde_json::to_string(&vars).unwrap(),
            r#"{"DATABASE_URL":"x"}"#
        );
    }

    #[test]
    fn names_read_as_their_strings() {
        let user: Username = "alice".parse().unwrap();
        assert_eq!(user.to_string(), "alice");
        assert_eq!(format!("{user:?}"), "\"alice\"");
        assert_eq!(user.as_str(), "alice");
        assert_eq!(user, "alice");
        assert_eq!(String::from(user.clone()), "alice");
        assert_eq!(Username::try_from("alice".to_owned()), Ok(user));
    }
}

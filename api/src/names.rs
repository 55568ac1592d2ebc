//! Validation of the names users choose: apps, config keys, usernames.

use std::sync::LazyLock;

use regex::Regex;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error(
        "invalid app name {0:?}: use 1 to 30 lowercase letters, digits and dashes, starting with a letter"
    )]
    AppName(String),
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
    #[error(
        "invalid username {0:?}: use 1 to 40 lowercase letters, digits, dots, dashes and underscores, starting with a letter or digit"
    )]
    Username(String),
}

/// The longest config value accepted, in bytes.
pub const MAX_CONFIG_VALUE_BYTES: usize = 32 * 1024;

static APP_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z][a-z0-9-]{0,29}$").unwrap());
static CONFIG_KEY: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z_][A-Za-z0-9_]*$").unwrap());
static USERNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-z0-9][a-z0-9._-]{0,39}$").unwrap());

pub fn validate_app_name(name: &str) -> Result<(), ValidationError> {
    if APP_NAME.is_match(name) {
        Ok(())
    } else {
        Err(ValidationError::AppName(name.to_owned()))
    }
}

pub fn validate_config_key(key: &str) -> Result<(), ValidationError> {
    if CONFIG_KEY.is_match(key) {
        Ok(())
    } else {
        Err(ValidationError::ConfigKey(key.to_owned()))
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
    Ok(())
}

pub fn validate_username(name: &str) -> Result<(), ValidationError> {
    if USERNAME.is_match(name) {
        Ok(())
    } else {
        Err(ValidationError::Username(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names() {
        for good in ["a", "hello", "my-app-2", &"a".repeat(30)] {
            assert!(validate_app_name(good).is_ok(), "{good}");
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
            assert!(validate_app_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_keys() {
        for good in ["A", "_X", "DATABASE_URL", "a1"] {
            assert!(validate_config_key(good).is_ok(), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(validate_config_key(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn config_value_limit() {
        assert!(validate_config_value("K", &"x".repeat(MAX_CONFIG_VALUE_BYTES)).is_ok());
        assert!(validate_config_value("K", &"x".repeat(MAX_CONFIG_VALUE_BYTES + 1)).is_err());
    }

    #[test]
    fn usernames() {
        assert!(validate_username("alice").is_ok());
        assert!(validate_username("a.b-c_d").is_ok());
        for bad in ["", "Alice", ".x", "a b", "a/b", &"a".repeat(41)] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }
}

//! What each fuzz target checks, one function per parser of tenant input in `paas-api`: the
//! parser never panics on any input, its refusals are one line (they reach the user as one),
//! and what it accepts keeps the promises the rest of paas relies on (a parsed value
//! re-validates, re-renders to the same value, cannot carry what its format forbids).
//!
//! The fuzz targets in `fuzz_targets/` call these; `api/tests/fuzz_corpus.rs` replays the
//! committed seeds in `corpus/` through the same functions with the stable toolchain, so a
//! regression shows in `scripts/test`.

use std::collections::BTreeMap;

use paas_api::buildpacks::parse_buildpacks_yaml;
use paas_api::domains::{MAX_DOMAIN_CHARS, is_wildcard, traefik_rule, validate_domain};
use paas_api::formation::{MAX_QUANTITY, apply_scale, parse_scale_args};
use paas_api::git_command::{GitService, parse_git_command};
use paas_api::names::{MAX_CONFIG_VALUE_BYTES, validate_config_value};
use paas_api::procfile::parse_procfile;
use paas_api::{AppName, ConfigKey, ProcessType};

/// Every refusal is shown to the user as one line.
fn one_line(message: impl std::fmt::Display) {
    let text = message.to_string();
    assert!(!text.is_empty(), "an empty refusal");
    assert!(
        !text.contains(['\n', '\r']),
        "a refusal over lines: {text:?}"
    );
}

/// An SSH exec request: only the two git services on a valid app name, and an accepted command
/// reads the same once written the way git writes it.
pub fn git_command(data: &[u8]) {
    match parse_git_command(data) {
        Ok(command) => {
            assert!(command.app.parse::<AppName>().is_ok(), "{command:?}");
            let canonical = format!("git-{} '{}.git'", command.service.subcommand(), command.app);
            assert_eq!(parse_git_command(canonical.as_bytes()), Ok(command.clone()));
            let text = std::str::from_utf8(data).expect("accepted commands are UTF-8");
            let verb = match command.service {
                GitService::ReceivePack => "git-receive-pack ",
                GitService::UploadPack => "git-upload-pack ",
            };
            assert!(text.starts_with(verb), "{text:?}");
            assert!(!text.chars().any(char::is_control), "{text:?}");
        }
        Err(err) => one_line(err),
    }
}

/// A Procfile: accepted types are valid process types with trimmed, non-empty commands free of
/// control characters (tabs aside), and rendering them back gives the same Procfile.
pub fn procfile(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_procfile(text) {
        Ok(processes) => {
            assert!(!processes.is_empty());
            let mut rendered = String::new();
            for (name, command) in &processes {
                assert!(name.parse::<ProcessType>().is_ok(), "{name:?}");
                assert!(
                    !command.is_empty() && command.trim() == command,
                    "{command:?}"
                );
                assert!(
                    !command.chars().any(|c| c.is_control() && c != '\t'),
                    "{command:?}"
                );
                rendered.push_str(&format!("{name}: {command}\n"));
            }
            assert_eq!(parse_procfile(&rendered), Ok(processes));
        }
        Err(err) => one_line(err),
    }
}

/// `buildpacks.yaml`: the path stays inside the tree, references cannot become options or
/// several arguments, env keys are config keys.
pub fn buildpacks_yaml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_buildpacks_yaml(text) {
        Ok(file) => {
            assert!(!file.path.starts_with('/'), "{file:?}");
            assert!(
                file.path == "."
                    || file
                        .path
                        .split('/')
                        .all(|part| !part.is_empty() && part != "." && part != ".."),
                "{file:?}"
            );
            assert!(!file.path.contains('\\') && !file.path.chars().any(char::is_control));
            for reference in file.builder.iter().chain(&file.buildpacks) {
                assert!(
                    !reference.is_empty() && !reference.starts_with('-'),
                    "{reference:?}"
                );
                assert!(
                    !reference
                        .chars()
                        .any(|c| c.is_whitespace() || c.is_control()),
                    "{reference:?}"
                );
            }
            for key in file.env.keys() {
                assert!(key.parse::<ConfigKey>().is_ok(), "{key:?}");
            }
        }
        Err(err) => one_line(err),
    }
}

/// A custom domain: what is accepted can go into a Traefik rule verbatim.
pub fn domain(data: &[u8]) {
    let Ok(domain) = std::str::from_utf8(data) else {
        return;
    };
    match validate_domain(domain) {
        Ok(()) => {
            assert!(domain.len() <= MAX_DOMAIN_CHARS);
            let host = domain.strip_prefix("*.").unwrap_or(domain);
            assert_eq!(is_wildcard(domain), host.len() != domain.len());
            assert!(
                host.bytes().all(|b| b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || b == b'-'
                    || b == b'.'),
                "{domain:?}"
            );
            let rule = traefik_rule(domain);
            assert_eq!(rule.matches('`').count(), 2, "{rule}");
        }
        Err(err) => one_line(err),
    }
}

/// `paas scale` arguments (NUL-separated), applied to a formation: the result never leaves
/// 0..=MAX_QUANTITY nor invents a process type.
pub fn scale_args(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let args: Vec<&str> = text.split('\0').collect();
    let current: BTreeMap<ProcessType, u32> =
        [(ProcessType::web(), 2), ("worker".parse().unwrap(), 0)].into();
    match parse_scale_args(&args) {
        Ok(changes) => {
            assert!(!changes.is_empty());
            for change in changes.iter() {
                assert!(change.process.parse::<ProcessType>().is_ok(), "{change:?}");
            }
            match apply_scale(&current, &changes) {
                Ok(next) => {
                    assert!(next.keys().eq(current.keys()), "{next:?}");
                    assert!(next.values().all(|&q| q <= MAX_QUANTITY), "{next:?}");
                }
                Err(err) => one_line(err),
            }
        }
        Err(err) => one_line(err),
    }
}

/// `KEY=VALUE` as `config:set` takes it: an accepted key is an environment variable name, an
/// accepted value fits the limit.
pub fn config_var(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (key, value) = text.split_once('=').unwrap_or((text, ""));
    match key.parse::<ConfigKey>() {
        Ok(_) => {
            let first = key.as_bytes()[0];
            assert!(first.is_ascii_alphabetic() || first == b'_', "{key:?}");
            assert!(
                key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{key:?}"
            );
        }
        Err(err) => one_line(err),
    }
    let checked = validate_config_value(key, value);
    assert_eq!(checked.is_ok(), value.len() <= MAX_CONFIG_VALUE_BYTES);
    if let Err(err) = checked {
        one_line(err);
    }
}

/// An app name: what is accepted names a repository (`<app>.git`) and a container prefix, so
/// it is short, lowercase, and the SSH endpoint parses it back to itself.
pub fn app_name(data: &[u8]) {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    match name.parse::<AppName>() {
        Ok(_) => {
            assert!((1..=30).contains(&name.len()), "{name:?}");
            assert!(name.as_bytes()[0].is_ascii_lowercase(), "{name:?}");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
                "{name:?}"
            );
            let command = format!("git-upload-pack '/{name}.git'");
            let parsed = parse_git_command(command.as_bytes()).expect("a valid app name parses");
            assert_eq!(parsed.app, name);
        }
        Err(err) => one_line(err),
    }
}

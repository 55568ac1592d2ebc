//! `config`, `config:get`, `config:set`, `config:unset`.

use std::collections::BTreeMap;

use anyhow::bail;
use clap::Args;
use paas_api::ConfigKey;
use paas_api::names::validate_config_value;
use paas_api::types::{ConfigUpdate, ConfigUpdated};

use super::Context;
use crate::output::{Style, key_values, print_json, stdout_is_terminal, tenant_text, word_list};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
    /// Print KEY=value lines for a shell or an .env file
    #[arg(short, long, conflicts_with = "json")]
    pub shell: bool,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    #[command(flatten)]
    pub app: AppArg,
    pub key: String,
}

#[derive(Debug, Args)]
pub struct SetArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// KEY=VALUE pairs
    #[arg(required = true, value_name = "KEY=VALUE")]
    pub pairs: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UnsetArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[arg(required = true, value_name = "KEY")]
    pub keys: Vec<String>,
}

pub fn show(ctx: &Context, ShowArgs { app, json, shell }: &ShowArgs) -> anyhow::Result<()> {
    let (json, shell) = (json.json, *shell);
    let name = ctx.app(app)?;
    let vars = ctx.client()?.config(&name)?.vars;
    if json {
        return print_json(&vars);
    }
    let terminal = stdout_is_terminal();
    if shell {
        for (key, value) in &vars {
            println!("{key}={}", tenant_text(&shell_quote(value), terminal));
        }
        return Ok(());
    }
    let vars = shown(&vars, terminal);
    print!("{}", render_config(&name, &vars, Style::stdout()));
    Ok(())
}

/// The values (and keys) made safe for the output; see [`tenant_text`].
/// Keys passed [`ConfigKey`]'s rule, which leaves nothing to escape; values are the tenant's.
fn shown(vars: &BTreeMap<ConfigKey, String>, terminal: bool) -> BTreeMap<ConfigKey, String> {
    vars.iter()
        .map(|(key, value)| (key.clone(), tenant_text(value, terminal).into_owned()))
        .collect()
}

fn render_config(app: &str, vars: &BTreeMap<ConfigKey, String>, style: Style) -> String {
    if vars.is_empty() {
        return format!("{app} has no config vars.\n");
    }
    let pairs: Vec<(&ConfigKey, &String)> = vars.iter().collect();
    format!(
        "{}\n{}",
        style.header(&format!("{app} Config Vars")),
        key_values(&pairs)
    )
}

pub fn get(ctx: &Context, GetArgs { app, key }: &GetArgs) -> anyhow::Result<()> {
    let key: ConfigKey = key.parse()?;
    let name = ctx.app(app)?;
    let vars = ctx.client()?.config(&name)?.vars;
    // As Heroku: an unset key prints an empty line.
    let value = vars.get(key.as_str()).map(String::as_str).unwrap_or("");
    println!("{}", tenant_text(value, stdout_is_terminal()));
    Ok(())
}

pub fn set(ctx: &Context, SetArgs { app, pairs }: &SetArgs) -> anyhow::Result<()> {
    let parsed = parse_assignments(pairs)?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let keys: Vec<String> = parsed.iter().map(|(k, _)| k.to_string()).collect();
    let update = ConfigUpdate {
        vars: parsed
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect(),
    };
    let message = format!(
        "Setting {} on {}",
        word_list(&keys),
        Style::stderr().app(&name)
    );
    let updated = progress::action(&message, |on_progress| {
        let updated = client.update_config(&name, &update, on_progress)?;
        let suffix = release_suffix(&updated);
        Ok((updated, suffix))
    })?;
    let terminal = stdout_is_terminal();
    let shown: Vec<(&ConfigKey, std::borrow::Cow<'_, str>)> = parsed
        .iter()
        .map(|(k, _)| {
            let value = updated
                .vars
                .get(k.as_str())
                .map(String::as_str)
                .unwrap_or("");
            (k, tenant_text(value, terminal))
        })
        .collect();
    print!("{}", key_values(&shown));
    Ok(())
}

pub fn unset(ctx: &Context, UnsetArgs { app, keys }: &UnsetArgs) -> anyhow::Result<()> {
    let parsed = keys
        .iter()
        .map(|key| key.parse())
        .collect::<Result<Vec<ConfigKey>, _>>()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let update = ConfigUpdate {
        vars: parsed.into_iter().map(|k| (k, None)).collect(),
    };
    let message = format!(
        "Unsetting {} on {}",
        word_list(keys),
        Style::stderr().app(&name)
    );
    progress::action(&message, |on_progress| {
        let updated = client.update_config(&name, &update, on_progress)?;
        Ok(((), release_suffix(&updated)))
    })
}

/// What follows "done": the new release, or that nothing changed (and nothing restarted).
fn release_suffix(updated: &ConfigUpdated) -> String {
    match &updated.release {
        Some(release) => format!(", v{}", release.version),
        None => ", no change".to_owned(),
    }
}

/// `KEY=VALUE` arguments, validated, in order; a later duplicate key wins.
pub(super) fn parse_assignments(pairs: &[String]) -> anyhow::Result<Vec<(ConfigKey, String)>> {
    let mut parsed: Vec<(ConfigKey, String)> = Vec::new();
    for pair in pairs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("Invalid argument {pair:?}: expected KEY=VALUE.");
        };
        let key: ConfigKey = key.parse()?;
        validate_config_value(&key, value)?;
        parsed.retain(|(k, _)| *k != key);
        parsed.push((key, value.to_owned()));
    }
    Ok(parsed)
}

/// A value as a POSIX shell reads it back: bare when safe, else single-quoted.
fn shell_quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-./:@%+,=".contains(c));
    if safe {
        value.to_owned()
    } else {
        format!("'{}'", value.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ConfigKey {
        name.parse().unwrap()
    }

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn assignments_split_at_the_first_equals_sign() {
        let parsed =
            parse_assignments(&args(&["A=1", "URL=postgres://u:p@h/db?x=y", "EMPTY="])).unwrap();
        assert_eq!(
            parsed,
            [
                (key("A"), "1".to_owned()),
                (key("URL"), "postgres://u:p@h/db?x=y".to_owned()),
                (key("EMPTY"), String::new()),
            ]
        );
    }

    #[test]
    fn later_duplicates_win() {
        let parsed = parse_assignments(&args(&["A=1", "B=2", "A=3"])).unwrap();
        assert_eq!(
            parsed,
            [(key("B"), "2".to_owned()), (key("A"), "3".to_owned())]
        );
    }

    #[test]
    fn bad_assignments_are_rejected_with_the_reason() {
        let err = parse_assignments(&args(&["NOEQUALS"])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Invalid argument \"NOEQUALS\": expected KEY=VALUE."
        );
        for bad in ["1A=x", "A-B=x", "=x", "A B=x"] {
            let err = parse_assignments(&args(&[bad])).unwrap_err();
            assert!(
                err.to_string().contains("invalid config key"),
                "{bad}: {err}"
            );
        }
        let huge = format!("BIG={}", "x".repeat(32 * 1024 + 1));
        assert!(parse_assignments(&[huge]).is_err());
    }

    #[test]
    fn config_renders_like_heroku() {
        let vars: BTreeMap<ConfigKey, String> = [("GREETING", "hello world"), ("A", "1")]
            .into_iter()
            .map(|(k, v)| (k.parse().unwrap(), v.to_owned()))
            .collect();
        assert_eq!(
            render_config("web", &vars, Style { colour: false }),
            "=== web Config Vars\nA:        1\nGREETING: hello world\n"
        );
        assert_eq!(
            render_config("web", &BTreeMap::new(), Style { colour: false }),
            "web has no config vars.\n"
        );
    }

    #[test]
    fn config_values_are_escaped_on_a_terminal() {
        let vars: BTreeMap<ConfigKey, String> = [(
            "A".parse().unwrap(),
            "x\x1b]52;c;cGF5bG9hZA==\x07\ny".to_owned(),
        )]
        .into();
        assert_eq!(
            render_config("web", &shown(&vars, true), Style { colour: false }),
            "=== web Config Vars\nA: x\\x1b]52;c;cGF5bG9hZA==\\x07\n   y\n"
        );
        assert_eq!(shown(&vars, false), vars);
    }

    #[test]
    fn shell_values_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("plain-1.2"), "plain-1.2");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("it's $HOME"), r"'it'\''s $HOME'");
    }
}

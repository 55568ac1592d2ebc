//! What `paas help` shows beyond clap's generated text: an EXAMPLES section under every
//! command, as Heroku's help has. The examples live here, one table, so that a test can parse
//! each of them against the real command-line definition: an example that no longer parses
//! fails the build instead of misleading a reader.

use clap::CommandFactory;

use crate::Cli;

/// Examples per command name (as typed, e.g. `config:set`), each line a command as a user
/// types it; the root (`paas`) is keyed by the empty name.
const EXAMPLES: &[(&str, &[&str])] = &[
    (
        "",
        &[
            "paas login --server https://paas.example.com",
            "paas apps:create myapp",
            "paas config:set -a myapp SECRET_KEY=s3cr3t",
            "paas logs -a myapp --tail",
            "paas help logs",
        ],
    ),
    (
        "login",
        &[
            "paas login --server https://paas.example.com",
            "paas login --server https://paas.example.com -u alice --password-stdin",
        ],
    ),
    ("logout", &["paas logout"]),
    ("whoami", &["paas whoami", "paas whoami --json"]),
    ("apps", &["paas apps", "paas apps --json"]),
    (
        "apps:create",
        &["paas apps:create", "paas apps:create myapp -r staging"],
    ),
    (
        "apps:info",
        &[
            "paas apps:info -a myapp",
            "paas info -r staging",
            "paas info --json",
        ],
    ),
    (
        "apps:destroy",
        &[
            "paas apps:destroy myapp",
            "paas apps:destroy -a myapp --confirm myapp",
        ],
    ),
    (
        "git:remote",
        &[
            "paas git:remote -a myapp",
            "paas git:remote -a myapp -r staging",
        ],
    ),
    (
        "git:clone",
        &[
            "paas git:clone -a myapp",
            "paas git:clone -a myapp ~/src/myapp",
        ],
    ),
    ("keys", &["paas keys", "paas keys --json"]),
    (
        "keys:add",
        &["paas keys:add", "paas keys:add ~/.ssh/deploy.pub"],
    ),
    (
        "keys:remove",
        &[
            "paas keys:remove 3",
            "paas keys:remove SHA256:7nZ6x2Yq0bAAs3sdk2fR9sQf+4mXb2Ekq1lBQj2mX1o",
        ],
    ),
    (
        "config",
        &["paas config -a myapp", "paas config -a myapp --shell"],
    ),
    ("config:get", &["paas config:get DATABASE_URL -a myapp"]),
    (
        "config:set",
        &[
            "paas config:set -a myapp RAILS_ENV=production WEB_CONCURRENCY=3",
            "paas config:set -a myapp 'GREETING=hello world'",
        ],
    ),
    (
        "config:unset",
        &["paas config:unset -a myapp WEB_CONCURRENCY"],
    ),
    (
        "releases",
        &[
            "paas releases -a myapp",
            "paas releases -a myapp -n 5 --json",
        ],
    ),
    (
        "releases:info",
        &[
            "paas releases:info -a myapp",
            "paas releases:info v12 -a myapp",
        ],
    ),
    ("releases:output", &["paas releases:output v12 -a myapp"]),
    (
        "rollback",
        &["paas rollback -a myapp", "paas rollback v10 -a myapp"],
    ),
    (
        "builds",
        &["paas builds -a myapp", "paas builds -a myapp -n 5 --json"],
    ),
    (
        "builds:output",
        &[
            "paas builds:output -a myapp",
            "paas builds:output 7 -a myapp",
        ],
    ),
    (
        "metrics",
        &[
            "paas metrics -a myapp",
            "paas metrics -a myapp --period 24h",
            "paas metrics -a myapp --json",
        ],
    ),
    (
        "logs",
        &[
            "paas logs -a myapp",
            "paas logs -a myapp --tail",
            "paas logs -a myapp -n 200 -p web",
            "paas logs -a myapp -p web.2",
            "paas logs -a myapp -s paas",
            "paas logs -a myapp -p router",
            "paas logs -a myapp --no-router --release v3",
        ],
    ),
    ("domains", &["paas domains -a myapp"]),
    (
        "domains:add",
        &[
            "paas domains:add www.example.com -a myapp",
            "paas domains:add '*.example.com' -a myapp",
        ],
    ),
    (
        "domains:remove",
        &["paas domains:remove www.example.com -a myapp"],
    ),
    (
        "webhooks",
        &["paas webhooks -a myapp", "paas webhooks --json"],
    ),
    (
        "webhooks:add",
        &[
            "paas webhooks:add https://hooks.example.com/paas --include deploy,crash -a myapp",
            "paas webhooks:add https://ci.example.com/hook --include deploy.failed,rollback --secret \"$HOOK_SECRET\"",
        ],
    ),
    ("webhooks:remove", &["paas webhooks:remove 3 -a myapp"]),
    (
        "webhooks:deliveries",
        &[
            "paas webhooks:deliveries -a myapp",
            "paas webhooks:deliveries --webhook 3 -n 50",
        ],
    ),
    ("features", &["paas features -a myapp"]),
    (
        "features:enable",
        &["paas features:enable read-only-fs -a myapp"],
    ),
    (
        "features:disable",
        &["paas features:disable read-only-fs -a myapp"],
    ),
    ("cron", &["paas cron -a myapp", "paas cron -a myapp --json"]),
    ("checks", &["paas checks -a myapp"]),
    ("open", &["paas open -a myapp"]),
    ("users", &["paas users"]),
    (
        "users:add",
        &[
            "paas users:add bob",
            "paas users:add carol --admin --password-stdin",
        ],
    ),
    ("users:remove", &["paas users:remove bob"]),
    ("nodes", &["paas nodes", "paas nodes --json"]),
    ("nodes:drain", &["paas nodes:drain paascl-2"]),
    ("nodes:activate", &["paas nodes:activate paascl-2"]),
    ("access", &["paas access -a myapp"]),
    ("access:add", &["paas access:add bob -a myapp"]),
    ("access:remove", &["paas access:remove bob -a myapp"]),
    ("ps", &["paas ps -a myapp", "paas ps -a myapp --json"]),
    (
        "scale",
        &[
            "paas scale web=3 worker=1 -a myapp",
            "paas scale web+1 -a myapp",
        ],
    ),
    (
        "restart",
        &[
            "paas restart -a myapp",
            "paas restart web -a myapp",
            "paas restart web.2 -a myapp",
        ],
    ),
    (
        "ps:stop",
        &[
            "paas ps:stop web.2 -a myapp",
            "paas ps:stop worker -a myapp",
            "paas ps:stop run.1 -a myapp",
        ],
    ),
    (
        "ps:resize",
        &[
            "paas ps:resize -a myapp",
            "paas ps:resize web --memory 512M --cpus 1 -a myapp",
        ],
    ),
    (
        "run",
        &[
            "paas run -a myapp -- sh",
            "paas run -a myapp -- rails db:migrate",
            "paas run -a myapp --no-tty -e DEBUG=1 -- python manage.py check",
            "paas run -a myapp --size 1G,2 -- rake reports:build",
        ],
    ),
    (
        "ps:exec",
        &[
            "paas ps:exec -a myapp -d web.1",
            "paas ps:exec -a myapp -d web.2 -- ps aux",
        ],
    ),
    (
        "run:detached",
        &["paas run:detached -a myapp -- rake cache:warm"],
    ),
    ("maintenance", &["paas maintenance -a myapp"]),
    ("maintenance:on", &["paas maintenance:on -a myapp"]),
    ("maintenance:off", &["paas maintenance:off -a myapp"]),
    (
        "ps:sticky",
        &["paas ps:sticky -a myapp", "paas ps:sticky on -a myapp"],
    ),
    ("storage", &["paas storage -a myapp"]),
    (
        "storage:mount",
        &["paas storage:mount uploads:/app/uploads -a myapp"],
    ),
    (
        "storage:unmount",
        &["paas storage:unmount uploads:/app/uploads -a myapp"],
    ),
    (
        "storage:destroy",
        &["paas storage:destroy uploads --confirm myapp -a myapp"],
    ),
    (
        "addons",
        &["paas addons -a myapp", "paas addons -a myapp --json"],
    ),
    (
        "addons:create",
        &[
            "paas addons:create postgres -a myapp",
            "paas addons:create redis -a myapp --name cache",
            "paas addons:create postgres -a myapp --name reports-db --as REPORTS_DATABASE",
        ],
    ),
    ("addons:info", &["paas addons:info postgres-db -a myapp"]),
    (
        "addons:attach",
        &[
            "paas addons:attach postgres-db -a worker-app",
            "paas addons:attach cache -a worker-app --as CACHE",
        ],
    ),
    (
        "addons:detach",
        &["paas addons:detach postgres-db -a worker-app"],
    ),
    (
        "addons:destroy",
        &[
            "paas addons:destroy cache -a myapp --confirm cache",
            "paas addons:destroy postgres-db -a myapp --confirm postgres-db --force",
        ],
    ),
    (
        "pg:backups",
        &[
            "paas pg:backups -a myapp",
            "paas pg:backups reports-db -a myapp --json",
        ],
    ),
    (
        "pg:backups:capture",
        &[
            "paas pg:backups:capture -a myapp",
            "paas pg:backups:capture reports-db -a myapp",
        ],
    ),
    (
        "pg:backups:restore",
        &[
            "paas pg:backups:restore -a myapp --confirm myapp",
            "paas pg:backups:restore b003 -a myapp --confirm myapp",
            "paas pg:backups:restore old-db::b012 postgres-db -a myapp --confirm myapp",
        ],
    ),
    (
        "pg:backups:download",
        &[
            "paas pg:backups:download -a myapp",
            "paas pg:backups:download b003 -a myapp -o before-migration.dump",
            "paas pg:backups:download reports-db::b007 -a myapp --force",
        ],
    ),
    (
        "pg:backups:delete",
        &["paas pg:backups:delete b003 -a myapp --confirm myapp"],
    ),
    (
        "pg:psql",
        &[
            "paas pg:psql -a myapp",
            "paas pg:psql postgres-db -a myapp -c \"select count(*) from users\"",
        ],
    ),
    (
        "pg:info",
        &[
            "paas pg:info -a myapp",
            "paas pg:info postgres-db -a myapp --json",
        ],
    ),
    (
        "redis:cli",
        &["paas redis:cli -a myapp", "paas redis:cli cache -a myapp"],
    ),
    (
        "completions",
        &[
            "paas completions bash > /etc/bash_completion.d/paas",
            "paas completions zsh",
        ],
    ),
];

/// The command-line definition with every command's examples under its help.
pub fn command() -> clap::Command {
    Cli::command()
        .after_help(section(""))
        .mut_subcommands(|sub| {
            let text = section(sub.get_name());
            sub.after_help(text)
        })
}

fn section(name: &str) -> String {
    let lines = examples(name).iter().map(|line| format!("  $ {line}"));
    std::iter::once("Examples:".to_owned())
        .chain(lines)
        .collect::<Vec<_>>()
        .join("\n")
}

fn examples(name: &str) -> &'static [&'static str] {
    EXAMPLES
        .iter()
        .find(|(command, _)| *command == name)
        .map_or(&[], |(_, lines)| lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_examples() {
        let missing: Vec<String> = command()
            .get_subcommands()
            .filter(|sub| examples(sub.get_name()).is_empty())
            .map(|sub| sub.get_name().to_owned())
            .collect();
        assert!(missing.is_empty(), "commands without examples: {missing:?}");
    }

    #[test]
    fn every_example_names_a_command_and_parses() {
        let known: Vec<String> = command()
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .collect();
        for (name, lines) in EXAMPLES {
            assert!(
                name.is_empty() || known.iter().any(|k| k == name),
                "examples for {name:?}, which is not a command"
            );
            for line in *lines {
                let mut words = shlex::split(line).unwrap_or_else(|| panic!("unquoted: {line}"));
                // A redirection is the shell's, not paas's.
                if let Some(at) = words.iter().position(|word| word == ">") {
                    words.truncate(at);
                }
                assert_eq!(words[0], "paas", "{line}");
                match command().try_get_matches_from(&words) {
                    Ok(_) => {}
                    Err(error) if error.kind() == clap::error::ErrorKind::DisplayHelp => {}
                    Err(error) => panic!("example {line:?} does not parse: {error}"),
                }
                if !name.is_empty() && words[1] != "help" {
                    assert_eq!(
                        command()
                            .find_subcommand(&words[1])
                            .map(clap::Command::get_name),
                        Some(*name),
                        "{line} is listed under {name}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_help_of_a_command_ends_with_its_examples() {
        let help = command()
            .find_subcommand_mut("logs")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(
            help.trim_end().ends_with("Examples:\n  $ paas logs -a myapp\n  $ paas logs -a myapp --tail\n  $ paas logs -a myapp -n 200 -p web\n  $ paas logs -a myapp -p web.2\n  $ paas logs -a myapp -s paas\n  $ paas logs -a myapp -p router\n  $ paas logs -a myapp --no-router --release v3"),
            "{help}"
        );
    }

    #[test]
    fn help_output_is_part_of_the_interface() {
        // A fixed width: clap otherwise wraps to the terminal the tests happen to run in.
        let mut command = command().term_width(100);
        insta::assert_snapshot!("root_help", command.render_long_help().to_string());
        let logs = command
            .find_subcommand_mut("logs")
            .unwrap()
            .render_long_help()
            .to_string();
        insta::assert_snapshot!("logs_help", logs);
    }

    /// The commands docs/cli.md documents, from its `### `paas NAME …`` headings (several per
    /// heading where it joins them with commas).
    fn documented_commands() -> Vec<String> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md");
        let text = std::fs::read_to_string(path).unwrap();
        text.lines()
            .filter(|line| line.starts_with("### "))
            .flat_map(|line| line.split("`paas ").skip(1))
            .map(|rest| rest.split([' ', '`']).next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn docs_cli_md_documents_exactly_the_commands_of_paas_help() {
        let documented = documented_commands();
        let commands: Vec<String> = command()
            .get_subcommands()
            .map(|sub| sub.get_name().to_owned())
            .filter(|name| name != "help")
            .collect();
        let undocumented: Vec<&String> = commands
            .iter()
            .filter(|name| !documented.contains(name))
            .collect();
        assert!(
            undocumented.is_empty(),
            "docs/cli.md has no `### `paas NAME`` section for {undocumented:?}"
        );
        let stale: Vec<&String> = documented
            .iter()
            .filter(|name| !commands.contains(name))
            .collect();
        assert!(
            stale.is_empty(),
            "docs/cli.md documents commands paas does not have: {stale:?}"
        );
    }
}

//! `paas completions SHELL`: clap_complete's script, mended where Heroku-style `topic:verb`
//! names break it, and taught to offer the user's app names after `-a/--app`.
//!
//! - bash splits the words of a line at `:` (`COMP_WORDBREAKS`), so the generated function sees
//!   `config : set` and `config:<TAB>` offered `config:-`. A wrapper rebuilds the words from
//!   the line itself and strips the part before the last `:` from the answers, since bash
//!   replaces only what follows it.
//! - zsh's `_describe` reads `name:description`, so a `:` inside a name must be escaped.
//! - fish takes `:` as it is.
//!
//! App names come from `paas apps` (its plain listing: headers start with `===`).

use std::io::Write;

use clap_complete::Shell;

use crate::help;

/// Prints the first word of every app line of `paas apps`, quietly (no server, no login: none).
const APP_NAMES: &str = "paas apps 2>/dev/null | awk '!/^===/ && NF { print $1 }'";

pub fn print(shell: Shell, out: &mut impl Write) -> std::io::Result<()> {
    out.write_all(script(shell).as_bytes())
}

fn script(shell: Shell) -> String {
    let mut command = help::command();
    let mut generated = Vec::new();
    clap_complete::generate(shell, &mut command, "paas", &mut generated);
    let generated = String::from_utf8(generated).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => format!("{generated}\n{}", bash_wrapper()),
        Shell::Zsh => zsh_mended(&generated, &names_with_colons(&command)),
        Shell::Fish => {
            format!("{generated}\ncomplete -c paas -s a -l app -x -a \"({APP_NAMES})\"\n")
        }
        _ => generated,
    }
}

fn bash_wrapper() -> String {
    format!(
        r#"_paas_topic_verb() {{
    local line="${{COMP_LINE:0:COMP_POINT}}"
    local -a words
    read -ra words <<< "$line"
    if [[ -z "$line" || "$line" =~ [[:space:]]$ ]]; then
        words+=("")
    fi
    local count=${{#words[@]}}
    local cur="${{words[count-1]}}" prev=""
    if (( count > 1 )); then
        prev="${{words[count-2]}}"
    fi
    if [[ "$prev" == "-a" || "$prev" == "--app" ]]; then
        COMPREPLY=( $(compgen -W "$({APP_NAMES})" -- "$cur") )
        return 0
    fi
    COMP_WORDS=("${{words[@]}}")
    COMP_CWORD=$(( count - 1 ))
    _paas "$1" "$cur" "$prev"
    if [[ "$cur" == *:* ]]; then
        local before="${{cur%"${{cur##*:}}"}}" i
        for i in "${{!COMPREPLY[@]}}"; do
            COMPREPLY[i]="${{COMPREPLY[i]#"$before"}}"
        done
    fi
}}
if [[ "${{BASH_VERSINFO[0]}}" -eq 4 && "${{BASH_VERSINFO[1]}}" -ge 4 || "${{BASH_VERSINFO[0]}}" -gt 4 ]]; then
    complete -F _paas_topic_verb -o nosort -o bashdefault -o default paas
else
    complete -F _paas_topic_verb -o bashdefault -o default paas
fi
"#
    )
}

/// Every command name and alias with a `:` in it, longest first so that `apps:create` is
/// mended before a shorter name that is its prefix could be.
fn names_with_colons(command: &clap::Command) -> Vec<String> {
    let mut names: Vec<String> = command
        .get_subcommands()
        .flat_map(|sub| {
            std::iter::once(sub.get_name().to_owned())
                .chain(sub.get_all_aliases().map(str::to_owned))
        })
        .filter(|name| name.contains(':'))
        .collect();
    names.sort_by_key(|name| std::cmp::Reverse(name.len()));
    names
}

fn zsh_mended(generated: &str, names: &[String]) -> String {
    let mended: String = generated
        .lines()
        .map(|line| {
            let mut line = line.to_owned();
            // `_describe` entries: `'config:set:Set config vars…' \`.
            for name in names {
                let entry = format!("'{name}:");
                if line.starts_with(&entry) {
                    line = format!("'{}:{}", name.replace(':', "\\:"), &line[entry.len()..]);
                    break;
                }
            }
            if line.contains("[App to run the command against") {
                line = line.replace(":NAME:_default'", ":NAME:_paas_app_names'");
            }
            line + "\n"
        })
        .collect();
    // After the `#compdef` line, which must stay first for zsh to autoload the file.
    let (compdef, rest) = mended.split_once('\n').unwrap_or((&mended, ""));
    format!("{compdef}\n_paas_app_names() {{\n    compadd -- $({APP_NAMES})\n}}\n{rest}")
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// Runs `command` to its end, failing the test if it fails; its standard output.
    fn succeed(command: &mut Command) -> String {
        let out = command.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Completes `line` (the cursor at its end) in a real bash with the generated script and
    /// `paas` itself replaced by a function listing two apps.
    fn bash_complete(line: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paas.bash");
        std::fs::write(&path, script(Shell::Bash)).unwrap();
        let program = r#"paas() { printf '=== alice Apps\nhello\nhelp-desk\n'; }
source "$1"
COMP_LINE="$2"
COMP_POINT=${#COMP_LINE}
_paas_topic_verb paas
printf '%s\n' "${COMPREPLY[@]}""#;
        let out = succeed(
            Command::new("bash")
                .args(["-c", program, "bash"])
                .arg(&path)
                .arg(line),
        );
        let mut words: Vec<String> = out
            .lines()
            .filter(|word| !word.is_empty())
            .map(str::to_owned)
            .collect();
        words.sort();
        words
    }

    #[test]
    fn bash_completes_the_verbs_of_a_topic_after_its_colon() {
        assert_eq!(bash_complete("paas config:"), ["get", "set", "unset"]);
        assert_eq!(bash_complete("paas config:s"), ["set"]);
        assert_eq!(bash_complete("paas maintenance:o"), ["off", "on"]);
        assert!(bash_complete("paas con").contains(&"config:set".to_owned()));
    }

    #[test]
    fn bash_completes_the_options_of_a_topic_verb_command() {
        let options = bash_complete("paas config:set --");
        assert!(options.contains(&"--app".to_owned()), "{options:?}");
        assert!(!options.contains(&"--json".to_owned()), "{options:?}");
    }

    #[test]
    fn bash_offers_app_names_after_dash_a() {
        assert_eq!(bash_complete("paas logs -a "), ["hello", "help-desk"]);
        assert_eq!(
            bash_complete("paas config:set --app hel"),
            ["hello", "help-desk"]
        );
        assert_eq!(bash_complete("paas ps -a help"), ["help-desk"]);
    }

    #[test]
    fn zsh_escapes_colons_inside_command_names() {
        let zsh = script(Shell::Zsh);
        assert!(zsh.contains("'config\\:set:Set config vars"), "{zsh}");
        assert!(zsh.contains("'apps\\:create:"), "{zsh}");
        assert!(!zsh.contains("'config:set:"), "an unescaped name is left");
        assert!(zsh.contains(":NAME:_paas_app_names'"));
        assert!(zsh.starts_with("#compdef paas\n_paas_app_names() {"));
    }

    /// Sourced by the interactive zsh that completes: the completion system, `paas` listing two
    /// apps, the generated script, and `compadd` wrapped to write every candidate it is given
    /// (after zsh's own matching against the word) to `$PAAS_OUT`. `-O`/`-A`/`-D` calls only
    /// collect or filter, so they pass through unrecorded.
    const ZSH_SETUP: &str = r#"PROMPT=
autoload -U compinit
compinit -u -D
paas() { printf '=== alice Apps\nhello\nhelp-desk\n'; }
source "$PAAS_SCRIPT"
compadd() {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return
    fi
    local -a candidates
    builtin compadd -A candidates "$@"
    (( $#candidates )) && print -rl -- $candidates >> "$PAAS_OUT"
    builtin compadd "$@"
}
_paas_completion_done() { print -r -- done > "$PAAS_OUT.done"; }
comppostfuncs=(_paas_completion_done)
zstyle ':completion:*' insert-tab false
bindkey '^I' complete-word
"#;

    /// Types `$4` and a tab into an interactive `zsh -f` on a pseudo-terminal (completion only
    /// runs inside a line editor widget) and waits for the completion to finish.
    const ZSH_DRIVER: &str = r#"zmodload zsh/zpty
export PAAS_SCRIPT=$1 PAAS_OUT=$3
zpty completer zsh -f -i
zpty -w completer "source ${(q)2}"
zpty -w -n completer "$4"$'\t'
local echoed
repeat 600; do
    [[ -e $PAAS_OUT.done ]] && break
    zpty -rt completer echoed
    sleep 0.05
done
zpty -d completer
[[ -e $PAAS_OUT.done ]] || { print -u2 "zsh did not finish completing '$4'"; exit 1 }
"#;

    /// Completes `line` (the cursor at its end) in a real zsh with the generated script: the
    /// candidates zsh offers, sorted, each once.
    fn zsh_complete(line: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let script_path = dir.path().join("_paas");
        std::fs::write(&script_path, script(Shell::Zsh)).unwrap();
        let setup = dir.path().join("setup.zsh");
        std::fs::write(&setup, ZSH_SETUP).unwrap();
        let offered = dir.path().join("offered");
        succeed(
            Command::new("zsh")
                .args(["-f", "-c", ZSH_DRIVER, "zsh"])
                .arg(&script_path)
                .arg(&setup)
                .arg(&offered)
                .arg(line),
        );
        // No file: zsh offered nothing.
        let offered = std::fs::read_to_string(&offered).unwrap_or_default();
        let mut words: Vec<String> = offered.lines().map(str::to_owned).collect();
        words.sort();
        words.dedup();
        words
    }

    #[test]
    fn zsh_completes_topic_verbs_and_app_names() {
        assert_eq!(
            zsh_complete("paas config:"),
            ["config:get", "config:set", "config:unset"]
        );
        assert_eq!(zsh_complete("paas config:s"), ["config:set"]);
        assert_eq!(zsh_complete("paas logs -a "), ["hello", "help-desk"]);
        assert_eq!(zsh_complete("paas ps --app help"), ["help-desk"]);
    }

    /// Completes `line` in a real fish (scripts/test installs it) with the generated script.
    fn fish_complete(line: &str) -> Vec<String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("paas.fish");
        std::fs::write(&path, script(Shell::Fish)).unwrap();
        let program = format!(
            "source {}; function paas; printf '=== alice Apps\\nhello\\nhelp-desk\\n'; end; complete -C '{line}'",
            path.display()
        );
        succeed(Command::new("fish").args(["--no-config", "-c", &program]))
            .lines()
            .map(|line| line.split('\t').next().unwrap_or_default().to_owned())
            .collect()
    }

    #[test]
    fn fish_completes_topic_verbs_and_app_names() {
        assert_eq!(
            fish_complete("paas config:"),
            ["config:get", "config:set", "config:unset"]
        );
        assert_eq!(fish_complete("paas logs -a "), ["hello", "help-desk"]);
    }
}

//! How the CLI prints: Heroku-style headers (`=== myapp Config Vars`), aligned `KEY: value`
//! columns, plain tables, `Creating ⬢ myapp... done` action lines on stderr, and JSON for
//! `--json`. Rendering is pure (strings in, string out) so it is unit-tested; colour is used only
//! on a terminal and never when `NO_COLOR` is set. Text that tenants control goes through
//! [`tenant_text`] on its way to a terminal.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};

use serde::Serialize;

/// Whether ANSI colour may be written to a stream: only to a terminal, never under `NO_COLOR`.
fn colour_allowed(stream_is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    stream_is_terminal && !no_color
}

/// Styling for one output stream.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn stdout() -> Style {
        Style {
            colour: colour_allowed(std::io::stdout().is_terminal()),
        }
    }

    pub fn stderr() -> Style {
        Style {
            colour: colour_allowed(std::io::stderr().is_terminal()),
        }
    }

    fn paint(self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }

    /// An app as Heroku shows it: `⬢ name`, in magenta on a terminal.
    pub fn app(self, name: &str) -> String {
        self.paint("35", &format!("⬢ {name}"))
    }

    /// A section header: `=== title`.
    pub fn header(self, title: &str) -> String {
        self.paint("1", &format!("=== {title}"))
    }
}

/// Text that a tenant controls (config values, build and rollout output, log lines, release
/// descriptions), as it may be shown. For a terminal (`terminal`), ESC and every other C0 and
/// C1 control character but `\n` and `\t`, DEL, and the bidirectional overrides are written
/// escaped (`\x1b`, `\u{202e}`): they could otherwise move the cursor, rewrite the title or
/// the clipboard, or hide text from whoever reads it. Elsewhere (a pipe, a file) the text is
/// passed on byte for byte.
pub fn tenant_text(text: &str, terminal: bool) -> Cow<'_, str> {
    if !terminal || !text.chars().any(is_unsafe_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !is_unsafe_on_terminal(c) {
            shown.push(c);
        } else if u32::from(c) <= 0xff {
            shown.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else {
            shown.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        }
    }
    Cow::Owned(shown)
}

fn is_unsafe_on_terminal(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether stdout is a terminal, for [`tenant_text`].
pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// `KEY: value` lines with the values aligned in one column; a value's further lines are
/// indented to that column.
pub fn key_values<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let width = pairs
        .iter()
        .map(|(k, _)| k.as_ref().chars().count() + 1)
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (key, value) in pairs {
        let label = format!("{}:", key.as_ref());
        let mut lines = value.as_ref().split('\n');
        let first = lines.next().unwrap_or("");
        let line = format!("{label:<width$} {first}");
        out.push_str(line.trim_end());
        out.push('\n');
        for more in lines {
            out.push_str(&format!("{:width$} {more}", ""));
            out.push('\n');
        }
    }
    out
}

/// Rows as columns separated by two spaces; the last column is not padded.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c > 0 {
                line.push_str("  ");
            }
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<width$}", width = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Prints a value as pretty JSON on stdout (the `--json` output).
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    println!("{text}");
    Ok(())
}

/// Runs `work` as a Heroku-style action line on stderr: `Creating ⬢ myapp... done`.
///
/// On a terminal the message shows while the work runs; elsewhere the line is written only
/// once the work succeeded, so a failing command prints nothing but its one error line.
/// `work` returns its result and a suffix for `done` (e.g. `, v3`).
pub fn action<T>(
    message: &str,
    work: impl FnOnce() -> anyhow::Result<(T, String)>,
) -> anyhow::Result<T> {
    let mut stderr = std::io::stderr();
    let live = stderr.is_terminal();
    if live {
        let _ = write!(stderr, "{message}... ");
        let _ = stderr.flush();
    }
    match work() {
        Ok((value, suffix)) => {
            if live {
                let _ = writeln!(stderr, "done{suffix}");
            } else {
                let _ = writeln!(stderr, "{message}... done{suffix}");
            }
            Ok(value)
        }
        Err(error) => {
            if live {
                let _ = writeln!(stderr, "!");
            }
            Err(error)
        }
    }
}

/// A list of names as Heroku words it: `A`, `A and B`, `A, B and C`.
pub fn word_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// Every time shown to a reader, in one format: UTC, marked as such
/// (`2026/11/22 10:00:00 UTC`), the same in `ps`, `releases`, `info`, `domains`, `cron` and
/// `builds`. `--json` has RFC 3339 instead.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y/%m/%d %H:%M:%S UTC").to_string()
}

/// `2026/11/22 10:00:00 UTC (~ 5m ago)`, as Heroku's `ps` and `releases` show it.
pub fn timestamp_ago(
    at: chrono::DateTime<chrono::Utc>,
    now: chrono::DateTime<chrono::Utc>,
) -> String {
    format!("{} (~ {} ago)", timestamp(at), ago(now - at))
}

/// `12s`, `3m`, `5h`, `2d`: the largest whole unit, as Heroku rounds it.
pub fn ago(elapsed: chrono::TimeDelta) -> String {
    let seconds = elapsed.num_seconds().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m", seconds / 60),
        3600..86400 => format!("{}h", seconds / 3600),
        _ => format!("{}d", seconds / 86400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_use_the_largest_whole_unit() {
        assert_eq!(ago(chrono::TimeDelta::seconds(59)), "59s");
        assert_eq!(ago(chrono::TimeDelta::seconds(61)), "1m");
        assert_eq!(ago(chrono::TimeDelta::hours(5)), "5h");
        assert_eq!(ago(chrono::TimeDelta::days(3)), "3d");
        assert_eq!(ago(chrono::TimeDelta::seconds(-5)), "0s");
    }

    #[test]
    fn every_time_is_shown_in_utc_marked_as_such() {
        use chrono::TimeZone;
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
            .unwrap();
        assert_eq!(timestamp(at), "2026/11/22 10:00:00 UTC");
        assert_eq!(
            timestamp_ago(at, at + chrono::TimeDelta::minutes(5)),
            "2026/11/22 10:00:00 UTC (~ 5m ago)"
        );
    }

    #[test]
    fn key_values_align_on_the_longest_key() {
        let rendered = key_values(&[
            ("GREETING", "hello"),
            ("A", "1"),
            ("DATABASE_URL", "postgres://x"),
        ]);
        assert_eq!(
            rendered,
            "GREETING:     hello\n\
             A:            1\n\
             DATABASE_URL: postgres://x\n"
        );
    }

    #[test]
    fn key_values_indent_multiline_values_and_trim_empty_ones() {
        let rendered = key_values(&[("CERT", "line1\nline2"), ("EMPTY", "")]);
        assert_eq!(rendered, "CERT:  line1\n       line2\nEMPTY:\n");
    }

    #[test]
    fn tables_pad_all_but_the_last_column() {
        let rendered = table(&[
            vec!["v2".into(), "Set A config vars".into(), "alice".into()],
            vec!["v10".into(), "Unset A".into(), "bob".into()],
        ]);
        assert_eq!(
            rendered,
            "v2   Set A config vars  alice\n\
             v10  Unset A            bob\n"
        );
    }

    #[test]
    fn empty_inputs_render_nothing() {
        assert_eq!(table(&[]), "");
        assert_eq!(key_values::<&str, &str>(&[]), "");
    }

    #[test]
    fn styles_colour_only_when_asked() {
        let plain = Style { colour: false };
        let coloured = Style { colour: true };
        assert_eq!(plain.app("web"), "⬢ web");
        assert_eq!(plain.header("web Config Vars"), "=== web Config Vars");
        assert_eq!(coloured.app("web"), "\x1b[35m⬢ web\x1b[0m");
        assert_eq!(coloured.header("Apps"), "\x1b[1m=== Apps\x1b[0m");
    }

    #[test]
    fn tenant_text_is_escaped_on_a_terminal_only() {
        for (raw, shown) in [
            ("plain text", "plain text"),
            ("tab\tand\nnewline", "tab\tand\nnewline"),
            ("\x1b[2J\x1b]0;pwned\x07", "\\x1b[2J\\x1b]0;pwned\\x07"),
            ("over\rwrite", "over\\x0dwrite"),
            ("back\x08space del\x7f", "back\\x08space del\\x7f"),
            ("c1 \u{9b}31m csi", "c1 \\x9b31m csi"),
            ("nul\0", "nul\\x00"),
            ("bidi \u{202e}txt.exe", "bidi \\u{202e}txt.exe"),
            ("isolate \u{2066}x\u{2069}", "isolate \\u{2066}x\\u{2069}"),
            ("unicode ⬢ é 日本", "unicode ⬢ é 日本"),
        ] {
            assert_eq!(tenant_text(raw, true), shown, "{raw:?}");
            assert_eq!(tenant_text(raw, false), raw, "piped output is untouched");
        }
        assert!(matches!(tenant_text("clean", true), Cow::Borrowed(_)));
    }

    #[test]
    fn word_lists_read_like_heroku() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(word_list(&names(&["A"])), "A");
        assert_eq!(word_list(&names(&["A", "B"])), "A and B");
        assert_eq!(word_list(&names(&["A", "B", "C"])), "A, B and C");
    }
}

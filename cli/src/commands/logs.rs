//! `logs`: the app's recent output, router lines and platform events,
//! `2026-11-22T10:00:00.123456+00:00 app[web.1]: line`, read line by line from gitd's NDJSON stream as it arrives. With `--tail`
//! it follows until Ctrl-C, which ends it with status 0.

use std::io::Write;

use anyhow::bail;
use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use paas_api::types::{LogLine, LogSource};

use super::Context;
use crate::AppArg;
use crate::client::LogsQuery;
use crate::output::{Style, tenant_text};

/// `NO_COLOR`-aware ANSI colours given to process types in turn (cyan, green, yellow, blue,
/// magenta, red, and their bright forms).
const PALETTE: &[&str] = &[
    "36", "32", "33", "34", "35", "31", "96", "92", "93", "94", "95",
];

#[derive(Debug, Args)]
pub struct LogsArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// How many lines to show
    #[arg(short, long, value_name = "N", default_value_t = 100)]
    pub num: usize,
    /// Keep streaming new lines until Ctrl-C
    #[arg(short, long, visible_short_alias = 'f', visible_alias = "follow")]
    pub tail: bool,
    /// Only this process type (web, worker, …) or instance (web.1)
    #[arg(short, long, visible_alias = "ps", value_name = "PROCESS")]
    pub process: Option<String>,
    /// Only the app's own output (app) or platform events and router lines (paas)
    #[arg(short, long, value_name = "SOURCE", value_parser = source_parser())]
    pub source: Option<LogSource>,
    /// Leave out the router's lines (paas[router]: one per request)
    #[arg(long)]
    pub no_router: bool,
    /// Only the lines of this release (v3 or 3): its instances' output and the requests they served
    #[arg(long, value_name = "VERSION")]
    pub release: Option<String>,
}

/// `app` or `paas`, listed as the possible values in `--help`.
fn source_parser() -> impl TypedValueParser<Value = LogSource> {
    PossibleValuesParser::new([LogSource::App.as_str(), LogSource::Paas.as_str()]).map(|source| {
        match source.as_str() {
            "app" => LogSource::App,
            _ => LogSource::Paas,
        }
    })
}

pub fn show(ctx: &Context, args: &LogsArgs) -> anyhow::Result<()> {
    if args.num == 0 {
        bail!("-n must be 1 or more.");
    }
    let query = LogsQuery {
        num: args.num,
        tail: args.tail,
        process: args.process.as_deref().map(str::parse).transpose()?,
        source: args.source,
        router: !args.no_router,
        release: args
            .release
            .as_deref()
            .map(super::releases::parse_version)
            .transpose()?,
    };
    let name = ctx.app(&args.app)?;
    let client = ctx.client()?;
    if args.tail {
        end_quietly_on_interrupt();
    }
    let lines = client.logs(&name, &query)?;
    let colour = Style::stdout().colour;
    let mut stdout = std::io::stdout().lock();
    for line in lines {
        let parsed: LogLine = line?;
        let written = writeln!(stdout, "{}", render(&parsed, colour)).and_then(|()| stdout.flush());
        // A closed pipe (`paas logs | head`) is the reader being done, not an error.
        if written.is_err() {
            return Ok(());
        }
    }
    // The server ends a followed stream only when it cannot go on.
    if args.tail {
        bail!("The log stream ended: paas-gitd or its agent stopped or restarted.");
    }
    Ok(())
}

/// `2026-11-22T10:00:00.123456+00:00 app[web.1]: line`, the `source[dyno]:` part coloured by
/// process type when `colour`.
pub fn render(line: &LogLine, colour: bool) -> String {
    let timestamp = line.timestamp.format("%Y-%m-%dT%H:%M:%S%.6f%:z");
    let prefix = format!(
        "{}[{}]:",
        line.source.as_str(),
        tenant_text(&line.dyno, true).replace('\n', "\\n")
    );
    let prefix = if colour {
        let code = match line.source {
            LogSource::App => colour_of(&line.dyno),
            LogSource::Paas if line.dyno.contains('.') => colour_of(&line.dyno),
            LogSource::Paas => "1;35",
        };
        format!("\x1b[{code}m{prefix}\x1b[0m")
    } else {
        prefix
    };
    // Log lines are escaped wherever they go, as always: a log is often piped to a pager
    // that passes escapes through. One line stays one line.
    let text = tenant_text(&line.line, true).replace('\n', "\\n");
    format!("{timestamp} {prefix} {text}")
}

/// The same colour for every instance of a process type.
fn colour_of(dyno: &str) -> &'static str {
    let process = dyno.split('.').next().unwrap_or(dyno);
    let hash = process.bytes().fold(0usize, |hash, byte| {
        hash.wrapping_mul(31).wrapping_add(usize::from(byte))
    });
    PALETTE[hash % PALETTE.len()]
}

/// Ctrl-C ends `--tail` with status 0, as a normal way to stop following. Every line is
/// flushed as it is written, so exiting at once loses nothing.
fn end_quietly_on_interrupt() {
    extern "C" fn on_interrupt(_: libc::c_int) {
        // SAFETY: `_exit` is async-signal-safe; nothing else runs in the handler.
        unsafe { libc::_exit(0) }
    }
    // SAFETY: installs a handler that only calls an async-signal-safe function.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn line(source: LogSource, dyno: &str, text: &str) -> LogLine {
        LogLine {
            timestamp: chrono::Utc
                .with_ymd_and_hms(2026, 11, 22, 10, 0, 0)
                .unwrap()
                + chrono::TimeDelta::microseconds(123_456),
            source,
            dyno: dyno.into(),
            line: text.into(),
        }
    }

    #[test]
    fn lines_render_like_heroku() {
        assert_eq!(
            render(&line(LogSource::App, "web.1", "GET / 200"), false),
            "2026-11-22T10:00:00.123456+00:00 app[web.1]: GET / 200"
        );
        assert_eq!(
            render(
                &line(LogSource::Paas, "deploy", "Deploy 1a2b3c4 by user alice"),
                false
            ),
            "2026-11-22T10:00:00.123456+00:00 paas[deploy]: Deploy 1a2b3c4 by user alice"
        );
    }

    #[test]
    fn colour_marks_the_prefix_per_process_type() {
        let web1 = render(&line(LogSource::App, "web.1", "a"), true);
        let web2 = render(&line(LogSource::App, "web.2", "a"), true);
        let code = colour_of("web.1");
        assert!(
            web1.contains(&format!("\x1b[{code}mapp[web.1]:\x1b[0m a")),
            "{web1:?}"
        );
        assert_eq!(colour_of("web.1"), colour_of("web.2"));
        assert!(web2.contains("app[web.2]"));
    }

    #[test]
    fn forged_dynos_cannot_reach_the_terminal() {
        assert_eq!(
            render(&line(LogSource::App, "web.1\x1b[8m", "x"), false),
            "2026-11-22T10:00:00.123456+00:00 app[web.1\\x1b[8m]: x"
        );
    }

    #[test]
    fn control_characters_cannot_reach_the_terminal() {
        assert!(
            render(&line(LogSource::App, "web.1", "a\x1b[2Jb\tc\nd"), false)
                .ends_with("a\\x1b[2Jb\tc\\nd")
        );
    }
}

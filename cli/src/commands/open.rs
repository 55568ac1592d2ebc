//! `open`: prints the app's URL and, in a desktop session, opens it in the browser.

use std::process::{Command, Stdio};

use clap::Args;

use super::Context;
use crate::AppArg;

#[derive(Debug, Args)]
pub struct OpenArgs {
    #[command(flatten)]
    pub app: AppArg,
}

pub fn open(ctx: &Context, OpenArgs { app }: &OpenArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let app = ctx.client()?.app(&name)?;
    println!("{}", app.web_url);
    if desktop_session() {
        // The browser outlives us; a missing xdg-open is worth a note, not a failure.
        let spawned = Command::new("xdg-open")
            .arg(&app.web_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if let Err(err) = spawned {
            eprintln!("warning: could not run xdg-open: {err}");
        }
    }
    Ok(())
}

/// A graphical session to open a browser in (X11 or Wayland).
fn desktop_session() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

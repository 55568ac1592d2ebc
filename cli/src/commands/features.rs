//! `features`, `features:enable` and `features:disable`: an app's container lock-downs.

use clap::Args;
use paas_api::types::{AppFeature, Feature};

use super::Context;
use crate::output::{Style, print_json, table};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `features:enable` and `features:disable`.
#[derive(Debug, Args)]
pub struct FeatureArgs {
    #[command(flatten)]
    pub app: AppArg,
    pub feature: String,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let features = ctx.client()?.features(&name)?;
    let json = json.json;
    if json {
        return print_json(&features);
    }
    print!("{}", render(&name, &features, Style::stdout()));
    Ok(())
}

/// Heroku's layout: `[+]` for enabled, `[ ]` for disabled, name, description.
fn render(app: &str, features: &[AppFeature], style: Style) -> String {
    let rows: Vec<Vec<String>> = features
        .iter()
        .map(|feature| {
            let mark = if feature.enabled { "[+]" } else { "[ ]" };
            vec![
                format!("{mark} {}", feature.name),
                feature.description.clone(),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        style.header(&format!("App Features {}", style.app(app))),
        table(&rows)
    )
}

pub fn set(
    ctx: &Context,
    FeatureArgs { app, feature }: &FeatureArgs,
    enabled: bool,
) -> anyhow::Result<()> {
    let feature: Feature = feature.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let verb = if enabled { "Enabling" } else { "Disabling" };
    let style = Style::stderr();
    progress::action(
        &format!("{verb} {feature} for {}", style.app(&name)),
        |on_progress| {
            client.set_feature(&name, feature, enabled, on_progress)?;
            Ok(((), String::new()))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_render_with_their_state() {
        let features = [
            AppFeature {
                name: Feature::NonRoot,
                description: Feature::NonRoot.description().to_owned(),
                enabled: false,
            },
            AppFeature {
                name: Feature::ReadOnlyFs,
                description: Feature::ReadOnlyFs.description().to_owned(),
                enabled: true,
            },
        ];
        assert_eq!(
            render("web", &features, Style { colour: false }),
            "=== App Features ⬢ web\n\
             [ ] non-root      Run the app's processes as the unprivileged user nobody\n\
             [+] read-only-fs  Mount the root filesystem read-only (/tmp stays writable)\n"
        );
    }
}

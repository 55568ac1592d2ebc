//! `features`, `features:enable` and `features:disable`: an app's container lock-downs.

use paas_api::types::{AppFeature, Feature, FeatureUpdate};
use reqwest::Method;

use super::Context;
use crate::AppArg;
use crate::output::{Style, action, print_json, table};

pub fn list(ctx: &Context, app: &AppArg, json: bool) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let url = client.url(&["apps", &name, "features"]);
    let features: Vec<AppFeature> = client.execute(client.request(Method::GET, url))?.json()?;
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

pub fn set(ctx: &Context, app: &AppArg, feature: &str, enabled: bool) -> anyhow::Result<()> {
    let feature: Feature = feature.parse()?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let verb = if enabled { "Enabling" } else { "Disabling" };
    let style = Style::stderr();
    action(
        &format!("{verb} {feature} for {}", style.app(&name)),
        || {
            let url = client.url(&["apps", &name, "features", feature.name()]);
            let request = FeatureUpdate { enabled };
            client.execute(client.request(Method::PATCH, url).json(&request))?;
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

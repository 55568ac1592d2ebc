//! `ps:resize`: the memory and CPU limits of an app's process types (Dokku's
//! `resource:limit`). With sizes it makes a release that runs with them; without, it lists
//! what each process type asks for.

use clap::Args;
use paas_api::ProcessType;
use paas_api::resources::{ProcessResources, ProcessSize, ResizeRequest, describe};

use super::Context;
use crate::output::{Style, print_json, table};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ResizeArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The process type to resize (e.g. web); without sizes, list every type's
    pub process: Option<String>,
    /// Memory limit per instance: 256M, 1G, …
    #[arg(long, value_name = "SIZE")]
    pub memory: Option<String>,
    /// CPU limit per instance: 0.5, 2, …
    #[arg(long, value_name = "CPUS")]
    pub cpus: Option<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

pub fn resize(ctx: &Context, args: &ResizeArgs) -> anyhow::Result<()> {
    let process: Option<ProcessType> = args.process.as_deref().map(str::parse).transpose()?;
    let resources = ProcessResources {
        memory: args.memory.as_deref().map(str::parse).transpose()?,
        cpus: args.cpus.as_deref().map(str::parse).transpose()?,
    };
    if process.is_none() && !resources.is_default() {
        anyhow::bail!("name the process type to resize, e.g. `paas ps:resize web --memory 256M`");
    }
    let name = ctx.app(&args.app)?;
    let client = ctx.client()?;
    let (Some(process), false) = (&process, resources.is_default()) else {
        let mut sizes = client.sizes(&name)?;
        sizes.retain(|size| {
            process
                .as_ref()
                .is_none_or(|wanted| &size.process == wanted)
        });
        if args.json.json {
            return print_json(&sizes);
        }
        print!("{}", render(&name, &sizes, Style::stdout()));
        return Ok(());
    };
    let request = ResizeRequest::new(process.clone(), resources)?;
    let message = format!(
        "Resizing {process} of {} to {}",
        Style::stderr().app(&name),
        describe(resources.memory, resources.cpus)
    );
    let release = progress::action(&message, |on_progress| {
        let release = client.resize(&name, &request, on_progress)?;
        let suffix = format!(", v{}", release.version);
        Ok((release, suffix))
    })?;
    if args.json.json {
        print_json(&release)?;
    }
    Ok(())
}

/// One row per process type: its memory and CPU limits, `default` where the host's apply.
fn render(app: &str, sizes: &[ProcessSize], style: Style) -> String {
    let rows: Vec<Vec<String>> = sizes
        .iter()
        .map(|size| {
            let or_default = |value: Option<String>| value.unwrap_or_else(|| "default".into());
            vec![
                size.process.to_string(),
                or_default(size.resources.memory.map(|m| format!("memory {m}"))),
                or_default(size.resources.cpus.map(|c| format!("cpus {c}"))),
            ]
        })
        .collect();
    format!(
        "{}\n{}",
        style.header(&format!("Process sizes of {}", style.app(app))),
        table(&rows)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_list_per_process_type_with_the_defaults_named() {
        let sizes = [
            ProcessSize {
                process: "web".parse().unwrap(),
                resources: ProcessResources {
                    memory: Some("256M".parse().unwrap()),
                    cpus: Some("0.5".parse().unwrap()),
                },
            },
            ProcessSize {
                process: "worker".parse().unwrap(),
                resources: ProcessResources::default(),
            },
        ];
        assert_eq!(
            render("hello", &sizes, Style { colour: false }),
            "=== Process sizes of ⬢ hello\n\
             web     memory 256M  cpus 0.5\n\
             worker  default      default\n"
        );
    }
}

//! `ps`, `scale` (`ps:scale`), `restart` (`ps:restart`) and `ps:stop`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use clap::Args;
use paas_api::ProcessType;
use paas_api::formation::parse_scale_args;
use paas_api::resources::describe;
use paas_api::types::{Formation, InstanceState, ProcessInstance, StopRequest};

use super::Context;
use crate::output::{Style, print_json, tenant_text, timestamp_ago, word_list};
use crate::progress;
use crate::{AppArg, JsonArg};

#[derive(Debug, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub app: AppArg,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// TYPE=N, TYPE+N or TYPE-N
    #[arg(required = true, value_name = "TYPE=N")]
    pub changes: Vec<String>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Args)]
pub struct RestartArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// Only this process type (web), or only this instance (web.1) [default: all]
    pub process: Option<String>,
}

#[derive(Debug, Args)]
pub struct StopArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The instance (web.1), every instance of a type (web), or a one-off (run.1)
    #[arg(value_name = "TYPE[.N]")]
    pub process: String,
}

pub fn list(ctx: &Context, ListArgs { app, json }: &ListArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let instances = ctx.client()?.ps(&name)?;
    let json = json.json;
    if json {
        return print_json(&instances);
    }
    print!(
        "{}",
        render_ps(&name, &instances, Utc::now(), Style::stdout())
    );
    Ok(())
}

/// Heroku's layout: a header per process type, then `web.1: up 2026/11/22 10:00:00 UTC (~ 3m ago)`
/// and the release each instance runs. On a cluster each instance names its node.
fn render_ps(app: &str, instances: &[ProcessInstance], now: DateTime<Utc>, style: Style) -> String {
    if instances.is_empty() {
        return format!("{app} has no running processes.\n");
    }
    let clustered = instances.iter().any(|instance| instance.node.is_some());
    let (oneoffs, instances): (Vec<&ProcessInstance>, Vec<&ProcessInstance>) =
        instances.iter().partition(|instance| instance.oneoff);
    let mut by_process: BTreeMap<&str, Vec<&ProcessInstance>> = BTreeMap::new();
    for instance in instances {
        by_process
            .entry(instance.process.as_str())
            .or_default()
            .push(instance);
    }
    let since = |instance: &ProcessInstance| {
        instance
            .since
            .map(|since| format!(" {}", timestamp_ago(since, now)))
            .unwrap_or_default()
    };
    let on = |instance: &ProcessInstance| {
        if !clustered {
            return String::new();
        }
        match &instance.node {
            Some(node) => format!(" on {}", tenant_text(node, true)),
            None => " on no node".to_owned(),
        }
    };
    let mut out = String::new();
    // Heroku's one-off section comes first: `run.1 (512M): up …: bash`.
    if !oneoffs.is_empty() {
        out.push_str(&style.header(&format!("run: one-off processes ({})", oneoffs.len())));
        out.push('\n');
        for instance in oneoffs {
            let sizes = describe(instance.memory, instance.cpus);
            let sizes = if sizes.is_empty() {
                String::new()
            } else {
                format!(" ({sizes})")
            };
            let command = instance
                .command
                .as_deref()
                .map(|command| format!(": {}", tenant_text(command, true)))
                .unwrap_or_default();
            out.push_str(&format!(
                "{}.{}{sizes}: {}{}{}{command}\n",
                instance.process,
                instance.index,
                instance.state.as_str(),
                since(instance),
                on(instance)
            ));
        }
    }
    for (process, instances) in by_process {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&style.header(&header(process, &instances)));
        out.push('\n');
        for instance in instances {
            let since = since(instance);
            let notes = instance_notes(instance);
            let on = on(instance);
            out.push_str(&format!(
                "{}.{}: {}{notes}{since}{on}  v{}\n",
                instance.process,
                instance.index,
                instance.state.as_str(),
                instance.release
            ));
        }
    }
    out
}

/// What `ps` adds to an instance's state: ` (out of memory, 3 restarts)`, so that a crash
/// loop shows as one.
fn instance_notes(instance: &ProcessInstance) -> String {
    let mut notes = Vec::new();
    if instance.out_of_memory && instance.state == InstanceState::Crashed {
        notes.push("out of memory".to_owned());
    }
    match instance.restarts {
        0 => {}
        1 => notes.push("1 restart".to_owned()),
        count => notes.push(format!("{count} restarts")),
    }
    if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    }
}

/// Heroku's `web (256M, 0.5 CPU): npm start (2)`: the sizes and command of the newest release
/// among the instances, each left out when there is none.
fn header(process: &str, instances: &[&ProcessInstance]) -> String {
    let newest = instances.iter().max_by_key(|instance| instance.release);
    let sizes = newest
        .map(|instance| describe(instance.memory, instance.cpus))
        .filter(|sizes| !sizes.is_empty())
        .map(|sizes| format!(" ({sizes})"))
        .unwrap_or_default();
    let command = newest
        .and_then(|instance| instance.command.as_deref())
        .map(|command| format!(": {}", tenant_text(command, true)))
        .unwrap_or_default();
    format!("{process}{sizes}{command} ({})", instances.len())
}

pub fn scale(ctx: &Context, ScaleArgs { app, changes, json }: &ScaleArgs) -> anyhow::Result<()> {
    let changes = parse_scale_args(changes)?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let message = format!("Scaling processes of {}", Style::stderr().app(&name));
    let formation = progress::action(&message, |on_progress| {
        let formation = client.scale(&name, &changes, on_progress)?;
        let suffix = format!(", now running {}", running(&formation));
        Ok((formation, suffix))
    })?;
    if json.json {
        print_json(&formation)?;
    }
    Ok(())
}

/// `web at 3, worker at 1`, or `nothing` when every quantity is zero.
fn running(formation: &[Formation]) -> String {
    let parts: Vec<String> = formation
        .iter()
        .filter(|f| f.quantity > 0)
        .map(|f| format!("{} at {}", f.process, f.quantity))
        .collect();
    if parts.is_empty() {
        "nothing".to_owned()
    } else {
        word_list(&parts)
    }
}

pub fn restart(ctx: &Context, RestartArgs { app, process }: &RestartArgs) -> anyhow::Result<()> {
    let (process, index) = match process.as_deref().map(parse_instance).transpose()? {
        Some((process, index)) => (Some(process), index),
        None => (None, None),
    };
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let what = match (&process, index) {
        (Some(process), Some(index)) => format!("{process}.{index}"),
        (Some(process), None) => format!("{process} processes"),
        (None, _) => "all processes".to_owned(),
    };
    let message = format!("Restarting {what} of {}", Style::stderr().app(&name));
    progress::action(&message, |on_progress| {
        client.restart(&name, process.clone(), index, on_progress)?;
        Ok(((), String::new()))
    })
}

pub fn stop(ctx: &Context, StopArgs { app, process }: &StopArgs) -> anyhow::Result<()> {
    let (process, index) = parse_instance(process)?;
    let name = ctx.app(app)?;
    let client = ctx.client()?;
    let what = match index {
        Some(index) => format!("{process}.{index}"),
        None => format!("{process} processes"),
    };
    let message = format!("Stopping {what} of {}", Style::stderr().app(&name));
    progress::action(&message, |_| {
        client.stop(&name, &StopRequest { process, index })?;
        Ok(((), String::new()))
    })
}

/// `web` (every instance of the type) or `web.1` (that one).
fn parse_instance(text: &str) -> anyhow::Result<(ProcessType, Option<u32>)> {
    let Some((process, index)) = text.rsplit_once('.') else {
        return Ok((text.parse()?, None));
    };
    let index = index
        .parse::<u32>()
        .ok()
        .filter(|index| *index >= 1)
        .ok_or_else(|| anyhow::anyhow!("invalid instance {text:?}: use TYPE.N, e.g. web.1"))?;
    Ok((process.parse()?, Some(index)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn instance(
        process: &str,
        index: u32,
        state: InstanceState,
        minutes_ago: i64,
    ) -> ProcessInstance {
        ProcessInstance {
            process: process.parse().unwrap(),
            index,
            release: 4,
            state,
            since: Some(now() - chrono::TimeDelta::minutes(minutes_ago)),
            container: format!("paas-hello-v4-{process}-{index}"),
            memory: None,
            cpus: None,
            out_of_memory: false,
            restarts: 0,
            command: None,
            oneoff: false,
            node: None,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 22, 10, 3, 0).unwrap()
    }

    #[test]
    fn ps_groups_instances_by_process_type_like_heroku() {
        let mut crashed = instance("worker", 1, InstanceState::Crashed, 0);
        crashed.since = None;
        let instances = [
            instance("web", 1, InstanceState::Up, 3),
            instance("web", 2, InstanceState::Starting, 0),
            crashed,
        ];
        assert_eq!(
            render_ps("hello", &instances, now(), Style { colour: false }),
            "=== web (2)\n\
             web.1: up 2026/11/22 10:00:00 UTC (~ 3m ago)  v4\n\
             web.2: starting 2026/11/22 10:03:00 UTC (~ 0s ago)  v4\n\
             \n\
             === worker (1)\n\
             worker.1: crashed  v4\n"
        );
        assert_eq!(
            render_ps("hello", &[], now(), Style { colour: false }),
            "hello has no running processes.\n"
        );
    }

    #[test]
    fn ps_heads_each_type_with_its_sizes_and_command() {
        let sized = |mut instance: ProcessInstance| {
            instance.memory = Some("256M".parse().unwrap());
            instance.cpus = Some("0.5".parse().unwrap());
            instance.command = Some("./server".into());
            instance
        };
        let mut oom = sized(instance("worker", 1, InstanceState::Crashed, 0));
        oom.out_of_memory = true;
        oom.restarts = 3;
        oom.since = None;
        let mut restarted_once = sized(instance("web", 2, InstanceState::Up, 3));
        restarted_once.restarts = 1;
        let instances = [
            sized(instance("web", 1, InstanceState::Up, 3)),
            restarted_once,
            oom,
        ];
        assert_eq!(
            render_ps("hello", &instances, now(), Style { colour: false }),
            "=== web (256M, 0.5 CPU): ./server (2)\n\
             web.1: up 2026/11/22 10:00:00 UTC (~ 3m ago)  v4\n\
             web.2: up (1 restart) 2026/11/22 10:00:00 UTC (~ 3m ago)  v4\n\
             \n\
             === worker (256M, 0.5 CPU): ./server (1)\n\
             worker.1: crashed (out of memory, 3 restarts)  v4\n"
        );
    }

    #[test]
    fn one_offs_come_first_with_their_commands_and_stopped_instances_say_so() {
        let mut run = instance("run", 1, InstanceState::Up, 2);
        run.oneoff = true;
        run.command = Some("sleep 600".into());
        run.memory = Some("512M".parse().unwrap());
        let mut cron = instance("cron", 1, InstanceState::Up, 0);
        cron.oneoff = true;
        cron.command = Some("./report".into());
        let mut stopped = instance("web", 1, InstanceState::Stopped, 0);
        stopped.since = None;
        let instances = [stopped, instance("web", 2, InstanceState::Up, 3), run, cron];
        assert_eq!(
            render_ps("hello", &instances, now(), Style { colour: false }),
            "=== run: one-off processes (2)\n\
             run.1 (512M): up 2026/11/22 10:01:00 UTC (~ 2m ago): sleep 600\n\
             cron.1: up 2026/11/22 10:03:00 UTC (~ 0s ago): ./report\n\
             \n\
             === web (2)\n\
             web.1: stopped  v4\n\
             web.2: up 2026/11/22 10:00:00 UTC (~ 3m ago)  v4\n"
        );
    }

    #[test]
    fn on_a_cluster_each_instance_names_its_node() {
        let on = |node: Option<&str>, mut instance: ProcessInstance| {
            instance.node = node.map(str::to_owned);
            instance
        };
        let mut run = on(Some("paascl-1"), instance("run", 1, InstanceState::Up, 2));
        run.oneoff = true;
        run.command = Some("bash".into());
        let mut crashed = on(
            Some("paascl-3"),
            instance("worker", 1, InstanceState::Crashed, 0),
        );
        crashed.since = None;
        crashed.restarts = 2;
        let mut pending = on(None, instance("web", 3, InstanceState::Starting, 0));
        pending.since = None;
        let instances = [
            on(Some("paascl-2"), instance("web", 1, InstanceState::Up, 3)),
            on(
                Some("paascl-\x1b[2Jevil"),
                instance("web", 2, InstanceState::Up, 3),
            ),
            pending,
            crashed,
            run,
        ];
        insta::assert_snapshot!(render_ps(
            "hello",
            &instances,
            now(),
            Style { colour: false }
        ));
        let json = serde_json::to_value(&instances[0]).unwrap();
        assert_eq!(json["node"], "paascl-2", "--json carries it");
    }

    #[test]
    fn the_scale_summary_names_what_runs() {
        let formation = |pairs: &[(&str, u32)]| -> Vec<Formation> {
            pairs
                .iter()
                .map(|(process, quantity)| Formation {
                    process: process.parse().unwrap(),
                    quantity: *quantity,
                    command: None,
                })
                .collect()
        };
        assert_eq!(
            running(&formation(&[("web", 3), ("worker", 1)])),
            "web at 3 and worker at 1"
        );
        assert_eq!(running(&formation(&[("web", 0)])), "nothing");
    }
}

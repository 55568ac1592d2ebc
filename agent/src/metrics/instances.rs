//! Every running instance's CPU and memory, from Docker's one-shot stats (`stream=false,
//! one_shot=true`: one reading, without the second one a second later that plain `docker stats`
//! waits for), asked for [`STATS_CONCURRENCY`] containers at a time. CPU is the difference of
//! the container's CPU time since its previous reading over the time between them, so an
//! instance shows from its second round on.
//!
//! dockerd does not read a container's stats when asked: it collects every container someone
//! waits on once a second and hands each reading to all the requests waiting then. So the
//! requests of one round are sent together, to be answered by the same collection: a round
//! takes about one second whatever its size (up to the cap); asked a few at a time, it took a
//! second per few.

use std::collections::HashMap;
use std::time::Instant;

use bollard::Docker;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::{ListContainersOptions, StatsOptions};
use futures::StreamExt;
use paas_api::metrics::InstanceSample;
use paas_api::{AppName, ProcessType};

use crate::naming::labels::InstanceLabels;
use crate::naming::{InstanceKey, docker_filters, is_ours};

/// Stats requests in flight at once. Each waits for dockerd's next collection, which reads
/// every waited-on container once however many requests wait, so what a request in flight
/// costs is a connection to dockerd: enough for a busy host's round to be one collection, few
/// enough that hundreds of containers do not open hundreds of connections at once.
pub const STATS_CONCURRENCY: usize = 64;

/// A container's CPU time when it was last read.
#[derive(Clone, Copy)]
struct CpuReading {
    total_ns: u64,
    at: Instant,
}

/// The previous CPU readings, by container id.
#[derive(Default)]
pub struct CpuReadings {
    by_container: HashMap<String, CpuReading>,
}

/// One of the agent's running instances, as its labels name it.
struct Running {
    id: String,
    app: AppName,
    process: ProcessType,
    index: u32,
}

/// Samples every running instance. Containers whose stats cannot be read this round (one that
/// just stopped) are left out.
pub async fn sample(
    docker: &Docker,
    key: &InstanceKey,
    readings: &mut CpuReadings,
) -> Result<Vec<InstanceSample>, bollard::errors::Error> {
    let summaries = docker
        .list_containers(Some(ListContainersOptions {
            filters: Some(docker_filters(key, None, None)),
            ..Default::default()
        }))
        .await?;
    let running: Vec<Running> = summaries
        .into_iter()
        .filter_map(|summary| {
            let labels = summary.labels?;
            if !is_ours(key, &labels) {
                return None;
            }
            let instance = InstanceLabels::parse(&labels)?;
            Some(Running {
                id: summary.id?,
                app: instance.app.parse().ok()?,
                process: instance.process.parse().ok()?,
                index: instance.index,
            })
        })
        .collect();
    let stats: Vec<(Running, Option<ContainerStatsResponse>, Instant)> =
        futures::stream::iter(running)
            .map(|instance| async move {
                let options = StatsOptions {
                    stream: false,
                    one_shot: true,
                };
                let stats = docker
                    .stats(&instance.id, Some(options))
                    .next()
                    .await
                    .and_then(Result::ok);
                (instance, stats, Instant::now())
            })
            .buffer_unordered(STATS_CONCURRENCY)
            .collect()
            .await;
    let mut seen = HashMap::with_capacity(stats.len());
    let mut samples = Vec::with_capacity(stats.len());
    for (instance, stats, at) in stats {
        let Some(stats) = stats else { continue };
        let Some(total_ns) = stats
            .cpu_stats
            .as_ref()
            .and_then(|cpu| cpu.cpu_usage.as_ref())
            .and_then(|usage| usage.total_usage)
        else {
            continue;
        };
        let reading = CpuReading { total_ns, at };
        let previous = readings.by_container.get(&instance.id).copied();
        seen.insert(instance.id.clone(), reading);
        let Some(previous) = previous else { continue };
        let (memory_bytes, memory_limit_bytes) = memory(&stats);
        samples.push(InstanceSample {
            app: instance.app,
            process: instance.process,
            index: instance.index,
            cpu_percent: cpu_percent(previous, reading),
            memory_bytes,
            memory_limit_bytes,
        });
    }
    readings.by_container = seen;
    samples.sort_by(|a, b| (&a.app, &a.process, a.index).cmp(&(&b.app, &b.process, b.index)));
    Ok(samples)
}

fn cpu_percent(before: CpuReading, now: CpuReading) -> f64 {
    let wall_ns = now.at.duration_since(before.at).as_nanos() as f64;
    if wall_ns <= 0.0 || now.total_ns < before.total_ns {
        return 0.0;
    }
    (now.total_ns - before.total_ns) as f64 / wall_ns * 100.0
}

/// Use without the reclaimable file cache (`inactive_file` on cgroup v2, `total_inactive_file`
/// on v1), as `docker stats` shows it; and the limit.
fn memory(stats: &ContainerStatsResponse) -> (u64, Option<u64>) {
    let Some(memory) = &stats.memory_stats else {
        return (0, None);
    };
    let cache = memory
        .stats
        .as_ref()
        .and_then(|stats| {
            stats
                .get("inactive_file")
                .or_else(|| stats.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    let usage = memory.usage.unwrap_or(0).saturating_sub(cache);
    (usage, memory.limit.filter(|limit| *limit > 0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::ContainerMemoryStats;
    use std::time::Duration;

    #[test]
    fn cpu_is_the_share_of_one_core_between_readings() {
        let start = Instant::now();
        let before = CpuReading {
            total_ns: 1_000_000_000,
            at: start,
        };
        let busy = CpuReading {
            total_ns: 3_000_000_000,
            at: start + Duration::from_secs(10),
        };
        assert!((cpu_percent(before, busy) - 20.0).abs() < 1e-9);
        let restarted = CpuReading {
            total_ns: 5,
            at: start + Duration::from_secs(10),
        };
        assert_eq!(cpu_percent(before, restarted), 0.0);
        assert_eq!(cpu_percent(before, before), 0.0);
    }

    #[test]
    fn memory_leaves_the_file_cache_out() {
        let stats = |entries: &[(&str, u64)]| ContainerStatsResponse {
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(100_000),
                limit: Some(512 << 20),
                stats: Some(entries.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            memory(&stats(&[("inactive_file", 30_000)])),
            (70_000, Some(512 << 20))
        );
        assert_eq!(memory(&stats(&[("total_inactive_file", 1_000)])).0, 99_000);
        assert_eq!(memory(&stats(&[])).0, 100_000);
        assert_eq!(memory(&ContainerStatsResponse::default()), (0, None));
    }
}

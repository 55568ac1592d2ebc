//! `metrics`: an app's CPU, memory and request series over the last hour or day, as the latest
//! value, the minimum, mean and maximum of the period and a sparkline of the newest points, then
//! the status classes and the deploys and restarts in the period.

use chrono::{DateTime, Utc};
use clap::Args;
use paas_api::metrics::{AppMetrics, MarkerKind, MetricsPeriod};

use super::Context;
use crate::output::{Style, print_json, table, tenant_text, timestamp_ago};
use crate::{AppArg, JsonArg};

/// Points a sparkline shows (the newest).
const SPARKLINE_POINTS: usize = 30;
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(flatten)]
    pub app: AppArg,
    /// The span to show: 1h (10 s points) or 24h (1 min points)
    #[arg(long, default_value = "1h", value_parser = parse_period)]
    pub period: MetricsPeriod,
    #[command(flatten)]
    pub json: JsonArg,
}

fn parse_period(text: &str) -> Result<MetricsPeriod, String> {
    text.parse()
}

pub fn show(ctx: &Context, MetricsArgs { app, period, json }: &MetricsArgs) -> anyhow::Result<()> {
    let name = ctx.app(app)?;
    let metrics = ctx.client()?.metrics(&name, *period)?;
    if json.json {
        return print_json(&metrics);
    }
    print!("{}", render(&metrics, Utc::now(), Style::stdout()));
    Ok(())
}

/// How a series' values are written.
#[derive(Clone, Copy)]
enum Unit {
    Percent,
    Bytes,
    PerSecond,
    Millis,
}

impl Unit {
    fn format(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{value:.1}%"),
            Unit::Bytes => bytes(value),
            Unit::PerSecond => format!("{value:.2}/s"),
            Unit::Millis => format!("{value:.1} ms"),
        }
    }
}

fn bytes(value: f64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if value >= 1024.0 * MIB {
        format!("{:.2} GiB", value / (1024.0 * MIB))
    } else {
        format!("{:.1} MiB", value / MIB)
    }
}

/// `name  latest  min  avg  max  sparkline`, or nothing for an empty series.
fn series_row(name: String, unit: Unit, values: &[f64]) -> Option<Vec<String>> {
    let latest = *values.last()?;
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    Some(vec![
        name,
        unit.format(latest),
        unit.format(min),
        unit.format(avg),
        unit.format(max),
        sparkline(values),
    ])
}

/// The newest points as bars scaled between their own minimum and maximum.
fn sparkline(values: &[f64]) -> String {
    let newest = &values[values.len().saturating_sub(SPARKLINE_POINTS)..];
    let min = newest.iter().copied().fold(f64::INFINITY, f64::min);
    let max = newest.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    newest
        .iter()
        .map(|value| {
            let level = if max > min {
                ((value - min) / (max - min) * (SPARKS.len() - 1) as f64).round() as usize
            } else {
                0
            };
            SPARKS[level.min(SPARKS.len() - 1)]
        })
        .collect()
}

fn render(metrics: &AppMetrics, now: DateTime<Utc>, style: Style) -> String {
    let mut out = format!(
        "{}\n",
        style.header(&format!(
            "{} Metrics (last {}, {} s points)",
            metrics.app, metrics.period, metrics.resolution_secs
        ))
    );
    let mut rows = vec![vec![
        String::new(),
        "latest".to_owned(),
        "min".to_owned(),
        "avg".to_owned(),
        "max".to_owned(),
        String::new(),
    ]];
    for process in &metrics.processes {
        let many = process.instances.len() > 1;
        let mut series = Vec::new();
        for instance in &process.instances {
            series.push((instance.instance.clone(), &instance.points));
        }
        if many {
            series.push((format!("{} (total)", process.process), &process.total));
        }
        for (name, points) in series {
            let cpu: Vec<f64> = points.iter().map(|p| p.cpu_percent).collect();
            let memory: Vec<f64> = points.iter().map(|p| p.memory_bytes as f64).collect();
            rows.extend(series_row(format!("{name} cpu"), Unit::Percent, &cpu));
            rows.extend(series_row(format!("{name} memory"), Unit::Bytes, &memory));
        }
    }
    let rate: Vec<f64> = metrics
        .requests
        .iter()
        .map(|p| p.requests_per_sec)
        .collect();
    let p50: Vec<f64> = metrics.requests.iter().filter_map(|p| p.p50_ms).collect();
    let p95: Vec<f64> = metrics.requests.iter().filter_map(|p| p.p95_ms).collect();
    rows.extend(series_row("requests".to_owned(), Unit::PerSecond, &rate));
    rows.extend(series_row("p50 latency".to_owned(), Unit::Millis, &p50));
    rows.extend(series_row("p95 latency".to_owned(), Unit::Millis, &p95));
    if rows.len() == 1 {
        out.push_str("No samples in this period yet.\n");
    } else {
        out.push_str(&table(&rows));
    }
    let total = |class: fn(&paas_api::metrics::StatusClasses) -> u64| -> u64 {
        metrics.requests.iter().map(|p| class(&p.status)).sum()
    };
    let requests: u64 = metrics.requests.iter().map(|p| p.requests).sum();
    out.push_str(&format!(
        "\nRequests: {requests} (2xx {}, 3xx {}, 4xx {}, 5xx {})\n",
        total(|s| s.success),
        total(|s| s.redirect),
        total(|s| s.client_error),
        total(|s| s.server_error),
    ));
    if !metrics.markers.is_empty() {
        out.push('\n');
        let markers: Vec<Vec<String>> = metrics
            .markers
            .iter()
            .map(|marker| {
                let kind = match marker.kind {
                    MarkerKind::Deploy => "deploy",
                    MarkerKind::Rollback => "rollback",
                    MarkerKind::Release => "release",
                    MarkerKind::Restart => "restart",
                };
                vec![
                    timestamp_ago(marker.at, now),
                    kind.to_owned(),
                    tenant_text(&marker.label, true).into_owned(),
                ]
            })
            .collect();
        out.push_str(&table(&markers));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use paas_api::metrics::{
        InstanceMetrics, Marker, ProcessMetrics, RequestPoint, ResourcePoint, StatusClasses,
    };

    fn at(minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 7, 10, minute, 0).unwrap()
    }

    fn points(cpu: &[f64]) -> Vec<ResourcePoint> {
        cpu.iter()
            .enumerate()
            .map(|(i, cpu)| ResourcePoint {
                at: at(i as u32),
                cpu_percent: *cpu,
                memory_bytes: (20 + i as u64) << 20,
                memory_limit_bytes: Some(512 << 20),
            })
            .collect()
    }

    fn metrics() -> AppMetrics {
        let web = |index: u32, cpu: &[f64]| InstanceMetrics {
            instance: format!("web.{index}"),
            index,
            points: points(cpu),
        };
        AppMetrics {
            app: "hello".parse().unwrap(),
            period: MetricsPeriod::Hour,
            resolution_secs: 10,
            from: at(0),
            to: at(5),
            processes: vec![ProcessMetrics {
                process: "web".parse().unwrap(),
                total: points(&[3.0, 5.0, 12.0, 4.0]),
                instances: vec![
                    web(1, &[1.0, 2.0, 10.0, 3.0]),
                    web(2, &[2.0, 3.0, 2.0, 1.0]),
                ],
            }],
            requests: (0..4)
                .map(|i| RequestPoint {
                    at: at(i),
                    requests: 10 * (i as u64 + 1),
                    requests_per_sec: (i + 1) as f64,
                    status: StatusClasses {
                        success: 10 * i as u64 + 9,
                        client_error: 1,
                        ..Default::default()
                    },
                    p50_ms: Some(2.0 + i as f64),
                    p95_ms: Some(20.0 + i as f64),
                })
                .collect(),
            markers: vec![Marker {
                at: at(1),
                kind: MarkerKind::Deploy,
                label: "v3".into(),
            }],
        }
    }

    #[test]
    fn metrics_render_latest_min_avg_max_and_sparklines() {
        insta::assert_snapshot!(render(&metrics(), at(5), Style { colour: false }));
    }

    #[test]
    fn an_app_without_samples_says_so() {
        let empty = AppMetrics {
            processes: Vec::new(),
            requests: Vec::new(),
            markers: Vec::new(),
            ..metrics()
        };
        insta::assert_snapshot!(render(&empty, at(5), Style { colour: false }));
    }

    #[test]
    fn sparklines_scale_between_their_own_extremes() {
        assert_eq!(sparkline(&[0.0, 7.0, 3.5]), "▁█▅");
        assert_eq!(sparkline(&[2.0, 2.0]), "▁▁");
        assert_eq!(sparkline(&vec![1.0; 40]).chars().count(), SPARKLINE_POINTS);
    }
}

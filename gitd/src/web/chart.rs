//! Line charts as inline SVG, drawn on the server from one or more metrics series: no script
//! and no library draws them, so they show with scripts off and under the page's CSP. A line
//! is broken where samples are missing (gitd or the agent was down, nothing ran) rather than
//! drawn across the gap. Deploys, rollbacks, other releases and restarts are marked as
//! vertical lines, each titled with its label. Every chart says what it shows in its
//! `aria-label`, and carries its peak and its markers' kinds as data attributes.

use chrono::{DateTime, Utc};
use maud::{Markup, html};
use paas_api::metrics::{Marker, MarkerKind};

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 170.0;
/// Room for the value axis' labels on the left and the time axis' below.
const LEFT: f64 = 64.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 8.0;
const BOTTOM: f64 = 22.0;

/// How a chart's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Percent,
    Bytes,
    PerSecond,
    Millis,
}

impl Unit {
    /// The smallest top of the value axis, so that an idle app's line lies flat at the
    /// bottom instead of filling the chart with noise.
    fn least_top(self) -> f64 {
        match self {
            Unit::Percent => 1.0,
            Unit::Bytes => 1024.0 * 1024.0,
            Unit::PerSecond => 1.0,
            Unit::Millis => 10.0,
        }
    }

    pub fn format(self, value: f64) -> String {
        match self {
            Unit::Percent => format!("{value:.1}%"),
            Unit::Bytes => {
                const MIB: f64 = 1024.0 * 1024.0;
                if value >= 1024.0 * MIB {
                    format!("{:.1} GiB", value / (1024.0 * MIB))
                } else {
                    format!("{:.1} MiB", value / MIB)
                }
            }
            Unit::PerSecond => format!("{value:.1}/s"),
            Unit::Millis => format!("{value:.0} ms"),
        }
    }
}

/// One line: a name for the legend and its points, oldest first.
pub struct Series {
    pub name: String,
    pub points: Vec<(DateTime<Utc>, f64)>,
}

pub struct Chart<'a> {
    /// The element's id.
    pub id: String,
    pub title: String,
    pub unit: Unit,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Points further apart than two slots of this many seconds are not joined.
    pub resolution_secs: u32,
    pub series: Vec<Series>,
    pub markers: &'a [Marker],
}

impl Chart<'_> {
    fn peak(&self) -> f64 {
        self.series
            .iter()
            .flat_map(|series| series.points.iter().map(|(_, value)| *value))
            .fold(0.0, f64::max)
    }

    /// Where a time falls on the x axis, clamped to the plot.
    fn x(&self, at: DateTime<Utc>) -> f64 {
        let span = (self.to - self.from).num_milliseconds().max(1) as f64;
        let offset = (at - self.from).num_milliseconds() as f64;
        LEFT + (offset / span).clamp(0.0, 1.0) * (WIDTH - LEFT - RIGHT)
    }

    fn y(&self, value: f64, top: f64) -> f64 {
        let plot = HEIGHT - TOP - BOTTOM;
        TOP + plot - (value / top).clamp(0.0, 1.0) * plot
    }

    /// An SVG path for one series: `M` starts a run of points, `L` continues it, and a gap
    /// longer than two slots starts a new run.
    fn path(&self, series: &Series, top: f64) -> String {
        let gap = i64::from(self.resolution_secs) * 2;
        let mut path = String::new();
        let mut previous: Option<DateTime<Utc>> = None;
        for (at, value) in &series.points {
            let joined = previous.is_some_and(|before| (*at - before).num_seconds() <= gap);
            let command = if joined { 'L' } else { 'M' };
            path.push_str(&format!(
                "{command}{:.1},{:.1} ",
                self.x(*at),
                self.y(*value, top)
            ));
            previous = Some(*at);
        }
        path.trim_end().to_owned()
    }

    fn summary(&self, peak: f64) -> String {
        let deploys = self
            .markers
            .iter()
            .filter(|marker| marker.kind == MarkerKind::Deploy)
            .count();
        let names: Vec<&str> = self
            .series
            .iter()
            .map(|series| series.name.as_str())
            .collect();
        format!(
            "{}, {} to {} UTC: {}; peak {}; {} deploy{} marked",
            self.title,
            self.from.format("%H:%M"),
            self.to.format("%H:%M"),
            names.join(", "),
            self.unit.format(peak),
            deploys,
            if deploys == 1 { "" } else { "s" },
        )
    }

    pub fn render(&self) -> Markup {
        let peak = self.peak();
        let top = peak.max(self.unit.least_top()) * 1.1;
        let kinds: Vec<&str> = self
            .markers
            .iter()
            .map(|marker| marker_class(marker.kind))
            .collect();
        let bottom = HEIGHT - BOTTOM;
        html! {
            figure class="chart" id=(self.id) data-peak=(peak) data-markers=(kinds.join(" ")) {
                figcaption { (self.title) }
                svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(self.summary(peak)) {
                    line class="axis" x1=(LEFT) y1=(bottom) x2=(WIDTH - RIGHT) y2=(bottom) {}
                    line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(bottom) {}
                    text class="label" x=(LEFT - 4.0) y=(TOP + 10.0) text-anchor="end" {
                        (self.unit.format(top))
                    }
                    text class="label" x=(LEFT - 4.0) y=(bottom) text-anchor="end" {
                        (self.unit.format(0.0))
                    }
                    text class="label" x=(LEFT) y=(HEIGHT - 6.0) {
                        (self.from.format("%H:%M"))
                    }
                    text class="label" x=(WIDTH - RIGHT) y=(HEIGHT - 6.0) text-anchor="end" {
                        (self.to.format("%H:%M")) " UTC"
                    }
                    @for marker in self.markers {
                        line class={ "marker " (marker_class(marker.kind)) }
                            x1=(self.x(marker.at)) y1=(TOP) x2=(self.x(marker.at)) y2=(bottom) {
                            title { (marker.label) ", " (marker.at.format("%H:%M:%S UTC")) }
                        }
                    }
                    @for (index, series) in self.series.iter().enumerate() {
                        path class={ "series s" (index % SERIES_COLOURS) } d=(self.path(series, top)) {
                            title { (series.name) }
                        }
                    }
                }
                ul class="legend" {
                    @for (index, series) in self.series.iter().enumerate() {
                        li { span class={ "swatch s" (index % SERIES_COLOURS) } {} (series.name) }
                    }
                }
            }
        }
    }
}

/// The stylesheet has this many series colours (`.s0` …).
const SERIES_COLOURS: usize = 6;

fn marker_class(kind: MarkerKind) -> &'static str {
    match kind {
        MarkerKind::Deploy => "deploy",
        MarkerKind::Rollback => "rollback",
        MarkerKind::Release => "release",
        MarkerKind::Restart => "restart",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn at(minute: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minute)
    }

    fn chart(points: Vec<(DateTime<Utc>, f64)>, markers: &[Marker]) -> String {
        Chart {
            id: "requests".into(),
            title: "Requests".into(),
            unit: Unit::PerSecond,
            from: at(0),
            to: at(60),
            resolution_secs: 60,
            series: vec![Series {
                name: "requests/s".into(),
                points,
            }],
            markers,
        }
        .render()
        .into_string()
    }

    #[test]
    fn a_gap_longer_than_two_slots_breaks_the_line() {
        let svg = chart(vec![(at(0), 1.0), (at(1), 2.0), (at(10), 2.0)], &[]);
        let path = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
        assert_eq!(path.matches('L').count(), 1, "{path}");
    }

    #[test]
    fn the_peak_and_markers_are_stated_for_readers_and_tests() {
        let markers = [
            Marker {
                at: at(30),
                kind: MarkerKind::Deploy,
                label: "v3".into(),
            },
            Marker {
                at: at(40),
                kind: MarkerKind::Restart,
                label: "restarted".into(),
            },
        ];
        let svg = chart(vec![(at(5), 2.5)], &markers);
        assert!(svg.contains("data-peak=\"2.5\""), "{svg}");
        assert!(svg.contains("data-markers=\"deploy restart\""), "{svg}");
        assert!(svg.contains("peak 2.5/s; 1 deploy marked"), "{svg}");
        assert!(svg.contains("<title>v3, "), "{svg}");
    }

    #[test]
    fn series_names_and_labels_are_escaped() {
        let markers = [Marker {
            at: at(1),
            kind: MarkerKind::Restart,
            label: "<script>".into(),
        }];
        let svg = chart(vec![], &markers);
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"), "{svg}");
    }

    #[test]
    fn values_read_in_their_unit() {
        assert_eq!(Unit::Bytes.format(3.0 * 1024.0 * 1024.0), "3.0 MiB");
        assert_eq!(
            Unit::Bytes.format(2.5 * 1024.0 * 1024.0 * 1024.0),
            "2.5 GiB"
        );
        assert_eq!(Unit::Percent.format(12.34), "12.3%");
        assert_eq!(Unit::Millis.format(7.6), "8 ms");
    }
}

//! Medians and percentiles (nearest rank) of timings, and how they are printed.

use std::time::Duration;

pub fn percentile(values: &[f64], fraction: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (fraction * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    }
}

pub fn secs(duration: Duration) -> f64 {
    duration.as_secs_f64()
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Seconds with two decimals, e.g. `3.27 s`.
pub fn fmt_secs(value: f64) -> String {
    format!("{value:.2} s")
}

/// Milliseconds with one decimal, e.g. `12.4 ms`.
pub fn fmt_ms(value: f64) -> String {
    format!("{value:.1} ms")
}

/// A Markdown table row of the bench's table: measurement, paas, floor or peer, ratio,
/// target, verdict, notes.
pub fn row(cells: [&str; 7]) -> String {
    format!("| {} |", cells.join(" | "))
}

/// `met` or how far off the target the value is.
pub fn verdict(met: bool, miss: impl FnOnce() -> String) -> String {
    if met { "met".to_owned() } else { miss() }
}

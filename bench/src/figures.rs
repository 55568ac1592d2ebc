//! Figures one scenario leaves for a later one of the same run to stand beside (the cluster's
//! rows beside the single-host ones): one file per figure under `BENCH_FIGURES`, the number of
//! seconds in it.

use std::path::Path;

use anyhow::Context;

/// The median of row 1 (push → live) on one host.
pub const PUSH_LIVE: &str = "push-live";
/// The median of row 4 (`scale web=1 → web=10`) on one host.
pub const SCALE_UP: &str = "scale-up";

pub fn save(dir: &Path, name: &str, seconds: f64) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join(name), seconds.to_string())
        .with_context(|| format!("writing the figure {name} into {}", dir.display()))
}

pub fn load(dir: &Path, name: &str, scenario: &str) -> anyhow::Result<f64> {
    let text = std::fs::read_to_string(dir.join(name)).with_context(|| {
        format!("no {name} figure from this run: the {scenario} scenario must have run before")
    })?;
    text.trim()
        .parse()
        .with_context(|| format!("the figure {name} is not a number: {text:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_figure_loads_and_a_missing_one_names_its_scenario() {
        let dir = std::env::temp_dir().join(format!("paas-bench-figures-{}", std::process::id()));
        save(&dir, PUSH_LIVE, 1.25).unwrap();
        assert_eq!(load(&dir, PUSH_LIVE, "push-live").unwrap(), 1.25);
        let missing = load(&dir, SCALE_UP, "scale").unwrap_err().to_string();
        assert!(missing.contains("the scale scenario"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

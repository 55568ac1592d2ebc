//! Replays the committed fuzz seeds (`fuzz/corpus/<target>/`) through the same checks the fuzz
//! targets run (`fuzz/src/lib.rs`), with the stable toolchain: a parser that starts panicking
//! or breaking its promises on a known input fails here, without nightly or libFuzzer.

#[path = "../../fuzz/src/lib.rs"]
mod properties;

use std::path::Path;

/// Runs `check` on every seed of `target`; there must be some.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut seeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: seed {} fails", path.display());
        seeds += 1;
    }
    assert!(seeds > 0, "{target} has no seeds in {}", dir.display());
}

#[test]
fn git_command_seeds() {
    replay("git_command", properties::git_command);
}

#[test]
fn procfile_seeds() {
    replay("procfile", properties::procfile);
}

#[test]
fn buildpacks_yaml_seeds() {
    replay("buildpacks_yaml", properties::buildpacks_yaml);
}

#[test]
fn domain_seeds() {
    replay("domain", properties::domain);
}

#[test]
fn scale_args_seeds() {
    replay("scale_args", properties::scale_args);
}

#[test]
fn config_var_seeds() {
    replay("config_var", properties::config_var);
}

#[test]
fn app_name_seeds() {
    replay("app_name", properties::app_name);
}

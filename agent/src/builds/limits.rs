//! Build limits (`[build]` in the agent config): memory, CPU quota and pids of a Dockerfile
//! build's step containers, the wall-clock time of every build and the size of the pushed
//! context.
//!
//! The engine's build API takes no pids limit (and bollard's memory field is 32-bit), so each
//! Dockerfile build gets a cgroup of its own, prepared here with all three limits, and the
//! engine puts every step container under it (`cgroupparent`). The limits therefore hold for
//! the whole build, however many step containers it starts. cgroup v1 (a `pids`, `memory` and
//! `cpu` hierarchy, as on this host) and v2 (the unified hierarchy) are supported with the
//! engine's `cgroupfs` driver; with the `systemd` driver builds are refused (set
//! `cgroup_limits = false` to build without these three limits).

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The period of the CPU quota, in microseconds (the kernel's default).
const CPU_PERIOD_US: u64 = 100_000;
/// How long a build's cgroup is retried for removal while the engine still tears down the
/// last step container (after a timeout, say).
const CGROUP_REMOVAL_TRIES: u32 = 120;

/// `[build]`: limits of every build.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BuildConfig {
    /// Memory of a Dockerfile build, all its step containers together (swap included).
    pub memory_mb: u64,
    /// CPU time of a Dockerfile build, in CPUs (1.5 = one and a half cores' worth).
    pub cpus: f64,
    /// Processes (and threads) of a Dockerfile build, all step containers together.
    pub pids: u64,
    /// Wall-clock time of any build, Dockerfile or pack.
    pub timeout_secs: u64,
    /// Bytes unpacked from the pushed tree (file contents).
    pub context_mb: u64,
    /// Put memory, CPU and pids limits on Dockerfile builds through a cgroup per build.
    pub cgroup_limits: bool,
    /// Where the cgroup filesystem is mounted.
    pub cgroup_root: PathBuf,
    /// The cgroup (relative to each hierarchy) under which each build gets its own.
    pub cgroup_parent: String,
    /// The Docker network build steps (and pack's containers) run on, created when missing as
    /// a bridge named `<network>0` with inter-container traffic off.
    pub network: String,
}

impl Default for BuildConfig {
    fn default() -> Self {
        BuildConfig {
            memory_mb: 2048,
            cpus: 1.0,
            pids: 1024,
            timeout_secs: 900,
            context_mb: 200,
            cgroup_limits: true,
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            cgroup_parent: "paas-builds".to_owned(),
            network: "paas-builds".to_owned(),
        }
    }
}

/// Refuses settings that would make every build fail or run unbounded.
pub fn check_config(config: &BuildConfig) -> Result<(), String> {
    let at_least = |name: &str, value: u64, min: u64| {
        if value < min {
            Err(format!("[build] {name} must be at least {min}"))
        } else {
            Ok(())
        }
    };
    at_least("memory_mb", config.memory_mb, 64)?;
    at_least("pids", config.pids, 16)?;
    at_least("timeout_secs", config.timeout_secs, 1)?;
    at_least("context_mb", config.context_mb, 1)?;
    if !(config.cpus.is_finite() && config.cpus >= 0.01) {
        return Err("[build] cpus must be at least 0.01".to_owned());
    }
    let parent_ok = !config.cgroup_parent.is_empty()
        && config
            .cgroup_parent
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !parent_ok {
        return Err(
            "[build] cgroup_parent must be one name of letters, digits, - and _".to_owned(),
        );
    }
    let network_ok = config
        .network
        .starts_with(|c: char| c.is_ascii_alphanumeric())
        && config
            .network
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !network_ok {
        return Err(
            "[build] network must be a Docker network name (letters, digits, - _ .)".to_owned(),
        );
    }
    Ok(())
}

impl BuildConfig {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs)
    }

    pub fn context_bytes(&self) -> u64 {
        self.context_mb.saturating_mul(1024 * 1024)
    }

    fn memory_bytes(&self) -> u64 {
        self.memory_mb.saturating_mul(1024 * 1024)
    }

    fn cpu_quota_us(&self) -> u64 {
        ((self.cpus * CPU_PERIOD_US as f64).round() as u64).max(1000)
    }
}

/// `200 MiB`, `1 GiB`.
pub fn show_mib(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

/// `15 min`, `90 s`.
pub fn show_secs(secs: u64) -> String {
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "build limits: cannot prepare the build's cgroup under {path}: {source} (the agent needs write access to the cgroup filesystem, or set [build] cgroup_limits = false)"
)]
pub struct CgroupError {
    path: PathBuf,
    source: io::Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// One build's cgroup; removed (once the engine has let go of it) on drop.
#[derive(Debug)]
pub struct BuildCgroup {
    version: Version,
    root: PathBuf,
    /// `paas-builds/<id>`, relative to each hierarchy.
    relative: PathBuf,
    memory_mb: u64,
    pids: u64,
}

/// Which limit a failed build ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    Memory { mib: u64 },
    Pids { max: u64 },
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Memory { mib } => {
                write!(f, "the build ran out of memory (limit {})", show_mib(*mib))
            }
            LimitHit::Pids { max } => {
                write!(f, "the build ran out of processes (limit {max})")
            }
        }
    }
}

impl BuildCgroup {
    /// Creates `<parent>/<build_id>` with the limits of `config`.
    pub fn prepare(config: &BuildConfig, build_id: &str) -> Result<BuildCgroup, CgroupError> {
        let root = config.cgroup_root.clone();
        let version = if root.join("cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        let cgroup = BuildCgroup {
            version,
            root,
            relative: Path::new(&config.cgroup_parent).join(build_id),
            memory_mb: config.memory_mb,
            pids: config.pids,
        };
        sweep_stale(
            &cgroup.root,
            version,
            &config.cgroup_parent,
            config.timeout(),
        );
        let memory = config.memory_bytes().to_string();
        let quota = config.cpu_quota_us();
        let result = match version {
            Version::V1 => cgroup.prepare_v1(&memory, quota, config.pids),
            Version::V2 => cgroup.prepare_v2(&config.cgroup_parent, &memory, quota, config.pids),
        };
        // On an error, dropping `cgroup` removes what was made.
        result.map(|()| cgroup)
    }

    fn prepare_v1(&self, memory: &str, quota: u64, pids: u64) -> Result<(), CgroupError> {
        let pids_dir = self.make_dir(&self.root.join("pids").join(&self.relative))?;
        write(&pids_dir.join("pids.max"), &pids.to_string())?;
        let memory_dir = self.make_dir(&self.root.join("memory").join(&self.relative))?;
        write(&memory_dir.join("memory.limit_in_bytes"), memory)?;
        // Only with swap accounting; without it there is no swap limit to set.
        let swap = memory_dir.join("memory.memsw.limit_in_bytes");
        if swap.exists() {
            write(&swap, memory)?;
        }
        let cpu_dir = self.make_dir(&self.root.join("cpu").join(&self.relative))?;
        write(
            &cpu_dir.join("cpu.cfs_period_us"),
            &CPU_PERIOD_US.to_string(),
        )?;
        write(&cpu_dir.join("cpu.cfs_quota_us"), &quota.to_string())
    }

    fn prepare_v2(
        &self,
        parent: &str,
        memory: &str,
        quota: u64,
        pids: u64,
    ) -> Result<(), CgroupError> {
        let parent_dir = self.make_dir(&self.root.join(parent))?;
        for dir in [&self.root, &parent_dir] {
            for controller in ["+pids", "+memory", "+cpu"] {
                // Already enabled is fine; a missing controller shows when its file is written.
                let _ = fs::write(dir.join("cgroup.subtree_control"), controller);
            }
        }
        let dir = self.make_dir(&self.root.join(&self.relative))?;
        write(&dir.join("pids.max"), &pids.to_string())?;
        write(&dir.join("memory.max"), memory)?;
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            write(&swap, "0")?;
        }
        write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))
    }

    fn make_dir(&self, dir: &Path) -> Result<PathBuf, CgroupError> {
        fs::create_dir_all(dir).map_err(|source| CgroupError {
            path: dir.to_owned(),
            source,
        })?;
        Ok(dir.to_owned())
    }

    /// The engine's `cgroupparent` for the build's step containers.
    pub fn parent(&self) -> String {
        format!("/{}", self.relative.display())
    }

    /// After a failed build: the limit it ran into, if the cgroup's counters say so.
    /// `killed` is whether a step died of SIGKILL (the v1 counters cannot tell an OOM kill
    /// from reclaim at the limit by themselves).
    pub fn limit_hit(&self, killed: bool) -> Option<LimitHit> {
        let memory_hit = match self.version {
            Version::V1 => {
                let dir = self.root.join("memory").join(&self.relative);
                let reached = |usage: &str, limit: &str| match (
                    read_number(&dir.join(usage)),
                    read_number(&dir.join(limit)),
                ) {
                    (Some(usage), Some(limit)) => usage >= limit,
                    _ => false,
                };
                killed
                    && (reached("memory.max_usage_in_bytes", "memory.limit_in_bytes")
                        || reached(
                            "memory.memsw.max_usage_in_bytes",
                            "memory.memsw.limit_in_bytes",
                        ))
            }
            Version::V2 => {
                event_count(
                    &self.root.join(&self.relative).join("memory.events"),
                    "oom_kill",
                ) > 0
            }
        };
        if memory_hit {
            return Some(LimitHit::Memory {
                mib: self.memory_mb,
            });
        }
        let pids_dir = match self.version {
            Version::V1 => self.root.join("pids").join(&self.relative),
            Version::V2 => self.root.join(&self.relative),
        };
        // v1 counts a refused fork in the step container's own cgroup, gone by now; the peak
        // of the build's cgroup still shows the limit was reached.
        let pids_hit = event_count(&pids_dir.join("pids.events"), "max") > 0
            || read_number(&pids_dir.join("pids.peak")).is_some_and(|peak| peak >= self.pids);
        pids_hit.then_some(LimitHit::Pids { max: self.pids })
    }
}

impl Drop for BuildCgroup {
    fn drop(&mut self) {
        let dirs = CgroupDirs {
            version: self.version,
            root: self.root.clone(),
            relative: self.relative.clone(),
        };
        if dirs.remove_now() {
            return;
        }
        std::thread::spawn(move || {
            for _ in 0..CGROUP_REMOVAL_TRIES {
                std::thread::sleep(Duration::from_secs(1));
                if dirs.remove_now() {
                    break;
                }
            }
        });
    }
}

/// Where a build's cgroup lives, for removing it.
struct CgroupDirs {
    version: Version,
    root: PathBuf,
    relative: PathBuf,
}

impl CgroupDirs {
    /// Every directory the build's cgroup has (the engine makes one in each hierarchy).
    fn all(&self) -> Vec<PathBuf> {
        match self.version {
            Version::V2 => vec![self.root.join(&self.relative)],
            Version::V1 => fs::read_dir(&self.root)
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|entry| entry.path().join(&self.relative))
                        .filter(|dir| dir.is_dir())
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Removes what can be removed now; true when nothing is left.
    fn remove_now(&self) -> bool {
        let mut left = false;
        for dir in self.all() {
            // Step containers' cgroups the engine has not removed yet go first.
            if let Ok(children) = fs::read_dir(&dir) {
                for child in children.filter_map(Result::ok) {
                    if child.path().is_dir() {
                        let _ = fs::remove_dir(child.path());
                    }
                }
            }
            if fs::remove_dir(&dir).is_err() && dir.exists() {
                left = true;
            }
        }
        !left
    }
}

/// Removes build cgroups older than any build may run: what an agent killed mid-build left.
/// A live build's cgroup is younger than the timeout, and one still in use refuses removal.
fn sweep_stale(root: &Path, version: Version, parent: &str, timeout: Duration) {
    let too_old = timeout + Duration::from_secs(600);
    let hierarchies: Vec<PathBuf> = match version {
        Version::V2 => vec![root.to_owned()],
        Version::V1 => fs::read_dir(root)
            .map(|entries| entries.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default(),
    };
    for hierarchy in hierarchies {
        let Ok(builds) = fs::read_dir(hierarchy.join(parent)) else {
            continue;
        };
        for build in builds.filter_map(Result::ok) {
            let stale = build
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > too_old);
            if stale && build.path().is_dir() {
                let dirs = CgroupDirs {
                    version,
                    root: root.to_owned(),
                    relative: Path::new(parent).join(build.file_name()),
                };
                dirs.remove_now();
            }
        }
    }
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    fs::write(path, value).map_err(|source| CgroupError {
        path: path.to_owned(),
        source,
    })
}

fn read_number(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `key N` from a flat-keyed cgroup file (`memory.events`, `pids.events`).
fn event_count(path: &Path, key: &str) -> u64 {
    fs::read_to_string(path)
        .ok()
        .and_then(|text| {
            text.lines().find_map(|line| {
                let (name, value) = line.split_once(' ')?;
                (name == key).then(|| value.trim().parse().ok()).flatten()
            })
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations_read_like_people_write_them() {
        assert_eq!(show_mib(200), "200 MiB");
        assert_eq!(show_mib(1024), "1 GiB");
        assert_eq!(show_mib(1536), "1536 MiB");
        assert_eq!(show_secs(900), "15 min");
        assert_eq!(show_secs(90), "90 s");
        assert_eq!(
            LimitHit::Memory { mib: 1024 }.to_string(),
            "the build ran out of memory (limit 1 GiB)"
        );
    }

    #[test]
    fn defaults_are_valid_and_nonsense_is_refused() {
        assert!(check_config(&BuildConfig::default()).is_ok());
        let bad = |edit: fn(&mut BuildConfig)| {
            let mut config = BuildConfig::default();
            edit(&mut config);
            check_config(&config).unwrap_err()
        };
        assert_eq!(bad(|c| c.pids = 1), "[build] pids must be at least 16");
        assert!(bad(|c| c.cpus = f64::NAN).contains("cpus"));
        assert!(bad(|c| c.cgroup_parent = "../x".into()).contains("cgroup_parent"));
        assert!(bad(|c| c.network = "--net=host".into()).contains("network"));
    }

    /// A fake v1 layout in a temp dir: the files the kernel would offer.
    #[test]
    fn a_v1_cgroup_gets_its_limits_and_reports_what_was_hit() {
        let root = tempfile::tempdir().unwrap();
        for hierarchy in ["pids", "memory", "cpu", "freezer"] {
            fs::create_dir(root.path().join(hierarchy)).unwrap();
        }
        let config = BuildConfig {
            memory_mb: 64,
            pids: 32,
            cpus: 0.5,
            cgroup_root: root.path().to_owned(),
            ..BuildConfig::default()
        };
        let cgroup = BuildCgroup::prepare(&config, "b1").unwrap();
        assert_eq!(cgroup.parent(), "/paas-builds/b1");
        let dir = |h: &str| root.path().join(h).join("paas-builds/b1");
        assert_eq!(
            fs::read_to_string(dir("pids").join("pids.max")).unwrap(),
            "32"
        );
        assert_eq!(
            fs::read_to_string(dir("memory").join("memory.limit_in_bytes")).unwrap(),
            (64 * 1024 * 1024).to_string()
        );
        assert_eq!(
            fs::read_to_string(dir("cpu").join("cpu.cfs_quota_us")).unwrap(),
            "50000"
        );
        assert_eq!(cgroup.limit_hit(true), None);

        fs::write(dir("pids").join("pids.peak"), "31\n").unwrap();
        assert_eq!(cgroup.limit_hit(false), None);
        fs::write(dir("pids").join("pids.peak"), "32\n").unwrap();
        assert_eq!(cgroup.limit_hit(false), Some(LimitHit::Pids { max: 32 }));
        fs::write(dir("pids").join("pids.peak"), "0\n").unwrap();
        fs::write(dir("pids").join("pids.events"), "max 3\n").unwrap();
        assert_eq!(cgroup.limit_hit(false), Some(LimitHit::Pids { max: 32 }));
        fs::write(
            dir("memory").join("memory.max_usage_in_bytes"),
            (64 * 1024 * 1024).to_string(),
        )
        .unwrap();
        assert_eq!(cgroup.limit_hit(true), Some(LimitHit::Memory { mib: 64 }));

        // The engine made a directory in another hierarchy too; all of them go.
        fs::create_dir_all(dir("freezer")).unwrap();
        for h in ["pids", "memory", "cpu"] {
            for file in fs::read_dir(dir(h)).unwrap() {
                fs::remove_file(file.unwrap().path()).unwrap();
            }
        }
        drop(cgroup);
        for h in ["pids", "memory", "cpu", "freezer"] {
            assert!(!dir(h).exists(), "{h}");
        }
    }

    #[test]
    fn an_unwritable_cgroup_root_is_a_clear_error() {
        let config = BuildConfig {
            cgroup_root: PathBuf::from("/proc/no-such-cgroup-root"),
            ..BuildConfig::default()
        };
        let err = BuildCgroup::prepare(&config, "b2").unwrap_err().to_string();
        assert!(
            err.starts_with(
                "build limits: cannot prepare the build's cgroup under /proc/no-such-cgroup-root"
            ),
            "{err}"
        );
    }
}

//! Process sizes on this host: the memory and CPU limits a container of a process type runs
//! with (its own from the spec, else `[runtime]`'s defaults), and the refusal of sizes above
//! `[runtime]`'s maximums. The maximums live here, with the agent that runs the containers:
//! gitd does not know them, and a spec that asks for more is refused (400) before anything
//! starts.

use paas_api::agent::AppSpec;
use paas_api::resources::{Cpus, Memory, ProcessResources};

use crate::config::RuntimeConfig;

/// What one container gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub memory_mb: u64,
    /// `None`: no CPU quota, only the CPU weight every container has.
    pub cpus: Option<Cpus>,
}

impl Limits {
    pub fn memory_bytes(self) -> i64 {
        i64::try_from(self.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX)
    }
}

/// A limit as Docker reports it (bytes), as the API's size; `None` when unlimited.
pub fn memory_of(bytes: Option<i64>) -> Option<Memory> {
    bytes
        .filter(|bytes| *bytes > 0)
        .and_then(|bytes| Memory::from_mb(bytes.unsigned_abs() / (1024 * 1024)).ok())
}

/// A CPU quota as Docker reports it (billionths of a CPU), as the API's; `None` when unlimited.
pub fn cpus_of(nanos: Option<i64>) -> Option<Cpus> {
    nanos
        .filter(|nanos| *nanos > 0)
        .and_then(|nanos| u32::try_from(nanos / 1_000_000).ok())
        .and_then(|millis| Cpus::from_millis(millis).ok())
}

pub fn limits(resources: &ProcessResources, config: &RuntimeConfig) -> Limits {
    Limits {
        memory_mb: resources.memory.map_or(config.memory_limit_mb, Memory::mb),
        cpus: resources.cpus.or(config.default_cpus),
    }
}

/// The most CPUs one container may have: the configured maximum, else the host's count
/// (Docker refuses a quota above it).
fn max_cpus(config: &RuntimeConfig) -> Option<Cpus> {
    config.max_cpus.or_else(|| {
        let host = std::thread::available_parallelism().ok()?.get();
        Cpus::from_millis(u32::try_from(host).ok()?.saturating_mul(1000)).ok()
    })
}

/// Refuses a process type sized above this host's maximums.
pub fn check(spec: &AppSpec, config: &RuntimeConfig) -> Result<(), String> {
    for (process, process_spec) in &spec.processes {
        check_size(process.as_str(), &process_spec.resources, config)?;
    }
    Ok(())
}

/// Refuses `wanted` (the sizes of `what`: a process type, or a one-off) above this host's
/// maximums.
pub fn check_size(
    what: &str,
    wanted: &ProcessResources,
    config: &RuntimeConfig,
) -> Result<(), String> {
    if let Some(memory) = wanted.memory
        && memory.mb() > config.max_memory_mb
    {
        let max = describe_mb(config.max_memory_mb);
        return Err(format!(
            "{what}: memory {memory} is above this host's maximum of {max}"
        ));
    }
    if let (Some(cpus), Some(max)) = (wanted.cpus, max_cpus(config))
        && cpus > max
    {
        return Err(format!(
            "{what}: {cpus} CPUs is above this host's maximum of {max}"
        ));
    }
    Ok(())
}

fn describe_mb(mb: u64) -> String {
    Memory::from_mb(mb).map_or_else(|_| format!("{mb}M"), |memory| memory.to_string())
}

/// The defaults must fit under the maximums.
pub fn check_config(config: &RuntimeConfig) -> Result<(), String> {
    if config.memory_limit_mb > config.max_memory_mb {
        return Err("runtime.memory_limit_mb must not be above runtime.max_memory_mb".to_owned());
    }
    if let (Some(default), Some(max)) = (config.default_cpus, max_cpus(config))
        && default > max
    {
        return Err(format!(
            "runtime.default_cpus ({default}) must not be above runtime.max_cpus or the host's CPU count ({max})"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use paas_api::agent::ProcessSpec;

    fn spec(memory: Option<&str>, cpus: Option<&str>) -> AppSpec {
        AppSpec {
            release: 1,
            image: "paas/hello:v1".into(),
            env: Default::default(),
            processes: [(
                "web".parse().unwrap(),
                ProcessSpec {
                    command: None,
                    quantity: 1,
                    resources: ProcessResources {
                        memory: memory.map(|m| m.parse().unwrap()),
                        cpus: cpus.map(|c| c.parse().unwrap()),
                    },
                },
            )]
            .into(),
            domains: Vec::new(),
            health_check_path: None,
            healthchecks: Default::default(),
            container: Default::default(),
            sticky_sessions: false,
            volumes: Vec::new(),
        }
    }

    fn config() -> RuntimeConfig {
        RuntimeConfig {
            memory_limit_mb: 512,
            max_memory_mb: 1024,
            default_cpus: Some("1".parse().unwrap()),
            max_cpus: Some("2".parse().unwrap()),
            ..RuntimeConfig::default()
        }
    }

    #[test]
    fn a_process_gets_its_own_sizes_or_the_hosts_defaults() {
        let config = config();
        let sized = spec(Some("256M"), Some("0.5"));
        let limits = limits(&sized.processes["web"].resources, &config);
        assert_eq!(limits.memory_mb, 256);
        assert_eq!(limits.memory_bytes(), 256 * 1024 * 1024);
        assert_eq!(limits.cpus.map(Cpus::millis), Some(500));
        let plain = spec(None, None);
        let defaults = super::limits(&plain.processes["web"].resources, &config);
        assert_eq!(defaults.memory_mb, 512);
        assert_eq!(defaults.cpus.map(Cpus::millis), Some(1000));
    }

    #[test]
    fn sizes_above_the_maximums_are_refused() {
        let config = config();
        assert!(check(&spec(Some("1G"), Some("2")), &config).is_ok());
        assert_eq!(
            check(&spec(Some("2G"), None), &config).unwrap_err(),
            "web: memory 2G is above this host's maximum of 1G"
        );
        assert_eq!(
            check(&spec(None, Some("2.5")), &config).unwrap_err(),
            "web: 2.5 CPUs is above this host's maximum of 2"
        );
    }

    #[test]
    fn defaults_must_fit_under_the_maximums() {
        assert!(check_config(&config()).is_ok());
        assert!(check_config(&RuntimeConfig::default()).is_ok());
        let too_much = RuntimeConfig {
            memory_limit_mb: 2048,
            ..config()
        };
        assert!(
            check_config(&too_much)
                .unwrap_err()
                .contains("max_memory_mb")
        );
        let too_fast = RuntimeConfig {
            default_cpus: Some("3".parse().unwrap()),
            ..config()
        };
        assert!(check_config(&too_fast).unwrap_err().contains("max_cpus"));
    }
}

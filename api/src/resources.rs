//! Per-process resource limits (`paas ps:resize web --memory 256M --cpus 0.5`, Dokku's
//! `resource:limit`): [`Memory`] in MiB, [`Cpus`] in thousandths of a CPU, and the
//! [`ProcessResources`] of one process type, as releases keep them and the agent applies them.
//! A process type without its own sizes gets the agent's defaults; the agent refuses sizes
//! above its maximums (`[runtime]` in its config), so this module checks only what no host
//! could run (below Docker's 6 MiB, a thousandth of a CPU).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::names::ProcessType;

/// Docker refuses memory limits under 6 MiB.
pub const MIN_MEMORY_MB: u64 = 6;
/// No host of this platform has a terabyte per process.
pub const MAX_MEMORY_MB: u64 = 1024 * 1024;
/// Docker's smallest CPU quota is a hundredth of a CPU.
pub const MIN_MILLICPUS: u32 = 10;
pub const MAX_MILLICPUS: u32 = 1024 * 1000;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceError {
    #[error(
        "invalid memory size {0:?}: use a number of megabytes or gigabytes, e.g. 256M or 1G (at least {MIN_MEMORY_MB}M)"
    )]
    Memory(String),
    #[error(
        "invalid CPU count {0:?}: use a number of CPUs such as 0.5 or 2 (0.01 at least, at most three decimals)"
    )]
    Cpus(String),
    #[error("nothing to resize: give --memory, --cpus or both")]
    Empty,
    #[error(
        "invalid size {0:?}: use MEMORY, CPUS or MEMORY,CPUS, e.g. 512M, 0.5 or 1G,2 (memory in M or G, CPUs as a number)"
    )]
    Size(String),
}

/// A memory limit in MiB; written `256M` or `1G` (case-insensitive, an optional `B`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Memory(u64);

impl Memory {
    pub fn from_mb(mb: u64) -> Result<Memory, ResourceError> {
        if (MIN_MEMORY_MB..=MAX_MEMORY_MB).contains(&mb) {
            Ok(Memory(mb))
        } else {
            Err(ResourceError::Memory(format!("{mb}M")))
        }
    }

    pub fn mb(self) -> u64 {
        self.0
    }

    pub fn bytes(self) -> i64 {
        // At most a terabyte: far inside i64.
        (self.0 * 1024 * 1024) as i64
    }
}

impl FromStr for Memory {
    type Err = ResourceError;

    fn from_str(text: &str) -> Result<Memory, ResourceError> {
        let bad = || ResourceError::Memory(text.to_owned());
        let upper = text.trim().to_ascii_uppercase();
        let upper = upper.strip_suffix('B').unwrap_or(&upper);
        let (digits, factor) = if let Some(digits) = upper.strip_suffix('G') {
            (digits, 1024)
        } else if let Some(digits) = upper.strip_suffix('M') {
            (digits, 1)
        } else {
            return Err(bad());
        };
        if digits.is_empty() || digits.len() > 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let amount: u64 = digits.parse().map_err(|_| bad())?;
        Memory::from_mb(amount * factor).map_err(|_| bad())
    }
}

impl fmt::Display for Memory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1024) {
            write!(f, "{}G", self.0 / 1024)
        } else {
            write!(f, "{}M", self.0)
        }
    }
}

impl TryFrom<String> for Memory {
    type Error = ResourceError;

    fn try_from(text: String) -> Result<Memory, ResourceError> {
        text.parse()
    }
}

impl From<Memory> for String {
    fn from(memory: Memory) -> String {
        memory.to_string()
    }
}

/// A CPU limit in thousandths of a CPU; written `0.5`, `2` or `1.25`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Cpus(u32);

impl Cpus {
    pub fn from_millis(millis: u32) -> Result<Cpus, ResourceError> {
        if (MIN_MILLICPUS..=MAX_MILLICPUS).contains(&millis) {
            Ok(Cpus(millis))
        } else {
            Err(ResourceError::Cpus(Cpus(millis).to_string()))
        }
    }

    pub fn millis(self) -> u32 {
        self.0
    }

    /// Docker's `NanoCpus`.
    pub fn nanos(self) -> i64 {
        i64::from(self.0) * 1_000_000
    }
}

impl FromStr for Cpus {
    type Err = ResourceError;

    fn from_str(text: &str) -> Result<Cpus, ResourceError> {
        let bad = || ResourceError::Cpus(text.to_owned());
        let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty()
            || whole.len() > 4
            || fraction.len() > 3
            || !digits(whole)
            || !digits(fraction)
        {
            return Err(bad());
        }
        let whole: u32 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad())?
        };
        let fraction: u32 = format!("{fraction:0<3}").parse().map_err(|_| bad())?;
        Cpus::from_millis(whole * 1000 + fraction).map_err(|_| bad())
    }
}

impl fmt::Display for Cpus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.0 / 1000, self.0 % 1000);
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let fraction = format!("{fraction:03}");
            write!(f, "{whole}.{}", fraction.trim_end_matches('0'))
        }
    }
}

impl TryFrom<String> for Cpus {
    type Error = ResourceError;

    fn try_from(text: String) -> Result<Cpus, ResourceError> {
        text.parse()
    }
}

impl From<Cpus> for String {
    fn from(cpus: Cpus) -> String {
        cpus.to_string()
    }
}

/// The sizes one process type asked for; what is `None` is the agent's default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessResources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Memory>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus: Option<Cpus>,
}

impl ProcessResources {
    pub fn is_default(&self) -> bool {
        *self == ProcessResources::default()
    }

    /// These sizes with `change`'s given ones in their place.
    pub fn merged(self, change: ProcessResources) -> ProcessResources {
        ProcessResources {
            memory: change.memory.or(self.memory),
            cpus: change.cpus.or(self.cpus),
        }
    }
}

/// `--size` of `paas run`: `512M` (memory), `0.5` (CPUs) or both, `1G,2`, in either order; the
/// memory and CPU rules of `ps:resize` for each.
pub fn parse_size(text: &str) -> Result<ProcessResources, ResourceError> {
    let bad = || ResourceError::Size(text.to_owned());
    let mut size = ProcessResources::default();
    for part in text.split(',').map(str::trim) {
        let is_memory = part.ends_with(|c: char| matches!(c.to_ascii_uppercase(), 'M' | 'G' | 'B'));
        if is_memory && size.memory.is_none() {
            size.memory = Some(part.parse().map_err(|_| bad())?);
        } else if !is_memory && size.cpus.is_none() {
            size.cpus = Some(part.parse().map_err(|_| bad())?);
        } else {
            return Err(bad());
        }
    }
    Ok(size)
}

/// The sizes of an app's process types, as a release keeps them.
pub type Resources = BTreeMap<ProcessType, ProcessResources>;

/// `256M, 0.5 CPU`: the sizes as `paas ps` shows them (the header of a process type).
pub fn describe(memory: Option<Memory>, cpus: Option<Cpus>) -> String {
    let mut parts = Vec::new();
    if let Some(memory) = memory {
        parts.push(memory.to_string());
    }
    if let Some(cpus) = cpus {
        let unit = if cpus.millis() <= 1000 { "CPU" } else { "CPUs" };
        parts.push(format!("{cpus} {unit}"));
    }
    parts.join(", ")
}

/// `PATCH /v1/apps/{app}/resources`: new sizes for one process type; what is not given stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "ResizeRequestWire", into = "ResizeRequestWire")]
pub struct ResizeRequest {
    pub process: ProcessType,
    pub resources: ProcessResources,
}

#[derive(Serialize, Deserialize)]
struct ResizeRequestWire {
    process: ProcessType,
    #[serde(flatten)]
    resources: ProcessResources,
}

impl ResizeRequest {
    pub fn new(process: ProcessType, resources: ProcessResources) -> Result<Self, ResourceError> {
        if resources.is_default() {
            return Err(ResourceError::Empty);
        }
        Ok(ResizeRequest { process, resources })
    }
}

impl TryFrom<ResizeRequestWire> for ResizeRequest {
    type Error = ResourceError;

    fn try_from(wire: ResizeRequestWire) -> Result<Self, ResourceError> {
        ResizeRequest::new(wire.process, wire.resources)
    }
}

impl From<ResizeRequest> for ResizeRequestWire {
    fn from(request: ResizeRequest) -> Self {
        ResizeRequestWire {
            process: request.process,
            resources: request.resources,
        }
    }
}

/// One process type's sizes as `GET /v1/apps/{app}/resources` lists them: what the release
/// asks for (`None`: the host's default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessSize {
    pub process: ProcessType,
    #[serde(flatten)]
    pub resources: ProcessResources,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_megabytes_and_gigabytes() {
        for (text, mb) in [
            ("256M", 256),
            ("256m", 256),
            ("256MB", 256),
            ("1G", 1024),
            ("2gb", 2048),
            ("6M", 6),
        ] {
            assert_eq!(text.parse::<Memory>().unwrap().mb(), mb, "{text}");
        }
        for bad in [
            "",
            "256",
            "5M",
            "0G",
            "-1M",
            "1.5G",
            "M",
            "256K",
            "1T",
            "99999999M",
            "1025G",
        ] {
            assert!(bad.parse::<Memory>().is_err(), "{bad:?}");
        }
        assert_eq!(Memory::from_mb(1024).unwrap().to_string(), "1G");
        assert_eq!(Memory::from_mb(1536).unwrap().to_string(), "1536M");
        assert_eq!(Memory::from_mb(16).unwrap().bytes(), 16 * 1024 * 1024);
    }

    #[test]
    fn cpus_read_up_to_three_decimals() {
        for (text, millis) in [
            ("0.5", 500),
            (".5", 500),
            ("2", 2000),
            ("1.25", 1250),
            ("0.01", 10),
            ("3.", 3000),
        ] {
            assert_eq!(text.parse::<Cpus>().unwrap().millis(), millis, "{text}");
        }
        for bad in ["", ".", "0", "0.001", "1.2345", "-1", "1e3", "abc", "99999"] {
            assert!(bad.parse::<Cpus>().is_err(), "{bad:?}");
        }
        assert_eq!(Cpus::from_millis(500).unwrap().to_string(), "0.5");
        assert_eq!(Cpus::from_millis(2000).unwrap().to_string(), "2");
        assert_eq!(Cpus::from_millis(1250).unwrap().to_string(), "1.25");
        assert_eq!(Cpus::from_millis(500).unwrap().nanos(), 500_000_000);
    }

    #[test]
    fn sizes_describe_like_ps_shows_them() {
        let memory = Some("256M".parse().unwrap());
        assert_eq!(
            describe(memory, Some("0.5".parse().unwrap())),
            "256M, 0.5 CPU"
        );
        assert_eq!(describe(memory, Some("2".parse().unwrap())), "256M, 2 CPUs");
        assert_eq!(describe(memory, None), "256M");
        assert_eq!(describe(None, None), "");
    }

    #[test]
    fn resize_requests_need_a_size_and_keep_their_wire_form() {
        let request: ResizeRequest =
            serde_json::from_str(r#"{"process":"web","memory":"256M","cpus":"0.5"}"#).unwrap();
        assert_eq!(request.resources.memory.unwrap().mb(), 256);
        assert_eq!(
            serde_json::to_string(&request).unwrap(),
            r#"{"process":"web","memory":"256M","cpus":"0.5"}"#
        );
        for bad in [
            r#"{"process":"web"}"#,
            r#"{"process":"web","memory":"5M"}"#,
            r#"{"process":"Web","memory":"256M"}"#,
            r#"{"process":"web","cpus":"0"}"#,
        ] {
            assert!(serde_json::from_str::<ResizeRequest>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_run_size_is_memory_cpus_or_both() {
        let size = |text: &str| parse_size(text).map(|s| describe(s.memory, s.cpus));
        assert_eq!(size("512M").unwrap(), "512M");
        assert_eq!(size("0.5").unwrap(), "0.5 CPU");
        assert_eq!(size("1G,2").unwrap(), "1G, 2 CPUs");
        assert_eq!(size("2, 256mb").unwrap(), "256M, 2 CPUs");
        for bad in ["", "big", "512M,1G", "1,2", "512M,", "5M", "0", "1G;2"] {
            assert_eq!(
                parse_size(bad),
                Err(ResourceError::Size(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_change_keeps_what_it_does_not_give() {
        let old = ProcessResources {
            memory: Some("512M".parse().unwrap()),
            cpus: Some("1".parse().unwrap()),
        };
        let change = ProcessResources {
            memory: Some("256M".parse().unwrap()),
            cpus: None,
        };
        assert_eq!(
            old.merged(change),
            ProcessResources {
                memory: Some("256M".parse().unwrap()),
                cpus: Some("1".parse().unwrap()),
            }
        );
    }
}

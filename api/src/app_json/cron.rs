//! Cron schedules in the five-field form (`minute hour day-of-month month day-of-week`, each
//! `*`, a number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; month and
//! weekday names `jan`, `mon`, …; weekday 7 is Sunday), the nicknames `@hourly`, `@daily`
//! (`@midnight`), `@weekly`, `@monthly` and `@yearly` (`@annually`), and the jobs of
//! `app.json`'s `cron` list. Times are UTC; the caller hands in the clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// The longest a schedule may be, in bytes.
const MAX_SCHEDULE_BYTES: usize = 200;

/// How far ahead [`Schedule::next_after`] looks: a schedule such as `0 0 30 2 *` never fires.
const LOOKAHEAD_DAYS: i64 = 366 * 5;

/// Why a schedule was refused; one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid schedule {text:?}: {reason}")]
pub struct ScheduleError {
    text: String,
    reason: String,
}

/// One field's allowed values as a bit set, and whether it was `*` (which matters for the
/// day-of-month/day-of-week rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Field {
    bits: u64,
    any: bool,
}

impl Field {
    fn has(self, value: u32) -> bool {
        self.bits & (1 << value) != 0
    }
}

struct FieldRule {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: FieldRule = FieldRule {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldRule = FieldRule {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY: FieldRule = FieldRule {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldRule = FieldRule {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const WEEKDAY: FieldRule = FieldRule {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl FieldRule {
    fn value(&self, text: &str) -> Result<u32, String> {
        let lower = text.to_ascii_lowercase();
        if let Some(index) = self.names.iter().position(|name| *name == lower) {
            return Ok(u32::try_from(index).expect("few names") + if self.min == 1 { 1 } else { 0 });
        }
        let value: u32 = text
            .parse()
            .map_err(|_| format!("{} {text:?} is not a number", self.name))?;
        if value < self.min || value > self.max {
            return Err(format!(
                "{} {value} is outside {}-{}",
                self.name, self.min, self.max
            ));
        }
        Ok(value)
    }

    fn parse(&self, text: &str) -> Result<Field, String> {
        let mut bits = 0u64;
        for item in text.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step
                        .parse()
                        .map_err(|_| format!("{} step {step:?} is not a number", self.name))?;
                    if step == 0 || step > self.max {
                        return Err(format!("{} step {step} is out of range", self.name));
                    }
                    (range, Some(step))
                }
                None => (item, None),
            };
            let (first, last) = if range == "*" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("{} range {range} runs backwards", self.name));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `5/15` means from 5 to the end, every 15.
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut value = first;
            while value <= last {
                bits |= 1 << value;
                value += step;
            }
        }
        if self.max == 7 && bits & (1 << 7) != 0 {
            // Weekday 7 is Sunday, as 0 is.
            bits = (bits & !(1 << 7)) | 1;
        }
        Ok(Field {
            bits,
            any: text == "*",
        })
    }
}

/// A validated schedule; it reads back as the text it was written as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Schedule {
    text: String,
    minutes: Field,
    hours: Field,
    days: Field,
    months: Field,
    weekdays: Field,
}

impl FromStr for Schedule {
    type Err = ScheduleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |reason: String| ScheduleError {
            text: text.chars().take(MAX_SCHEDULE_BYTES).collect(),
            reason,
        };
        if text.len() > MAX_SCHEDULE_BYTES {
            return Err(error(format!("over {MAX_SCHEDULE_BYTES} bytes")));
        }
        let trimmed = text.trim();
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            nickname if nickname.starts_with('@') => {
                return Err(error(format!(
                    "unknown nickname {nickname} (use @hourly, @daily, @weekly, @monthly or @yearly)"
                )));
            }
            fields => fields,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(error(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        Ok(Schedule {
            text: trimmed.to_owned(),
            minutes: MINUTE.parse(minute).map_err(error)?,
            hours: HOUR.parse(hour).map_err(error)?,
            days: DAY.parse(day).map_err(error)?,
            months: MONTH.parse(month).map_err(error)?,
            weekdays: WEEKDAY.parse(weekday).map_err(error)?,
        })
    }
}

impl TryFrom<String> for Schedule {
    type Error = ScheduleError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Schedule> for String {
    fn from(schedule: Schedule) -> String {
        schedule.text
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Schedule {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Cron's rule: when both day fields are restricted, a day matching either one counts.
    fn day_matches(&self, date: NaiveDate) -> bool {
        if !self.months.has(date.month()) {
            return false;
        }
        let by_day = self.days.has(date.day());
        let by_weekday = self.weekdays.has(date.weekday().num_days_from_sunday());
        match (self.days.any, self.weekdays.any) {
            (true, true) => true,
            (false, true) => by_day,
            (true, false) => by_weekday,
            (false, false) => by_day || by_weekday,
        }
    }

    /// Whether the job is due in the minute `at` falls in.
    pub fn matches(&self, at: DateTime<Utc>) -> bool {
        self.day_matches(at.date_naive())
            && self.hours.has(at.hour())
            && self.minutes.has(at.minute())
    }

    /// The first minute strictly after `after` the schedule fires in, if one comes within
    /// five years.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = after.with_second(0)?.with_nanosecond(0)? + Duration::minutes(1);
        let mut date = start.date_naive();
        let last = date + Duration::days(LOOKAHEAD_DAYS);
        let mut from = (start.hour(), start.minute());
        while date <= last {
            if self.day_matches(date) {
                for hour in from.0..24 {
                    if !self.hours.has(hour) {
                        continue;
                    }
                    let first_minute = if hour == from.0 { from.1 } else { 0 };
                    if let Some(minute) = (first_minute..60).find(|m| self.minutes.has(*m)) {
                        let time = date.and_hms_opt(hour, minute, 0)?;
                        return Some(Utc.from_utc_datetime(&time));
                    }
                }
            }
            date = date.succ_opt()?;
            from = (0, 0);
        }
        None
    }
}

/// The most jobs an app's `cron` list may hold.
pub const MAX_CRON_JOBS: usize = 20;

/// The longest a job's command may be, in bytes.
pub const MAX_CRON_COMMAND_BYTES: usize = 4096;

/// What a job does while its previous run still runs when it is due again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyPolicy {
    /// The due run is skipped (and recorded as skipped).
    #[default]
    Forbid,
    /// The due run starts beside the running one.
    Allow,
}

/// One entry of `app.json`'s `cron` list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CronJob {
    /// Shell command, run with `/bin/sh -c` in a one-off container of the current release.
    pub command: String,
    pub schedule: Schedule,
    #[serde(default)]
    pub concurrency_policy: ConcurrencyPolicy,
}

impl CronJob {
    /// The job's id: a digest of its schedule and command (FNV-1a, 32 bits as hex), so a job
    /// keeps its id, and its history, across deploys that leave it as it is.
    pub fn id(&self) -> String {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in self
            .schedule
            .as_str()
            .bytes()
            .chain([b'\n'])
            .chain(self.command.bytes())
        {
            hash ^= u32::from(byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        format!("{hash:08x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn next(schedule: &str, after: &str) -> String {
        let schedule: Schedule = schedule.parse().unwrap();
        schedule.next_after(at(after)).unwrap().to_rfc3339()
    }

    #[test]
    fn next_runs_follow_the_fields() {
        assert_eq!(
            next("*/5 * * * *", "2026-12-03T14:03:20Z"),
            "2026-12-03T14:05:00+00:00"
        );
        assert_eq!(
            next("* * * * *", "2026-12-03T14:03:00Z"),
            "2026-12-03T14:04:00+00:00"
        );
        assert_eq!(
            next("30 2 * * *", "2026-12-03T14:03:00Z"),
            "2026-12-04T02:30:00+00:00"
        );
        assert_eq!(
            next("0 9-17/4 * * mon-fri", "2026-12-04T17:00:00Z"),
            "2026-12-07T09:00:00+00:00",
            "Friday 17:00 is past; next is Monday 09:00"
        );
        assert_eq!(
            next("0 0 29 2 *", "2026-12-03T00:00:00Z"),
            "2028-02-29T00:00:00+00:00"
        );
        assert_eq!(
            next("15,45 * * jan *", "2026-12-31T23:50:00Z"),
            "2027-01-01T00:15:00+00:00"
        );
        assert_eq!(
            next("@hourly", "2026-12-03T14:03:00Z"),
            "2026-12-03T15:00:00+00:00"
        );
        assert_eq!(
            next("0 0 * * 7", "2026-12-03T14:03:00Z"),
            "2026-12-06T00:00:00+00:00",
            "7 is Sunday"
        );
        assert_eq!(
            next("5/20 * * * *", "2026-12-03T14:26:00Z"),
            "2026-12-03T14:45:00+00:00"
        );
        let never: Schedule = "0 0 30 2 *".parse().unwrap();
        assert_eq!(never.next_after(at("2026-12-03T00:00:00Z")), None);
    }

    #[test]
    fn both_day_fields_restricted_means_either() {
        let schedule: Schedule = "0 0 1 * mon".parse().unwrap();
        // 2026-12-07 is a Monday, 2027-01-01 a Friday.
        assert!(schedule.matches(at("2026-12-07T00:00:30Z")));
        assert!(schedule.matches(at("2027-01-01T00:00:00Z")));
        assert!(!schedule.matches(at("2026-12-08T00:00:00Z")));
        assert!(!schedule.matches(at("2026-12-07T00:01:00Z")));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        for (text, reason) in [
            ("* * * *", "expected 5 fields"),
            ("* * * * * *", "found 6"),
            ("60 * * * *", "minute 60 is outside 0-59"),
            ("*/0 * * * *", "step 0"),
            ("5-1 * * * *", "runs backwards"),
            ("* 24 * * *", "hour 24"),
            ("* * 0 * *", "day of month 0"),
            ("* * * 13 *", "month 13"),
            ("* * * * 8", "day of week 8"),
            ("x * * * *", "not a number"),
            ("@every 5m", "unknown nickname"),
            ("", "expected 5 fields"),
            ("1,,2 * * * *", "not a number"),
        ] {
            let err = text.parse::<Schedule>().unwrap_err().to_string();
            assert!(err.contains(reason), "{text:?}: {err}");
            assert!(!err.contains('\n'));
        }
        let long = "1,".repeat(200) + "1 * * * *";
        assert!(
            long.parse::<Schedule>()
                .unwrap_err()
                .to_string()
                .contains("over")
        );
    }

    #[test]
    fn a_schedule_reads_back_as_written() {
        let schedule: Schedule = serde_json::from_str(r#""*/5 * * * *""#).unwrap();
        assert_eq!(
            serde_json::to_string(&schedule).unwrap(),
            r#""*/5 * * * *""#
        );
        assert!(serde_json::from_str::<Schedule>(r#""* * *""#).is_err());
    }
}

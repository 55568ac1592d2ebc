//! The output of the containers the agent removes, kept so that `paas logs` still shows what a
//! retired release, a scaled-down instance or a failed rollout said (Docker
//! forgets a container's logs with the container; Heroku's logplex keeps an app's last 1,500
//! lines whatever ran them).
//!
//! One file per app, `<state dir>/logs/<app>.ndjson`: its newest [`KEEP_LINES`] archived lines,
//! oldest first, one [`LogEntry`] per line. Every change rewrites the file through a temporary
//! one and a rename, under one lock for the directory, so a reader sees a whole file and a
//! crash leaves the old one. Files are named after checked app names only.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use paas_api::AppName;
use paas_api::agent::LogEntry;
use paas_api::types::ProcessFilter;

use crate::config::AgentConfig;

/// Archived lines kept per app.
pub const KEEP_LINES: usize = 1500;

#[derive(Debug, Clone)]
pub struct LogArchive {
    dir: PathBuf,
}

impl LogArchive {
    /// The agent's archive, under its state directory.
    pub fn of(config: &AgentConfig) -> LogArchive {
        LogArchive::at(config.state_dir().join("logs"))
    }

    fn at(dir: PathBuf) -> LogArchive {
        LogArchive { dir }
    }

    fn file(&self, app: &AppName) -> PathBuf {
        self.dir.join(format!("{app}.ndjson"))
    }

    /// Adds `entries` (of one container, any order) to the app's archive, keeping the newest
    /// [`KEEP_LINES`] in time order.
    pub fn append(&self, app: &AppName, entries: &[LogEntry]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let _lock = self.lock()?;
        let mut kept = read_file(&self.file(app))?;
        kept.extend_from_slice(entries);
        // Stable: lines of one container with equal times keep their order.
        kept.sort_by_key(|entry| entry.timestamp);
        let skip = kept.len().saturating_sub(KEEP_LINES);
        let mut text = Vec::new();
        for entry in &kept[skip..] {
            serde_json::to_writer(&mut text, entry).expect("log entries always serialize");
            text.push(b'\n');
        }
        let partial = self.dir.join(format!(".{app}.ndjson.partial"));
        let mut file = File::create(&partial)?;
        file.write_all(&text)?;
        file.sync_all()?;
        fs::rename(&partial, self.file(app))
    }

    /// The app's archived lines (of one process type, if asked), oldest first.
    pub fn read(
        &self,
        app: &AppName,
        process: Option<&ProcessFilter>,
    ) -> std::io::Result<Vec<LogEntry>> {
        let mut entries = read_file(&self.file(app))?;
        if let Some(process) = process {
            entries.retain(|entry| process.matches(&entry.process, entry.index));
        }
        Ok(entries)
    }

    /// Forgets the app's lines (the app is being destroyed).
    pub fn remove(&self, app: &AppName) -> std::io::Result<()> {
        let _lock = self.lock()?;
        match fs::remove_file(self.file(app)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// The directory's lock, held until the returned file is dropped.
    fn lock(&self) -> std::io::Result<File> {
        fs::create_dir_all(&self.dir)?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(".lock"))?;
        lock.lock()?;
        Ok(lock)
    }
}

/// Forgets the archived lines of `app`, which is being removed (a name that is not an app's
/// has none).
pub async fn forget(config: &AgentConfig, app: &str) -> std::io::Result<()> {
    let Ok(app) = app.parse::<AppName>() else {
        return Ok(());
    };
    let archive = LogArchive::of(config);
    tokio::task::spawn_blocking(move || archive.remove(&app))
        .await
        .expect("removing a file does not panic")
}

/// The entries of an archive file; none when there is none. A line that does not parse (the
/// file was edited by hand) is skipped rather than losing the rest.
fn read_file(path: &Path) -> std::io::Result<Vec<LogEntry>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        if let Ok(entry) = serde_json::from_str(&line?) {
            entries.push(entry);
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use paas_api::agent::LogStream;

    use super::*;

    fn entry(second: i64, process: &str, line: &str) -> LogEntry {
        LogEntry {
            timestamp: Utc.timestamp_opt(1_700_000_000 + second, 0).unwrap(),
            process: process.to_owned(),
            index: 1,
            stream: LogStream::Stdout,
            line: line.to_owned(),
            release: None,
        }
    }

    fn lines(entries: &[LogEntry]) -> Vec<&str> {
        entries.iter().map(|entry| entry.line.as_str()).collect()
    }

    #[test]
    fn containers_archived_apart_read_back_in_time_order_per_app() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LogArchive::at(dir.path().join("logs"));
        let app: AppName = "web".parse().unwrap();
        let other: AppName = "other".parse().unwrap();
        assert!(archive.read(&app, None).unwrap().is_empty());
        archive
            .append(&app, &[entry(1, "web", "a"), entry(3, "web", "c")])
            .unwrap();
        archive
            .append(&app, &[entry(2, "worker", "b"), entry(4, "worker", "d")])
            .unwrap();
        archive.append(&other, &[entry(0, "web", "x")]).unwrap();
        assert_eq!(
            lines(&archive.read(&app, None).unwrap()),
            ["a", "b", "c", "d"]
        );
        assert_eq!(
            lines(
                &archive
                    .read(&app, Some(&"worker".parse().unwrap()))
                    .unwrap()
            ),
            ["b", "d"]
        );
        assert_eq!(
            lines(&archive.read(&app, Some(&"web.1".parse().unwrap())).unwrap()),
            ["a", "c"]
        );
        assert!(
            archive
                .read(&app, Some(&"web.2".parse().unwrap()))
                .unwrap()
                .is_empty()
        );
        assert_eq!(lines(&archive.read(&other, None).unwrap()), ["x"]);
        archive.remove(&app).unwrap();
        assert!(archive.read(&app, None).unwrap().is_empty());
        archive.remove(&app).unwrap();
        assert_eq!(lines(&archive.read(&other, None).unwrap()), ["x"]);
    }

    #[test]
    fn only_the_newest_lines_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let archive = LogArchive::at(dir.path().to_owned());
        let app: AppName = "web".parse().unwrap();
        let many: Vec<LogEntry> = (0..KEEP_LINES as i64 + 10)
            .map(|n| entry(n, "web", &n.to_string()))
            .collect();
        archive.append(&app, &many[..700]).unwrap();
        archive.append(&app, &many[700..]).unwrap();
        let kept = archive.read(&app, None).unwrap();
        assert_eq!(kept.len(), KEEP_LINES);
        assert_eq!(kept[0].line, "10");
        assert_eq!(kept.last().unwrap().line, (KEEP_LINES + 9).to_string());
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.contains("partial"))
            .collect();
        assert!(names.is_empty(), "no partial file is left: {names:?}");
    }
}

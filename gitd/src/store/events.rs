//! Platform events of each app (`paas[deploy]: Deploy 1a2b3c4 by user alice`), bounded per
//! app as they are written.

use paas_api::types::ProcessFilter;
use rusqlite::params;

use super::{Store, StoreResult};

/// One platform event of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub at_micros: i64,
    pub dyno: String,
    pub message: String,
    /// The release it happened in; `None` for what concerns the whole app.
    pub release: Option<u32>,
}

/// Which of an app's events [`Store::recent_events`] reads.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// The events of these instances only.
    pub process: Option<ProcessFilter>,
    /// The events of this release only (none of those without a release).
    pub release: Option<u32>,
}

impl Store {
    /// Records an event and drops the app's oldest ones beyond `keep`, in one transaction.
    pub async fn record_event(&self, app_id: i64, event: EventRow, keep: u32) -> StoreResult<()> {
        self.transaction(move |tx| {
            tx.execute(
                "INSERT INTO events (app_id, at_micros, dyno, message, release_version)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    app_id,
                    event.at_micros,
                    event.dyno,
                    event.message,
                    event.release
                ],
            )?;
            tx.execute(
                "DELETE FROM events WHERE app_id = ?1 AND id <= (
                     SELECT id FROM events WHERE app_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![app_id, keep],
            )?;
            Ok(())
        })
        .await
    }

    /// The app's newest `limit` events that `filter` keeps (the limit counts the events that
    /// match), oldest first.
    pub async fn recent_events(
        &self,
        app_id: i64,
        limit: u32,
        filter: &EventFilter,
    ) -> StoreResult<Vec<EventRow>> {
        // `web.` as a prefix compared exactly (LIKE would take `_` in a type for a
        // wildcard); one instance is its dyno exactly.
        let release = filter.release;
        let (prefix, dyno) = match &filter.process {
            None => (None, None),
            Some(ProcessFilter::Type(process)) => (Some(format!("{process}.")), None),
            Some(instance @ ProcessFilter::Instance(..)) => (None, Some(instance.to_string())),
        };
        self.run(move |conn| {
            let mut stmt = conn.prepare(
                "SELECT at_micros, dyno, message, release_version FROM (
                     SELECT id, at_micros, dyno, message, release_version FROM events
                     WHERE app_id = ?1
                     AND (?3 IS NULL OR substr(dyno, 1, length(?3)) = ?3)
                     AND (?4 IS NULL OR dyno = ?4)
                     AND (?5 IS NULL OR release_version = ?5)
                     ORDER BY id DESC LIMIT ?2)
                 ORDER BY id",
            )?;
            Ok(stmt
                .query_map(params![app_id, limit, prefix, dyno, release], |r| {
                    Ok(EventRow {
                        at_micros: r.get(0)?,
                        dyno: r.get(1)?,
                        message: r.get(2)?,
                        release: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;

    fn event(n: i64) -> EventRow {
        EventRow {
            at_micros: n,
            dyno: "deploy".into(),
            message: format!("event {n}"),
            release: None,
        }
    }

    fn all() -> EventFilter {
        EventFilter::default()
    }

    #[tokio::test]
    async fn events_are_bounded_per_app_and_read_oldest_first() {
        let test = TestStore::new();
        let web = test.app("web").await;
        let api = test.app("api").await;
        for n in 1..=5 {
            test.store.record_event(web.id, event(n), 3).await.unwrap();
        }
        test.store
            .record_event(api.id, event(100), 3)
            .await
            .unwrap();
        let at = |events: Vec<EventRow>| events.iter().map(|e| e.at_micros).collect::<Vec<_>>();
        assert_eq!(
            at(test.store.recent_events(web.id, 10, &all()).await.unwrap()),
            [3, 4, 5]
        );
        assert_eq!(
            at(test.store.recent_events(web.id, 2, &all()).await.unwrap()),
            [4, 5]
        );
        assert_eq!(
            test.store
                .recent_events(api.id, 10, &all())
                .await
                .unwrap()
                .len(),
            1
        );
    }

    #[tokio::test]
    async fn the_limit_counts_the_events_of_the_process_asked_for() {
        let test = TestStore::new();
        let app = test.app("web").await;
        let row = |n: i64, dyno: &str| EventRow {
            at_micros: n,
            dyno: dyno.into(),
            message: format!("event {n}"),
            release: None,
        };
        let dynos = [
            "web.1",
            "worker.1",
            "my_worker.1",
            "web.2",
            "worker.2",
            "myxworker.1",
        ];
        for (n, dyno) in (1..).zip(dynos) {
            test.store
                .record_event(app.id, row(n, dyno), 100)
                .await
                .unwrap();
        }
        let of = |process: &str| EventFilter {
            process: Some(process.parse::<ProcessFilter>().unwrap()),
            release: None,
        };
        let dynos_of =
            |events: Vec<EventRow>| events.into_iter().map(|e| e.dyno).collect::<Vec<_>>();
        assert_eq!(
            dynos_of(
                test.store
                    .recent_events(app.id, 2, &of("web"))
                    .await
                    .unwrap()
            ),
            ["web.1", "web.2"]
        );
        assert_eq!(
            dynos_of(
                test.store
                    .recent_events(app.id, 5, &of("my_worker"))
                    .await
                    .unwrap()
            ),
            ["my_worker.1"]
        );
        assert_eq!(
            dynos_of(
                test.store
                    .recent_events(app.id, 5, &of("web.2"))
                    .await
                    .unwrap()
            ),
            ["web.2"]
        );
    }

    #[tokio::test]
    async fn a_release_filter_keeps_that_releases_events_and_counts_only_them() {
        let test = TestStore::new();
        let app = test.app("web").await;
        let rows = [
            ("deploy", Some(1)),
            ("web.1", Some(1)),
            ("domains", None),
            ("deploy", Some(2)),
            ("web.1", Some(2)),
            ("web.1", Some(1)),
        ];
        for (n, (dyno, release)) in (1..).zip(rows) {
            let row = EventRow {
                at_micros: n,
                dyno: dyno.into(),
                message: format!("event {n}"),
                release,
            };
            test.store.record_event(app.id, row, 100).await.unwrap();
        }
        let of_v1 = |process: Option<&str>| EventFilter {
            process: process.map(|p| p.parse().unwrap()),
            release: Some(1),
        };
        let at = |events: Vec<EventRow>| events.iter().map(|e| e.at_micros).collect::<Vec<_>>();
        assert_eq!(
            at(test
                .store
                .recent_events(app.id, 10, &of_v1(None))
                .await
                .unwrap()),
            [1, 2, 6]
        );
        assert_eq!(
            at(test
                .store
                .recent_events(app.id, 2, &of_v1(None))
                .await
                .unwrap()),
            [2, 6]
        );
        assert_eq!(
            at(test
                .store
                .recent_events(app.id, 10, &of_v1(Some("web")))
                .await
                .unwrap()),
            [2, 6]
        );
        let everything = test.store.recent_events(app.id, 10, &all()).await.unwrap();
        assert_eq!(everything[2].release, None);
        assert_eq!(everything[3].release, Some(2));
    }
}

//! The apps' metrics, as pulled from the agent's sampling rounds: every round is added into a
//! slot of each [`Resolution`] (the mean CPU and peak memory of each instance, the requests,
//! status classes and percentiles of each app), so a slot is one row whatever the agent's
//! interval, and rows older than a resolution's retention are deleted ([`Store::prune_metrics`]).
//! At most [`MAX_INSTANCES_PER_APP`] instances of an app are stored per round, so an app has at
//! most that many rows per slot: 360 + 1440 slots of that and one request row each.

use std::collections::HashMap;

use paas_api::metrics::{MarkerKind, SampleRound};
use rusqlite::{OptionalExtension, Transaction, params};

use super::{Store, StoreResult};

/// Instances of one app stored per round (by process type and index order); more are left out.
pub const MAX_INSTANCES_PER_APP: usize = 50;

/// The slot lengths metrics are kept at, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// 10 s slots for the last hour.
    Fine,
    /// 1 min slots for the last day.
    Coarse,
}

impl Resolution {
    pub const ALL: [Resolution; 2] = [Resolution::Fine, Resolution::Coarse];

    pub fn seconds(self) -> i64 {
        match self {
            Resolution::Fine => 10,
            Resolution::Coarse => 60,
        }
    }

    pub fn retention_seconds(self) -> i64 {
        match self {
            Resolution::Fine => 3600,
            Resolution::Coarse => 24 * 3600,
        }
    }

    fn slot(self, at_seconds: i64) -> i64 {
        at_seconds - at_seconds.rem_euclid(self.seconds())
    }
}

/// One instance over one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct InstanceSlot {
    pub slot: i64,
    pub process: String,
    pub index: u32,
    pub cpu_percent: f64,
    pub memory_bytes: u64,
    pub memory_limit_bytes: Option<u64>,
}

/// An app's requests over one slot.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSlot {
    pub slot: i64,
    pub requests: u64,
    pub status: [u64; 4],
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
}

/// A deploy, rollback, other release or restart.
#[derive(Debug, Clone, PartialEq)]
pub struct MarkerRow {
    pub at_micros: i64,
    pub kind: MarkerKind,
    pub label: String,
}

/// What an app's metrics read returns, oldest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricsRows {
    pub instances: Vec<InstanceSlot>,
    pub requests: Vec<RequestSlot>,
    pub markers: Vec<MarkerRow>,
}

impl Store {
    /// The time (Unix ms) of the newest round stored: the next pull asks for the rounds after.
    pub async fn metrics_cursor(&self) -> StoreResult<Option<i64>> {
        self.run(|conn| {
            Ok(conn
                .query_row("SELECT after_ms FROM metric_cursor WHERE id = 1", [], |r| {
                    r.get(0)
                })
                .optional()?)
        })
        .await
    }

    /// Adds the rounds taken after the stored cursor to their slots and moves the cursor past
    /// them, in one transaction: two pulls that overlap never count a round twice. Rounds of
    /// apps gitd does not know are left out. Returns how many rounds were new.
    pub async fn ingest_metrics(&self, rounds: Vec<SampleRound>) -> StoreResult<usize> {
        self.transaction(move |tx| ingest(tx, &rounds)).await
    }

    /// Deletes the slots older than their resolution's retention at `now_seconds`.
    pub async fn prune_metrics(&self, now_seconds: i64) -> StoreResult<()> {
        self.transaction(move |tx| {
            for resolution in Resolution::ALL {
                let oldest = resolution.slot(now_seconds - resolution.retention_seconds());
                for table in ["metric_instances", "metric_requests"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE resolution = ?1 AND slot < ?2"),
                        params![resolution.seconds(), oldest],
                    )?;
                }
            }
            Ok(())
        })
        .await
    }

    /// The app's slots of `resolution` from `from_seconds` on, and its markers since then.
    pub async fn app_metrics(
        &self,
        app_id: i64,
        resolution: Resolution,
        from_seconds: i64,
    ) -> StoreResult<MetricsRows> {
        self.run(move |conn| {
            let seconds = resolution.seconds();
            let instances = conn
                .prepare(
                    "SELECT slot, process, instance, cpu_sum / rounds, memory_max, memory_limit
                     FROM metric_instances WHERE app_id = ?1 AND resolution = ?2 AND slot >= ?3
                     ORDER BY slot, process, instance",
                )?
                .query_map(params![app_id, seconds, from_seconds], |r| {
                    Ok(InstanceSlot {
                        slot: r.get(0)?,
                        process: r.get(1)?,
                        index: r.get(2)?,
                        cpu_percent: r.get(3)?,
                        memory_bytes: r.get(4)?,
                        memory_limit_bytes: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let requests = conn
                .prepare(
                    "SELECT slot, requests, status_2xx, status_3xx, status_4xx, status_5xx,
                            CASE WHEN p50_requests > 0 THEN p50_weighted / p50_requests END,
                            p95_max
                     FROM metric_requests WHERE app_id = ?1 AND resolution = ?2 AND slot >= ?3
                     ORDER BY slot",
                )?
                .query_map(params![app_id, seconds, from_seconds], |r| {
                    Ok(RequestSlot {
                        slot: r.get(0)?,
                        requests: r.get(1)?,
                        status: [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?],
                        p50_ms: r.get(6)?,
                        p95_ms: r.get(7)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let mut markers: Vec<MarkerRow> = conn
                .prepare(
                    "SELECT created_at, kind, version FROM releases
                     WHERE app_id = ?1 AND status = 'succeeded' AND created_at >= ?2",
                )?
                .query_map(params![app_id, from_seconds], |r| {
                    let kind: String = r.get(1)?;
                    let version: u32 = r.get(2)?;
                    Ok(MarkerRow {
                        at_micros: r.get::<_, i64>(0)? * 1_000_000,
                        kind: match kind.as_str() {
                            "deploy" => MarkerKind::Deploy,
                            "rollback" => MarkerKind::Rollback,
                            _ => MarkerKind::Release,
                        },
                        label: format!("v{version}"),
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let restarts = conn
                .prepare(
                    "SELECT at_micros, message FROM events
                     WHERE app_id = ?1 AND dyno = 'restart' AND at_micros >= ?2",
                )?
                .query_map(params![app_id, from_seconds * 1_000_000], |r| {
                    Ok(MarkerRow {
                        at_micros: r.get(0)?,
                        kind: MarkerKind::Restart,
                        label: r.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            markers.extend(restarts);
            markers.sort_by_key(|marker| marker.at_micros);
            Ok(MetricsRows {
                instances,
                requests,
                markers,
            })
        })
        .await
    }
}

fn ingest(tx: &Transaction, rounds: &[SampleRound]) -> StoreResult<usize> {
    let after: Option<i64> = tx
        .query_row("SELECT after_ms FROM metric_cursor WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()?;
    let mut app_ids: HashMap<String, Option<i64>> = HashMap::new();
    let mut app_id = |name: &str| -> rusqlite::Result<Option<i64>> {
        if let Some(id) = app_ids.get(name) {
            return Ok(*id);
        }
        let id = tx
            .query_row("SELECT id FROM apps WHERE name = ?1", [name], |r| r.get(0))
            .optional()?;
        app_ids.insert(name.to_owned(), id);
        Ok(id)
    };
    let mut add_instance = tx.prepare_cached(
        "INSERT INTO metric_instances
             (app_id, resolution, slot, process, instance, rounds, cpu_sum, memory_max, memory_limit)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8)
         ON CONFLICT DO UPDATE SET rounds = rounds + 1, cpu_sum = cpu_sum + excluded.cpu_sum,
             memory_max = max(memory_max, excluded.memory_max),
             memory_limit = excluded.memory_limit",
    )?;
    let mut add_requests = tx.prepare_cached(
        "INSERT INTO metric_requests
             (app_id, resolution, slot, requests, status_2xx, status_3xx, status_4xx, status_5xx,
              p50_weighted, p50_requests, p95_max)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT DO UPDATE SET requests = requests + excluded.requests,
             status_2xx = status_2xx + excluded.status_2xx,
             status_3xx = status_3xx + excluded.status_3xx,
             status_4xx = status_4xx + excluded.status_4xx,
             status_5xx = status_5xx + excluded.status_5xx,
             p50_weighted = p50_weighted + excluded.p50_weighted,
             p50_requests = p50_requests + excluded.p50_requests,
             p95_max = CASE WHEN p95_max IS NULL OR excluded.p95_max > p95_max
                            THEN excluded.p95_max ELSE p95_max END",
    )?;
    let mut newest = after;
    let mut new_rounds = 0;
    for round in rounds
        .iter()
        .filter(|round| after.is_none_or(|after| round.at_ms > after))
    {
        new_rounds += 1;
        newest = newest.max(Some(round.at_ms));
        let at_seconds = round.at_ms.div_euclid(1000);
        let mut per_app: HashMap<&str, usize> = HashMap::new();
        for sample in &round.instances {
            let stored = per_app.entry(sample.app.as_str()).or_default();
            if *stored >= MAX_INSTANCES_PER_APP {
                continue;
            }
            let Some(id) = app_id(sample.app.as_str())? else {
                continue;
            };
            *stored += 1;
            for resolution in Resolution::ALL {
                add_instance.execute(params![
                    id,
                    resolution.seconds(),
                    resolution.slot(at_seconds),
                    sample.process.as_str(),
                    sample.index,
                    sample.cpu_percent,
                    sample.memory_bytes,
                    sample.memory_limit_bytes,
                ])?;
            }
        }
        for sample in &round.requests {
            let Some(id) = app_id(sample.app.as_str())? else {
                continue;
            };
            let timed = if sample.p50_ms.is_some() {
                sample.requests
            } else {
                0
            };
            let status = sample.status;
            for resolution in Resolution::ALL {
                add_requests.execute(params![
                    id,
                    resolution.seconds(),
                    resolution.slot(at_seconds),
                    sample.requests,
                    status.success,
                    status.redirect,
                    status.client_error,
                    status.server_error,
                    sample.p50_ms.unwrap_or(0.0) * timed as f64,
                    timed,
                    sample.p95_ms,
                ])?;
            }
        }
    }
    if let Some(newest) = newest.filter(|_| new_rounds > 0) {
        tx.execute(
            "INSERT INTO metric_cursor (id, after_ms) VALUES (1, ?1)
             ON CONFLICT DO UPDATE SET after_ms = excluded.after_ms",
            [newest],
        )?;
    }
    Ok(new_rounds)
}

#[cfg(test)]
mod tests {
    use super::super::testing::TestStore;
    use super::*;
    use paas_api::metrics::{InstanceSample, RequestSample, StatusClasses};

    fn instance(app: &str, index: u32, cpu: f64, memory: u64) -> InstanceSample {
        InstanceSample {
            app: app.parse().unwrap(),
            process: "web".parse().unwrap(),
            index,
            cpu_percent: cpu,
            memory_bytes: memory,
            memory_limit_bytes: Some(512 << 20),
        }
    }

    fn requests(app: &str, count: u64, p50: f64, p95: f64) -> RequestSample {
        RequestSample {
            app: app.parse().unwrap(),
            requests: count,
            status: StatusClasses {
                success: count - 1,
                server_error: 1,
                ..Default::default()
            },
            p50_ms: Some(p50),
            p95_ms: Some(p95),
        }
    }

    fn round(
        at_seconds: i64,
        instances: Vec<InstanceSample>,
        requests: Vec<RequestSample>,
    ) -> SampleRound {
        SampleRound {
            at_ms: at_seconds * 1000,
            interval_ms: 10_000,
            took_ms: 5,
            instances,
            requests,
        }
    }

    #[tokio::test]
    async fn rounds_add_into_fine_and_coarse_slots_once() {
        let test = TestStore::new();
        let app = test.app("hello").await;
        let rounds = vec![
            round(
                600,
                vec![instance("hello", 1, 10.0, 100)],
                vec![requests("hello", 10, 2.0, 8.0)],
            ),
            round(
                610,
                vec![instance("hello", 1, 30.0, 300)],
                vec![requests("hello", 30, 4.0, 5.0)],
            ),
            round(
                615,
                vec![instance("nobody", 1, 1.0, 1)],
                vec![requests("nobody", 3, 1.0, 1.0)],
            ),
        ];
        assert_eq!(test.store.ingest_metrics(rounds.clone()).await.unwrap(), 3);
        assert_eq!(
            test.store.ingest_metrics(rounds).await.unwrap(),
            0,
            "a pull that overlaps counts nothing twice"
        );
        assert_eq!(test.store.metrics_cursor().await.unwrap(), Some(615_000));

        let fine = test
            .store
            .app_metrics(app.id, Resolution::Fine, 0)
            .await
            .unwrap();
        assert_eq!(fine.instances.len(), 2);
        assert_eq!(fine.instances[1].slot, 610);
        let coarse = test
            .store
            .app_metrics(app.id, Resolution::Coarse, 0)
            .await
            .unwrap();
        assert_eq!(coarse.instances.len(), 1);
        let minute = &coarse.instances[0];
        assert_eq!(
            (minute.slot, minute.cpu_percent, minute.memory_bytes),
            (600, 20.0, 300)
        );
        let requests = &coarse.requests[0];
        assert_eq!(requests.requests, 40);
        assert_eq!(requests.status, [38, 0, 0, 2]);
        assert_eq!(requests.p50_ms, Some(3.5), "weighted by requests");
        assert_eq!(requests.p95_ms, Some(8.0), "the highest");
        assert_eq!(test.count("SELECT COUNT(*) FROM metric_requests"), 3);
    }

    #[tokio::test]
    async fn old_slots_go_and_an_apps_instances_are_bounded() {
        let test = TestStore::new();
        let app = test.app("hello").await;
        let crowd = (1..=80).map(|i| instance("hello", i, 1.0, 1)).collect();
        test.store
            .ingest_metrics(vec![round(0, crowd, Vec::new())])
            .await
            .unwrap();
        assert_eq!(
            test.count("SELECT COUNT(*) FROM metric_instances WHERE resolution = 10"),
            MAX_INSTANCES_PER_APP as i64
        );
        test.store
            .ingest_metrics(vec![round(
                7200,
                vec![instance("hello", 1, 1.0, 1)],
                Vec::new(),
            )])
            .await
            .unwrap();
        test.store.prune_metrics(7200).await.unwrap();
        let fine = test
            .store
            .app_metrics(app.id, Resolution::Fine, 0)
            .await
            .unwrap();
        assert_eq!(
            fine.instances.len(),
            1,
            "the fine slot of two hours ago went"
        );
        let coarse = test
            .store
            .app_metrics(app.id, Resolution::Coarse, 0)
            .await
            .unwrap();
        assert_eq!(
            coarse.instances.len(),
            MAX_INSTANCES_PER_APP + 1,
            "a day is kept"
        );
        test.store
            .prune_metrics(7200 + 24 * 3600 + 60)
            .await
            .unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM metric_instances"), 0);
    }

    #[tokio::test]
    async fn deleting_the_app_deletes_its_metrics() {
        let test = TestStore::new();
        let app = test.app("hello").await;
        test.store
            .ingest_metrics(vec![round(
                0,
                vec![instance("hello", 1, 1.0, 1)],
                vec![requests("hello", 2, 1.0, 1.0)],
            )])
            .await
            .unwrap();
        test.store.delete_app(app.id).await.unwrap();
        assert_eq!(test.count("SELECT COUNT(*) FROM metric_instances"), 0);
        assert_eq!(test.count("SELECT COUNT(*) FROM metric_requests"), 0);
    }
}

//! The apps' instances as `GET /v1/apps/{app}/instances` (and so `paas ps`) answers them, kept in
//! memory and kept true by Docker's event stream: an app's listing is read from Docker once and
//! then served from here until an event about one of its containers arrives
//! ([`InstanceCache::changed`], from [`crate::events::watch_docker`]), the event stream breaks
//! off ([`InstanceCache::all_changed`]), or a request that changes the app is in flight or has
//! just ended ([`track_changes`]). Reads from Docker race with events by a generation number, so
//! a listing read before an event is never kept after it. It owns no Docker access of its own:
//! the runtime hands it the read.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt;
use paas_api::agent::Instance;

use crate::state::AgentState;

#[derive(Default)]
pub struct InstanceCache {
    apps: Mutex<HashMap<String, Entry>>,
}

#[derive(Default)]
struct Entry {
    /// Bumped by every change: a read that started at another generation is not kept.
    generation: u64,
    /// Requests changing the app now: while any runs, every read goes to Docker.
    changing: usize,
    instances: Option<Vec<Instance>>,
}

impl Entry {
    fn invalidate(&mut self) {
        self.generation += 1;
        self.instances = None;
    }
}

impl InstanceCache {
    fn with_entry<T>(&self, app: &str, f: impl FnOnce(&mut Entry) -> T) -> T {
        let mut apps = self
            .apps
            .lock()
            .expect("the instance cache lock is never poisoned");
        f(apps.entry(app.to_owned()).or_default())
    }

    /// Something happened to one of the app's containers.
    pub fn changed(&self, app: &str) {
        self.with_entry(app, Entry::invalidate);
    }

    /// Events may have been missed (Docker's stream broke off): nothing kept is trusted.
    pub fn all_changed(&self) {
        let mut apps = self
            .apps
            .lock()
            .expect("the instance cache lock is never poisoned");
        apps.values_mut().for_each(Entry::invalidate);
    }

    /// The app's instances: the kept listing, else `read` (kept unless the app changed
    /// meanwhile).
    pub async fn read<E, F>(&self, app: &str, read: F) -> Result<Vec<Instance>, E>
    where
        F: std::future::Future<Output = Result<Vec<Instance>, E>>,
    {
        let started = self.with_entry(app, |entry| match &entry.instances {
            Some(instances) if entry.changing == 0 => Err(instances.clone()),
            _ => Ok(entry.generation),
        });
        let generation = match started {
            Err(kept) => return Ok(kept),
            Ok(generation) => generation,
        };
        let instances = read.await?;
        self.with_entry(app, |entry| {
            if entry.generation == generation && entry.changing == 0 {
                entry.instances = Some(instances.clone());
            }
        });
        Ok(instances)
    }

    /// Marks the app as changing until the guard is dropped (and changed then).
    fn begin_change(self: &Arc<Self>, app: &str) -> ChangeGuard {
        self.with_entry(app, |entry| {
            entry.changing += 1;
            entry.invalidate();
        });
        ChangeGuard {
            cache: self.clone(),
            app: app.to_owned(),
        }
    }
}

struct ChangeGuard {
    cache: Arc<InstanceCache>,
    app: String,
}

impl Drop for ChangeGuard {
    fn drop(&mut self) {
        self.cache.with_entry(&self.app, |entry| {
            entry.changing -= 1;
            entry.invalidate();
        });
    }
}

/// Middleware: a request that may change an app (anything but GET under `/v1/apps/{app}/`)
/// marks it as changing until its response body has been sent or dropped, so a listing asked
/// for right after a rollout's last line is read from Docker, not from before the rollout.
pub async fn track_changes(
    State(state): State<AgentState>,
    request: Request,
    next: Next,
) -> Response {
    let app = (request.method() != Method::GET)
        .then(|| app_of(request.uri().path()))
        .flatten()
        .map(str::to_owned);
    let Some(app) = app else {
        return next.run(request).await;
    };
    let guard = state.instances.begin_change(&app);
    let (parts, body) = next.run(request).await.into_parts();
    let body = body.into_data_stream().map(move |chunk| {
        let _ = &guard;
        chunk
    });
    Response::from_parts(parts, Body::from_stream(body))
}

/// `hello` of `/v1/apps/hello` or `/v1/apps/hello/…`.
fn app_of(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/v1/apps/")?;
    let app = rest.split('/').next()?;
    (!app.is_empty()).then_some(app)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str) -> Instance {
        serde_json::from_value(serde_json::json!({
            "process": "web",
            "index": 1,
            "release": 1,
            "name": name,
            "container_id": "abc",
            "state": "up",
        }))
        .unwrap()
    }

    async fn read(cache: &InstanceCache, name: &str) -> Vec<Instance> {
        cache
            .read("hello", async { Ok::<_, ()>(vec![instance(name)]) })
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_listing_is_kept_until_an_event_about_the_app() {
        let cache = InstanceCache::default();
        assert_eq!(read(&cache, "first").await[0].name, "first");
        assert_eq!(read(&cache, "second").await[0].name, "first", "kept");
        cache.changed("other");
        assert_eq!(read(&cache, "second").await[0].name, "first");
        cache.changed("hello");
        assert_eq!(read(&cache, "second").await[0].name, "second");
        cache.all_changed();
        assert_eq!(read(&cache, "third").await[0].name, "third");
    }

    #[tokio::test]
    async fn a_read_overtaken_by_an_event_is_not_kept() {
        let cache = InstanceCache::default();
        let listed = cache
            .read("hello", async {
                cache.changed("hello");
                Ok::<_, ()>(vec![instance("before the event")])
            })
            .await
            .unwrap();
        assert_eq!(listed[0].name, "before the event", "answered as read");
        assert_eq!(read(&cache, "after").await[0].name, "after");
    }

    #[tokio::test]
    async fn while_an_app_changes_every_read_goes_to_docker() {
        let cache = Arc::new(InstanceCache::default());
        read(&cache, "before").await;
        let guard = cache.begin_change("hello");
        assert_eq!(read(&cache, "during 1").await[0].name, "during 1");
        assert_eq!(read(&cache, "during 2").await[0].name, "during 2");
        drop(guard);
        assert_eq!(read(&cache, "after").await[0].name, "after");
        assert_eq!(read(&cache, "later").await[0].name, "after");
    }

    #[tokio::test]
    async fn a_failed_read_keeps_nothing() {
        let cache = InstanceCache::default();
        let failed = cache
            .read("hello", async { Err::<Vec<Instance>, _>("down") })
            .await;
        assert_eq!(failed.unwrap_err(), "down");
        assert_eq!(read(&cache, "next").await[0].name, "next");
    }

    #[test]
    fn the_app_is_the_path_segment_after_apps() {
        assert_eq!(app_of("/v1/apps/hello"), Some("hello"));
        assert_eq!(app_of("/v1/apps/hello/restart"), Some("hello"));
        assert_eq!(app_of("/v1/apps/"), None);
        assert_eq!(app_of("/v1/builds"), None);
    }
}

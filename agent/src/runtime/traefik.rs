//! Reading Traefik's API (`api.insecure`, read-only) to know which containers it routes to, so
//! a rollout moves on when Traefik has actually picked up a change rather than after a guess.
//! The instances of a rollout wait side by side; they share one answer per [`FRESH_FOR`]
//! instead of each asking Traefik every poll.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::container::APP_PORT;
use crate::config::EngineKind;
use crate::naming::traefik::service_api_names;

/// How old an answer about an app's servers may be (from when it was asked for to when a
/// waiter asks) and still be given to that waiter: the rollout's poll interval, so each
/// waiter sees an answer at most one poll older than its question.
const FRESH_FOR: Duration = super::rollout::POLL_INTERVAL;

#[derive(Clone)]
pub struct TraefikApi {
    client: reqwest::Client,
    base: String,
    /// Whose provider's names the app's services have (`@docker`, `@swarm`).
    engine: EngineKind,
    /// The last answer of [`TraefikApi::servers`], shared by the clones.
    last: Arc<Mutex<Option<Servers>>>,
}

/// One app's servers as Traefik listed them, and when the asking started.
struct Servers {
    app: String,
    asked: Instant,
    servers: Result<HashSet<String>, String>,
}

#[derive(Deserialize)]
struct Service {
    #[serde(rename = "loadBalancer", default)]
    load_balancer: Option<LoadBalancer>,
}

#[derive(Deserialize)]
struct LoadBalancer {
    #[serde(default)]
    servers: Vec<Server>,
}

#[derive(Deserialize)]
struct Server {
    url: String,
}

impl TraefikApi {
    pub fn new(base: &str, engine: EngineKind) -> Self {
        TraefikApi {
            engine,
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client always builds"),
            base: base.trim_end_matches('/').to_owned(),
            last: Arc::default(),
        }
    }

    /// The server URLs of the app's load balancer (`http://<ip>:5000`), under its plain and
    /// its sticky name together: while sticky sessions are turned on or off, the old
    /// instances are in one and the new ones in the other. None when neither exists (no
    /// routable container). An answer asked for less than [`FRESH_FOR`] before this call is
    /// shared; a call made while one is on its way waits for it.
    pub async fn servers(&self, app: &str) -> Result<HashSet<String>, String> {
        let asking = Instant::now();
        let mut last = self.last.lock().await;
        if let Some(answer) = last.as_ref()
            && answer.app == app
            && asking.saturating_duration_since(answer.asked) < FRESH_FOR
        {
            return answer.servers.clone();
        }
        let asked = Instant::now();
        let servers = self.fetch_servers(app).await;
        *last = Some(Servers {
            app: app.to_owned(),
            asked,
            servers: servers.clone(),
        });
        servers
    }

    async fn fetch_servers(&self, app: &str) -> Result<HashSet<String>, String> {
        let mut servers = HashSet::new();
        for name in service_api_names(app, self.engine) {
            servers.extend(self.service_servers(&name).await?);
        }
        Ok(servers)
    }

    /// Whether Traefik's API knows the router `name` (`<name>@<provider>`).
    pub async fn router_exists(&self, name: &str) -> Result<bool, String> {
        let url = format!("{}/api/http/routers/{name}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|err| format!("Traefik API {url}: {err}"))?;
        match response.status() {
            reqwest::StatusCode::NOT_FOUND => Ok(false),
            status if status.is_success() => Ok(true),
            status => Err(format!("Traefik API {url}: HTTP {status}")),
        }
    }

    async fn service_servers(&self, name: &str) -> Result<HashSet<String>, String> {
        let url = format!("{}/api/http/services/{name}", self.base);
        let response = self
            .client
            .get(&url)
            .send()
            .await
            .map_err(|err| format!("Traefik API {url}: {err}"))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(HashSet::new());
        }
        if !response.status().is_success() {
            return Err(format!("Traefik API {url}: HTTP {}", response.status()));
        }
        let service: Service = response
            .json()
            .await
            .map_err(|err| format!("Traefik API {url}: {err}"))?;
        Ok(service
            .load_balancer
            .map(|lb| lb.servers.into_iter().map(|server| server.url).collect())
            .unwrap_or_default())
    }
}

pub fn server_url(ip: &str) -> String {
    format!("http://{ip}:{APP_PORT}")
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// Traefik's API for one service with one server, counting the requests it answers.
    async fn traefik(requests: Arc<AtomicUsize>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let (mut stream, _) = listener.accept().await.unwrap();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 2048];
                    while let Ok(read) = stream.read(&mut request).await {
                        if read == 0 {
                            break;
                        }
                        requests.fetch_add(1, Ordering::SeqCst);
                        let body =
                            r#"{"loadBalancer":{"servers":[{"url":"http://10.0.0.2:5000"}]}}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        stream.write_all(answer.as_bytes()).await.unwrap();
                    }
                });
            }
        });
        base
    }

    #[tokio::test]
    async fn waiters_asking_together_share_one_answer() {
        let requests = Arc::new(AtomicUsize::new(0));
        let api = TraefikApi::new(&traefik(requests.clone()).await, EngineKind::Docker);
        let per_answer = service_api_names("hello", EngineKind::Docker).len();
        let answers = futures::future::join_all((0..9).map(|_| api.servers("hello"))).await;
        for answer in answers {
            assert_eq!(
                answer.unwrap(),
                HashSet::from([server_url("10.0.0.2")]),
                "every waiter gets the servers"
            );
        }
        let asked = requests.load(Ordering::SeqCst);
        assert!(
            asked < 9 * per_answer,
            "nine waiters asked Traefik {asked} times"
        );
        // Another app is never answered from this one's servers.
        api.servers("other").await.unwrap();
        assert_eq!(requests.load(Ordering::SeqCst), asked + per_answer);
    }
}

//! Reading Traefik's API (`api.insecure`, read-only) to know which containers it routes to, so
//! a rollout moves on when Traefik has actually picked up a change rather than after a guess.

use std::collections::HashSet;

use serde::Deserialize;

use super::container::APP_PORT;
use crate::naming::traefik::service_api_names;

#[derive(Clone)]
pub struct TraefikApi {
    client: reqwest::Client,
    base: String,
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
    pub fn new(base: &str) -> Self {
        TraefikApi {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(2))
                .build()
                .expect("a plain HTTP client always builds"),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    /// The server URLs of the app's load balancer (`http://<ip>:5000`), under its plain and
    /// its sticky name together: while sticky sessions are turned on or off, the old
    /// instances are in one and the new ones in the other. None when neither exists (no
    /// routable container).
    pub async fn servers(&self, app: &str) -> Result<HashSet<String>, String> {
        let mut servers = HashSet::new();
        for name in service_api_names(app) {
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

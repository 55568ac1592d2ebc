//! Maintenance mode (`PUT /v1/apps/{app}/maintenance`, contract in `paas_api::routing`): the
//! app's hosts answer 503 with a maintenance page while its instances keep running untouched.
//!
//! Traefik cannot answer a body of its own without a backend, and the app's routers live in
//! Docker labels, which cannot change on a running container. So the agent serves the page
//! itself on a loopback listener (`runtime.maintenance_listen`, [`serve_page`]) and, for an
//! app in maintenance, writes one file for Traefik's file provider ([`routes_dir`], which
//! `paas-agent traefik-config` points Traefik at): routers over exactly the app's hosts
//! (its own host and the custom domains of its saved spec), each one [`priority`] step above
//! the app's own router of that kind, sending every request to the page. Off removes the
//! file; the app's own routers were there all along. The file is the state: it survives
//! agent restarts and deploys (a rollout rewrites it with the app's new hosts), and
//! `DELETE /v1/apps/{app}` removes it. The names in it are derived from the checked app name
//! alone, and its hosts are the ones the app's spec routes anyway, so nothing a tenant controls
//! reaches another app's routes.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use paas_api::routing::Maintenance;
use paas_api::{AppName, ErrorCode};
use tracing::{info, warn};

use crate::config::{AgentConfig, RuntimeConfig};
use crate::error::{ApiError, Path as AppPath};
use crate::naming::traefik::{host_rules, maintenance_name, priority};
use crate::runtime;
use crate::state::AgentState;

/// How long a change may take to show in Traefik's API before the request fails.
const APPLY_TIMEOUT: Duration = Duration::from_secs(15);

/// What every host of an app in maintenance answers: Heroku's wording, no app-controlled text.
pub const PAGE: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>Offline for maintenance</title>
<style>body{font-family:sans-serif;max-width:32em;margin:15vh auto;padding:0 1em;color:#333}</style>
</head>
<body>
<h1>Offline for maintenance</h1>
<p>This app is undergoing maintenance right now. Please check back later.</p>
</body>
</html>
";

pub fn routes() -> Router<AgentState> {
    Router::new().route("/v1/apps/{app}/maintenance", put(put_maintenance))
}

/// The directory Traefik's file provider watches (`runtime.traefik_routes_dir`, by default in
/// the agent's state dir, which only the agent writes).
pub fn routes_dir(config: &AgentConfig) -> PathBuf {
    config
        .runtime
        .traefik_routes_dir
        .clone()
        .unwrap_or_else(|| config.state_dir().join("traefik"))
}

/// The maintenance files, and where the page they route to is served.
pub struct MaintenanceRoutes {
    dir: PathBuf,
    page: SocketAddr,
}

impl MaintenanceRoutes {
    /// The files under `dir` (created if missing), routing to the page served at `page`.
    pub fn open(dir: PathBuf, page: SocketAddr) -> std::io::Result<MaintenanceRoutes> {
        std::fs::create_dir_all(&dir)?;
        Ok(MaintenanceRoutes { dir, page })
    }

    /// App names are checked before they get here, so they are plain file names.
    fn path(&self, app: &str) -> PathBuf {
        self.dir.join(format!("maintenance-{app}.toml"))
    }

    pub fn is_on(&self, app: &str) -> bool {
        self.path(app).exists()
    }

    /// Routes `hosts` (the app's own host first) to the page, replacing the file atomically
    /// so Traefik never reads half of it.
    pub fn put(&self, app: &str, hosts: &[String], config: &RuntimeConfig) -> std::io::Result<()> {
        let text = render(app, hosts, self.page, config);
        let partial = self.dir.join(format!(".{app}.partial"));
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&partial, self.path(app))
    }

    pub fn remove(&self, app: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(app)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// The apps in maintenance, by their files.
    pub fn apps(&self) -> std::io::Result<Vec<String>> {
        let mut apps = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let app = name
                .to_str()
                .and_then(|name| name.strip_prefix("maintenance-")?.strip_suffix(".toml"));
            if let Some(app) = app.filter(|app| app.parse::<AppName>().is_ok()) {
                apps.push(app.to_owned());
            }
        }
        Ok(apps)
    }
}

/// The file provider's routes of `app` in maintenance: one router per kind of host (and its
/// TLS twin with a cert resolver), all to the one page service.
fn render(app: &str, hosts: &[String], page: SocketAddr, config: &RuntimeConfig) -> String {
    let name = maintenance_name(app);
    let mut routers = toml::Table::new();
    for (kind, rule, exact) in host_rules(hosts) {
        let router = match kind {
            None => name.clone(),
            Some(kind) => format!("{name}-{kind}"),
        };
        let route = |entrypoint: &str| {
            toml::Table::from_iter([
                ("rule".to_owned(), toml::Value::from(rule.clone())),
                (
                    "priority".to_owned(),
                    toml::Value::from(i64::from(priority(exact, true))),
                ),
                (
                    "entryPoints".to_owned(),
                    toml::Value::from(vec![entrypoint.to_owned()]),
                ),
                ("service".to_owned(), toml::Value::from(name.clone())),
            ])
        };
        routers.insert(router.clone(), route(&config.traefik_entrypoint).into());
        if let Some(resolver) = &config.traefik_cert_resolver {
            let mut tls = route(&config.traefik_tls_entrypoint);
            tls.insert(
                "tls".to_owned(),
                toml::Table::from_iter([("certResolver".to_owned(), resolver.clone().into())])
                    .into(),
            );
            routers.insert(format!("{router}-tls"), tls.into());
        }
    }
    let server = toml::Table::from_iter([("url".to_owned(), format!("http://{page}").into())]);
    let service = toml::Table::from_iter([(
        "loadBalancer".to_owned(),
        toml::Table::from_iter([("servers".to_owned(), vec![toml::Value::from(server)].into())])
            .into(),
    )]);
    let http = toml::Table::from_iter([
        ("routers".to_owned(), routers.into()),
        (
            "services".to_owned(),
            toml::Table::from_iter([(name, service.into())]).into(),
        ),
    ]);
    let body = toml::to_string(&toml::Table::from_iter([("http".to_owned(), http.into())]))
        .expect("a table of strings and numbers always serializes");
    format!(
        "# Written by paas-agent: {app} is in maintenance (`paas maintenance:off` removes it).\n{body}"
    )
}

/// The page's listener on `runtime.maintenance_listen`. With port 0 the port the last run had
/// is taken again when free (kept in `<state_dir>/maintenance-page.addr`), so the routes
/// already written stay right from the moment the agent is back.
pub async fn bind_page(config: &AgentConfig) -> std::io::Result<tokio::net::TcpListener> {
    let wanted = config.runtime.maintenance_listen;
    let remembered = config.state_dir().join("maintenance-page.addr");
    let last = std::fs::read_to_string(&remembered)
        .ok()
        .and_then(|text| text.trim().parse::<SocketAddr>().ok())
        .filter(|last| wanted.port() == 0 && last.ip() == wanted.ip());
    let listener = match last {
        Some(last) => match tokio::net::TcpListener::bind(last).await {
            Ok(listener) => listener,
            Err(_) => tokio::net::TcpListener::bind(wanted).await?,
        },
        None => tokio::net::TcpListener::bind(wanted).await?,
    };
    std::fs::write(&remembered, format!("{}\n", listener.local_addr()?))?;
    Ok(listener)
}

/// Serves [`PAGE`] with 503 to every request on `listener`, for as long as the agent runs.
pub async fn serve_page(listener: tokio::net::TcpListener) {
    let page = Router::new().fallback(|| async {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
                (header::RETRY_AFTER, "60"),
            ],
            PAGE,
        )
    });
    if let Err(err) = axum::serve(listener, page).await {
        warn!(error = %err, "the maintenance page stopped");
    }
}

/// Writes the routes of every app in maintenance again, with its current hosts and the page's
/// current address (a new port after a restart).
pub async fn refresh_all(state: &AgentState) {
    let apps = match state.maintenance.apps() {
        Ok(apps) => apps,
        Err(err) => {
            warn!(error = %err, "cannot list the apps in maintenance");
            return;
        }
    };
    for app in apps {
        let _guard = state.runtime.lock(&app).await;
        refresh(state, &app);
    }
}

/// Rewrites `app`'s routes if it is in maintenance, e.g. after a rollout changed its hosts.
/// The caller holds the app's lock.
pub fn refresh(state: &AgentState, app: &str) {
    if !state.maintenance.is_on(app) {
        return;
    }
    let written = runtime::app_hosts(state, app)
        .map_err(|err| err.to_string())
        .and_then(|hosts| {
            state
                .maintenance
                .put(app, &hosts, &state.config.runtime)
                .map_err(|err| err.to_string())
        });
    if let Err(err) = written {
        warn!(%app, error = %err, "cannot write the maintenance routes");
    }
}

fn internal(message: String) -> ApiError {
    ApiError::new(ErrorCode::Internal, message)
}

async fn put_maintenance(
    State(state): State<AgentState>,
    AppPath(app): AppPath<AppName>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: Maintenance = serde_json::from_slice(&body).map_err(|err| {
        ApiError::new(
            ErrorCode::InvalidInput,
            format!("invalid maintenance request: {err}"),
        )
    })?;
    let _guard = state.runtime.lock(&app).await;
    if request.enabled {
        let hosts = runtime::app_hosts(&state, &app).map_err(|err| internal(err.to_string()))?;
        state
            .maintenance
            .put(&app, &hosts, &state.config.runtime)
            .map_err(|err| internal(format!("cannot write the maintenance routes: {err}")))?;
    } else {
        state
            .maintenance
            .remove(&app)
            .map_err(|err| internal(format!("cannot remove the maintenance routes: {err}")))?;
    }
    if let Some(traefik) = runtime::traefik_api(&state.config.runtime) {
        wait_for_traefik(&traefik, &app, request.enabled).await?;
    }
    info!(%app, enabled = request.enabled, "maintenance");
    Ok(axum::Json(request).into_response())
}

/// Until Traefik's API shows the app's maintenance router (or no longer does).
async fn wait_for_traefik(
    traefik: &runtime::TraefikApi,
    app: &str,
    enabled: bool,
) -> Result<(), ApiError> {
    let router = format!("{}@file", maintenance_name(app));
    let deadline = Instant::now() + APPLY_TIMEOUT;
    loop {
        let last = match traefik.router_exists(&router).await {
            Ok(exists) if exists == enabled => return Ok(()),
            Ok(_) => "it still shows the old state".to_owned(),
            Err(err) => err,
        };
        if Instant::now() >= deadline {
            return Err(internal(format!(
                "Traefik did not pick up the maintenance change in {}s: {last}",
                APPLY_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page() -> SocketAddr {
        "127.0.0.1:4321".parse().unwrap()
    }

    #[test]
    fn the_routes_cover_the_apps_hosts_above_its_own_routers() {
        let hosts: Vec<String> = ["hello.paas.localhost", "www.example.com", "*.example.org"]
            .map(str::to_owned)
            .to_vec();
        let text = render("hello", &hosts, page(), &RuntimeConfig::default());
        let parsed: toml::Table = text.parse().unwrap();
        let routers = parsed["http"]["routers"].as_table().unwrap();
        assert_eq!(routers.len(), 3, "{text}");
        let own = &routers["paas_maintenance-hello"];
        assert_eq!(own["rule"].as_str(), Some("Host(`hello.paas.localhost`)"));
        assert_eq!(own["priority"].as_integer(), Some(4));
        assert_eq!(own["service"].as_str(), Some("paas_maintenance-hello"));
        assert_eq!(
            own["entryPoints"].as_array().unwrap()[0].as_str(),
            Some("web")
        );
        let exact = &routers["paas_maintenance-hello-domains"];
        assert_eq!(exact["rule"].as_str(), Some("Host(`www.example.com`)"));
        assert_eq!(exact["priority"].as_integer(), Some(4));
        let wildcards = &routers["paas_maintenance-hello-wildcards"];
        assert!(
            wildcards["rule"]
                .as_str()
                .unwrap()
                .starts_with("HostRegexp(")
        );
        // Above the app's wildcards, below every exact host (another app's included).
        assert_eq!(
            wildcards["priority"].as_integer(),
            Some(i64::from(priority(false, true)))
        );
        assert!(priority(false, true) < priority(true, false));
        let servers =
            &parsed["http"]["services"]["paas_maintenance-hello"]["loadBalancer"]["servers"];
        assert_eq!(servers[0]["url"].as_str(), Some("http://127.0.0.1:4321"));
    }

    #[test]
    fn a_cert_resolver_adds_tls_twins() {
        let config = RuntimeConfig {
            traefik_cert_resolver: Some("le".to_owned()),
            ..RuntimeConfig::default()
        };
        let text = render(
            "hello",
            &["hello.paas.localhost".to_owned()],
            page(),
            &config,
        );
        let parsed: toml::Table = text.parse().unwrap();
        let tls = &parsed["http"]["routers"]["paas_maintenance-hello-tls"];
        assert_eq!(tls["tls"]["certResolver"].as_str(), Some("le"));
        assert_eq!(
            tls["entryPoints"].as_array().unwrap()[0].as_str(),
            Some("websecure")
        );
    }

    #[test]
    fn files_are_the_state_and_only_app_names_count() {
        let dir = tempfile::tempdir().unwrap();
        let routes = MaintenanceRoutes::open(dir.path().join("traefik"), page()).unwrap();
        let config = RuntimeConfig::default();
        assert!(!routes.is_on("hello"));
        routes
            .put("hello", &["hello.paas.localhost".to_owned()], &config)
            .unwrap();
        assert!(routes.is_on("hello"));
        assert!(!routes.is_on("other"));
        std::fs::write(routes.dir.join("maintenance-Bad_Name.toml"), "").unwrap();
        std::fs::write(routes.dir.join("notes.toml"), "").unwrap();
        assert_eq!(routes.apps().unwrap(), ["hello"]);
        routes.remove("hello").unwrap();
        routes.remove("hello").unwrap();
        assert!(!routes.is_on("hello"));
        assert!(routes.apps().unwrap().is_empty());
    }
}

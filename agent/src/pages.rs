//! The pages the agent answers on an app's hosts in place of the app: the maintenance page
//! (`paas maintenance:on`, [`crate::maintenance`]) and Heroku's H14, "No web processes
//! running", while the app is scaled to `web=0`.
//!
//! Traefik cannot answer a body of its own without a backend, and the app's routers live in
//! Docker labels, which cannot change on a running container. So the agent serves the pages
//! itself on one loopback listener (`runtime.maintenance_listen`, [`serve_pages`]) and, per app
//! and page, writes one file for Traefik's file provider ([`routes_dir`], which `paas-agent
//! traefik-config` points Traefik at): routers over exactly the app's hosts (its own host and
//! the custom domains of its saved spec), each at the page's [`Page::priority`], sending every
//! request to the listener under the page's path prefix (an `addPrefix` middleware), which picks
//! the page. Maintenance ranks one step above the app's own routers and so above H14, which
//! takes the app's own priorities: it exists only while no web instance does. The files are the
//! state: they survive agent restarts (every one is written again with the listener's address
//! before the agent announces itself) and deploys (a rollout rewrites them with the app's new
//! hosts, [`refresh`]), and `DELETE /v1/apps/{app}` removes them. The names in them come from the
//! checked app name alone, their hosts are the ones the app's spec routes anyway, and the pages
//! are constant text, so nothing a tenant controls reaches another app's routes or a page.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use paas_api::AppName;
use tracing::warn;

use crate::config::{AgentConfig, RuntimeConfig};
use crate::naming::traefik::{host_rules, maintenance_name, no_web_name, priority};
use crate::runtime;
use crate::state::AgentState;

/// What every host of an app in maintenance answers: Heroku's wording, no app-controlled text.
const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>
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

/// What every host of an app scaled to `web=0` answers (Heroku's H14); no app-controlled text.
const NO_WEB_PAGE: &str = "<!DOCTYPE html>
<html lang=\"en\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
<title>No web processes running</title>
<style>body{font-family:sans-serif;max-width:32em;margin:15vh auto;padding:0 1em;color:#333}</style>
</head>
<body>
<h1>No web processes running</h1>
<p>This app has no web processes running, so nothing can answer this request.</p>
<p>If it is yours, start one with <code>paas scale web=1</code>.</p>
</body>
</html>
";

/// A page the agent routes an app's hosts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Maintenance,
    /// Heroku's H14: the app is scaled to `web=0`.
    NoWebProcesses,
}

impl Page {
    pub const ALL: [Page; 2] = [Page::Maintenance, Page::NoWebProcesses];

    /// App names are checked before they get here, so `<prefix><app>.toml` is a plain name.
    fn file_prefix(self) -> &'static str {
        match self {
            Page::Maintenance => "maintenance-",
            Page::NoWebProcesses => "no-web-",
        }
    }

    /// The name of the app's routers, service and middleware for this page.
    pub fn name(self, app: &str) -> String {
        match self {
            Page::Maintenance => maintenance_name(app),
            Page::NoWebProcesses => no_web_name(app),
        }
    }

    fn priority(self, exact: bool) -> u32 {
        priority(exact, self == Page::Maintenance)
    }

    /// The path prefix Traefik adds, by which the listener knows the page.
    fn path(self) -> &'static str {
        match self {
            Page::Maintenance => "/.paas/maintenance",
            Page::NoWebProcesses => "/.paas/no-web",
        }
    }

    fn html(self) -> &'static str {
        match self {
            Page::Maintenance => MAINTENANCE_PAGE,
            Page::NoWebProcesses => NO_WEB_PAGE,
        }
    }
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

/// The page files, and where the pages they route to are served.
pub struct PageRoutes {
    dir: PathBuf,
    server: SocketAddr,
}

impl PageRoutes {
    /// The files under `dir` (created if missing), routing to the pages served at `server`.
    pub fn open(dir: PathBuf, server: SocketAddr) -> std::io::Result<PageRoutes> {
        std::fs::create_dir_all(&dir)?;
        Ok(PageRoutes { dir, server })
    }

    fn path(&self, page: Page, app: &str) -> PathBuf {
        self.dir.join(format!("{}{app}.toml", page.file_prefix()))
    }

    pub fn is_on(&self, page: Page, app: &str) -> bool {
        self.path(page, app).exists()
    }

    /// Routes `hosts` (the app's own host first) to `page`, replacing the file atomically so
    /// Traefik never reads half of it.
    pub fn put(
        &self,
        page: Page,
        app: &str,
        hosts: &[String],
        config: &RuntimeConfig,
    ) -> std::io::Result<()> {
        let text = render(page, app, hosts, self.server, config);
        let partial = self
            .dir
            .join(format!(".{}{app}.partial", page.file_prefix()));
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&partial, self.path(page, app))
    }

    pub fn remove(&self, page: Page, app: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.path(page, app)) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// Every page of the app goes (the app is being removed).
    pub fn remove_app(&self, app: &str) -> std::io::Result<()> {
        Page::ALL
            .into_iter()
            .try_for_each(|page| self.remove(page, app))
    }

    /// The apps routed to `page`, by their files.
    pub fn apps(&self, page: Page) -> std::io::Result<Vec<String>> {
        let mut apps = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let app = name
                .to_str()
                .and_then(|name| name.strip_prefix(page.file_prefix())?.strip_suffix(".toml"));
            if let Some(app) = app.filter(|app| app.parse::<AppName>().is_ok()) {
                apps.push(app.to_owned());
            }
        }
        Ok(apps)
    }
}

/// One router of a page file.
struct PageRouter<'a> {
    name: String,
    rule: String,
    exact: bool,
    entrypoint: &'a str,
    cert_resolver: Option<&'a str>,
}

/// The routers of `app`'s file for `page`: one per kind of host, and its TLS twin with a cert
/// resolver.
fn page_routers<'a>(
    page: Page,
    app: &str,
    hosts: &[String],
    config: &'a RuntimeConfig,
) -> Vec<PageRouter<'a>> {
    let name = page.name(app);
    let mut routers = Vec::new();
    for (kind, rule, exact) in host_rules(hosts) {
        let router = match kind {
            None => name.clone(),
            Some(kind) => format!("{name}-{kind}"),
        };
        if let Some(resolver) = &config.traefik_cert_resolver {
            routers.push(PageRouter {
                name: format!("{router}-tls"),
                rule: rule.clone(),
                exact,
                entrypoint: &config.traefik_tls_entrypoint,
                cert_resolver: Some(resolver),
            });
        }
        routers.push(PageRouter {
            name: router,
            rule,
            exact,
            entrypoint: &config.traefik_entrypoint,
            cert_resolver: None,
        });
    }
    routers
}

/// The names of the routers `app`'s file for `page` has (without the provider's `@file`).
pub fn router_names(
    page: Page,
    app: &str,
    hosts: &[String],
    config: &RuntimeConfig,
) -> Vec<String> {
    page_routers(page, app, hosts, config)
        .into_iter()
        .map(|router| router.name)
        .collect()
}

/// The file provider's routes of `app` to `page`: one router per kind of host (and its TLS twin
/// with a cert resolver), all through the page's prefix to the one page service.
fn render(
    page: Page,
    app: &str,
    hosts: &[String],
    server: SocketAddr,
    config: &RuntimeConfig,
) -> String {
    let name = page.name(app);
    let prefix = format!("{name}-page");
    let mut routers = toml::Table::new();
    for route in page_routers(page, app, hosts, config) {
        let mut router = toml::Table::from_iter([
            ("rule".to_owned(), toml::Value::from(route.rule)),
            (
                "priority".to_owned(),
                toml::Value::from(i64::from(page.priority(route.exact))),
            ),
            (
                "entryPoints".to_owned(),
                toml::Value::from(vec![route.entrypoint.to_owned()]),
            ),
            (
                "middlewares".to_owned(),
                toml::Value::from(vec![prefix.clone()]),
            ),
            ("service".to_owned(), toml::Value::from(name.clone())),
        ]);
        if let Some(resolver) = route.cert_resolver {
            router.insert(
                "tls".to_owned(),
                toml::Table::from_iter([("certResolver".to_owned(), resolver.to_owned().into())])
                    .into(),
            );
        }
        routers.insert(route.name, router.into());
    }
    let url = toml::Table::from_iter([("url".to_owned(), format!("http://{server}").into())]);
    let service = toml::Table::from_iter([(
        "loadBalancer".to_owned(),
        toml::Table::from_iter([("servers".to_owned(), vec![toml::Value::from(url)].into())])
            .into(),
    )]);
    let add_prefix = toml::Table::from_iter([(
        "addPrefix".to_owned(),
        toml::Table::from_iter([("prefix".to_owned(), page.path().into())]).into(),
    )]);
    let http = toml::Table::from_iter([
        ("routers".to_owned(), routers.into()),
        (
            "middlewares".to_owned(),
            toml::Table::from_iter([(prefix, add_prefix.into())]).into(),
        ),
        (
            "services".to_owned(),
            toml::Table::from_iter([(name, service.into())]).into(),
        ),
    ]);
    let body = toml::to_string(&toml::Table::from_iter([("http".to_owned(), http.into())]))
        .expect("a table of strings and numbers always serializes");
    let why = match page {
        Page::Maintenance => "is in maintenance (`paas maintenance:off` removes it)",
        Page::NoWebProcesses => "has no web processes (`paas scale web=1` removes it)",
    };
    format!("# Written by paas-agent: {app} {why}.\n{body}")
}

/// The pages' listener on `runtime.maintenance_listen`. With port 0 the port the last run had
/// is taken again when free (kept in `<state_dir>/maintenance-page.addr`), so the routes
/// already written stay right from the moment the agent is back.
pub async fn bind_pages(config: &AgentConfig) -> std::io::Result<tokio::net::TcpListener> {
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

/// The page a request to the listener gets, by its prefix; anything else (a route written
/// before pages had prefixes) is the maintenance page, the one there was.
fn page_for(path: &str) -> Page {
    Page::ALL
        .into_iter()
        .find(|page| {
            path.strip_prefix(page.path())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
        .unwrap_or(Page::Maintenance)
}

/// Serves the pages with 503 to every request on `listener`, for as long as the agent runs.
pub async fn serve_pages(listener: tokio::net::TcpListener) {
    let pages = Router::new().fallback(|request: Request| async move {
        let page = page_for(request.uri().path());
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            page.html(),
        )
            .into_response();
        if page == Page::Maintenance {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("60"));
        }
        response
    });
    if let Err(err) = axum::serve(listener, pages).await {
        warn!(error = %err, "the page server stopped");
    }
}

/// Writes the page routes of every app again, with its current hosts and the listener's
/// current address (a new port after a restart).
pub async fn refresh_all(state: &AgentState) {
    let mut apps = match runtime::apps_with_spec(state) {
        Ok(apps) => apps,
        Err(err) => {
            warn!(error = %err, "cannot list the apps for their page routes");
            Vec::new()
        }
    };
    match state.pages.apps(Page::Maintenance) {
        Ok(maintenance) => apps.extend(maintenance),
        Err(err) => warn!(error = %err, "cannot list the apps in maintenance"),
    }
    apps.sort();
    apps.dedup();
    for app in apps {
        let _guard = state.runtime.lock(&app).await;
        refresh(state, &app);
    }
}

/// Rewrites `app`'s page routes after a rollout (its hosts or its web quantity may have
/// changed): the maintenance page if it is in maintenance, the H14 page while its saved spec
/// runs no web instance. The caller holds the app's lock.
pub fn refresh(state: &AgentState, app: &str) {
    if let Err(err) = write_routes(state, app) {
        warn!(%app, error = %err, "cannot write the app's page routes");
    }
}

fn write_routes(state: &AgentState, app: &str) -> Result<(), String> {
    let spec = runtime::saved_spec(state, app).map_err(|err| err.to_string())?;
    let hosts = runtime::app_hosts(state, app).map_err(|err| err.to_string())?;
    let config = &state.config.runtime;
    let pages = &state.pages;
    if pages.is_on(Page::Maintenance, app) {
        pages
            .put(Page::Maintenance, app, &hosts, config)
            .map_err(|err| err.to_string())?;
    }
    let no_web = spec.is_some_and(|spec| {
        spec.processes
            .get("web")
            .is_none_or(|web| web.quantity == 0)
    });
    if no_web {
        pages.put(Page::NoWebProcesses, app, &hosts, config)
    } else {
        pages.remove(Page::NoWebProcesses, app)
    }
    .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> SocketAddr {
        "127.0.0.1:4321".parse().unwrap()
    }

    #[test]
    fn the_routes_cover_the_apps_hosts_above_its_own_routers() {
        let hosts: Vec<String> = ["hello.paas.localhost", "www.example.com", "*.example.org"]
            .map(str::to_owned)
            .to_vec();
        let text = render(
            Page::Maintenance,
            "hello",
            &hosts,
            server(),
            &RuntimeConfig::default(),
        );
        let parsed: toml::Table = text.parse().unwrap();
        let routers = parsed["http"]["routers"].as_table().unwrap();
        assert_eq!(routers.len(), 3, "{text}");
        let own = &routers["paas_maintenance-hello"];
        assert_eq!(own["rule"].as_str(), Some("Host(`hello.paas.localhost`)"));
        assert_eq!(own["priority"].as_integer(), Some(4));
        assert_eq!(own["service"].as_str(), Some("paas_maintenance-hello"));
        assert_eq!(
            own["middlewares"].as_array().unwrap()[0].as_str(),
            Some("paas_maintenance-hello-page")
        );
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
        let prefix = &parsed["http"]["middlewares"]["paas_maintenance-hello-page"]["addPrefix"];
        assert_eq!(prefix["prefix"].as_str(), Some("/.paas/maintenance"));
    }

    #[test]
    fn the_no_web_page_takes_the_apps_own_priorities_below_maintenance() {
        let hosts: Vec<String> = ["hello.paas.localhost", "*.example.org"]
            .map(str::to_owned)
            .to_vec();
        let text = render(
            Page::NoWebProcesses,
            "hello",
            &hosts,
            server(),
            &RuntimeConfig::default(),
        );
        let parsed: toml::Table = text.parse().unwrap();
        let routers = &parsed["http"]["routers"];
        let own = &routers["paas_no_web-hello"];
        assert_eq!(
            own["priority"].as_integer(),
            Some(i64::from(priority(true, false)))
        );
        assert!(Page::NoWebProcesses.priority(true) < Page::Maintenance.priority(true));
        assert!(Page::NoWebProcesses.priority(false) < Page::Maintenance.priority(false));
        assert_eq!(
            routers["paas_no_web-hello-wildcards"]["priority"].as_integer(),
            Some(i64::from(priority(false, false)))
        );
        let prefix = &parsed["http"]["middlewares"]["paas_no_web-hello-page"]["addPrefix"];
        assert_eq!(prefix["prefix"].as_str(), Some("/.paas/no-web"));
    }

    #[test]
    fn a_cert_resolver_adds_tls_twins() {
        let config = RuntimeConfig {
            traefik_cert_resolver: Some("le".to_owned()),
            ..RuntimeConfig::default()
        };
        let text = render(
            Page::Maintenance,
            "hello",
            &["hello.paas.localhost".to_owned()],
            server(),
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
    fn files_are_the_state_per_page_and_only_app_names_count() {
        let dir = tempfile::tempdir().unwrap();
        let routes = PageRoutes::open(dir.path().join("traefik"), server()).unwrap();
        let config = RuntimeConfig::default();
        let hosts = ["hello.paas.localhost".to_owned()];
        assert!(!routes.is_on(Page::Maintenance, "hello"));
        routes
            .put(Page::Maintenance, "hello", &hosts, &config)
            .unwrap();
        routes
            .put(Page::NoWebProcesses, "other", &hosts, &config)
            .unwrap();
        assert!(routes.is_on(Page::Maintenance, "hello"));
        assert!(!routes.is_on(Page::NoWebProcesses, "hello"));
        assert!(!routes.is_on(Page::Maintenance, "other"));
        std::fs::write(routes.dir.join("maintenance-Bad_Name.toml"), "").unwrap();
        std::fs::write(routes.dir.join("notes.toml"), "").unwrap();
        assert_eq!(routes.apps(Page::Maintenance).unwrap(), ["hello"]);
        assert_eq!(routes.apps(Page::NoWebProcesses).unwrap(), ["other"]);
        routes.remove(Page::Maintenance, "hello").unwrap();
        routes.remove(Page::Maintenance, "hello").unwrap();
        assert!(!routes.is_on(Page::Maintenance, "hello"));
        assert!(routes.apps(Page::Maintenance).unwrap().is_empty());
        routes.remove_app("other").unwrap();
        assert!(routes.apps(Page::NoWebProcesses).unwrap().is_empty());
    }

    #[test]
    fn the_listener_tells_the_pages_apart_by_prefix_only() {
        assert_eq!(page_for("/.paas/no-web"), Page::NoWebProcesses);
        assert_eq!(page_for("/.paas/no-web/a/b?c"), Page::NoWebProcesses);
        assert_eq!(
            page_for("/.paas/maintenance/.paas/no-web"),
            Page::Maintenance
        );
        assert_eq!(page_for("/.paas/no-webx"), Page::Maintenance);
        assert_eq!(page_for("/"), Page::Maintenance);
        assert!(NO_WEB_PAGE.contains("No web processes running"));
        assert!(NO_WEB_PAGE.contains("paas scale web=1"));
    }

    #[test]
    fn router_names_are_the_rendered_ones() {
        let config = RuntimeConfig {
            traefik_cert_resolver: Some("le".to_owned()),
            ..RuntimeConfig::default()
        };
        let hosts: Vec<String> = ["hello.paas.localhost", "www.example.com"]
            .map(str::to_owned)
            .to_vec();
        let text = render(Page::NoWebProcesses, "hello", &hosts, server(), &config);
        let parsed: toml::Table = text.parse().unwrap();
        let mut rendered: Vec<String> = parsed["http"]["routers"]
            .as_table()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        let mut named = router_names(Page::NoWebProcesses, "hello", &hosts, &config);
        rendered.sort();
        named.sort();
        assert_eq!(named, rendered);
    }
}

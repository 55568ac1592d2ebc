//! The HTTP edge: how connections are accepted and served before a request reaches a route.
//! Every limit here comes from `[http]` in gitd.toml:
//!
//! - a connection must send a complete request head within `header_read_timeout_secs`, idle
//!   keep-alive connections included (hyper's header-read timer), so slowloris clients are cut;
//! - a request body must arrive in full within `request_body_timeout_secs` of its head;
//! - a handler must produce its response head within `handler_timeout_secs`, or
//!   `rollout_timeout_secs` for the routes that wait for a rollout; a streamed body (`logs
//!   --tail`) is not cut once it started;
//! - at most `max_connections` connections at once, and `max_connections_per_address` from one
//!   peer address (trusted proxies count only towards the global cap); a connection over a cap
//!   is closed at once;
//! - on SIGTERM no new connection is accepted, open ones finish their request, and whatever is
//!   still open after `shutdown_grace_secs` is dropped.
//!
//! The client address of a request ([`ClientAddress`]) is the TCP peer, or, only when the peer
//! is one of `trusted_proxies`, the rightmost untrusted hop of `X-Forwarded-For`.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;

use crate::config::ConfigError;
use axum::body::Body;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use paas_api::{ErrorBody, ErrorCode};
use serde::{Deserialize, Serialize};
use tower_service::Service;

use crate::auth::LoginSettings;
use crate::state::SharedState;

/// `[http]` in gitd.toml.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// A connection must send a whole request head within this; idle connections too.
    pub header_read_timeout_secs: u64,
    /// A request body must be received in full within this, counted from its head.
    pub request_body_timeout_secs: u64,
    /// Ordinary routes must answer (their response head) within this.
    pub handler_timeout_secs: u64,
    /// Routes that wait for a rollout (config, scale, restart, rollback, domains) answer
    /// within this; the change itself runs to completion regardless.
    pub rollout_timeout_secs: u64,
    /// Connections served at once; more are closed as they arrive.
    pub max_connections: usize,
    /// Connections served at once from one peer address (trusted proxies excepted).
    pub max_connections_per_address: usize,
    /// On SIGTERM, open connections get this long to finish before they are dropped.
    pub shutdown_grace_secs: u64,
    /// Peers (addresses or CIDR blocks) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Host names the API itself is reached at (e.g. `paas.example.com`); custom domains
    /// equal to, under or beside them are refused, as for the apps domain.
    pub public_hosts: Vec<String>,
    pub login: LoginSettings,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_secs: 10,
            request_body_timeout_secs: 30,
            handler_timeout_secs: 60,
            rollout_timeout_secs: 15 * 60,
            max_connections: 512,
            max_connections_per_address: 32,
            shutdown_grace_secs: 10,
            trusted_proxies: Vec::new(),
            public_hosts: Vec::new(),
            login: LoginSettings::default(),
        }
    }
}

impl HttpSettings {
    /// Refuses settings that would disable a limit by accident.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("request_body_timeout_secs", self.request_body_timeout_secs),
            ("handler_timeout_secs", self.handler_timeout_secs),
            ("rollout_timeout_secs", self.rollout_timeout_secs),
            ("max_connections", self.max_connections as u64),
            (
                "max_connections_per_address",
                self.max_connections_per_address as u64,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::Invalid(format!(
                    "[http] {name} must be at least 1"
                )));
            }
        }
        for host in &self.public_hosts {
            paas_api::domains::validate_domain(host)
                .map_err(|err| ConfigError::Invalid(format!("[http] public_hosts: {err}")))?;
            if paas_api::domains::is_wildcard(host) {
                return Err(ConfigError::Invalid(format!(
                    "[http] public_hosts: {host} is a wildcard; name the API's host names"
                )));
            }
        }
        self.login.validate()
    }

    pub fn is_trusted_proxy(&self, address: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(address))
    }
}

/// An address or a CIDR block, `10.0.0.0/8` or `127.0.0.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpNet {
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        match (self.network, address) {
            (IpAddr::V4(net), IpAddr::V4(addr)) => {
                prefix_matches(&net.octets(), &addr.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(addr)) => {
                prefix_matches(&net.octets(), &addr.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_matches(net: &[u8], addr: &[u8], prefix: u8) -> bool {
    let mut bits = usize::from(prefix);
    for (n, a) in net.iter().zip(addr) {
        if bits == 0 {
            return true;
        }
        let take = bits.min(8);
        let mask = !(0xffu8.checked_shr(take as u32).unwrap_or(0));
        if n & mask != a & mask {
            return false;
        }
        bits -= take;
    }
    true
}

/// IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, as a dual-stack socket reports them) as IPv4.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || format!("{text:?} is not an IP address or CIDR block like 10.0.0.0/8");
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(address.parse::<IpAddr>().map_err(|_| invalid())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(prefix) => prefix.parse::<u8>().map_err(|_| invalid())?,
            None => max,
        };
        if prefix > max {
            return Err(invalid());
        }
        Ok(IpNet { network, prefix })
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<IpNet> for String {
    fn from(net: IpNet) -> String {
        format!("{}/{}", net.network, net.prefix)
    }
}

/// The address a request comes from, for the login throttle and the logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<SharedState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &SharedState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip())
            .expect("every connection carries its peer address");
        Ok(ClientAddress(client_address(
            &state.config.http,
            peer,
            &parts.headers,
        )))
    }
}

/// The peer, or behind trusted proxies the rightmost `X-Forwarded-For` hop that is not one of
/// them. An entry that is not an address ends the walk at the last hop known to be genuine.
fn client_address(settings: &HttpSettings, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let mut client = canonical(peer);
    if !settings.is_trusted_proxy(client) {
        return client;
    }
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.into_iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            break;
        };
        client = canonical(address);
        if !settings.is_trusted_proxy(client) {
            break;
        }
    }
    client
}

/// Which handler deadline a route gets.
#[derive(Clone, Copy)]
pub enum RouteClass {
    /// Answers from the database or a quick agent call.
    Quick,
    /// Waits for a rollout before it answers.
    Rollout,
}

/// Layers `router` (every route added so far) with the deadline of `class`.
pub fn with_deadline<S>(router: Router<S>, class: RouteClass) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(axum::middleware::from_fn_with_state(
        class,
        |State(class): State<RouteClass>, request: Request, next: Next| async move {
            handler_deadline(class, request, next).await
        },
    ))
}

async fn handler_deadline(class: RouteClass, request: Request, next: Next) -> Response {
    let limits = request
        .extensions()
        .get::<Deadlines>()
        .copied()
        .expect("every request carries its deadlines");
    let limit = match class {
        RouteClass::Quick => limits.handler,
        RouteClass::Rollout => limits.rollout,
    };
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(seconds = limit.as_secs(), "a request timed out");
            error_response(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Internal,
                format!(
                    "The server gave up on this request after {} seconds.",
                    limit.as_secs()
                ),
            )
        }
    }
}

fn error_response(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (status, axum::Json(ErrorBody::new(code, message))).into_response()
}

/// The handler deadlines, handed to the route layers with each request.
#[derive(Clone, Copy)]
struct Deadlines {
    handler: Duration,
    rollout: Duration,
}

/// Serves `router` on `listener` until `shutdown` resolves, with the limits of `settings`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    settings: HttpSettings,
    shutdown: impl Future<Output = ()>,
) {
    let settings = Arc::new(settings);
    let limiter = Arc::new(ConnectionLimiter::default());
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only, with upgrades for attached sessions (`paas run`).
    let mut http = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new()).http1_only();
    http.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(settings.header_read_timeout_secs));
    let deadlines = Deadlines {
        handler: Duration::from_secs(settings.handler_timeout_secs),
        rollout: Duration::from_secs(settings.rollout_timeout_secs),
    };
    let body_timeout = Duration::from_secs(settings.request_body_timeout_secs);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors, typically: wait for connections to end.
                    tracing::warn!(error = %err, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = limiter.admit(&settings, peer.ip()) else {
            tracing::debug!(%peer, "connection over the cap closed");
            continue;
        };
        let router = router.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
            let mut router = router.clone();
            let mut request = request.map(|body| Body::new(DeadlineBody::new(body, body_timeout)));
            request.extensions_mut().insert(ConnectInfo(peer));
            request.extensions_mut().insert(deadlines);
            async move { router.call(request).await }
        });
        let connection = graceful.watch(
            http.serve_connection_with_upgrades(TokioIo::new(stream), service)
                .into_owned(),
        );
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "HTTP connection ended");
            }
            drop(slot);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(settings.shutdown_grace_secs);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            seconds = grace.as_secs(),
            "HTTP connections still open after the shutdown grace period were dropped"
        );
    }
}

/// Counts open connections, in all and per peer address.
#[derive(Default)]
struct ConnectionLimiter {
    open: Mutex<OpenConnections>,
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl ConnectionLimiter {
    fn admit(self: &Arc<Self>, settings: &HttpSettings, peer: IpAddr) -> Option<ConnectionSlot> {
        let peer = canonical(peer);
        let mut open = self.open.lock().unwrap();
        if open.total >= settings.max_connections {
            return None;
        }
        let counted = !settings.is_trusted_proxy(peer);
        if counted {
            let from_peer = open.by_address.entry(peer).or_default();
            if *from_peer >= settings.max_connections_per_address {
                return None;
            }
            *from_peer += 1;
        }
        open.total += 1;
        Some(ConnectionSlot {
            limiter: self.clone(),
            peer: counted.then_some(peer),
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct ConnectionSlot {
    limiter: Arc<ConnectionLimiter>,
    peer: Option<IpAddr>,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap();
        open.total -= 1;
        if let Some(peer) = self.peer
            && let Some(count) = open.by_address.get_mut(&peer)
        {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&peer);
            }
        }
    }
}

/// A request body that fails once its deadline passes, however slowly it trickles in.
struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

impl<B> DeadlineBody<B> {
    fn new(inner: B, limit: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(limit)),
            limit,
        }
    }
}

/// The body did not arrive within `request_body_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {} seconds", .0.as_secs())]
pub struct BodyTimedOut(Duration);

impl<B> HttpBody for DeadlineBody<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(BodyTimedOut(self.limit).into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trusted: &[&str]) -> HttpSettings {
        HttpSettings {
            trusted_proxies: trusted.iter().map(|net| net.parse().unwrap()).collect(),
            ..HttpSettings::default()
        }
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", value.parse().unwrap());
        }
        headers
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_contain_their_addresses() {
        let net: IpNet = "10.1.0.0/16".parse().unwrap();
        assert!(net.contains(ip("10.1.255.3")));
        assert!(!net.contains(ip("10.2.0.1")));
        assert!(net.contains(ip("::ffff:10.1.0.9")), "IPv4-mapped");
        let single: IpNet = "127.0.0.1".parse().unwrap();
        assert!(single.contains(ip("127.0.0.1")));
        assert!(!single.contains(ip("127.0.0.2")));
        let odd: IpNet = "192.168.1.128/25".parse().unwrap();
        assert!(odd.contains(ip("192.168.1.200")));
        assert!(!odd.contains(ip("192.168.1.100")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        assert!(
            "0.0.0.0/0"
                .parse::<IpNet>()
                .unwrap()
                .contains(ip("8.8.8.8"))
        );
        for bad in ["", "10.0.0.0/33", "example.com", "10.0.0.0/x", "::/129"] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert_eq!(String::from(net), "10.1.0.0/16");
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let headers = forwarded(&["203.0.113.9"]);
        assert_eq!(
            client_address(&settings(&[]), ip("127.0.0.1"), &headers),
            ip("127.0.0.1"),
            "no trusted proxy: the header is ignored"
        );
        assert_eq!(
            client_address(&settings(&["10.0.0.0/8"]), ip("127.0.0.1"), &headers),
            ip("127.0.0.1"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            client_address(&settings(&["127.0.0.1"]), ip("127.0.0.1"), &headers),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(
                &settings(&["127.0.0.1"]),
                ip("127.0.0.1"),
                &HeaderMap::new()
            ),
            ip("127.0.0.1"),
            "a trusted peer without the header is the client"
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = settings(&["127.0.0.1", "10.0.0.0/8"]);
        // The client forged the first entry; the proxies appended the rest.
        let headers = forwarded(&["1.2.3.4, 198.51.100.7", "10.0.0.5"]);
        assert_eq!(
            client_address(&trusted, ip("127.0.0.1"), &headers),
            ip("198.51.100.7")
        );
        let garbage = forwarded(&["1.2.3.4, not-an-ip, 10.0.0.5"]);
        assert_eq!(
            client_address(&trusted, ip("127.0.0.1"), &garbage),
            ip("10.0.0.5"),
            "an unreadable hop ends the walk at the last genuine one"
        );
        let all_trusted = forwarded(&["10.0.0.9, 10.0.0.5"]);
        assert_eq!(
            client_address(&trusted, ip("127.0.0.1"), &all_trusted),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn connections_are_capped_in_all_and_per_address() {
        let settings = HttpSettings {
            max_connections: 3,
            max_connections_per_address: 2,
            trusted_proxies: vec!["10.0.0.1".parse().unwrap()],
            ..HttpSettings::default()
        };
        let limiter = Arc::new(ConnectionLimiter::default());
        let a1 = limiter.admit(&settings, ip("127.0.0.2")).unwrap();
        let _a2 = limiter.admit(&settings, ip("127.0.0.2")).unwrap();
        assert!(limiter.admit(&settings, ip("127.0.0.2")).is_none());
        let _b = limiter.admit(&settings, ip("10.0.0.1")).unwrap();
        assert!(
            limiter.admit(&settings, ip("127.0.0.3")).is_none(),
            "global cap"
        );
        drop(a1);
        let _c = limiter.admit(&settings, ip("127.0.0.3")).unwrap();
        assert!(limiter.admit(&settings, ip("10.0.0.1")).is_none());
        assert_eq!(limiter.open.lock().unwrap().by_address.len(), 2);
    }

    /// Serves a test router with `settings` on a loopback port; the server stops on drop of
    /// the returned sender.
    async fn serve_for_test(
        settings: HttpSettings,
    ) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        use axum::routing::{get, post};
        use futures::StreamExt as _;
        let quick = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    "late"
                }),
            )
            .route(
                "/stream",
                get(|| async {
                    let chunks =
                        futures::stream::iter(["one ", "two ", "three"]).then(|chunk| async move {
                            tokio::time::sleep(Duration::from_millis(800)).await;
                            Ok::<_, Infallible>(chunk)
                        });
                    Body::from_stream(chunks)
                }),
            )
            .route("/echo", post(|body: String| async move { body }))
            .route(
                "/json",
                post(
                    |super::super::Json(value): super::super::Json<serde_json::Value>| async move {
                        value.to_string()
                    },
                ),
            );
        let router = with_deadline(quick, RouteClass::Quick);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, settings, async {
            let _ = stopped.await;
        }));
        (address, stop)
    }

    async fn exchange(address: SocketAddr, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        let _ =
            tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn slow_handlers_and_bodies_are_cut_but_a_started_stream_is_not() {
        let (address, _stop) = serve_for_test(HttpSettings {
            handler_timeout_secs: 1,
            request_body_timeout_secs: 1,
            ..HttpSettings::default()
        })
        .await;
        let slow = exchange(
            address,
            b"GET /slow HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(slow.starts_with("HTTP/1.1 503"), "{slow}");
        assert!(
            slow.contains("gave up on this request after 1 seconds"),
            "{slow}"
        );

        let stream = exchange(
            address,
            b"GET /stream HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(stream.starts_with("HTTP/1.1 200"), "{stream}");
        assert!(
            stream.contains("one ") && stream.contains("three"),
            "{stream}"
        );

        let partial = exchange(
            address,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 10\r\n\r\nab",
        )
        .await;
        assert!(partial.starts_with("HTTP/1.1 400"), "{partial}");
        let partial_json = exchange(
            address,
            b"POST /json HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{}",
        )
        .await;
        assert!(partial_json.starts_with("HTTP/1.1 400"), "{partial_json}");
        assert!(
            partial_json.contains(
                "Request body too slow: the request body did not arrive within 1 seconds."
            ),
            "{partial_json}"
        );
        let whole = exchange(
            address,
            b"POST /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(
            whole.starts_with("HTTP/1.1 200") && whole.ends_with("hello"),
            "{whole}"
        );
    }

    #[test]
    fn defaults_are_valid_and_zero_limits_are_refused() {
        HttpSettings::default().validate().unwrap();
        let zero = HttpSettings {
            header_read_timeout_secs: 0,
            ..HttpSettings::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("header_read")
        );
        let wildcard = HttpSettings {
            public_hosts: vec!["*.example.com".into()],
            ..HttpSettings::default()
        };
        assert!(wildcard.validate().is_err());
        let parsed: HttpSettings = toml::from_str(
            "trusted_proxies = [\"10.0.0.0/8\"]\npublic_hosts = [\"paas.example.com\"]",
        )
        .unwrap();
        assert_eq!(parsed.trusted_proxies.len(), 1);
        assert_eq!(parsed.max_connections, 512);
    }
}

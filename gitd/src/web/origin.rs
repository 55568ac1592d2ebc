//! The dashboard's own origin as the browser sees it: `scheme://host`. gitd speaks plain HTTP
//! and leaves TLS to the proxy in front of it (docs/operations.md), so a request came over
//! HTTPS exactly when it arrived through one of `[http] trusted_proxies` saying
//! `X-Forwarded-Proto: https`; the same peers whose `X-Forwarded-For` is believed, and nobody
//! else's, so a client cannot claim HTTPS (or plain HTTP) for itself. The host is the request's
//! `Host`, which Traefik passes on unchanged.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::header;
use axum::http::request::Parts;

use crate::http::server::HttpSettings;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    pub https: bool,
    /// `host[:port]` as the request named it; none when it named none.
    pub host: Option<String>,
}

impl Origin {
    pub fn of(settings: &HttpSettings, parts: &Parts) -> Origin {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip().to_canonical());
        let via_trusted_proxy = peer.is_some_and(|peer| settings.is_trusted_proxy(peer));
        let forwarded_https = parts
            .headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        Origin {
            https: via_trusted_proxy && forwarded_https,
            host,
        }
    }

    /// `https://host` or `http://host`, as a browser writes it in `Origin`.
    pub fn serialized(&self) -> Option<String> {
        let scheme = if self.https { "https" } else { "http" };
        self.host.as_ref().map(|host| format!("{scheme}://{host}"))
    }

    /// Whether a request with these `Origin` and `Referer` headers comes from this origin.
    /// A browser sends `Origin` with every form post; without it, the `Referer` must be one of
    /// this origin's pages. With neither, the request cannot show where it comes from.
    pub fn sent(&self, origin: Option<&str>, referer: Option<&str>) -> bool {
        let Some(own) = self.serialized() else {
            return false;
        };
        match (origin, referer) {
            (Some(origin), _) => origin == own,
            (None, Some(referer)) => referer
                .strip_prefix(own.as_str())
                .is_some_and(|rest| rest.starts_with('/')),
            (None, None) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(peer: &str, proto: Option<&str>) -> Parts {
        let mut request = axum::http::Request::builder().header(header::HOST, "paas.example.com");
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let (mut parts, ()) = request.body(()).unwrap().into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::new(peer.parse().unwrap(), 4242)));
        parts
    }

    #[test]
    fn https_is_believed_from_trusted_proxies_only() {
        let settings = HttpSettings {
            trusted_proxies: vec!["10.0.0.0/8".parse().unwrap()],
            ..HttpSettings::default()
        };
        let https = |peer, proto| Origin::of(&settings, &request(peer, proto)).https;
        assert!(https("10.0.0.5", Some("https")));
        assert!(
            https("::ffff:10.0.0.5", Some("HTTPS")),
            "a v4-mapped peer is itself"
        );
        assert!(!https("10.0.0.5", Some("http")));
        assert!(!https("10.0.0.5", None));
        assert!(
            !https("203.0.113.9", Some("https")),
            "a client cannot claim HTTPS"
        );
        assert_eq!(
            Origin::of(&settings, &request("10.0.0.5", Some("https"))).serialized(),
            Some("https://paas.example.com".to_owned())
        );
    }

    fn origin(https: bool) -> Origin {
        Origin {
            https,
            host: Some("paas.example.com".into()),
        }
    }

    #[test]
    fn only_the_own_origin_is_accepted() {
        let plain = origin(false);
        assert!(plain.sent(Some("http://paas.example.com"), None));
        assert!(!plain.sent(Some("https://paas.example.com"), None));
        assert!(!plain.sent(Some("http://evil.example"), None));
        assert!(!plain.sent(Some("null"), Some("http://paas.example.com/")));
        assert!(origin(true).sent(Some("https://paas.example.com"), None));
    }

    #[test]
    fn without_origin_the_referer_must_be_an_own_page() {
        let own = origin(false);
        assert!(own.sent(None, Some("http://paas.example.com/apps/x")));
        assert!(!own.sent(None, Some("http://paas.example.com.evil.example/")));
        assert!(!own.sent(None, Some("http://evil.example/?http://paas.example.com/")));
        assert!(!own.sent(None, None));
        let hostless = Origin {
            https: false,
            host: None,
        };
        assert!(!hostless.sent(Some("http://paas.example.com"), None));
    }
}

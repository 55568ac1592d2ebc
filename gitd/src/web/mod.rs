//! The web dashboard, served beside the API on gitd's HTTP address: server-rendered pages for
//! the same accounts, with the same access rules, as the API. Pages read through the API's own
//! handlers ([`crate::http::handlers`]) and changes go through [`crate::ops`] as the API's do;
//! a user who may not see an app gets the same 404 as for one that does not exist.
//!
//! A browser is logged in by a session ([`session`]): the API's login behind a form, its token
//! in an HttpOnly cookie. Every change is a form post that carries the session's CSRF secret
//! and comes from the dashboard's own origin ([`csrf`]). Every value a tenant controls is
//! escaped by the templates ([`page`]), and the Content-Security-Policy allows no inline
//! script: the little script there is comes from [`assets`].

mod admin;
mod app;
mod apps;
mod assets;
mod chart;
mod csrf;
mod graphs;
mod logs;
mod origin;
mod page;
mod session;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, header};
use axum::routing::{get, post};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::http::server::{RouteClass, with_deadline};
use crate::state::SharedState;

/// Scripts, styles and images from gitd only; no inline script, no framing, forms post home.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The dashboard's routes, to be merged into gitd's router.
pub fn router() -> Router<SharedState> {
    let quick = Router::new()
        .route("/", get(apps::list))
        .route("/login", get(session::login_form).post(session::login))
        .route("/logout", post(session::logout))
        .route("/apps/{app}", get(app::show))
        .route("/apps/{app}/logs", get(logs::show))
        .route("/apps/{app}/logs/stream", get(logs::stream))
        .route("/apps/{app}/metrics", get(graphs::show))
        .route("/apps/{app}/metrics/graphs", get(graphs::fragment))
        .route("/admin", get(admin::show))
        .route("/assets/{file}", get(assets::serve));
    let rollouts = Router::new()
        .route("/apps/{app}/scale", post(app::scale))
        .route("/apps/{app}/rollback", post(app::rollback));
    with_deadline(quick, RouteClass::Quick)
        .merge(with_deadline(rollouts, RouteClass::Rollout))
        .layer(header_layer(
            header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        ))
        .layer(header_layer(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(header_layer(header::REFERRER_POLICY, "same-origin"))
        .layer(header_layer(header::X_FRAME_OPTIONS, "DENY"))
}

fn header_layer(name: HeaderName, value: &'static str) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

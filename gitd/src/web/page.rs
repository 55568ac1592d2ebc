//! The frame every page shares (head, navigation, logout), the hidden CSRF field of its forms,
//! and error pages. maud escapes every value interpolated into a template; nothing here writes
//! raw HTML from data.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::csrf;
use crate::http::ApiError;
use crate::store::SessionRow;

/// A whole page: `title`, then navigation for `session`'s user (none on the login page).
pub fn document(title: &str, session: Option<&SessionRow>, main: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · paas" }
                link rel="stylesheet" href="/assets/dashboard.css";
                script src="/assets/dashboard.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                @if let Some(session) = session {
                    header {
                        nav aria-label="Main" {
                            a href="/" class="brand" { "paas" }
                            a href="/" { "Apps" }
                            @if session.user.is_admin {
                                a href="/admin" { "Admin" }
                            }
                        }
                        form method="post" action="/logout" class="logout" {
                            (csrf_field(session))
                            span { "Logged in as " strong { (session.user.username) } }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                div id="main" { (main) }
            }
        }
    }
}

/// The hidden field that carries the session's secret in each of its forms.
pub fn csrf_field(session: &SessionRow) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(session.csrf_token); }
}

/// A page that could not be shown, or a change that was refused, with why.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
}

impl PageError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        PageError {
            status,
            message: message.into(),
        }
    }
}

impl From<ApiError> for PageError {
    fn from(err: ApiError) -> Self {
        let body = err.into_body();
        let status = StatusCode::from_u16(body.error.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        PageError::new(status, body.error.message)
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        ApiError::from(err).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("Error");
        let body = html! {
            main class="narrow" {
                h1 { (title) }
                p class="error" role="alert" { (self.message) }
                p { a href="/" { "Back to your apps" } }
            }
        };
        (self.status, document(title, None, body)).into_response()
    }
}

pub type PageResult<T = Markup> = Result<T, PageError>;

/// The pages of one app, in the order the tabs show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppTab {
    Overview,
    Logs,
    Metrics,
}

impl AppTab {
    const ALL: [AppTab; 3] = [AppTab::Overview, AppTab::Logs, AppTab::Metrics];

    fn label(self) -> &'static str {
        match self {
            AppTab::Overview => "Overview",
            AppTab::Logs => "Logs",
            AppTab::Metrics => "Metrics",
        }
    }

    /// What follows `/apps/<name>` in the tab's address.
    fn suffix(self) -> &'static str {
        match self {
            AppTab::Overview => "",
            AppTab::Logs => "/logs",
            AppTab::Metrics => "/metrics",
        }
    }
}

/// The tabs across an app's pages, `current` marked as the page shown.
pub fn app_tabs(app: &paas_api::AppName, current: AppTab) -> Markup {
    html! {
        nav aria-label="App" class="tabs" {
            @for tab in AppTab::ALL {
                a href={ "/apps/" (app) (tab.suffix()) }
                    aria-current=[(tab == current).then_some("page")] { (tab.label()) }
            }
        }
    }
}

/// A table's head row, one column per name.
pub fn column_heads(names: &[&str]) -> Markup {
    html! {
        thead { tr { @for name in names { th scope="col" { (name) } } } }
    }
}

/// A moment, readable and machine-readable: `2026-12-07 01:40 UTC`.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> Markup {
    html! {
        time datetime=(at.to_rfc3339()) { (at.format("%Y-%m-%d %H:%M UTC")) }
    }
}

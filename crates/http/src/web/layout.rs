//! The page frame and small shared pieces.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use scopegate_core::model::Member;

const CSS: &str = include_str!("../../static/scopegate.css");

/// GET /static/scopegate.css
const FAVICON: &str = "<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'><rect width='32' height='32' rx='6' fill='#0a66c2'/><text x='16' y='22' font-size='18' text-anchor='middle' fill='#fff' font-family='Arial'>sg</text></svg>";

/// GET /static/favicon.svg
pub async fn favicon() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("image/svg+xml"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=86400"),
            ),
        ],
        FAVICON,
    )
        .into_response()
}

/// GET /static/scopegate.css
pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        CSS,
    )
        .into_response()
}

/// Who is looking at the page, for the navigation.
pub struct Viewer<'a> {
    pub member: Option<&'a Member>,
    pub csrf: Option<&'a str>,
}

impl Viewer<'_> {
    pub const NOBODY: Viewer<'static> = Viewer {
        member: None,
        csrf: None,
    };
}

/// A whole page.
pub fn page(title: &str, viewer: &Viewer, narrow: bool, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · scopegate" }
                link rel="stylesheet" href="/static/scopegate.css";
                link rel="icon" href="/static/favicon.svg" type="image/svg+xml";
            }
            body {
                header.top { div.bar {
                    a.brand href="/developers/apps" { "scopegate" }
                    @if let Some(m) = viewer.member {
                        nav.main {
                            a href="/developers/apps" { "My apps" }
                            a href="/psettings/permitted-services" { "Permitted services" }
                            @if m.platform_admin {
                                a href="/developers/admin/review" { "Review queue" }
                                a href="/developers/admin/migrations" { "Migrations" }
                            }
                        }
                        span.hint { (m.full_name()) }
                        @if let Some(csrf) = viewer.csrf {
                            form.inline method="post" action="/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button.secondary type="submit" { "Sign out" }
                            }
                        }
                    } @else {
                        nav.main {}
                    }
                } }
                main class=[narrow.then_some("narrow")] { (body) }
                footer { "scopegate · OAuth 2.0 and OpenID Connect with LinkedIn's permission model" }
            }
        }
    }
}

/// An HTML response with the page's status.
pub fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, axum::response::Html(markup.into_string())).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// A full-page error shown on scopegate (never a redirect to an unverified URL).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    respond(
        status,
        page(
            title,
            &Viewer::NOBODY,
            true,
            html! {
                div.card {
                    h1 { (title) }
                    div.notice.error { (message) }
                    p.hint { "If you followed a link from an app, tell the app's developer about this error." }
                }
            },
        ),
    )
}

/// A hidden CSRF field.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(token); }
}

/// The first letter of a name, as a logo placeholder.
pub fn initial(name: &str) -> Markup {
    let c: String = name
        .chars()
        .next()
        .map(|c| c.to_uppercase().collect())
        .unwrap_or_default();
    html! { (c) }
}

/// 303 See Other to a path on this server (post/redirect/get, sign-in).
pub fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// To the sign-in page, coming back to `here` afterwards.
pub fn to_login(here: &str) -> Response {
    see_other(&format!("/login?next={}", crate::form::encode(here)))
}

/// Back to `path` with a notice (`kind` is `ok` or `error`) shown once.
pub fn with_notice(path: &str, kind: &str, text: &str) -> Response {
    see_other(&format!("{path}?{kind}={}", crate::form::encode(text)))
}

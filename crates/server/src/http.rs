//! The router, and the headers every response carries.

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};

use crate::state::AppState;

/// Form and JSON bodies larger than this are refused with 413 before any handler runs.
pub const MAX_BODY: usize = 64 * 1024;

/// Which routes a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Everything (no separate admin listener).
    All,
    /// Everything but the admin API.
    Public,
    /// The admin API only.
    Admin,
}

/// The routes of one listener.
pub fn router(state: AppState, listener: Listener) -> Router {
    let routes = match listener {
        Listener::All => public_routes().merge(crate::admin::routes()),
        Listener::Public => public_routes(),
        Listener::Admin => crate::admin::routes(),
    };
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .layer(middleware::from_fn_with_state(state.clone(), headers))
        .with_state(state)
}

/// Every route but the admin API.
fn public_routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/oauth/v2/accessToken", any(crate::oauth::token::token))
        .route(
            "/oauth/v2/introspectToken",
            any(crate::oauth::introspect::introspect),
        )
        .route("/oauth/v2/revoke", any(crate::oauth::introspect::revoke))
        .route(
            "/oauth/v2/authorization",
            get(crate::oauth::authorize::authorize).post(crate::oauth::authorize::authorize),
        )
        .route(
            "/oauth/native-pkce/authorization",
            get(crate::oauth::authorize::authorize_native)
                .post(crate::oauth::authorize::authorize_native),
        )
        .route(
            "/oauth/v2/authorization/consent",
            axum::routing::post(crate::oauth::authorize::consent),
        )
        .route(
            "/oauth/.well-known/openid-configuration",
            get(crate::oidc::discovery),
        )
        .route(
            "/.well-known/openid-configuration",
            get(crate::oidc::discovery),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(crate::oidc::discovery),
        )
        // RFC 8414 3.1: the well-known segment goes between the host and the issuer's path.
        .route(
            "/.well-known/oauth-authorization-server/oauth",
            get(crate::oidc::discovery),
        )
        .route("/oauth/openid/jwks", get(crate::oidc::jwks))
        .route(
            "/v2/userinfo",
            get(crate::oidc::userinfo).post(crate::oidc::userinfo),
        )
        .route(
            "/authz/v1/check",
            axum::routing::post(crate::enforce::check),
        )
        .route("/authz/v1/forward-auth", any(crate::enforce::forward_auth))
        .route(
            "/authz/v1/forward-auth/{*rest}",
            any(crate::enforce::forward_auth),
        )
        .route("/v2/{*rest}", any(crate::sandbox::handle))
        .route("/rest/{*rest}", any(crate::sandbox::handle))
        .merge(crate::web::routes())
        .route("/metrics", get(metrics))
}

async fn healthz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "draining"})),
        )
            .into_response();
    }
    // A cheap read proves the store answers; a node that cannot reach its database is not healthy.
    match state.store.read(|c| c.query("SELECT 1", &[])).await {
        Ok(_) => Json(serde_json::json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "healthz: store unreachable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(serde_json::json!({"status": 404, "message": "Resource not found"})),
    )
        .into_response()
}

/// Paths whose POSTs are a signed-in member's or developer's form submissions.
fn is_page_form(path: &str) -> bool {
    path == "/login"
        || path == "/logout"
        || path == "/oauth/v2/authorization/consent"
        || path.starts_with("/developers/")
        || path.starts_with("/psettings/")
}

/// True when a browser says the request came from another site. `Sec-Fetch-Site` decides when
/// present (anything but `same-origin` or `none`, a typed URL); otherwise an `Origin` that is
/// neither the public URL's nor the one the request was sent to. `Origin: null` is what browsers
/// send for same-origin posts from pages with `Referrer-Policy: no-referrer` (ours), so it proves
/// nothing either way and the CSRF token decides.
fn cross_site(state: &AppState, h: &HeaderMap) -> bool {
    if let Some(site) = h.get("sec-fetch-site") {
        let site = site.as_bytes();
        return !(site.eq_ignore_ascii_case(b"same-origin") || site.eq_ignore_ascii_case(b"none"));
    }
    let Some(origin) = h.get(header::ORIGIN).map(|v| v.as_bytes()) else {
        return false;
    };
    if origin == b"null" {
        return false;
    }
    let public = state.config.public_url.trim_end_matches('/').as_bytes();
    let host = h
        .get(header::HOST)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let same_host = !host.is_empty() && origin.strip_prefix(b"https://") == Some(host);
    !(origin.eq_ignore_ascii_case(public) || same_host)
}

/// Refuses, before any handler runs, what no handler should see: two `Authorization` headers
/// (which one a handler read would be an accident, MAL-09), and form posts to the pages from
/// another site (login CSRF and consent clickjacking-by-form, RFC 9700 4.7; the CSRF token is
/// the first line, this the second).
async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let h = req.headers();
    if h.get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        return crate::wire::OAuthError::invalid_request(
            "more than one Authorization header; send one",
        )
        .into_response();
    }
    if req.method() == axum::http::Method::POST
        && is_page_form(req.uri().path())
        && cross_site(&state, h)
    {
        return (
            StatusCode::FORBIDDEN,
            Json(serde_json::json!({
                "status": 403,
                "message": "This form cannot be submitted from another site.",
            })),
        )
            .into_response();
    }
    next.run(req).await
}

/// HSTS and the browser-hardening headers on every response, and the request counters.
async fn headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    state
        .metrics
        .requests
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut res = next.run(req).await;
    state.metrics.count_status(res.status().as_u16());
    let h = res.headers_mut();
    h.insert(
        header::STRICT_TRANSPORT_SECURITY,
        HeaderValue::from_static("max-age=31536000; includeSubDomains"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    res
}

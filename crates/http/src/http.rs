//! The router, and the headers every response carries.

use axum::body::{Body, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};

use scopegate_app::state::ServiceState;

use crate::extract::{MAX_BODY, MAX_DRAIN};

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
pub fn router(state: ServiceState, listener: Listener) -> Router {
    let routes = match listener {
        Listener::All => public_routes().merge(crate::admin::routes()),
        Listener::Public => public_routes(),
        Listener::Admin => crate::admin::routes(),
    };
    // /metrics: open on the admin listener (an operator's network); on the public one only with
    // the configured bearer token, and without one not at all (it would tell anyone the load and
    // the error rates).
    let routes = match (listener, state.config.metrics_token.is_some()) {
        (Listener::Admin, _) => routes.route("/metrics", get(metrics)),
        (_, true) => routes.route("/metrics", get(metrics_with_token)),
        (_, false) => routes,
    };
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        // Outside the guard: even its refusals come after the body was read, so an HTTP/1.1
        // client still sending reads them instead of a reset connection.
        .layer(middleware::from_fn_with_state(state.clone(), bounded_body))
        .layer(middleware::from_fn_with_state(state.clone(), headers))
        .with_state(state)
}

/// Every route but the admin API.
fn public_routes() -> Router<ServiceState> {
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
            "/oauth/v2/authorization/continue",
            get(crate::oauth::authorize::resume),
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
}

async fn healthz(State(state): State<ServiceState>) -> Response {
    use scopegate_app::health::{check, Health};
    let (status, word) = match check(&state).await {
        Ok(Health::Ok) => (StatusCode::OK, "ok"),
        Ok(Health::Draining) => (StatusCode::SERVICE_UNAVAILABLE, "draining"),
        Err(e) => {
            // Logs the detail once; the probe answers only the word.
            e.public_message();
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    };
    (status, Json(serde_json::json!({"status": word}))).into_response()
}

async fn metrics(State(state): State<ServiceState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// `/metrics` on the public listener: RFC 6750 2.1 bearer token, compared in constant time.
async fn metrics_with_token(State(state): State<ServiceState>, headers: HeaderMap) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let expected = state.config.metrics_token.as_ref();
    match (presented, expected) {
        (Some(p), Some(e)) if scopegate_core::secret::ct_eq_str(p, e.expose()) => {
            metrics(State(state)).await
        }
        _ => crate::wire::metrics_token_required(),
    }
}

/// What reading a request body came to.
enum BodyRead {
    Complete(Vec<u8>),
    TooLarge,
    TimedOut,
    Broken,
}

/// Reads a body of at most [`MAX_BODY`] bytes by `deadline`. A larger one is drained up to
/// [`MAX_DRAIN`] (by the same deadline) and reported as too large.
async fn read_bounded(mut body: Body, deadline: tokio::time::Instant) -> BodyRead {
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        if seen > MAX_DRAIN {
            return BodyRead::TooLarge;
        }
        let next = std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx));
        let frame = match tokio::time::timeout_at(deadline, next).await {
            Err(_) if seen > MAX_BODY => return BodyRead::TooLarge,
            Err(_) => return BodyRead::TimedOut,
            Ok(None) if seen > MAX_BODY => return BodyRead::TooLarge,
            Ok(None) => return BodyRead::Complete(kept),
            Ok(Some(Err(_))) if seen > MAX_BODY => return BodyRead::TooLarge,
            Ok(Some(Err(_))) => return BodyRead::Broken,
            Ok(Some(Ok(frame))) => frame,
        };
        // Trailers are not used by any endpoint and are dropped.
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= MAX_BODY {
                kept.extend_from_slice(&data);
            } else {
                kept = Vec::new();
            }
        }
    }
}

/// A refusal of the request body; on HTTP/1.1 it also closes the connection, whose framing can no
/// longer be trusted (RFC 9112 9.6).
fn body_refused(h1: bool, status: StatusCode, message: &str) -> Response {
    let mut res = crate::wire::status_message(status, message);
    if h1 {
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    res
}

/// Reads every request body before any handler runs: within the body timeout (else 408, so a
/// body trickled a byte at a time cannot hold a connection for ever) and within [`MAX_BODY`]
/// (else 413, after draining so the client can read it).
async fn bounded_body(State(state): State<ServiceState>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let h1 = parts.version < axum::http::Version::HTTP_2;
    let too_large = || {
        state
            .metrics
            .request_bodies_too_large
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        body_refused(
            h1,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("The request body is larger than {MAX_BODY} bytes."),
        )
    };
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expects_continue = parts
        .headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    // A declared size over the limit is refused unread when the client waits for 100 Continue
    // (it has sent nothing: RFC 9110 10.1.1) or when draining it would be pointless.
    if declared.is_some_and(|n| n > MAX_BODY as u64 && (expects_continue || n > MAX_DRAIN as u64)) {
        return too_large();
    }
    let deadline = tokio::time::Instant::now() + state.config.transport.body_timeout;
    match read_bounded(body, deadline).await {
        BodyRead::Complete(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        BodyRead::TooLarge => too_large(),
        BodyRead::TimedOut => {
            state
                .metrics
                .request_bodies_timed_out
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            body_refused(
                h1,
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.",
            )
        }
        BodyRead::Broken => body_refused(
            h1,
            StatusCode::BAD_REQUEST,
            "The request body could not be read.",
        ),
    }
}

async fn not_found() -> Response {
    crate::wire::status_message(StatusCode::NOT_FOUND, "Resource not found")
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
fn cross_site(state: &ServiceState, h: &HeaderMap) -> bool {
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
async fn guard(State(state): State<ServiceState>, req: Request, next: Next) -> Response {
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
        return crate::wire::status_message(
            StatusCode::FORBIDDEN,
            "This form cannot be submitted from another site.",
        );
    }
    next.run(req).await
}

/// HSTS and the browser-hardening headers on every response, and the request counters.
async fn headers(State(state): State<ServiceState>, req: Request, next: Next) -> Response {
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

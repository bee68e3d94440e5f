//! The router, and the headers every response carries.

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::{Json, Router};

use crate::state::AppState;

/// Form and JSON bodies larger than this are refused with 413 before any handler runs.
pub const MAX_BODY: usize = 64 * 1024;

/// Every route scopegate serves.
pub fn router(state: AppState) -> Router {
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
        .merge(crate::admin::routes())
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(state.clone(), headers))
        .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> Response {
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
            HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' https: data:; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'"),
        );
    }
    res
}

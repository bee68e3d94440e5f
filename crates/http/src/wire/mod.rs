//! The one place errors become wire responses: RFC 6749 JSON on the token-style endpoints
//! (`oauth`), LinkedIn's `{status, serviceErrorCode, code, message}` on the API (`api`), JSON on
//! the admin API (`admin`), HTML on the pages (`page`).

pub mod admin;
pub mod api;
pub mod oauth;
pub mod page;
pub mod redirect;

pub use admin::admin_error;
pub use api::ApiError;
pub use oauth::OAuthError;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// A JSON body that must not be cached (tokens, introspection results).
pub fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// `{"status", "message"}`: the JSON error of the endpoints outside LinkedIn's API shape (the
/// decision API's own refusals, the 404/405 fallbacks, refused bodies, the metrics token).
pub fn status_message(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"status": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// 401 for `/metrics` on the public listener without the metrics token (RFC 6750 3).
pub fn metrics_token_required() -> Response {
    let mut r = status_message(
        StatusCode::UNAUTHORIZED,
        "A valid metrics token is required.",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    );
    r
}

/// 401 for the decision API without a valid resource-server key (RFC 6750 3).
pub fn resource_server_key_required() -> Response {
    let mut r = status_message(
        StatusCode::UNAUTHORIZED,
        "a resource-server key is required: Authorization: Bearer sgr_…",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"scopegate-authz\""),
    );
    r
}

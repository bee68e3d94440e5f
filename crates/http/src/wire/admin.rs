//! The admin API's errors: `{"error": {"status", "message"}}`, the OpenAPI document's `Error`.
//! The only place that builds that body.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use scopegate_app::error::Error;

/// An admin API failure; its response is `{"error": {"status", "message"}}`.
#[derive(Debug, Clone)]
pub struct AdminError {
    /// The HTTP status, repeated in the body.
    pub status: StatusCode,
    /// A message safe to send: internal detail was logged, never put here.
    pub message: String,
    /// RFC 6750 3: a 401 names the Bearer scheme.
    challenge: bool,
}

impl AdminError {
    /// An error with this status and public message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        AdminError {
            status,
            message: message.into(),
            challenge: false,
        }
    }
    /// 400 for a malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        AdminError::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401: no usable admin API key; the response carries the Bearer challenge.
    pub fn unauthorized() -> Self {
        AdminError {
            challenge: true,
            ..AdminError::new(
                StatusCode::UNAUTHORIZED,
                "an admin API key is required: Authorization: Bearer sgk_…",
            )
        }
    }
    /// 413: the body is larger than the server reads.
    pub fn too_large() -> Self {
        AdminError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is too large",
        )
    }
}

impl From<Error> for AdminError {
    /// 503 for Unavailable, 500 for Internal; `public_message` logs their detail once.
    fn from(e: Error) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        AdminError::new(status, e.public_message())
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"status": self.status.as_u16(), "message": self.message}});
        let mut res = (self.status, Json(body)).into_response();
        if self.challenge {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scopegate-admin\""),
            );
        }
        res
    }
}

/// The admin API's error response for an application error (kept for existing callers).
pub fn admin_error(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    AdminError::new(status, e.public_message()).into_response()
}

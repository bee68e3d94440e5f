//! RFC 6749 section 5.2 errors: the token, introspection and revocation endpoints.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An RFC 6749 section 5.2 error.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: &'static str,
    pub description: String,
    /// Set when the client tried HTTP Basic: the 401 must name the scheme (RFC 6749 5.2).
    pub basic_challenge: bool,
    /// Seconds until a throttled client may try again.
    pub retry_after: Option<i64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        OAuthError {
            status,
            error,
            description: description.into(),
            basic_challenge: false,
            retry_after: None,
        }
    }
    /// 400 invalid_request.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        OAuthError::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    /// LinkedIn's "A required parameter \"X\" is missing".
    pub fn missing(name: &str) -> Self {
        OAuthError::invalid_request(format!("A required parameter \"{name}\" is missing"))
    }
    /// 401 invalid_client, the same for an unknown client and a wrong secret.
    pub fn invalid_client(basic: bool) -> Self {
        OAuthError {
            basic_challenge: true,
            ..OAuthError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "Client authentication failed",
            )
        }
        .with_basic(basic)
    }
    fn with_basic(mut self, basic: bool) -> Self {
        self.basic_challenge = basic || self.basic_challenge;
        self
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({"error": self.error, "error_description": self.description})),
        )
            .into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(s) = self
            .retry_after
            .and_then(|s| HeaderValue::from_str(&s.to_string()).ok())
        {
            h.insert(header::RETRY_AFTER, s);
        }
        if self.status == StatusCode::UNAUTHORIZED && self.basic_challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"scopegate\", charset=\"UTF-8\""),
            );
        }
        res
    }
}

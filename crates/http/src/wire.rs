//! The one place errors become wire responses: RFC 6749 JSON on the token-style endpoints,
//! LinkedIn's `{status, serviceErrorCode, code, message}` on the API, JSON on the admin API.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

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

/// A JSON body that must not be cached (tokens, introspection results).
pub fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

/// LinkedIn's API error body (reference section 6.2).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub service_error_code: u32,
    pub code: Option<&'static str>,
    pub message: String,
    /// RFC 6750 3: the WWW-Authenticate challenge for 401s.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// 401 "Empty oauth2_access_token" (no token at all).
    pub fn empty_token() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            service_error_code: 401,
            code: None,
            message: "Empty oauth2_access_token".into(),
            challenge: Some("Bearer realm=\"scopegate\""),
        }
    }
    /// 401 65600 INVALID_ACCESS_TOKEN.
    pub fn invalid_token() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            service_error_code: 65600,
            code: Some("INVALID_ACCESS_TOKEN"),
            message: "Invalid access token".into(),
            challenge: Some("Bearer realm=\"scopegate\", error=\"invalid_token\""),
        }
    }
    /// 401 EXPIRED_ACCESS_TOKEN.
    pub fn expired_token() -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, service_error_code: 65600, code: Some("EXPIRED_ACCESS_TOKEN"), message: "The token used in the request has expired".into(), challenge: Some("Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token has expired\"") }
    }
    /// 401 65601 REVOKED_ACCESS_TOKEN.
    pub fn revoked_token() -> Self {
        ApiError { status: StatusCode::UNAUTHORIZED, service_error_code: 65601, code: Some("REVOKED_ACCESS_TOKEN"), message: "The token used in the request has been revoked by the user".into(), challenge: Some("Bearer realm=\"scopegate\", error=\"invalid_token\", error_description=\"The token has been revoked\"") }
    }
    /// 403 100 ACCESS_DENIED "Not enough permissions to access: <resource>.<METHOD>.<version>".
    pub fn access_denied(resource: &str, method: &str, version: &str) -> Self {
        ApiError {
            status: StatusCode::FORBIDDEN,
            service_error_code: 100,
            code: Some("ACCESS_DENIED"),
            message: format!("Not enough permissions to access: {resource}.{method}.{version}"),
            // RFC 6750 3.1: a token that lacks the permission is `insufficient_scope`.
            challenge: Some("Bearer realm=\"scopegate\", error=\"insufficient_scope\""),
        }
    }
    /// 429 101 "Resource level throttle limit…".
    pub fn throttled() -> Self {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            service_error_code: 101,
            code: None,
            message: "Resource level throttle limit for calls to this resource is reached.".into(),
            challenge: None,
        }
    }
    /// 400 for a malformed request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            service_error_code: 400,
            code: Some("BAD_REQUEST"),
            message: message.into(),
            challenge: None,
        }
    }
    /// 400 for a malformed Authorization header (RFC 6750 3.1 `invalid_request`).
    pub fn bad_authorization(message: impl Into<String>) -> Self {
        ApiError {
            challenge: Some("Bearer realm=\"scopegate\", error=\"invalid_request\""),
            ..ApiError::bad_request(message)
        }
    }
    /// 404 for an unknown resource.
    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            service_error_code: 404,
            code: Some("NOT_FOUND"),
            message: message.into(),
            challenge: None,
        }
    }
    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        let mut v = json!({"status": self.status.as_u16(), "serviceErrorCode": self.service_error_code, "message": self.message});
        if let Some(code) = self.code {
            v["code"] = json!(code);
        }
        v
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut res = (self.status, Json(body)).into_response();
        if let Some(c) = self.challenge {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        res
    }
}

/// The admin API's error shape: `{"error": {"status", "message"}}`.
pub fn admin_error(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": e.public_message()}})),
    )
        .into_response()
}

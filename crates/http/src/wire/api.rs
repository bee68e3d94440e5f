//! LinkedIn's API errors: `{status, serviceErrorCode, code, message}` (reference section 6.2)
//! on the sandbox, the decision API, forward-auth and userinfo.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

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
        let h = res.headers_mut();
        // An error is about this request at this moment: a cache that kept a 401 or a 503
        // would answer it again after the token or the store recovered.
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(c) = self.challenge {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(c));
        }
        res
    }
}

/// The JWKS could not be read: 503, never cached. A relying party that cached an empty key set
/// would refuse every ID token until its cache expired.
impl From<scopegate_app::signing::KeyError> for ApiError {
    fn from(e: scopegate_app::signing::KeyError) -> Self {
        tracing::error!(error = %e, "jwks: the signing keys are not available");
        ApiError {
            message: "keys are not available yet".into(),
            ..ApiError::unavailable()
        }
    }
}

impl ApiError {
    /// 503: the store cannot answer now (never an allow, a refusal or a throttle). The detail is
    /// logged, not sent.
    pub fn unavailable() -> Self {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            service_error_code: 503,
            code: None,
            message: "try again shortly".into(),
            challenge: None,
        }
    }
}

impl From<scopegate_app::Error> for ApiError {
    fn from(e: scopegate_app::Error) -> Self {
        use scopegate_app::Error;
        let message = e.public_message();
        match e {
            Error::Unavailable(_) => ApiError::unavailable(),
            Error::NotFound(_) => ApiError::not_found(message),
            Error::Invalid(_) => ApiError::bad_request(message),
            Error::Conflict(_) | Error::Forbidden(_) | Error::Internal(_) => ApiError {
                status: StatusCode::from_u16(e.status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                service_error_code: u32::from(e.status()),
                code: None,
                message,
                challenge: None,
            },
        }
    }
}

impl ApiError {
    /// 426 NONEXISTENT_VERSION: a `LinkedIn-Version` that is not an active version.
    pub fn nonexistent_version() -> Self {
        ApiError {
            status: StatusCode::UPGRADE_REQUIRED,
            service_error_code: 426,
            code: Some("NONEXISTENT_VERSION"),
            message: "Requested version is not active".into(),
            challenge: None,
        }
    }
}

impl From<scopegate_app::sandbox::SandboxError> for ApiError {
    fn from(e: scopegate_app::sandbox::SandboxError) -> Self {
        use scopegate_app::sandbox::SandboxError;
        match e {
            SandboxError::BadRequest(m) => ApiError::bad_request(m),
            SandboxError::NotFound(m) => ApiError::not_found(m),
            SandboxError::InvalidToken => ApiError::invalid_token(),
            // The handler names the route and version in LinkedIn's 403; without them, the
            // generic refusal.
            SandboxError::Refused(_) => ApiError::access_denied("sandbox", "CALL", "NO_VERSION"),
            SandboxError::Failed(e) => e.into(),
        }
    }
}

impl From<scopegate_app::enforce::EnforceError> for ApiError {
    fn from(e: scopegate_app::enforce::EnforceError) -> Self {
        use scopegate_app::enforce::EnforceError;
        match e {
            EnforceError::NoRoute { .. } => ApiError::not_found(e.to_string()),
            EnforceError::NoToken => ApiError::empty_token(),
            EnforceError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    /// 426 NONEXISTENT_VERSION naming the version asked for, as LinkedIn words it ("Requested
    /// version 20250401 is not active": the month's first day appended to `YYYYMM`).
    pub fn version_not_active(requested: &str) -> Self {
        ApiError {
            message: format!("Requested version {requested} is not active"),
            ..ApiError::nonexistent_version()
        }
    }

    /// 400 VERSION_MISSING: a /rest call without `LinkedIn-Version` (docs/routes.md "Versions").
    pub fn version_missing() -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            service_error_code: 400,
            code: Some("VERSION_MISSING"),
            message: "A version must be present. Please specify a version by adding the LinkedIn-Version header.".into(),
            challenge: None,
        }
    }
}

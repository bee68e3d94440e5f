//! RFC 6749 section 5.2 errors: the token, introspection and revocation endpoints. The app's
//! [`TokenError`] becomes one here, in the configured dialect: LinkedIn's wording and statuses
//! differ from the RFC's in a few places (reference 1.7, 2.2, 2.4).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_app::oauth::{GrantRefusal, Issued, ThrottleReason, TokenError, APP_TOKEN_TTL};
use scopegate_app::Compat;
use serde_json::json;

/// The `error` codes of RFC 6749 5.2 (plus RFC 6749 4.1.2.1's `access_denied`, LinkedIn's
/// `invalid_redirect_uri` and the 5xx codes of RFC 6749 4.1.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    InvalidScope,
    UnauthorizedClient,
    UnsupportedGrantType,
    AccessDenied,
    InvalidRedirectUri,
    ServerError,
    TemporarilyUnavailable,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::InvalidScope => "invalid_scope",
            ErrorCode::UnauthorizedClient => "unauthorized_client",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::InvalidRedirectUri => "invalid_redirect_uri",
            ErrorCode::ServerError => "server_error",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
        }
    }
}

/// An RFC 6749 section 5.2 error.
#[derive(Debug, Clone)]
pub struct OAuthError {
    pub status: StatusCode,
    pub error: ErrorCode,
    pub description: String,
    /// Set when the client tried HTTP Basic: the 401 must name the scheme (RFC 6749 5.2).
    pub basic_challenge: bool,
    /// Seconds until a throttled client may try again.
    pub retry_after: Option<i64>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: ErrorCode, description: impl Into<String>) -> Self {
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
        OAuthError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            description,
        )
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
                ErrorCode::InvalidClient,
                "Client authentication failed",
            )
        }
        .with_basic(basic)
    }
    fn with_basic(mut self, basic: bool) -> Self {
        self.basic_challenge = basic || self.basic_challenge;
        self
    }
    /// 503 temporarily_unavailable.
    pub fn unavailable() -> Self {
        OAuthError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::TemporarilyUnavailable,
            "try again shortly",
        )
    }
    /// The answer to `e` in the dialect `compat`.
    pub fn from_token(compat: Compat, e: TokenError) -> Self {
        use StatusCode as S;
        match e {
            TokenError::InvalidRequest(d) => OAuthError::invalid_request(d),
            TokenError::Missing(name) => OAuthError::missing(name),
            // RFC 6749 5.2 calls absent client credentials `invalid_client` (401); LinkedIn
            // answers 400 `invalid_request` naming the missing parameter (reference 2.2).
            TokenError::MissingCredential(name) => match compat {
                Compat::Standard => OAuthError::invalid_client(false),
                Compat::Linkedin => OAuthError::missing(name),
            },
            TokenError::InvalidClient { basic } => OAuthError::invalid_client(basic),
            TokenError::InvalidGrant(r) => bad_grant(compat, r),
            // LinkedIn answers 401 access_denied (reference 2.4); RFC 6749 5.2 names a grant
            // the client may not use `unauthorized_client`, with 400.
            TokenError::UnauthorizedClient => {
                let (status, code) = match compat {
                    Compat::Standard => (S::BAD_REQUEST, ErrorCode::UnauthorizedClient),
                    Compat::Linkedin => (S::UNAUTHORIZED, ErrorCode::AccessDenied),
                };
                OAuthError::new(status, code, e.to_string())
            }
            TokenError::InvalidScope(d) => {
                OAuthError::new(S::BAD_REQUEST, ErrorCode::InvalidScope, d)
            }
            TokenError::UnsupportedGrantType(_) => OAuthError::new(
                S::BAD_REQUEST,
                ErrorCode::UnsupportedGrantType,
                e.to_string(),
            ),
            TokenError::Throttled {
                reason,
                retry_after,
            } => throttled(reason, retry_after),
            TokenError::Unavailable => OAuthError::unavailable(),
            TokenError::ServerError(d) => {
                OAuthError::new(S::INTERNAL_SERVER_ERROR, ErrorCode::ServerError, d)
            }
        }
    }
}

/// The error for a grant that does not redeem, in the configured dialect (reference 1.7).
fn bad_grant(compat: Compat, r: GrantRefusal) -> OAuthError {
    use StatusCode as S;
    let linkedin = compat == Compat::Linkedin;
    match r {
        GrantRefusal::CodeNotFound => OAuthError::new(
            if linkedin { S::UNAUTHORIZED } else { S::BAD_REQUEST },
            if linkedin { ErrorCode::InvalidRequest } else { ErrorCode::InvalidGrant },
            "Unable to retrieve access token: authorization code not found",
        ),
        GrantRefusal::CodeMismatch => OAuthError::new(
            S::BAD_REQUEST,
            if linkedin { ErrorCode::InvalidRedirectUri } else { ErrorCode::InvalidGrant },
            "Unable to retrieve access token: appid/redirect uri/code verifier does not match authorization code. Or authorization code expired. Or external member binding exists",
        ),
        GrantRefusal::RefreshToken => OAuthError::new(
            S::BAD_REQUEST,
            if linkedin { ErrorCode::InvalidRequest } else { ErrorCode::InvalidGrant },
            "The provided authorization grant or refresh token is invalid, expired or revoked",
        ),
        GrantRefusal::ScopeWidened => OAuthError::new(
            S::BAD_REQUEST,
            ErrorCode::InvalidScope,
            "the requested scope exceeds the scope originally granted",
        ),
    }
}

/// The answer to an attempt a throttle refused (429, with Retry-After).
fn throttled(reason: ThrottleReason, wait: i64) -> OAuthError {
    let (code, description) = match reason {
        ThrottleReason::ClientFailures => (
            ErrorCode::InvalidClient,
            "too many failed client authentications from this address; try again later",
        ),
        ThrottleReason::Guessing => (
            ErrorCode::InvalidRequest,
            "too many unknown tokens or codes from this address; try again later",
        ),
    };
    OAuthError {
        retry_after: Some(wait),
        ..OAuthError::new(StatusCode::TOO_MANY_REQUESTS, code, description)
    }
}

impl From<scopegate_app::Error> for OAuthError {
    fn from(e: scopegate_app::Error) -> Self {
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = e.public_message();
        match e {
            scopegate_app::Error::Unavailable(_) => OAuthError::unavailable(),
            scopegate_app::Error::Internal(_) => {
                OAuthError::new(status, ErrorCode::ServerError, message)
            }
            _ => OAuthError::new(status, ErrorCode::InvalidRequest, message),
        }
    }
}

/// Prints a scope set the way the configured compatibility mode does.
fn scope_string(compat: Compat, scopes: &scopegate_core::ScopeSet) -> String {
    match compat {
        Compat::Standard => scopes.to_space_separated(),
        Compat::Linkedin => scopes.to_comma_separated(),
    }
}

/// The token endpoint's answer to a 3-legged grant (RFC 6749 5.1), in the configured dialect.
pub fn token_body(compat: Compat, issued: &Issued, id_token: Option<String>) -> serde_json::Value {
    let mut body = json!({
        "access_token": issued.access.expose(),
        // LinkedIn quirk: real responses say 5183999, one second short of 60 days.
        "expires_in": match compat {
            Compat::Standard => issued.access_expires_in,
            Compat::Linkedin => issued.access_expires_in - 1,
        },
        "scope": scope_string(compat, &issued.scopes),
        "token_type": "Bearer",
    });
    if let (Some(r), Some(exp)) = (&issued.refresh, issued.refresh_expires_in) {
        body["refresh_token"] = json!(r.expose());
        body["refresh_token_expires_in"] = json!(exp);
    }
    if let Some(id) = id_token {
        body["id_token"] = json!(id);
    }
    body
}

/// The 2-legged answer: RFC 6749 4.4.3, or LinkedIn's, which has neither `scope` nor
/// `token_type` (reference section 2).
pub fn app_token_body(compat: Compat, issued: &Issued) -> serde_json::Value {
    let access = issued.access.expose();
    match compat {
        Compat::Standard => json!({
            "access_token": access,
            "expires_in": APP_TOKEN_TTL,
            "token_type": "Bearer",
            "scope": issued.scopes.to_space_separated(),
        }),
        Compat::Linkedin => json!({"access_token": access, "expires_in": APP_TOKEN_TTL}),
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut res = (
            self.status,
            Json(json!({"error": self.error.as_str(), "error_description": self.description})),
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

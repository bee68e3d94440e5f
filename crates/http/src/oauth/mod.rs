//! OAuth 2.0 endpoints on LinkedIn's paths.

pub mod authorize;
pub mod client;
pub mod introspect;
pub mod token;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, Method, Uri};

use crate::config::Compat;
use crate::form::Params;
use crate::wire::OAuthError;

/// Lifetimes (seconds).
pub const ACCESS_TOKEN_TTL: i64 = 60 * 24 * 3600;
pub const REFRESH_TOKEN_TTL: i64 = 365 * 24 * 3600;
pub const APP_TOKEN_TTL: i64 = 30 * 60;
/// RFC 6749 4.1.2 recommends at most 10 minutes; LinkedIn's codes live 30.
pub fn code_ttl(compat: Compat) -> i64 {
    match compat {
        Compat::Standard => 10 * 60,
        Compat::Linkedin => 30 * 60,
    }
}
/// A rotated refresh token presented again within this window is a concurrent refresh, not a replay.
pub const ROTATION_GRACE: i64 = 30;

/// The scopes `token` authorizes now: its own, narrowed to what the app's approved products
/// still grant and to deprecations before their cut-off, plus the auto-granted permissions of
/// those products. Every decision about what a token may do (enforcement, userinfo, the claims
/// of an ID token, refresh) reads a token's scopes through this one function, never its raw
/// `scopes`, so removing a product takes effect at once everywhere (docs/portal.md).
pub fn token_scopes(
    state: &crate::state::Service,
    token: &scopegate_core::model::TokenRecord,
    approved: &[String],
) -> scopegate_core::ScopeSet {
    scopegate_core::enforce::effective_token_scopes(
        &state.catalog,
        token,
        approved,
        crate::clock::date_of(state.now()),
    )
}

/// The scopes a new token issued from `token` (a redeemed code's consent, a refresh token)
/// records: those of its own it still authorizes. Auto-granted permissions are not written into
/// tokens: they travel with the product and [`token_scopes`] adds them while it is approved.
pub fn carried_scopes(
    state: &crate::state::Service,
    token: &scopegate_core::model::TokenRecord,
    approved: &[String],
) -> scopegate_core::ScopeSet {
    let own = scopegate_core::ScopeSet::parse(&token.scopes).unwrap_or_default();
    let now = token_scopes(state, token, approved);
    scopegate_core::ScopeSet::from_names(own.iter().filter(|s| now.contains(s)).map(str::to_string))
}

/// Prints a scope set the way the configured compatibility mode does.
pub fn scope_string(compat: Compat, scopes: &scopegate_core::ScopeSet) -> String {
    match compat {
        Compat::Standard => scopes.to_space_separated(),
        Compat::Linkedin => scopes.to_comma_separated(),
    }
}

/// Parses a token-style POST: form-encoded body, plus query parameters (python-social-auth sends
/// them on the query string); a name in both is a duplicate.
pub fn form_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, OAuthError> {
    if method != Method::POST {
        return Err(OAuthError::invalid_request(
            "use POST with an application/x-www-form-urlencoded body",
        ));
    }
    if !body.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
    }
    let body = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the request body is not valid UTF-8"))?;
    let params = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    match uri.query() {
        Some(q) => params
            .merge(q)
            .map_err(|e| OAuthError::invalid_request(e.to_string())),
        None => Ok(params),
    }
}

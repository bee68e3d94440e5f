//! The bearer token of an API call (RFC 6750 2.1), as extractors. The scheme is case-insensitive;
//! a header that is not one `Bearer <token>` is refused in LinkedIn's format.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::wire::ApiError;

/// The token a resource request presents; its rejection is LinkedIn's 401 (or 400 for a
/// malformed header).
pub struct Bearer(pub String);

/// The token a request presents, or why it presents none it can be read from: for enforcement,
/// which answers an unknown route's 404 before the token's own refusal (the route table is
/// public; whether a token works is not shown for paths that do not exist).
pub struct Presented(pub Result<String, ApiError>);

/// Reads the one Bearer token of `headers`.
pub fn bearer(headers: &HeaderMap) -> Result<String, ApiError> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(match headers.contains_key(header::AUTHORIZATION) {
            // Two Authorization headers: a backend behind us might read the other one.
            true => ApiError::bad_authorization("more than one Authorization header"),
            false => ApiError::empty_token(),
        });
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::bad_authorization("malformed Authorization header"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::invalid_token());
    }
    // RFC 6750 3.1: a Bearer header without exactly one token is a malformed request.
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::bad_authorization("malformed Bearer credentials"));
    }
    Ok(token.to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        bearer(&parts.headers).map(Bearer)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Presented {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Presented(bearer(&parts.headers)))
    }
}

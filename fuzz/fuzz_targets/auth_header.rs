//! The Authorization header parsers: client authentication with HTTP Basic at the token,
//! introspection and revocation endpoints (`extract::client::presented`, RFC 6749 2.3.1) and the
//! Bearer token of resource requests (`oidc::bearer`, RFC 6750 2.1).
//!
//! Input: raw header value bytes; or, when it is UTF-8 text with a newline, `client_id\nsecret`,
//! which the target form-urlencodes and base64-encodes into a Basic header itself.
//!
//! Asserts: Basic credentials that are accepted have a non-empty client_id and no control
//! characters, and encoding them again gives back the same credentials; credentials encoded
//! per RFC 6749 2.3.1 are accepted exactly when valid, and decode to themselves; an accepted
//! Bearer token is non-empty, has no space, and `Bearer <token>` gives it back.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use scopegate_http::extract::client::presented;
use scopegate_http::form::{encode, Params};
use scopegate_http::extract::bearer::bearer;

fn headers_with(value: HeaderValue) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, value);
    h
}

fn basic_header(id: &str, secret: &str) -> HeaderValue {
    let raw = format!("{}:{}", encode(id), encode(secret));
    HeaderValue::from_str(&format!("Basic {}", STANDARD.encode(raw)))
        .expect("base64 is a valid header")
}

/// The credentials Basic gave, or None when refused.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    match presented(headers, &Params::default()) {
        Ok(Some(p)) => {
            assert!(p.basic, "credentials from a header not marked Basic");
            let secret = p.secret.expect("Basic always has a secret");
            Some((p.client_id, secret.expose().to_string()))
        }
        Ok(None) => panic!("an Authorization header was ignored"),
        Err(_) => None,
    }
}

fn check_bearer(headers: &HeaderMap) {
    if let Ok(token) = bearer(headers) {
        assert!(
            !token.is_empty() && !token.contains(' '),
            "bearer token {token:?}"
        );
        assert_eq!(token, token.trim());
        let again =
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token came from a header");
        assert_eq!(
            bearer(&headers_with(again)).ok().as_deref(),
            Some(token.as_str())
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some((id, secret)) = std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.split_once('\n'))
    {
        // Encoded by a well-behaved client.
        let valid = !id.is_empty() && !id.chars().chain(secret.chars()).any(char::is_control);
        let got = basic(&headers_with(basic_header(id, secret)));
        if valid {
            assert_eq!(got, Some((id.to_string(), secret.to_string())));
        } else {
            assert_eq!(got, None, "invalid credentials accepted");
        }
        return;
    }

    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let headers = headers_with(value);
    if let Some((id, secret)) = basic(&headers) {
        assert!(!id.is_empty());
        assert!(!id.chars().chain(secret.chars()).any(char::is_control));
        assert_eq!(
            basic(&headers_with(basic_header(&id, &secret))),
            Some((id, secret)),
            "re-encoded credentials differ"
        );
    }
    check_bearer(&headers);
});

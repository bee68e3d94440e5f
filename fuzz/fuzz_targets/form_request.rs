//! A token-style request as the token, introspection and revocation endpoints read it
//! (`scopegate_http::extract::client::form_request`): a form body plus the query string, with the
//! Content-Type check.
//!
//! Input: first line = query string, second line = Content-Type, the rest = body bytes.
//!
//! Asserts: an accepted request had a form Content-Type (or an empty body) and a UTF-8 body; its
//! parameters are exactly the union of the body's and the query's, which share no name.
#![no_main]

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, Uri};
use libfuzzer_sys::fuzz_target;
use scopegate_http::extract::client::form_request;
use scopegate_http::form::Params;

fn split_line(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

fuzz_target!(|data: &[u8]| {
    let (query, rest) = split_line(data);
    let (content_type, body) = split_line(rest);
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let uri = if query.is_empty() {
        "/oauth/v2/accessToken".to_string()
    } else {
        format!("/oauth/v2/accessToken?{query}")
    };
    let Ok(uri) = uri.parse::<Uri>() else {
        return;
    };
    let mut headers = HeaderMap::new();
    if !content_type.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(content_type) else {
            return;
        };
        headers.insert(header::CONTENT_TYPE, v);
    }
    let body = Bytes::copy_from_slice(body);

    assert!(form_request(&Method::GET, &uri, &headers, &body).is_err());
    let Ok(params) = form_request(&Method::POST, &uri, &headers, &body) else {
        return;
    };

    if !body.is_empty() {
        let ct = std::str::from_utf8(content_type).expect("accepted Content-Type is text");
        let mime = ct.split(';').next().unwrap_or("").trim();
        assert!(mime.eq_ignore_ascii_case("application/x-www-form-urlencoded"));
    }
    let body = std::str::from_utf8(&body).expect("accepted body is UTF-8");
    let from_body = Params::parse(body).expect("accepted body parses alone");
    let from_query = Params::parse(uri.query().unwrap_or("")).expect("accepted query parses alone");
    for (k, v) in from_body.iter() {
        assert!(
            !from_query.has(k),
            "{k:?} in both body and query was accepted"
        );
        assert_eq!(params.get(k), Some(v));
    }
    for (k, v) in from_query.iter() {
        assert_eq!(params.get(k), Some(v));
    }
    for (k, _) in params.iter() {
        assert!(
            from_body.has(k) || from_query.has(k),
            "{k:?} came from nowhere"
        );
    }
});

//! The strict form parser (`scopegate_http::form::Params`) used for every request body and
//! query string.
//!
//! Asserts, beyond "never panics":
//! - a parsed form holds at most 64 parameters, no empty value, no control character but tab;
//! - re-encoding the parsed pairs with `form::encode` and parsing again gives the same pairs;
//! - it agrees with `url::form_urlencoded` (a lossy, lenient parser) on every accepted pair;
//! - merging a non-empty accepted form into itself is always refused as a duplicate.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_http::form::{encode, FormError, Params};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = match Params::parse(input) {
        Ok(p) => p,
        Err(FormError::Control(name)) => {
            assert!(name.chars().count() <= 40, "error echoes a long name");
            return;
        }
        Err(_) => return,
    };
    let pairs: Vec<(String, String)> = parsed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert!(pairs.len() <= 64, "{} parameters accepted", pairs.len());
    for (k, v) in &pairs {
        assert!(!v.is_empty(), "empty value kept for {k:?}");
        assert!(
            !k.chars()
                .chain(v.chars())
                .any(|c| c.is_control() && c != '\t'),
            "control character accepted in {k:?}={v:?}"
        );
        assert_eq!(parsed.get(k), Some(v.as_str()));
        assert!(parsed.has(k));
    }

    // Round trip through the encoder scopegate uses for the query strings it builds.
    let encoded = pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let again = Params::parse(&encoded)
        .unwrap_or_else(|e| panic!("re-encoded form {encoded:?} refused: {e}"));
    assert_eq!(again, parsed, "re-encoded form {encoded:?} differs");

    // Differential: the lenient parser sees the same value for every accepted name.
    for (k, v) in url::form_urlencoded::parse(input.as_bytes()) {
        if !v.is_empty() {
            assert_eq!(
                parsed.get(&k),
                Some(v.as_ref()),
                "url crate disagrees on {k:?}"
            );
        }
    }

    // A name seen in the body may not come again on the query string.
    if !pairs.is_empty() {
        assert!(
            matches!(parsed.clone().merge(input), Err(FormError::Duplicate(_))),
            "merging a form into itself was not refused"
        );
    }
});

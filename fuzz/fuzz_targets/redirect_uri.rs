//! Redirect URLs (`scopegate_core::redirect`): registration (`RedirectUri::parse`) and the
//! matching of an authorization request's redirect_uri (`matches_registered`).
//!
//! Input: the first line is parsed and matched; the other lines are the registered URLs.
//!
//! Asserts: matching is byte-for-byte string equality, nothing looser (RFC 9700 4.1.3); a
//! registered URL is absolute https (http only on loopback), has no query, fragment or
//! credentials, no space or control character; normalization is idempotent (parsing the result
//! gives it back) and the result matches itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::redirect::{matches_registered, RedirectUri};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = input.split('\n');
    let requested = lines.next().unwrap_or("");
    let registered: Vec<String> = lines.map(str::to_string).collect();

    match matches_registered(requested, &registered) {
        Some(m) => {
            assert_eq!(
                m.as_bytes(),
                requested.as_bytes(),
                "matched a different URL"
            );
            assert!(registered.iter().any(|r| r == m));
        }
        None => assert!(
            !registered.iter().any(|r| r == requested),
            "exact URL not matched"
        ),
    }

    let Ok(uri) = RedirectUri::parse(requested) else {
        return;
    };
    let s = uri.as_str();
    assert!(!s.chars().any(|c| c.is_control() || c == ' '), "{s:?}");
    assert!(
        !s.contains('#') && !s.contains('?'),
        "{s:?} kept a fragment or query"
    );
    let url = url::Url::parse(s).expect("a registered URL parses");
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "{s:?} kept credentials"
    );
    assert!(url.query().is_none() && url.fragment().is_none());
    match url.scheme() {
        "https" => {}
        "http" => assert!(uri.is_loopback(), "{s:?} is plain http off loopback"),
        other => panic!("{s:?} has scheme {other}"),
    }
    assert_eq!(
        RedirectUri::parse(s).as_ref(),
        Ok(&uri),
        "normalizing {s:?} again changed it"
    );
    assert_eq!(matches_registered(s, &[uri.to_string()]), Some(s));
});

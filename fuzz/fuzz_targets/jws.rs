//! Compact JWS / JWT parsing of an `id_token_hint` (`oidc_request::CompactJws::parse`, RFC 7515
//! 7.1) and the checks on its claims (`CompactJws::hinted_subject`). The signature check itself
//! (`oidc::verify_id_token_hint`) needs the server's keys and store, so it is not fuzzed here.
//!
//! Input: a token; or, when it has no `.`, a JSON payload that the target signs the way
//! `oidc::sign` lays a token out (header `{"alg","kid","typ"}`, base64url without padding).
//!
//! Asserts: an accepted token has exactly three parts, is at most 8192 bytes, is signed (non-empty
//! signature, alg not `none` in any case, no `crit`), its `signing_input` is the token up to the
//! last dot, its parts are canonical base64url (re-encoding gives the same text, so one token has
//! one spelling), and `hinted_subject` agrees with the payload; every error message is within
//! RFC 6749's error_description character set. A token laid out like scopegate's own parses back
//! to the same payload whenever the payload is a JSON object.
#![no_main]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use scopegate_core::oidc_request::{CompactJws, HintError, MAX_HINT_LEN};
use serde_json::{json, Value};

/// RFC 6749 4.1.2.1: error_description is %x20-21 / %x23-5B / %x5D-7E.
fn description_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b == 0x20 || b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn check(token: &str) -> Option<CompactJws<'_>> {
    let jws = match CompactJws::parse(token) {
        Ok(j) => j,
        Err(e) => {
            assert!(description_safe(&e.to_string()), "{e}");
            return None;
        }
    };
    assert!(token.len() <= MAX_HINT_LEN);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token:?}");
    assert_eq!(
        jws.signing_input,
        &token[..parts[0].len() + 1 + parts[1].len()]
    );
    assert!(!jws.alg.eq_ignore_ascii_case("none"));
    assert!(!jws.signature.is_empty());
    for part in &parts {
        let bytes = URL_SAFE_NO_PAD.decode(part).expect("accepted part decodes");
        assert_eq!(
            &URL_SAFE_NO_PAD.encode(bytes),
            part,
            "non-canonical base64url accepted"
        );
    }
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap_or_default())
            .expect("header is JSON");
    assert!(header.get("crit").is_none(), "crit accepted");
    assert_eq!(
        header.get("alg").and_then(Value::as_str),
        Some(jws.alg.as_str())
    );

    // hinted_subject against the token's own issuer and audience.
    let p = &jws.payload;
    let iss = p.get("iss").and_then(Value::as_str);
    let aud = match p.get("aud") {
        Some(Value::String(a)) => Some(a.as_str()),
        Some(Value::Array(l)) => l.iter().find_map(Value::as_str),
        _ => None,
    };
    let sub = p
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    if let (Some(iss), Some(aud)) = (iss, aud) {
        assert_eq!(jws.hinted_subject(iss, aud).ok().as_deref(), sub);
        let other = format!("{iss}/other");
        assert_eq!(
            jws.hinted_subject(&other, aud).err(),
            Some(HintError::WrongIssuer)
        );
        if !matches!(p.get("aud"), Some(Value::Array(_))) {
            let other = format!("{aud}-other");
            assert_eq!(
                jws.hinted_subject(iss, &other).err(),
                Some(HintError::WrongAudience)
            );
        }
    } else {
        assert!(jws
            .hinted_subject(iss.unwrap_or(""), aud.unwrap_or(""))
            .is_err());
    }
    Some(jws)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    if input.contains('.') {
        check(input);
        return;
    }
    // A token laid out as scopegate's oidc::sign does.
    let head = json!({"alg": "RS256", "kid": "k1", "typ": "JWT"});
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(head.to_string()),
        URL_SAFE_NO_PAD.encode(input),
        URL_SAFE_NO_PAD.encode([0x5a; 64])
    );
    let want = match serde_json::from_str::<Value>(input) {
        Ok(Value::Object(m)) if token.len() <= MAX_HINT_LEN => Some(m),
        _ => None,
    };
    let got = check(&token).map(|j| j.payload);
    assert_eq!(got, want, "scopegate-shaped token with payload {input:?}");
});

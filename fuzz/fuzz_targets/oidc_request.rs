//! OIDC authorization-request parameters parsed from the query string
//! (`scopegate_core::oidc_request`): `prompt` and the `claims` request (OIDC Core 5.5).
//!
//! Asserts: `prompt=none` is accepted only alone; an accepted claims request was at most 4096
//! bytes, a JSON object nested at most 5 deep (checked on the parsed JSON, not the byte scan
//! the parser uses), with at most 64 claims per target, each `null` or an object; `names()`
//! lists every claim; every error message is within RFC 6749's error_description character set.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::oidc_request::{ClaimsRequest, Prompt, MAX_CLAIMS_DEPTH, MAX_CLAIMS_LEN};
use serde_json::Value;

fn description_safe(s: &str) -> bool {
    s.bytes()
        .all(|b| b == 0x20 || b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fn unrepresentable(e: &serde_json::Error) -> bool {
    let m = e.to_string();
    m.starts_with("number out of range") || m.contains("surrogate") || m.contains("hex escape")
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(o) => 1 + o.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    match Prompt::parse(Some(input)) {
        Ok(p) => {
            let values: Vec<&str> = input.split(' ').filter(|v| !v.is_empty()).collect();
            assert_eq!(p.none, values.contains(&"none"));
            if p.none {
                assert!(
                    values.iter().all(|v| *v == "none"),
                    "none with others: {input:?}"
                );
            }
            assert_eq!(p.login, values.contains(&"login"));
            assert_eq!(p.consent, values.contains(&"consent"));
        }
        Err(e) => assert!(description_safe(&e.to_string())),
    }

    match ClaimsRequest::parse(input) {
        Ok(c) => {
            assert!(input.len() <= MAX_CLAIMS_LEN);
            let v: Value = match serde_json::from_str(input) {
                Ok(v) => v,
                // Valid JSON grammar that serde_json's Value cannot hold (1e999, a lone surrogate
                // escape) in a member the parser ignores and so only skipped: fine.
                Err(e) if unrepresentable(&e) => return,
                Err(e) => panic!("accepted claims are not JSON ({e}): {input:?}"),
            };
            let obj = v.as_object().expect("accepted claims are an object");
            assert!(
                depth(&v) <= MAX_CLAIMS_DEPTH,
                "depth {} accepted: {input:?}",
                depth(&v)
            );
            assert!(c.id_token.len() <= 64 && c.userinfo.len() <= 64);
            assert_eq!(c.names().count(), c.id_token.len() + c.userinfo.len());
            for (target, got) in [("id_token", &c.id_token), ("userinfo", &c.userinfo)] {
                match obj.get(target) {
                    None | Some(Value::Null) => assert!(got.is_empty()),
                    Some(Value::Object(m)) => {
                        assert_eq!(m.len(), got.len());
                        for (name, spec) in m {
                            let req = &got[name];
                            match spec {
                                Value::Null => assert!(!req.essential && req.value.is_none()),
                                Value::Object(s) => {
                                    assert_eq!(
                                        req.essential,
                                        s.get("essential") == Some(&Value::Bool(true))
                                    );
                                }
                                other => panic!("claim {name:?} = {other} accepted"),
                            }
                        }
                    }
                    Some(other) => panic!("{target} = {other} accepted"),
                }
            }
            let _ = c.required_sub();
            let _ = c.essential_acr_values();
        }
        Err(e) => assert!(description_safe(&e.to_string()), "{e}"),
    }
});

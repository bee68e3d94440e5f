//! What the API gateway parses from a request against the embedded LinkedIn route table: the
//! request path (`RouteTable::candidates` / `Route::matches`) and the resource URNs
//! (`routes::parse_urn`) found in it.
//!
//! Input: `METHOD /path` (first line); any further lines are URNs.
//!
//! Asserts: every candidate's method equals the request's (ignoring case) and has as many
//! segments as the path; parse_urn accepts only `urn:li:<known kind>:<integer>`, and gives the
//! same answer for the URN rebuilt from its result.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scopegate_core::catalog::ResourceType;
use scopegate_core::routes::{parse_urn, RouteTable, SANDBOX_TOML};
use scopegate_core::Catalog;

static TABLE: LazyLock<RouteTable> = LazyLock::new(|| {
    RouteTable::from_toml(SANDBOX_TOML, &Catalog::linkedin()).expect("embedded routes load")
});

fn check_urn(urn: &str) {
    let Some((kind, id)) = parse_urn(urn) else {
        return;
    };
    let rest = urn
        .strip_prefix("urn:li:")
        .expect("accepted URN has the prefix");
    let (k, n) = rest.split_once(':').expect("accepted URN has a kind");
    assert_eq!(n.parse::<i64>(), Ok(id));
    let expected = match k {
        "organization" | "organizationBrand" => ResourceType::Organization,
        "sponsoredAccount" => ResourceType::AdAccount,
        other => panic!("kind {other:?} accepted"),
    };
    assert_eq!(kind, expected);
    assert_eq!(parse_urn(&format!("urn:li:{k}:{id}")), Some((kind, id)));
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = input.split('\n');
    let first = lines.next().unwrap_or("");
    let (method, path) = first.split_once(' ').unwrap_or(("GET", first));
    let segments = path.split('/').filter(|s| !s.is_empty()).count();
    for (route, params) in TABLE.candidates(method, path) {
        assert!(route.method.eq_ignore_ascii_case(method));
        assert_eq!(
            route.path.split('/').filter(|s| !s.is_empty()).count(),
            segments
        );
        assert!(params.len() <= segments);
        for (_, value) in &params {
            check_urn(value);
        }
    }
    check_urn(first);
    for line in lines {
        check_urn(line);
    }
});

//! The route-table loader (`RouteTable::from_toml`), validated against the embedded LinkedIn
//! catalog.
//!
//! Asserts: a refused table reports at least one problem, each on a line of the file (or 0); in
//! an accepted table every route has a known method and a path starting with `/`, names only
//! permissions of the catalog, and matches a request for its own path (with each `{param}` filled
//! in, returned percent-decoded) through `candidates`.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use scopegate_core::routes::RouteTable;
use scopegate_core::Catalog;

static CATALOG: LazyLock<Catalog> = LazyLock::new(Catalog::linkedin);

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let last_line = text.split('\n').count();
    let table = match RouteTable::from_toml(text, &CATALOG) {
        Ok(t) => t,
        Err(problems) => {
            assert!(!problems.is_empty(), "refused with no problem");
            for p in &problems {
                assert!(
                    p.line <= last_line,
                    "problem on line {} of {last_line}",
                    p.line
                );
            }
            return;
        }
    };
    for route in &table.routes {
        assert!(["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&route.method.as_str()));
        assert!(route.path.starts_with('/'), "{:?}", route.path);
        assert_eq!(route.id, format!("{} {}", route.method, route.path));
        assert!(!route.permissions.is_empty());
        for p in &route.permissions {
            assert!(CATALOG.permission(p).is_some(), "{p:?} not in the catalog");
        }
        // A concrete request for this route: each {param} becomes p<i>%2Dx (decoded: p<i>-x).
        let mut params = Vec::new();
        let concrete: Vec<String> = route
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .map(
                |s| match s.strip_prefix('{').and_then(|r| r.strip_suffix('}')) {
                    Some(name) => {
                        params.push((name.to_string(), format!("p{}-x", params.len())));
                        format!("p{}%2Dx", params.len() - 1)
                    }
                    None => s.to_string(),
                },
            )
            .collect();
        let path = format!("/{}", concrete.join("/"));
        let got = route
            .matches(&route.method.to_lowercase(), &path)
            .unwrap_or_else(|| panic!("{} does not match its own path {path:?}", route.id));
        assert_eq!(got, params, "{}", route.id);
        assert!(table
            .candidates(&route.method, &path)
            .iter()
            .any(|(r, _)| r.id == route.id));
    }
    let _ = serde_json::to_string(&table).expect("a route table serializes");
});

//! What counts as a finding in one file's bytes. Pure: no I/O, no allocation per call except the
//! findings it reports.

use aho_corasick::{packed, AhoCorasick, MatchKind};
use memchr::memmem;

use crate::{Rule, ScanError};

/// The path LinkedIn's authorization endpoints end in, with the `?` that starts their query.
const AUTHORIZATION_QUERY: &[u8] = b"/authorization?";
/// What must stand right before [`AUTHORIZATION_QUERY`]: the 3-legged endpoint and the native
/// PKCE one.
const AUTHORIZATION_PREFIXES: [&[u8]; 2] = [b"/oauth/v2", b"/oauth/native-pkce"];

/// Where one finding is in a file, before line and column are worked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub(crate) what: HitKind,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HitKind {
    /// An old permission: the index of its rule.
    Rule(usize),
    /// An authorization URL without a `scope` parameter.
    UrlWithoutScope,
}

/// The compiled searchers for a set of rules.
#[derive(Debug)]
pub(crate) struct Matcher {
    /// `None` when there are no rules (only URLs are looked for).
    names: Option<Names>,
    url: memmem::Finder<'static>,
}

/// The search for the rules' names.
#[derive(Debug)]
enum Names {
    /// Teddy (SIMD), for up to a few dozen names: what ripgrep's regex engine uses for an
    /// alternation of literals. `AhoCorasick`'s own choice for a handful of names that all start
    /// with `r` or `w` would be a start-byte prefilter that stops at every `r` and `w`.
    Packed(packed::Searcher),
    /// Aho-Corasick, for many names or where Teddy is unavailable (no SSSE3, not x86_64 or
    /// aarch64).
    Automaton(AhoCorasick),
}

/// `[A-Za-z0-9_]`: a byte that continues an identifier.
fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Matcher {
    /// Compiles the rules' names. Names must be non-empty identifiers (`[A-Za-z0-9_]+`) and
    /// distinct.
    pub(crate) fn new(rules: &[Rule]) -> Result<Self, ScanError> {
        for (i, rule) in rules.iter().enumerate() {
            let invalid = |reason: &'static str| ScanError::InvalidRule {
                name: rule.name.clone(),
                reason,
            };
            if rule.name.is_empty() {
                return Err(invalid("a permission name cannot be empty"));
            }
            if !rule.name.bytes().all(is_ident) {
                return Err(invalid(
                    "a permission name is made of ASCII letters, digits and underscores",
                ));
            }
            if rules[..i].iter().any(|r| r.name == rule.name) {
                return Err(invalid("the permission is listed twice"));
            }
        }
        // Leftmost-longest, non-overlapping: with identifier-only names this finds every
        // bounded occurrence. A bounded occurrence cannot start inside an unbounded match (the
        // byte before it would be an identifier byte of that match), and a shorter name at the
        // same start ends on an identifier byte of the longer one.
        let names = if rules.is_empty() {
            None
        } else if let Some(teddy) = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostLongest)
            .builder()
            .extend(rules.iter().map(|r| r.name.as_bytes()))
            .build()
        {
            Some(Names::Packed(teddy))
        } else {
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(rules.iter().map(|r| r.name.as_bytes()))
                .map_err(|e| ScanError::Matcher(e.to_string()))?;
            Some(Names::Automaton(ac))
        };
        Ok(Matcher {
            names,
            url: memmem::Finder::new(AUTHORIZATION_QUERY).into_owned(),
        })
    }

    /// Calls `on_hit` for every old permission in `text`, in increasing position.
    pub(crate) fn old_permissions(&self, text: &[u8], mut on_hit: impl FnMut(Hit)) {
        let check = |m: aho_corasick::Match| {
            let (start, end) = (m.start(), m.end());
            let bounded_before =
                start == 0 || !is_ident(text[start - 1]) || after_percent_escape(text, start);
            let bounded_after = end == text.len() || !is_ident(text[end]);
            if bounded_before && bounded_after {
                on_hit(Hit {
                    what: HitKind::Rule(m.pattern().as_usize()),
                    start,
                    end,
                });
            }
        };
        match &self.names {
            None => {}
            Some(Names::Packed(teddy)) => teddy.find_iter(text).for_each(check),
            Some(Names::Automaton(ac)) => ac.find_iter(text).for_each(check),
        }
    }

    /// Calls `on_hit` for every authorization URL in `text` whose query has no `scope`
    /// parameter, in increasing position. The hit spans the whole URL.
    pub(crate) fn urls_without_scope(&self, text: &[u8], mut on_hit: impl FnMut(Hit)) {
        for at in self.url.find_iter(text) {
            let before = &text[..at];
            let Some(prefix) = AUTHORIZATION_PREFIXES
                .iter()
                .find(|prefix| before.ends_with(prefix))
            else {
                continue;
            };
            let query_start = at + AUTHORIZATION_QUERY.len();
            let query_end = text[query_start..]
                .iter()
                .position(|&b| ends_url(b))
                .map_or(text.len(), |n| query_start + n);
            let query = &text[query_start..query_end];
            if has_scope_parameter(query) {
                continue;
            }
            // A string literal that stops right after `?`, `&` or `=` is continued by
            // concatenation (`"…?client_id=" + id + "&scope=" + s`): look on the same line.
            let continued = query.is_empty() || query.ends_with(b"&") || query.ends_with(b"=");
            let quoted = text
                .get(query_end)
                .is_some_and(|b| matches!(b, b'"' | b'\'' | b'`'));
            if continued && quoted {
                let line_end =
                    memchr::memchr(b'\n', &text[query_end..]).map_or(text.len(), |n| query_end + n);
                if mentions_scope_parameter(&text[query_end..line_end]) {
                    continue;
                }
            }
            let path_start = at - prefix.len();
            let start = before[..path_start]
                .iter()
                .rposition(|&b| !is_url_head(b))
                .map_or(0, |n| n + 1);
            on_hit(Hit {
                what: HitKind::UrlWithoutScope,
                start,
                end: query_end,
            });
        }
    }
}

/// Whether `text[..at]` ends with a percent escape (`%20`, `%2C`…): in a URL-encoded scope
/// list (`scope=r_liteprofile%20w_share`) the escape separates names.
fn after_percent_escape(text: &[u8], at: usize) -> bool {
    at >= 3
        && text[at - 3] == b'%'
        && text[at - 2].is_ascii_hexdigit()
        && text[at - 1].is_ascii_hexdigit()
}

/// Bytes that end a URL's query: whitespace, quotes, a backtick, angle brackets, `)`.
fn ends_url(b: u8) -> bool {
    matches!(
        b,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | b'"' | b'\'' | b'`' | b'<' | b'>' | b')'
    )
}

/// Bytes that may come before the path in a URL: scheme, host, port, user info, percent
/// escapes. Walking back over these from `/oauth/…` finds where the URL starts.
fn is_url_head(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b'%' | b'@' | b'+'
        )
}

/// Whether a query string (without its `?`) has a `scope=` parameter. Parameters are separated
/// by `&`; `;` is accepted too, so HTML's `&amp;scope=` counts.
fn has_scope_parameter(query: &[u8]) -> bool {
    query
        .split(|&b| b == b'&' || b == b';')
        .any(|param| param.starts_with(b"scope="))
}

/// Whether `scope=` appears in `rest` as a parameter name (not preceded by an identifier byte,
/// so `myscope=` does not count).
fn mentions_scope_parameter(rest: &[u8]) -> bool {
    memmem::find_iter(rest, b"scope=").any(|i| i == 0 || !is_ident(rest[i - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(names: &[&str]) -> Vec<Rule> {
        names
            .iter()
            .map(|n| Rule {
                name: (*n).to_owned(),
                replacements: vec![],
                note: None,
            })
            .collect()
    }

    fn names_in<'a>(names: &[&'a str], text: &str) -> Vec<(usize, &'a str)> {
        let m = Matcher::new(&rules(names)).unwrap();
        let mut out = vec![];
        m.old_permissions(text.as_bytes(), |h| {
            let HitKind::Rule(i) = h.what else { panic!() };
            out.push((h.start, names[i]));
        });
        out
    }

    fn urls_in(text: &str) -> Vec<&str> {
        let m = Matcher::new(&[]).unwrap();
        let mut out = vec![];
        m.urls_without_scope(text.as_bytes(), |h| out.push(&text[h.start..h.end]));
        out
    }

    #[test]
    fn names_match_only_on_identifier_boundaries() {
        let names = ["w_share", "r_ads"];
        assert_eq!(names_in(&names, "w_share"), [(0, "w_share")]);
        assert_eq!(names_in(&names, "\"w_share\","), [(1, "w_share")]);
        assert!(names_in(&names, "w_shared my_w_share w_share2 r_ads_reporting").is_empty());
        assert_eq!(
            names_in(&names, "r_ads_reporting,r_ads w_share\tw_share"),
            [(16, "r_ads"), (22, "w_share"), (30, "w_share")]
        );
    }

    #[test]
    fn teddy_and_the_automaton_find_the_same_names() {
        let names = ["w_share", "r_ads", "r_ads_reporting", "rw_organization"];
        let teddy = Matcher::new(&rules(&names)).unwrap();
        #[cfg(target_arch = "x86_64")]
        assert!(matches!(teddy.names, Some(Names::Packed(_))));
        let automaton = Matcher {
            names: Some(Names::Automaton(
                AhoCorasick::builder()
                    .match_kind(MatchKind::LeftmostLongest)
                    .build(names)
                    .unwrap(),
            )),
            url: memmem::Finder::new(AUTHORIZATION_QUERY).into_owned(),
        };
        let text = "r_ads_reporting r_ads,w_share my_w_share rw_organization_admin \
                    rw_organization%20w_share w_shared r_ads";
        let hits = |m: &Matcher| {
            let mut v = vec![];
            m.old_permissions(text.as_bytes(), |h| v.push(h));
            v
        };
        assert_eq!(hits(&teddy).len(), 6);
        assert_eq!(hits(&teddy), hits(&automaton));
    }

    #[test]
    fn many_names_fall_back_to_the_automaton() {
        let names: Vec<String> = (0..200).map(|i| format!("perm_{i}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let m = Matcher::new(&rules(&refs)).unwrap();
        assert!(matches!(m.names, Some(Names::Automaton(_))));
        let mut found = vec![];
        m.old_permissions(b"perm_1 perm_10x perm_199", |h| found.push(h.start));
        assert_eq!(found, [0, 16]);
    }

    #[test]
    fn a_percent_escape_separates_names_in_a_url_encoded_scope() {
        let names = ["w_share"];
        assert_eq!(names_in(&names, "scope=r_ads%20w_share"), [(14, "w_share")]);
        assert_eq!(names_in(&names, "scope=r_ads%2Cw_share"), [(14, "w_share")]);
        assert!(names_in(&names, "x20w_share %2Gw_share").is_empty());
    }

    #[test]
    fn a_name_that_prefixes_another_is_found_on_its_own() {
        let names = ["r_ads", "r_ads_reporting"];
        assert_eq!(
            names_in(&names, "r_ads_reporting r_ads r_ads_reportingx"),
            [(0, "r_ads_reporting"), (16, "r_ads")]
        );
    }

    #[test]
    fn invalid_rule_names_are_refused() {
        for bad in [&["" as &str][..], &["w share"], &["w_share", "w_share"]] {
            assert!(matches!(
                Matcher::new(&rules(bad)),
                Err(ScanError::InvalidRule { .. })
            ));
        }
    }

    #[test]
    fn authorization_urls_need_a_scope_parameter() {
        let base = "https://www.linkedin.com/oauth/v2/authorization";
        assert_eq!(
            urls_in(&format!("x = \"{base}?response_type=code&client_id=1\";")),
            [&*format!("{base}?response_type=code&client_id=1")]
        );
        assert!(urls_in(&format!("{base}?response_type=code&scope=r_ads")).is_empty());
        assert!(urls_in(&format!("{base}?scope=r_ads")).is_empty());
        assert!(urls_in(&format!("<a href=\"{base}?a=1&amp;scope=r_ads\">")).is_empty());
        // `myscope=` is not `scope=`; the query stops at whitespace, `)` and `>`.
        assert_eq!(urls_in(&format!("({base}?myscope=1) scope=x")).len(), 1);
        assert_eq!(urls_in(&format!("<{base}?a=1>scope=1")).len(), 1);
        // No query at all: the URL is a base that code adds parameters to.
        assert!(urls_in(&format!("const AUTH = \"{base}\";")).is_empty());
        assert!(urls_in("https://example.com/authorization?a=1").is_empty());
        assert_eq!(
            urls_in("GET /oauth/native-pkce/authorization?response_type=code HTTP/1.1"),
            ["/oauth/native-pkce/authorization?response_type=code"]
        );
        assert_eq!(
            urls_in("`${HOST}/oauth/v2/authorization?client_id=${id}`"),
            ["/oauth/v2/authorization?client_id=${id}"]
        );
    }

    #[test]
    fn a_concatenated_query_is_followed_to_the_end_of_the_line() {
        let base = "https://www.linkedin.com/oauth/v2/authorization";
        assert!(urls_in(&format!("u = \"{base}?client_id=\" + id + \"&scope=\" + s")).is_empty());
        assert!(urls_in(&format!("u = \"{base}?\" + \"scope=\" + s")).is_empty());
        assert_eq!(
            urls_in(&format!("u = \"{base}?client_id=\" + id\nscope=1")).len(),
            1
        );
        // A complete literal is not continued, even when something else on the line says scope=.
        assert_eq!(
            urls_in(&format!("u = \"{base}?client_id=1\" // scope=x")).len(),
            1
        );
    }
}

//! Scope strings (`scopegate_core::ScopeSet::parse`): LinkedIn's space- or comma-separated lists.
//!
//! Asserts: every parsed scope is a scope token; printing with spaces or commas and parsing again
//! gives the same set; every token of the input is in the set; a refusal names (a prefix of) a
//! token of the input that is not a scope token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate_core::catalog::is_scope_token;
use scopegate_core::scope::BadScope;
use scopegate_core::ScopeSet;

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let tokens: Vec<&str> = input.split([' ', ',']).filter(|t| !t.is_empty()).collect();
    match ScopeSet::parse(input) {
        Ok(set) => {
            assert_eq!(set.iter().count(), set.len());
            assert_eq!(set.is_empty(), tokens.is_empty());
            for s in set.iter() {
                assert!(is_scope_token(s) && !s.contains(' '), "{s:?} kept");
            }
            for t in &tokens {
                assert!(set.contains(t), "{t:?} lost");
            }
            assert!(set.len() <= tokens.len());
            for printed in [set.to_space_separated(), set.to_comma_separated()] {
                assert_eq!(ScopeSet::parse(&printed).as_ref(), Ok(&set), "{printed:?}");
            }
            assert!(set.is_subset(&set));
        }
        Err(BadScope(bad)) => {
            assert!(bad.chars().count() <= 64);
            assert!(
                tokens
                    .iter()
                    .any(|t| !is_scope_token(t) && t.starts_with(&bad)),
                "refused {bad:?}, which is no bad token of the input"
            );
        }
    }
});

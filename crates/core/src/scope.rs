//! Scope strings: parsing LinkedIn's space- or comma-separated lists, and printing them.

use std::collections::BTreeSet;
use std::fmt;

use crate::catalog::is_scope_token;

/// A set of permission names, kept sorted and without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeSet(BTreeSet<String>);

/// A scope string that is not a list of scope tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope \"{0}\" is not a valid scope token")]
pub struct BadScope(pub String);

/// Shown as LinkedIn shows a scope list: one comma-separated string (the admin API's grants
/// and apps read like the token endpoint's `scope`).
impl serde::Serialize for ScopeSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_comma_separated())
    }
}

impl ScopeSet {
    /// Parses a scope parameter: tokens separated by spaces or commas (LinkedIn accepts both).
    pub fn parse(s: &str) -> Result<ScopeSet, BadScope> {
        let mut set = BTreeSet::new();
        for token in s.split([' ', ',']).filter(|t| !t.is_empty()) {
            if !is_scope_token(token) {
                return Err(BadScope(token.chars().take(64).collect()));
            }
            set.insert(token.to_string());
        }
        Ok(ScopeSet(set))
    }

    /// Builds a set from names already known to be valid (from the catalog or the store).
    pub fn from_names<I, S>(names: I) -> ScopeSet
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ScopeSet(names.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn contains(&self, name: &str) -> bool {
        self.0.contains(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
    pub fn insert(&mut self, name: impl Into<String>) {
        self.0.insert(name.into());
    }
    pub fn remove(&mut self, name: &str) -> bool {
        self.0.remove(name)
    }
    /// True when every scope of `self` is in `other`.
    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }
    /// Joined by single spaces (RFC 6749).
    pub fn to_space_separated(&self) -> String {
        self.join(" ")
    }
    /// Joined by commas (LinkedIn's wire format and scopegate's storage format).
    pub fn to_comma_separated(&self) -> String {
        self.join(",")
    }
    fn join(&self, sep: &str) -> String {
        let mut out = String::new();
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                out.push_str(sep);
            }
            out.push_str(s);
        }
        out
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_space_separated())
    }
}

impl<'a> IntoIterator for &'a ScopeSet {
    type Item = &'a String;
    type IntoIter = std::collections::btree_set::Iter<'a, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_and_commas_are_both_delimiters() {
        let a = ScopeSet::parse("r_ads w_member_social").unwrap();
        let b = ScopeSet::parse("r_ads,w_member_social").unwrap();
        let c = ScopeSet::parse(" r_ads ,, w_member_social r_ads ").unwrap();
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.to_comma_separated(), "r_ads,w_member_social");
        assert_eq!(a.to_space_separated(), "r_ads w_member_social");
    }

    #[test]
    fn control_characters_and_quotes_are_refused() {
        assert!(ScopeSet::parse("r_ads\nw_share").is_err());
        assert!(ScopeSet::parse("a\"b").is_err());
        assert!(ScopeSet::parse("é").is_err());
        assert!(ScopeSet::parse("").unwrap().is_empty());
    }
}

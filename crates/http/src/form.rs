//! A strict `application/x-www-form-urlencoded` parser for untrusted input.
//!
//! Stricter than the usual lossy ones on purpose: RFC 6749 3.1 says parameters MUST NOT repeat,
//! and an auth server should refuse invalid UTF-8, NUL and CR/LF rather than guess.

use std::collections::{BTreeMap, BTreeSet};

/// Why a form or query string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("parameter \"{0}\" is included more than once")]
    Duplicate(String),
    #[error("the request is not valid UTF-8 after percent-decoding")]
    Utf8,
    #[error("parameter \"{0}\" contains a control character")]
    Control(String),
    #[error("the request has too many parameters")]
    TooMany,
}

/// Form-urlencodes one value (for query strings scopegate builds).
pub fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// Parsed parameters. Empty values count as absent (RFC 6749 3.1), but their names are kept so
/// that `a=&a=1` is refused as a repeat just as `a=1&a=` is.
#[derive(Debug, Clone, Default)]
pub struct Params(BTreeMap<String, String>, BTreeSet<String>);

/// Two forms are equal when their non-empty parameters are: empty ones mean nothing.
impl PartialEq for Params {
    fn eq(&self, other: &Params) -> bool {
        self.0 == other.0
    }
}

impl Eq for Params {}

const MAX_PARAMS: usize = 64;

fn decode(raw: &str) -> Result<String, FormError> {
    let plus = raw.replace('+', " ");
    let bytes: Vec<u8> = percent_encoding::percent_decode_str(&plus).collect();
    String::from_utf8(bytes).map_err(|_| FormError::Utf8)
}

impl Params {
    /// Parses `a=1&b=2`.
    pub fn parse(input: &str) -> Result<Params, FormError> {
        Params::default().merge(input)
    }

    /// Adds the parameters of another string, refusing any name seen before.
    pub fn merge(mut self, input: &str) -> Result<Params, FormError> {
        for pair in input.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            if k.chars()
                .chain(v.chars())
                .any(|c| c.is_control() && c != '\t')
            {
                return Err(FormError::Control(k.chars().take(40).collect()));
            }
            if self.0.contains_key(&k) || self.1.contains(&k) {
                return Err(FormError::Duplicate(k));
            }
            if v.is_empty() {
                self.1.insert(k);
                continue;
            }
            if self.0.insert(k.clone(), v).is_some() {
                return Err(FormError::Duplicate(k));
            }
            if self.0.len() + self.1.len() > MAX_PARAMS {
                return Err(FormError::TooMany);
            }
        }
        Ok(self)
    }

    /// A parameter's value, if present and non-empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// True when the parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Every parameter.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_plus_and_percent() {
        let p =
            Params::parse("scope=r_ads+w_member_social&redirect_uri=https%3A%2F%2Fx%2Fcb").unwrap();
        assert_eq!(p.get("scope"), Some("r_ads w_member_social"));
        assert_eq!(p.get("redirect_uri"), Some("https://x/cb"));
    }

    #[test]
    fn refuses_duplicates_bad_utf8_and_controls() {
        assert_eq!(
            Params::parse("a=1&a=2"),
            Err(FormError::Duplicate("a".into()))
        );
        assert_eq!(Params::parse("a=%FF"), Err(FormError::Utf8));
        assert!(matches!(
            Params::parse("a=x%00y"),
            Err(FormError::Control(_))
        ));
        assert!(matches!(
            Params::parse("a=x%0D%0Ay"),
            Err(FormError::Control(_))
        ));
    }

    #[test]
    fn empty_values_count_as_absent() {
        let p = Params::parse("state=&code=abc").unwrap();
        assert_eq!(p.get("state"), None);
        assert_eq!(p.get("code"), Some("abc"));
    }

    #[test]
    fn an_empty_value_still_counts_as_a_repeat() {
        assert!(matches!(
            Params::parse("a=&a=1"),
            Err(FormError::Duplicate(_))
        ));
        assert!(matches!(
            Params::parse("a=1&a="),
            Err(FormError::Duplicate(_))
        ));
        assert!(matches!(
            Params::parse("a=&a="),
            Err(FormError::Duplicate(_))
        ));
        assert_eq!(Params::parse("a=&b=1").unwrap().get("a"), None);
    }
}

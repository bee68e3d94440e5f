//! Rest.li 2.0 query syntax (LinkedIn's protocol-version page, docs/routes.md "Rest.li 2.0"):
//! `List(a,b)`, `(key:value,…)` records, and percent-encoded strings. A value is parsed from
//! the query as it was sent, before any percent-decoding: the structure's `(`, `)`, `,` and `:`
//! are literal, and the same characters inside a string (a URN's colons) arrive encoded
//! (`urn%3Ali%3AsponsoredAccount%3A1`), so decoding first would make the two indistinguishable.

use std::borrow::Cow;

/// A Rest.li 2.0 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A string (percent-decoded; `''` is the empty string).
    Str(String),
    /// `List(…)`.
    List(Vec<Value>),
    /// `(key:value,…)`, in the order sent.
    Record(Vec<(String, Value)>),
}

/// Why a value is not Rest.li 2.0.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestliError {
    #[error("unexpected {found} at offset {at} of a Rest.li value")]
    Unexpected { found: String, at: usize },
    #[error("a Rest.li value ends early")]
    Truncated,
    #[error("a Rest.li value nests too deeply")]
    TooDeep,
    #[error("a Rest.li string is not UTF-8 once decoded")]
    NotUtf8,
}

/// Nesting deeper than this is refused: no real criteria nest more than four levels.
const MAX_DEPTH: usize = 16;

impl Value {
    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// A record's field.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Record(fields) => fields.iter().find(|(k, _)| k == name).map(|(_, v)| v),
            _ => None,
        }
    }
}

/// Parses one Rest.li 2.0 value, exactly: trailing characters are an error.
pub fn parse(raw: &str) -> Result<Value, RestliError> {
    let mut p = Parser {
        s: raw.as_bytes(),
        at: 0,
    };
    let v = p.value(0)?;
    match p.peek() {
        None => Ok(v),
        Some(c) => Err(p.unexpected(c)),
    }
}

/// A query parameter's raw (still percent-encoded) value, when it is sent once; [`Repeated`] when
/// it is repeated, which a Rest.li request never does.
pub fn raw_param<'q>(query: Option<&'q str>, name: &str) -> Result<Option<&'q str>, Repeated> {
    let mut found = None;
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if decode(k).ok().as_deref() == Some(name) {
            if found.is_some() {
                return Err(Repeated);
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// A query parameter was sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a query parameter is repeated")]
pub struct Repeated;

/// Percent-decodes a string of a Rest.li value.
pub fn decode(s: &str) -> Result<String, RestliError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| RestliError::NotUtf8)
}

/// Encodes a string for a Rest.li 2.0 value or path key: everything but unreserved characters
/// is percent-encoded, so a URN's `:` is `%3A` (what LinkedIn's client sends).
pub fn encode(s: &str) -> String {
    const RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    if s.is_empty() {
        return "''".into();
    }
    percent_encoding::utf8_percent_encode(s, RESERVED).to_string()
}

struct Parser<'a> {
    s: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.at).copied()
    }

    fn unexpected(&self, c: u8) -> RestliError {
        RestliError::Unexpected {
            found: format!("'{}'", char::from(c)),
            at: self.at,
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), RestliError> {
        match self.peek() {
            Some(x) if x == c => {
                self.at += 1;
                Ok(())
            }
            Some(x) => Err(self.unexpected(x)),
            None => Err(RestliError::Truncated),
        }
    }

    fn value(&mut self, depth: usize) -> Result<Value, RestliError> {
        if depth > MAX_DEPTH {
            return Err(RestliError::TooDeep);
        }
        if self.s[self.at..].starts_with(b"List(") {
            self.at += 5;
            let items = self.items(depth, |p, d| p.value(d))?;
            return Ok(Value::List(items));
        }
        if self.peek() == Some(b'(') {
            self.at += 1;
            let fields = self.items(depth, |p, d| {
                let k = p.string()?;
                p.expect(b':')?;
                Ok((k, p.value(d)?))
            })?;
            return Ok(Value::Record(fields));
        }
        Ok(Value::Str(self.string()?))
    }

    /// Comma-separated items up to the closing `)` (already past the opening one).
    fn items<T>(
        &mut self,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<T, RestliError>,
    ) -> Result<Vec<T>, RestliError> {
        let mut out = Vec::new();
        if self.peek() == Some(b')') {
            self.at += 1;
            return Ok(out);
        }
        loop {
            out.push(item(self, depth + 1)?);
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b')') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(c) => return Err(self.unexpected(c)),
                None => return Err(RestliError::Truncated),
            }
        }
    }

    /// A string up to the next structural character; `''` is the empty string.
    fn string(&mut self) -> Result<String, RestliError> {
        if self.s[self.at..].starts_with(b"''") {
            self.at += 2;
            return Ok(String::new());
        }
        let start = self.at;
        while let Some(c) = self.peek() {
            if matches!(c, b'(' | b')' | b',' | b':') {
                break;
            }
            self.at += 1;
        }
        if self.at == start {
            return match self.peek() {
                Some(c) => Err(self.unexpected(c)),
                None => Err(RestliError::Truncated),
            };
        }
        let raw = std::str::from_utf8(&self.s[start..self.at]).map_err(|_| RestliError::NotUtf8)?;
        decode(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn lists_records_and_encoded_urns_parse_as_sent() {
        assert_eq!(
            parse("List(urn%3Ali%3AsponsoredAccount%3A1,2)").unwrap(),
            Value::List(vec![s("urn:li:sponsoredAccount:1"), s("2")])
        );
        let v = parse("(status:(values:List(ACTIVE,DRAFT)),test:false)").unwrap();
        assert_eq!(
            v.field("status").and_then(|f| f.field("values")),
            Some(&Value::List(vec![s("ACTIVE"), s("DRAFT")]))
        );
        assert_eq!(v.field("test"), Some(&s("false")));
        assert_eq!(parse("List()").unwrap(), Value::List(vec![]));
        assert_eq!(parse("()").unwrap(), Value::Record(vec![]));
        assert_eq!(parse("''").unwrap(), s(""));
        assert_eq!(parse("a%20b").unwrap(), s("a b"));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in [
            "List(a", "(a:b", "(a)", "(a:b))", "List(a,)", ",", "", "(:b)", "a)b", "%FF",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let deep = format!("{}a{}", "List(".repeat(40), ")".repeat(40));
        assert_eq!(parse(&deep), Err(RestliError::TooDeep));
    }

    #[test]
    fn encoding_round_trips_through_parsing() {
        for x in ["urn:li:sponsoredAccount:1", "a,b (c)", "", "ünï"] {
            assert_eq!(parse(&encode(x)).unwrap(), s(x));
        }
        assert_eq!(encode("urn:li:x:1"), "urn%3Ali%3Ax%3A1");
    }

    #[test]
    fn a_raw_parameter_is_read_once_undecoded() {
        let q = Some("q=search&search=(id:(values:List(urn%3Ali%3Ax%3A1)))");
        assert_eq!(
            raw_param(q, "search"),
            Ok(Some("(id:(values:List(urn%3Ali%3Ax%3A1)))"))
        );
        assert_eq!(raw_param(q, "ids"), Ok(None));
        assert_eq!(raw_param(Some("ids=1&ids=2"), "ids"), Err(Repeated));
    }
}

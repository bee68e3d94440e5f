//! OpenID Connect authorization-request parameters that need more than a string: `prompt`
//! (OIDC Core 3.1.2.1), the `claims` request (5.5) and the `id_token_hint` (3.1.2.1) up to, not
//! including, its signature (the server holds the keys and checks that).
//!
//! Error messages never echo the request: they travel back in `error_description`, whose
//! character set RFC 6749 4.1.2.1 restricts (no `"` or `\`).

use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

// ---------------------------------------------------------------------------------------------
// prompt

/// Why a `prompt` value is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PromptError {
    /// OIDC Core 3.1.2.1: "If this parameter contains none with any other value, an error is
    /// returned."
    #[error("prompt=none cannot be combined with other prompt values")]
    NoneWithOthers,
}

/// The `prompt` values scopegate acts on; other values are ignored (OIDC Core 3.1.2.1 lists them
/// as things the OP may do, and RFC 6749 3.1 has servers ignore what they do not understand).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prompt {
    /// Answer without any page: an error if sign-in or consent would be needed.
    pub none: bool,
    /// Sign the member in again even with a live session.
    pub login: bool,
    /// Show the consent screen even when the grant covers the request.
    pub consent: bool,
}

impl Prompt {
    /// Parses the space-separated `prompt` parameter.
    pub fn parse(raw: Option<&str>) -> Result<Prompt, PromptError> {
        let mut p = Prompt::default();
        let mut others = false;
        for v in raw.unwrap_or("").split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => p.none = true,
                "login" => {
                    p.login = true;
                    others = true;
                }
                "consent" => {
                    p.consent = true;
                    others = true;
                }
                _ => others = true,
            }
        }
        if p.none && others {
            return Err(PromptError::NoneWithOthers);
        }
        Ok(p)
    }
}

// ---------------------------------------------------------------------------------------------
// claims (OIDC Core 5.5)

/// The longest `claims` parameter accepted. A request for every standard claim in both places
/// fits in well under 2 KiB; the cap bounds the work an unauthenticated request can cause.
pub const MAX_CLAIMS_LEN: usize = 4096;
/// The deepest nesting accepted: request / target / claim / `values` / one more for structured
/// values such as `address`.
pub const MAX_CLAIMS_DEPTH: usize = 5;
/// The most claims accepted for one target (`id_token` or `userinfo`).
pub const MAX_CLAIMS_PER_TARGET: usize = 64;

/// Why a `claims` parameter is refused (`invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClaimsError {
    #[error("the claims parameter is longer than 4096 bytes")]
    TooLong,
    #[error("the claims parameter nests deeper than 5 levels")]
    TooDeep,
    #[error("the claims parameter must be a JSON object")]
    NotObject,
    #[error("the claims parameter is not valid JSON")]
    NotJson,
    #[error("the claims parameter does not follow OIDC Core 5.5 (id_token and userinfo must be objects of claim requests; essential a boolean, values an array; no member twice)")]
    Shape,
    #[error("the claims parameter requests more than 64 claims for one target")]
    TooMany,
}

/// One claim's request: `null` (the default) or `{"essential", "value", "values"}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimRequest {
    pub essential: bool,
    pub value: Option<Value>,
    pub values: Vec<Value>,
}

/// A parsed `claims` request parameter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClaimsRequest {
    pub id_token: BTreeMap<String, ClaimRequest>,
    pub userinfo: BTreeMap<String, ClaimRequest>,
}

/// A JSON object that refuses a member named twice (serde_json keeps the last one silently,
/// which would let two parsers of the same request disagree).
struct StrictMap<V>(BTreeMap<String, V>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for StrictMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = StrictMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom("duplicate member"));
                    }
                    out.insert(k, v);
                }
                Ok(StrictMap(out))
            }
        }
        d.deserialize_map(V2(PhantomData))
    }
}

/// The members OIDC Core 5.5.1 defines for one claim; others are ignored, as 5.5 asks.
#[derive(serde::Deserialize)]
struct RawClaim {
    essential: Option<bool>,
    value: Option<Value>,
    values: Option<Vec<Value>>,
}

fn take_claims(
    raw: Option<StrictMap<Option<StrictMap<Value>>>>,
) -> Result<BTreeMap<String, ClaimRequest>, ClaimsError> {
    let Some(StrictMap(map)) = raw else {
        return Ok(BTreeMap::new());
    };
    if map.len() > MAX_CLAIMS_PER_TARGET {
        return Err(ClaimsError::TooMany);
    }
    map.into_iter()
        .map(|(name, spec)| {
            let req = match spec {
                None => ClaimRequest::default(),
                Some(StrictMap(members)) => {
                    let obj: serde_json::Map<String, Value> = members.into_iter().collect();
                    let c: RawClaim = serde_json::from_value(Value::Object(obj))
                        .map_err(|_| ClaimsError::Shape)?;
                    ClaimRequest {
                        essential: c.essential.unwrap_or(false),
                        value: c.value,
                        values: c.values.unwrap_or_default(),
                    }
                }
            };
            Ok((name, req))
        })
        .collect()
}

/// The deepest `{`/`[` nesting of a JSON text, strings skipped; measured before parsing so a
/// deeply nested request costs one pass over at most [`MAX_CLAIMS_LEN`] bytes.
fn nesting_depth(s: &str) -> usize {
    let (mut depth, mut max, mut in_str, mut escaped) = (0usize, 0usize, false, false);
    for b in s.bytes() {
        if in_str {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_str = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

impl ClaimsRequest {
    /// Parses the `claims` parameter strictly: one JSON object within the size and depth caps,
    /// `id_token` and `userinfo` objects of claim requests, no member twice. Unknown top-level
    /// members and unknown members of a claim request are ignored (OIDC Core 5.5).
    pub fn parse(raw: &str) -> Result<ClaimsRequest, ClaimsError> {
        if raw.len() > MAX_CLAIMS_LEN {
            return Err(ClaimsError::TooLong);
        }
        if nesting_depth(raw) > MAX_CLAIMS_DEPTH {
            return Err(ClaimsError::TooDeep);
        }
        // serde would also read a struct from a JSON array, by position.
        if !raw.trim_start().starts_with('{') {
            return Err(ClaimsError::NotObject);
        }
        #[derive(serde::Deserialize)]
        struct Raw {
            id_token: Option<StrictMap<Option<StrictMap<Value>>>>,
            userinfo: Option<StrictMap<Option<StrictMap<Value>>>>,
        }
        // Read straight from the text: serde's derived struct refuses a known member given
        // twice, and StrictMap does the same for claim names and claim members.
        let r: Raw = serde_json::from_str(raw).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ClaimsError::Shape,
            _ => ClaimsError::NotJson,
        })?;
        Ok(ClaimsRequest {
            id_token: take_claims(r.id_token)?,
            userinfo: take_claims(r.userinfo)?,
        })
    }

    /// OIDC Core 5.5.1: an ID token `sub` requested with a value means "only this End-User".
    pub fn required_sub(&self) -> Option<&str> {
        self.id_token.get("sub")?.value.as_ref()?.as_str()
    }

    /// OIDC Core 5.5.1.1: `acr` requested as essential with values the authentication must
    /// meet. `None` when no such requirement was made.
    pub fn essential_acr_values(&self) -> Option<Vec<&Value>> {
        let acr = self.id_token.get("acr")?;
        if !acr.essential {
            return None;
        }
        let wanted: Vec<&Value> = acr.value.iter().chain(acr.values.iter()).collect();
        (!wanted.is_empty()).then_some(wanted)
    }

    /// Every claim name asked for, in either target.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.id_token
            .keys()
            .chain(self.userinfo.keys())
            .map(String::as_str)
    }
}

// ---------------------------------------------------------------------------------------------
// id_token_hint (OIDC Core 3.1.2.1)

/// The longest `id_token_hint` accepted; scopegate's own ID tokens are well under 3 KiB.
pub const MAX_HINT_LEN: usize = 8192;

/// Why an `id_token_hint` is refused (`invalid_request`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HintError {
    #[error("id_token_hint is not a compact JWS")]
    Malformed,
    #[error("id_token_hint is not signed")]
    Unsigned,
    #[error("id_token_hint is signed with an algorithm this server does not use")]
    UnsupportedAlg,
    #[error("id_token_hint was not signed by this server")]
    UnknownKey,
    #[error("id_token_hint has an invalid signature")]
    BadSignature,
    #[error("id_token_hint was not issued by this server")]
    WrongIssuer,
    #[error("id_token_hint was not issued to this client")]
    WrongAudience,
    #[error("id_token_hint has no subject")]
    NoSubject,
}

/// A compact JWS split and decoded, its signature not yet checked.
#[derive(Debug, Clone)]
pub struct CompactJws<'a> {
    /// `BASE64URL(header) || '.' || BASE64URL(payload)`, the bytes the signature covers.
    pub signing_input: &'a str,
    pub alg: String,
    pub kid: Option<String>,
    pub payload: serde_json::Map<String, Value>,
    pub signature: Vec<u8>,
}

fn b64_json(part: &str) -> Result<serde_json::Map<String, Value>, HintError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| HintError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(HintError::Malformed),
    }
}

impl<'a> CompactJws<'a> {
    /// Splits `header.payload.signature` (RFC 7515 7.1) and decodes the header and payload.
    /// `alg: none` is refused here: an unsigned token cannot show who issued it.
    pub fn parse(token: &'a str) -> Result<CompactJws<'a>, HintError> {
        if token.len() > MAX_HINT_LEN {
            return Err(HintError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(HintError::Malformed);
        };
        let header = b64_json(h)?;
        let payload = b64_json(p)?;
        let alg = match header.get("alg").and_then(Value::as_str) {
            Some(a) if a.eq_ignore_ascii_case("none") => return Err(HintError::Unsigned),
            Some(a) => a.to_string(),
            None => return Err(HintError::Malformed),
        };
        // RFC 7515 4.1.11: a critical extension we do not understand makes the JWS invalid.
        if header.contains_key("crit") {
            return Err(HintError::Malformed);
        }
        let kid = match header.get("kid") {
            None => None,
            Some(Value::String(k)) => Some(k.clone()),
            Some(_) => return Err(HintError::Malformed),
        };
        let signature = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| HintError::Malformed)?;
        if signature.is_empty() {
            return Err(HintError::Unsigned);
        }
        Ok(CompactJws {
            signing_input: &token[..h.len() + 1 + p.len()],
            alg,
            kid,
            payload,
            signature,
        })
    }

    /// OIDC Core 3.1.2.1: the hinted End-User, once the signature is known to be ours. The token
    /// must name this issuer and this client among its audiences; an expired hint is fine ("If
    /// the ID Token received by the RP ... has expired, the OP SHOULD still accept it").
    pub fn hinted_subject(&self, issuer: &str, client_id: &str) -> Result<String, HintError> {
        if self.payload.get("iss").and_then(Value::as_str) != Some(issuer) {
            return Err(HintError::WrongIssuer);
        }
        let audience_ok = match self.payload.get("aud") {
            Some(Value::String(a)) => a == client_id,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(client_id)),
            _ => false,
        };
        if !audience_ok {
            return Err(HintError::WrongAudience);
        }
        match self.payload.get("sub").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => Ok(s.to_string()),
            _ => Err(HintError::NoSubject),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prompt_none_alone_is_fine_and_with_others_is_refused() {
        assert_eq!(
            Prompt::parse(Some("none")),
            Ok(Prompt {
                none: true,
                ..Prompt::default()
            })
        );
        assert_eq!(
            Prompt::parse(Some("none login")),
            Err(PromptError::NoneWithOthers)
        );
        assert_eq!(
            Prompt::parse(Some("none select_account")),
            Err(PromptError::NoneWithOthers)
        );
        let p = Prompt::parse(Some("login consent")).unwrap();
        assert!(p.login && p.consent && !p.none);
        assert_eq!(Prompt::parse(None), Ok(Prompt::default()));
        assert_eq!(Prompt::parse(Some("select_account")), Ok(Prompt::default()));
    }

    #[test]
    fn claims_request_is_read_per_oidc_core_5_5() {
        let c = ClaimsRequest::parse(
            r#"{"userinfo":{"name":{"essential":true},"email":null},
                "id_token":{"sub":{"value":"abc"},"acr":{"essential":true,"values":["urn:x"]}},
                "unknown_top":1}"#,
        )
        .unwrap();
        assert!(c.userinfo["name"].essential);
        assert_eq!(c.userinfo["email"], ClaimRequest::default());
        assert_eq!(c.required_sub(), Some("abc"));
        assert_eq!(c.essential_acr_values(), Some(vec![&json!("urn:x")]));
        let names: Vec<&str> = c.names().collect();
        assert_eq!(names, ["acr", "sub", "email", "name"]);
    }

    #[test]
    fn claims_request_ignores_unknown_members_of_a_claim() {
        let c = ClaimsRequest::parse(r#"{"id_token":{"name":{"purpose":"x","essential":false}}}"#)
            .unwrap();
        assert!(!c.id_token["name"].essential);
        assert!(ClaimsRequest::parse("{}").unwrap().id_token.is_empty());
        assert!(ClaimsRequest::parse(r#"{"userinfo":null}"#).is_ok());
    }

    #[test]
    fn malformed_claims_requests_are_refused() {
        for (raw, want) in [
            ("not json", ClaimsError::NotObject),
            ("{\"userinfo\":", ClaimsError::NotJson),
            ("[1,2]", ClaimsError::NotObject),
            (r#"{"userinfo":[]}"#, ClaimsError::Shape),
            (r#"{"userinfo":{"name":true}}"#, ClaimsError::Shape),
            (
                r#"{"userinfo":{"name":{"essential":"yes"}}}"#,
                ClaimsError::Shape,
            ),
            (
                r#"{"userinfo":{"name":{"values":"a"}}}"#,
                ClaimsError::Shape,
            ),
            (
                r#"{"userinfo":{"name":null,"name":null}}"#,
                ClaimsError::Shape,
            ),
            (r#"{"userinfo":{},"userinfo":{}}"#, ClaimsError::Shape),
            (
                r#"{"userinfo":{"name":{"essential":true,"essential":false}}}"#,
                ClaimsError::Shape,
            ),
            (r#"{"a":[[[[[[1]]]]]]}"#, ClaimsError::TooDeep),
        ] {
            assert_eq!(ClaimsRequest::parse(raw), Err(want), "{raw}");
        }
        let long = format!(
            r#"{{"userinfo":{{"name":{{"value":"{}"}}}}}}"#,
            "a".repeat(5000)
        );
        assert_eq!(ClaimsRequest::parse(&long), Err(ClaimsError::TooLong));
        let many: Vec<String> = (0..65).map(|i| format!("\"c{i}\":null")).collect();
        let many = format!(r#"{{"id_token":{{{}}}}}"#, many.join(","));
        assert_eq!(ClaimsRequest::parse(&many), Err(ClaimsError::TooMany));
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_depth() {
        assert_eq!(nesting_depth(r#"{"a":"[[[[[[[[\"{{{{"}"#), 1);
        assert!(ClaimsRequest::parse(r#"{"userinfo":{"name":{"value":"[[[[[[[[[["}}}"#).is_ok());
    }

    fn jws(header: Value, payload: Value, sig: &str) -> String {
        format!(
            "{}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        )
    }

    #[test]
    fn hint_structure_and_claims_are_checked() {
        let t = jws(
            json!({"alg":"RS256","kid":"k1"}),
            json!({"iss":"https://sg","aud":"app1","sub":"s1","exp":1}),
            "c2ln",
        );
        let j = CompactJws::parse(&t).unwrap();
        assert_eq!(j.alg, "RS256");
        assert_eq!(j.kid.as_deref(), Some("k1"));
        assert_eq!(j.signature, b"sig");
        assert!(t.starts_with(j.signing_input) && t[j.signing_input.len()..] == *".c2ln");
        // Expired (exp = 1) is fine: only issuer, audience and subject matter.
        assert_eq!(j.hinted_subject("https://sg", "app1"), Ok("s1".into()));
        assert_eq!(
            j.hinted_subject("https://other", "app1"),
            Err(HintError::WrongIssuer)
        );
        assert_eq!(
            j.hinted_subject("https://sg", "app2"),
            Err(HintError::WrongAudience)
        );
        let t = jws(
            json!({"alg":"ES256"}),
            json!({"iss":"https://sg","aud":["x","app1"],"sub":"s1"}),
            "c2ln",
        );
        let j = CompactJws::parse(&t).unwrap();
        assert_eq!(j.hinted_subject("https://sg", "app1"), Ok("s1".into()));
        let t = jws(
            json!({"alg":"ES256"}),
            json!({"iss":"https://sg","aud":"app1"}),
            "c2ln",
        );
        assert_eq!(
            CompactJws::parse(&t)
                .unwrap()
                .hinted_subject("https://sg", "app1"),
            Err(HintError::NoSubject)
        );
    }

    #[test]
    fn unsigned_or_malformed_hints_are_refused() {
        let body = json!({"iss":"https://sg","aud":"app1","sub":"s1"});
        for (t, want) in [
            (
                jws(json!({"alg":"none"}), body.clone(), ""),
                HintError::Unsigned,
            ),
            (
                jws(json!({"alg":"RS256"}), body.clone(), ""),
                HintError::Unsigned,
            ),
            (
                jws(json!({"typ":"JWT"}), body.clone(), "c2ln"),
                HintError::Malformed,
            ),
            (
                jws(json!({"alg":"RS256","crit":["x"]}), body.clone(), "c2ln"),
                HintError::Malformed,
            ),
            (
                jws(json!({"alg":"RS256","kid":5}), body.clone(), "c2ln"),
                HintError::Malformed,
            ),
            ("a.b".to_string(), HintError::Malformed),
            ("a.b.c.d".to_string(), HintError::Malformed),
            ("!!.??.c2ln".to_string(), HintError::Malformed),
            ("x".repeat(MAX_HINT_LEN + 1), HintError::Malformed),
        ] {
            assert_eq!(CompactJws::parse(&t).err(), Some(want), "{t}");
        }
    }
}

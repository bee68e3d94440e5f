//! The client credentials of a token-style request (RFC 6749 2.3), as an extractor.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap, Method, Uri};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use scopegate_app::oauth::Credentials;
use scopegate_core::Secret;

use crate::form::Params;
use crate::wire::OAuthError;

/// A token-style POST (token, introspection, revocation): its strict form (a repeated name is
/// refused, RFC 6749 3.1) and the client credentials it presented, in Basic or the body, never
/// both (RFC 6749 2.3) and never in the URL query (RFC 6749 2.3.1).
#[derive(Debug)]
pub struct ClientRequest {
    /// The body's parameters, plus the query's (python-social-auth sends them there).
    pub form: Params,
    /// The client's credentials, `None` when no client_id was presented at all.
    pub credentials: Option<Credentials>,
}

impl ClientRequest {
    /// A required parameter, or LinkedIn's "A required parameter … is missing".
    pub fn required(&self, name: &'static str) -> Result<&str, OAuthError> {
        self.form.get(name).ok_or_else(|| OAuthError::missing(name))
    }
}

impl<S: Send + Sync> FromRequest<S> for ClientRequest {
    type Rejection = OAuthError;

    async fn from_request(req: Request, state: &S) -> Result<Self, OAuthError> {
        let (parts, body) = req.into_parts();
        let body = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| OAuthError::invalid_request("the request body could not be read"))?;
        let form = form_request(&parts.method, &parts.uri, &parts.headers, &body)?;
        refuse_query_credentials(&parts.uri)?;
        let credentials = presented(&parts.headers, &form)?;
        Ok(ClientRequest { form, credentials })
    }
}

/// Parses a token-style POST: form-encoded body, plus query parameters; a name in both is a
/// duplicate. Public for the fuzz targets, which drive it with arbitrary requests.
pub fn form_request(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Params, OAuthError> {
    if method != Method::POST {
        return Err(OAuthError::invalid_request(
            "use POST with an application/x-www-form-urlencoded body",
        ));
    }
    if !body.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let mime = ct.split(';').next().unwrap_or("").trim();
        if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
            return Err(OAuthError::invalid_request(
                "Content-Type must be application/x-www-form-urlencoded",
            ));
        }
    }
    let body = std::str::from_utf8(body)
        .map_err(|_| OAuthError::invalid_request("the request body is not valid UTF-8"))?;
    let params = Params::parse(body).map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    match uri.query() {
        Some(q) => params
            .merge(q)
            .map_err(|e| OAuthError::invalid_request(e.to_string())),
        None => Ok(params),
    }
}

/// RFC 6749 2.3.1: client credentials MUST NOT be sent in the request URI. Introspection
/// (RFC 7662 2.1) and revocation (RFC 7009 2.1) authenticate clients the same way, so every
/// token-style endpoint refuses them there (they end up in access logs and browser history).
fn refuse_query_credentials(uri: &Uri) -> Result<(), OAuthError> {
    let Some(q) = uri.query() else {
        return Ok(());
    };
    // A query that does not parse was refused by the form parser; only names matter here.
    let named = Params::parse(q).is_ok_and(|p| p.has("client_id") || p.has("client_secret"));
    if named {
        return Err(OAuthError::invalid_request(
            "client credentials must not be sent in the URL query (RFC 6749 2.3.1); send them in the body or an Authorization: Basic header",
        ));
    }
    Ok(())
}

/// Reads the client's credentials from Basic or the body; both at once is refused (RFC 6749 2.3).
/// Public for the fuzz targets.
pub fn presented(headers: &HeaderMap, form: &Params) -> Result<Option<Credentials>, OAuthError> {
    let addr = crate::peer::from_headers(headers);
    let body_secret = form.get("client_secret");
    match basic_credentials(headers)? {
        Some((id, secret)) => {
            if body_secret.is_some() {
                return Err(OAuthError::invalid_request(
                    "the client authenticated twice (Basic and client_secret); use one method",
                ));
            }
            if form.get("client_id").is_some_and(|b| b != id) {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                ));
            }
            Ok(Some(Credentials {
                client_id: id,
                secret: Some(secret),
                basic: true,
                addr,
            }))
        }
        None => Ok(form.get("client_id").map(|id| Credentials {
            client_id: id.to_string(),
            secret: body_secret.map(Secret::new),
            basic: false,
            addr,
        })),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, Secret)>, OAuthError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| OAuthError::invalid_request("malformed Authorization header"))?;
    let Some((scheme, rest)) = value.split_once(' ') else {
        return Err(OAuthError::invalid_request(
            "malformed Authorization header",
        ));
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_request(
            "only the Basic scheme authenticates clients here",
        ));
    }
    let bad = || OAuthError::invalid_request("malformed Basic credentials");
    let decoded = STANDARD.decode(rest.trim()).map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    // RFC 6749 2.3.1: both halves are form-urlencoded before base64.
    let unescape = |s: &str| -> Result<String, OAuthError> {
        let plus = s.replace('+', " ");
        let bytes: Vec<u8> = percent_encoding::percent_decode_str(&plus).collect();
        String::from_utf8(bytes).map_err(|_| bad())
    };
    let (id, secret) = (unescape(id)?, unescape(secret)?);
    if id.is_empty() || id.chars().chain(secret.chars()).any(char::is_control) {
        return Err(bad());
    }
    Ok(Some((id, Secret::new(secret))))
}

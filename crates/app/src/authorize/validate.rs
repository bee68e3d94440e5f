//! Validating an authorization request (RFC 6749 4.1.1, OIDC Core 3.1.2.1) into an
//! [`AuthorizeRequest`], once, where it enters. Refusals are typed; the HTTP layer turns them
//! into the error page or the error redirect.

use scopegate_core::model::{App as AppRecord, Capability};
use scopegate_core::oauth::{resolve_member_scopes, ResolvedScopes};
use scopegate_core::oidc_request::{ClaimsRequest, Prompt};
use scopegate_core::portal::effective_permissions;
use scopegate_core::redirect::matches_registered;
use scopegate_core::ScopeSet;

use super::{client, AuthorizeRequest, Client};
use crate::config::Compat;
use crate::error::Error;
use crate::signing::{verify_id_token_hint, HintFailure};
use crate::Service;

/// The parameters of an authorization request as the HTTP layer read them: strictly (no name
/// twice, no control characters, empty values absent), but nothing in them checked yet.
pub trait RequestParams: Sync {
    /// A parameter's value, if present and non-empty.
    fn get(&self, name: &str) -> Option<&str>;
    /// The parameters as received, form-encoded in a stable order.
    fn encoded(&self) -> String;
}

/// Why an authorization request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// The client or its redirect URL cannot be trusted: shown on scopegate, nothing is sent
    /// to the client (RFC 6749 4.1.2.1).
    Untrusted(Untrusted),
    /// The client could not be looked up now: the error page (503), nothing sent.
    Unavailable(Error),
    /// Sent back to the verified redirect URL, with `state` (RFC 6749 4.1.2.1).
    Redirect(ErrorRedirect),
}

/// What makes a request untrustworthy before its client and redirect URL are verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Untrusted {
    NoClientId,
    UnknownClient,
    /// The native PKCE endpoint, for an app without that capability.
    NativeNotAllowed,
    NoRedirectUri,
    RedirectMismatch,
}

/// What the authorization endpoint tells a client went wrong (RFC 6749 4.1.2.1, OIDC Core
/// 3.1.2.6, RFC 9101 6.1). The words each dialect sends are the wire's (`scopegate-http`'s
/// `wire::redirect`): LinkedIn names its own codes where the RFC says `access_denied`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedirectError {
    InvalidRequest,
    InvalidScope,
    /// A scope the app may not request (LinkedIn's `unauthorized_scope_error`).
    UnauthorizedScope,
    UnsupportedResponseType,
    RequestNotSupported,
    RequestUriNotSupported,
    RegistrationNotSupported,
    /// An essential `acr` the server cannot satisfy (OIDC Core 5.5.1.1).
    UnmetAuthenticationRequirements,
    LoginRequired,
    ConsentRequired,
    TemporarilyUnavailable,
    /// The member cancelled at the sign-in page.
    CancelledLogin,
    /// The member cancelled at the consent screen.
    CancelledAuthorization,
}

/// An error for the client, at its verified redirect URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: RedirectError,
    pub description: String,
}

/// The client and redirect URL of a request, verified (RFC 6749 4.1.2.1).
#[derive(Debug, Clone)]
pub struct Trusted {
    pub app: AppRecord,
    pub approved_programs: Vec<String>,
    pub redirect_uri: String,
}

/// Validates an authorization request. Until the client and redirect URL are verified, every
/// refusal is [`Refusal::Untrusted`] (a page on scopegate); after, errors go back to the client.
pub async fn validate(
    app: &Service,
    params: &dyn RequestParams,
    native: bool,
) -> Result<AuthorizeRequest, Refusal> {
    let trusted = trusted_client(
        app,
        params.get("client_id"),
        params.get("redirect_uri"),
        native,
    )
    .await?;
    let (record, approved, redirect_uri) =
        (trusted.app, trusted.approved_programs, trusted.redirect_uri);
    let state = params.get("state").map(str::to_string);
    let fail = |(error, description): Refused| {
        Refusal::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description,
        })
    };
    let code_challenge = checked_shape(params, native).map_err(&fail)?;
    let resolved = scopes_of(app, params, &record, &approved).map_err(&fail)?;
    let oidc = oidc_params(app, params, &record.client_id)
        .await
        .map_err(&fail)?;
    // Accepted and deliberately not acted on (docs/oauth.md): ui_locales and claims_locales
    // (pages and claims exist in English only, and OIDC Core 3.1.2.1 says unsupported locales
    // SHOULD NOT cause an error), display (one responsive page serves every value), acr_values
    // (voluntary, and scopegate asserts no acr). Unknown parameters are ignored (RFC 6749 3.1).
    Ok(AuthorizeRequest {
        app: record,
        redirect_uri,
        state,
        resolved,
        code_challenge,
        nonce: oidc.nonce,
        prompt: oidc.prompt,
        max_age: oidc.max_age,
        login_hint: params
            .get("login_hint")
            .map(|h| h.chars().take(254).collect()),
        required_sub: oidc.required_sub,
        native,
        query: params.encoded(),
    })
}

/// A refusal sent back to the verified redirect URL: the error code and its description.
type Refused = (RedirectError, String);

fn refuse(error: RedirectError, description: &str) -> Refused {
    (error, description.to_string())
}

/// The client and redirect URL, verified before anything goes back to the client: every
/// failure here is [`Refusal::Untrusted`] or [`Refusal::Unavailable`] (RFC 6749 4.1.2.1).
pub async fn trusted_client(
    app: &Service,
    client_id: Option<&str>,
    redirect_uri: Option<&str>,
    native: bool,
) -> Result<Trusted, Refusal> {
    let Some(client_id) = client_id else {
        return Err(Refusal::Untrusted(Untrusted::NoClientId));
    };
    let found = client(app, client_id).await.map_err(Refusal::Unavailable)?;
    let Some(Client {
        app: record,
        redirect_uris: registered,
        approved_programs,
    }) = found
    else {
        return Err(Refusal::Untrusted(Untrusted::UnknownClient));
    };
    if native && !record.has(Capability::NativePkce) {
        return Err(Refusal::Untrusted(Untrusted::NativeNotAllowed));
    }
    let Some(redirect_uri) = redirect_uri else {
        return Err(Refusal::Untrusted(Untrusted::NoRedirectUri));
    };
    if !redirect_registered(redirect_uri, &registered, native) {
        return Err(Refusal::Untrusted(Untrusted::RedirectMismatch));
    }
    Ok(Trusted {
        app: record,
        approved_programs,
        redirect_uri: redirect_uri.to_string(),
    })
}

/// Whether `redirect_uri` is one of the app's registered URLs. RFC 9700 2.1: exact string
/// matching, except the port of a native app's loopback URL.
pub(crate) fn redirect_registered(redirect_uri: &str, registered: &[String], native: bool) -> bool {
    if native {
        same_loopback_ignoring_port(redirect_uri, registered)
    } else {
        matches_registered(redirect_uri, registered).is_some()
    }
}

fn same_loopback_ignoring_port(requested: &str, registered: &[String]) -> bool {
    let strip = |s: &str| {
        url::Url::parse(s)
            .ok()
            .filter(|u| {
                u.host()
                    .is_some_and(|h| scopegate_core::redirect::is_loopback_host(&h))
            })
            .map(|mut u| {
                let _ = u.set_port(None);
                u.to_string()
            })
    };
    let Some(r) = strip(requested) else {
        return false;
    };
    registered
        .iter()
        .any(|reg| strip(reg).as_deref() == Some(r.as_str()))
}

/// The response type, the unsupported request objects and PKCE; the code challenge if any.
fn checked_shape(params: &dyn RequestParams, native: bool) -> Result<Option<String>, Refused> {
    match params.get("response_type") {
        Some("code") => {}
        None => {
            return Err(refuse(
                RedirectError::InvalidRequest,
                "A required parameter \"response_type\" is missing",
            ))
        }
        Some(_) => {
            return Err(refuse(
                RedirectError::UnsupportedResponseType,
                "response_type must be code",
            ))
        }
    }
    for unsupported in ["request", "request_uri", "registration"] {
        if params.get(unsupported).is_some() {
            let error = match unsupported {
                "request" => RedirectError::RequestNotSupported,
                "request_uri" => RedirectError::RequestUriNotSupported,
                _ => RedirectError::RegistrationNotSupported,
            };
            return Err(refuse(
                error,
                &format!("the {unsupported} parameter is not supported"),
            ));
        }
    }
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (Some(ch), Some("S256")) => {
            if ch.len() != 43
                || !ch
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(refuse(RedirectError::InvalidRequest, "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"));
            }
            Some(ch.to_string())
        }
        (Some(_), _) => {
            return Err(refuse(
                RedirectError::InvalidRequest,
                "code_challenge_method must be S256",
            ))
        }
        (None, Some(_)) => {
            return Err(refuse(
                RedirectError::InvalidRequest,
                "code_challenge_method was sent without code_challenge",
            ))
        }
        (None, None) if native => {
            return Err(refuse(
                RedirectError::InvalidRequest,
                "the native PKCE flow requires code_challenge with code_challenge_method=S256",
            ))
        }
        (None, None) => None,
    };
    Ok(code_challenge)
}

/// The scopes the request resolves to under the app's approved programs.
fn scopes_of(
    app: &Service,
    params: &dyn RequestParams,
    record: &AppRecord,
    approved: &[String],
) -> Result<ResolvedScopes, Refused> {
    let today = crate::clock::date_of(app.now());
    let named = match params.get("scope") {
        Some(s) => {
            ScopeSet::parse(s).map_err(|e| refuse(RedirectError::InvalidScope, &e.to_string()))?
        }
        None => ScopeSet::default(),
    };
    // Seed 002: without scopes, the app's default scopes apply only before the sunset or under
    // an extension a platform admin granted. Otherwise nothing is requested, and
    // `resolve_member_scopes` refuses that (`ScopeRefusal::NoScope`): never an empty grant.
    let defaults_allowed = scopegate_core::oauth::default_scopes_allowed(
        app.catalog.platform.default_scope_sunset,
        today,
        record.extension_until.map(crate::clock::date_of),
    );
    let requested = if named.is_empty() && defaults_allowed {
        record.default_scopes.clone()
    } else {
        named
    };
    let effective = effective_permissions(&app.catalog, approved);
    let resolved: ResolvedScopes =
        resolve_member_scopes(&app.catalog, &effective, &requested, today).map_err(|refusal| {
            let mut description = refusal.description();
            if app.config.compat == Compat::Linkedin {
                // LinkedIn sends the quotes HTML-escaped (reference 1.4).
                description = description.replace('"', "&quot;");
            }
            refuse(RedirectError::UnauthorizedScope, &description)
        })?;
    Ok(resolved)
}

/// The OpenID Connect parameters of a request.
struct OidcParams {
    max_age: Option<i64>,
    nonce: Option<String>,
    prompt: Prompt,
    required_sub: Option<String>,
}

/// max_age, nonce, prompt, claims and id_token_hint (OIDC Core 3.1.2.1, 5.5).
async fn oidc_params(
    app: &Service,
    params: &dyn RequestParams,
    client_id: &str,
) -> Result<OidcParams, Refused> {
    let max_age = match params.get("max_age") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(refuse(
                    RedirectError::InvalidRequest,
                    "max_age must be a non-negative number of seconds",
                ))
            }
        },
    };
    let nonce = params.get("nonce").map(|n| n.chars().take(512).collect());
    let prompt = Prompt::parse(params.get("prompt"))
        .map_err(|e| refuse(RedirectError::InvalidRequest, &e.to_string()))?;
    // OIDC Core 5.5: malformed JSON is the client's error; a well-formed request for claims we
    // do not have is not.
    let claims = params
        .get("claims")
        .map(ClaimsRequest::parse)
        .transpose()
        .map_err(|e| refuse(RedirectError::InvalidRequest, &e.to_string()))?;
    if claims
        .as_ref()
        .is_some_and(|c| c.essential_acr_values().is_some())
    {
        // OIDC Core 5.5.1.1: an essential acr that cannot be met is a failed authentication.
        // scopegate has one way to sign in and asserts no acr value, so none can be met.
        return Err(refuse(
            RedirectError::UnmetAuthenticationRequirements,
            "the essential acr values requested cannot be met: this server asserts no acr",
        ));
    }
    let hinted = match params.get("id_token_hint") {
        None => None,
        Some(hint) => match verify_id_token_hint(app, hint, client_id).await {
            Ok(sub) => Some(sub),
            Err(HintFailure::Invalid(e)) => {
                return Err(refuse(RedirectError::InvalidRequest, &e.to_string()))
            }
            Err(HintFailure::Store) => {
                return Err(refuse(
                    RedirectError::TemporarilyUnavailable,
                    "Please try again",
                ))
            }
        },
    };
    let required_sub =
        match (hinted, claims.as_ref().and_then(|c| c.required_sub())) {
            (Some(h), Some(c)) if h != c => return Err(refuse(
                RedirectError::InvalidRequest,
                "id_token_hint and the sub value of the claims parameter name different End-Users",
            )),
            (Some(h), _) => Some(h),
            (None, c) => c.map(str::to_string),
        };
    Ok(OidcParams {
        max_age,
        nonce,
        prompt,
        required_sub,
    })
}

//! Client authentication at the token, introspection and revocation endpoints.

use axum::http::HeaderMap;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use scopegate_core::model::App as AppRecord;
use scopegate_store::{apps, tokens};

use crate::config::Compat;
use crate::form::Params;
use crate::state::Service;
use crate::throttle::{client_counters, guess_counters, Attempt, Refused};
use crate::wire::OAuthError;

/// The credentials a request presented.
#[derive(Debug, Clone)]
pub struct Presented {
    pub client_id: String,
    pub secret: Option<String>,
    /// True when they came in an Authorization: Basic header.
    pub basic: bool,
    /// The caller's address, for throttling repeated failures.
    pub addr: Option<std::net::IpAddr>,
}

/// An authenticated client and the programs approved for it.
#[derive(Debug, Clone)]
pub struct Client {
    pub app: AppRecord,
    pub approved: Vec<String>,
    /// True for a public (native PKCE) client that presented no secret.
    pub public: bool,
    pub basic: bool,
}

fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
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
    Ok(Some((id, secret)))
}

/// Reads the client's credentials from Basic or the body; both at once is refused (RFC 6749 2.3).
pub fn presented(headers: &HeaderMap, form: &Params) -> Result<Option<Presented>, OAuthError> {
    let basic = basic_credentials(headers)?;
    let body_secret = form.get("client_secret");
    match basic {
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
            Ok(Some(Presented {
                client_id: id,
                secret: Some(secret),
                basic: true,
                addr: crate::peer::from_headers(headers),
            }))
        }
        None => Ok(form.get("client_id").map(|id| Presented {
            client_id: id.to_string(),
            secret: body_secret.map(str::to_string),
            basic: false,
            addr: crate::peer::from_headers(headers),
        })),
    }
}

/// What the store knows about a presented client: the app, whether the secret matched, and its
/// approved programs. Runs inside a caller's read transaction, so an endpoint that must also
/// look a token up pays for one transaction, not two.
pub type Found = Option<(AppRecord, bool, Vec<String>)>;

/// Looks a presented client up (see [`Found`]).
pub fn lookup(
    c: &mut dyn scopegate_store::Conn,
    client_id: &str,
    secret: Option<&scopegate_core::SecretHash>,
) -> scopegate_store::Result<Found> {
    let Some(app) = apps::get(c, client_id)? else {
        return Ok(None);
    };
    let ok = match secret {
        Some(h) => apps::secret_matches(c, client_id, h)?,
        None => false,
    };
    let approved = apps::approved_programs(c, client_id)?;
    Ok(Some((app, ok, approved)))
}

/// The answer to a request without the client credentials it needs: RFC 6749 5.2 calls that
/// `invalid_client` (401); LinkedIn answers 400 `invalid_request` naming the missing parameter
/// (reference 2.2).
pub fn missing(compat: Compat, name: &str) -> OAuthError {
    match compat {
        Compat::Standard => OAuthError::invalid_client(false),
        Compat::Linkedin => OAuthError::missing(name),
    }
}

/// The credentials a request presented, or the error for their absence. A public client
/// (`allow_public`) may present a client_id alone.
pub fn require(
    state: &Service,
    headers: &HeaderMap,
    form: &Params,
    allow_public: bool,
) -> Result<Presented, OAuthError> {
    let compat = state.config.compat;
    let p = presented(headers, form)?.ok_or_else(|| missing(compat, "client_id"))?;
    if p.secret.is_none() && !allow_public {
        return Err(missing(compat, "client_secret"));
    }
    Ok(p)
}

/// Decides a lookup. An unknown client and a wrong secret get the same answer, after the same
/// work (one store read and one keyed hash), so neither reveals which it was.
pub fn decide(
    compat: Compat,
    p: &Presented,
    found: Found,
    allow_public: bool,
) -> Result<Client, OAuthError> {
    match found {
        Some((app, true, approved)) => Ok(Client {
            app,
            approved,
            public: false,
            basic: p.basic,
        }),
        // A native PKCE app may omit the secret; PKCE then proves possession of the code.
        Some((app, false, approved)) if p.secret.is_none() && allow_public && app.native_pkce => {
            Ok(Client {
                app,
                approved,
                public: true,
                basic: p.basic,
            })
        }
        // Without a secret the answer is the same whether or not the client exists.
        _ if p.secret.is_none() => Err(missing(compat, "client_secret")),
        _ => Err(OAuthError::invalid_client(p.basic)),
    }
}

/// Refuses a client that failed too often from this address, or an address that presented too
/// many unknown tokens or codes (429, with Retry-After): the cheap check before any work.
pub fn throttled(state: &Service, p: &Presented) -> Result<(), OAuthError> {
    let now = state.now();
    let failures = &state.auth_failures;
    if let Some(wait) = failures.guessing(p.addr, now) {
        return Err(refused(Refused::Guessing(wait)));
    }
    match failures.blocked(&p.client_id, p.addr, now) {
        Some(wait) => Err(too_many_failures(wait)),
        None => Ok(()),
    }
}

/// The answer to an attempt a throttle refused.
pub fn refused(r: Refused) -> OAuthError {
    match r {
        Refused::Failures(wait) => too_many_failures(wait),
        Refused::Guessing(wait) => OAuthError {
            retry_after: Some(wait),
            ..OAuthError::new(
                axum::http::StatusCode::TOO_MANY_REQUESTS,
                "invalid_request",
                "too many unknown tokens or codes from this address; try again later",
            )
        },
    }
}

/// Reserves a guess of a token, code or refresh token from the caller's address, before it is
/// looked up (RFC 6749 10.10, RFC 7662 4): `failed()` it when nothing by that value exists.
pub async fn guess_attempt<'a>(
    state: &'a Service,
    headers: &HeaderMap,
) -> Result<Attempt<'a>, OAuthError> {
    let [g] = state
        .auth_failures
        .reserve(
            [guess_counters(crate::peer::from_headers(headers))],
            state.now(),
        )
        .await
        .map_err(refused)?;
    Ok(g)
}

/// Reserves a client authentication and a guess at once (introspection, revocation: one request
/// checks a secret and looks a token up).
pub async fn authentication_and_guess<'a>(
    state: &'a Service,
    p: &Presented,
) -> Result<[Attempt<'a>; 2], OAuthError> {
    state
        .auth_failures
        .reserve(
            [
                client_counters(&p.client_id, p.addr),
                guess_counters(p.addr),
            ],
            state.now(),
        )
        .await
        .map_err(refused)
}

/// RFC 6749 2.3.1: client credentials MUST NOT be sent in the request URI. Introspection
/// (RFC 7662 2.1) and revocation (RFC 7009 2.1) authenticate clients the same way, so every
/// token-style endpoint refuses them there (they end up in access logs and browser history).
pub fn refuse_query_credentials(uri: &axum::http::Uri) -> Result<(), OAuthError> {
    let Some(q) = uri.query() else {
        return Ok(());
    };
    // A query that does not parse is refused by the form parser; only names matter here.
    let named = Params::parse(q)
        .map(|p| p.has("client_id") || p.has("client_secret"))
        .unwrap_or(false);
    if named {
        return Err(OAuthError::invalid_request(
            "client credentials must not be sent in the URL query (RFC 6749 2.3.1); send them in the body or an Authorization: Basic header",
        ));
    }
    Ok(())
}

fn too_many_failures(wait: i64) -> OAuthError {
    OAuthError {
        retry_after: Some(wait),
        ..OAuthError::new(
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "invalid_client",
            "too many failed client authentications from this address; try again later",
        )
    }
}

/// The store keys of this client's failure counters when they are shared by several nodes (on
/// PostgreSQL); on SQLite one node's memory sees every failure, so there are none.
pub fn shared_keys(state: &Service, p: &Presented) -> Option<[String; 2]> {
    if state.store.dialect() != scopegate_store::Dialect::Postgres {
        return None;
    }
    crate::throttle::keys(&p.client_id, p.addr).map(|ks| ks.map(|k| format!("client-auth|{k}")))
}

/// Seconds to wait when the shared failure counts pass the limits (read in the caller's
/// transaction, next to the client lookup).
pub fn shared_blocked(
    c: &mut dyn scopegate_store::Conn,
    keys: Option<&[String; 2]>,
    now: i64,
) -> scopegate_store::Result<Option<i64>> {
    let Some([by_addr, by_pair]) = keys else {
        return Ok(None);
    };
    let window = crate::throttle::WINDOW;
    Ok(crate::throttle::over_limits(
        tokens::failures(c, by_addr, now, window)?,
        tokens::failures(c, by_pair, now, window)?,
    ))
}

/// Decides a lookup (and the shared counters' verdict), and counts a failed authentication in
/// memory and, with several nodes, in the store.
pub async fn decide_counted(
    state: &Service,
    p: &Presented,
    found: Found,
    blocked: Option<i64>,
    allow_public: bool,
    attempt: Attempt<'_>,
) -> Result<Client, OAuthError> {
    if let Some(wait) = blocked {
        return Err(too_many_failures(wait));
    }
    let r = decide(state.config.compat, p, found, allow_public);
    if matches!(&r, Err(e) if e.error == "invalid_client") {
        let now = state.now();
        attempt.failed();
        if let Some(keys) = shared_keys(state, p) {
            let counted = state
                .store
                .write(move |c| {
                    for k in &keys {
                        tokens::count_failure(c, k, now, crate::throttle::WINDOW)?;
                    }
                    Ok(())
                })
                .await;
            if let Err(e) = counted {
                tracing::warn!(error = %e, "counting a client-authentication failure failed");
            }
        }
    }
    r
}

/// The answer when the store cannot be read.
pub fn unavailable(e: scopegate_store::StoreError) -> OAuthError {
    tracing::error!(error = %e, "store failed");
    OAuthError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again shortly",
    )
}

/// Authenticates a client (one read transaction).
pub async fn authenticate(
    state: &Service,
    p: &Presented,
    allow_public: bool,
) -> Result<Client, OAuthError> {
    let hash = p
        .secret
        .as_deref()
        .map(|s| state.keys.token_hash.hash_str(s));
    throttled(state, p)?;
    // Reserved before the secret is checked, so parallel guesses cannot all pass the check
    // before the first failure is counted.
    let [attempt] = state
        .auth_failures
        .reserve([client_counters(&p.client_id, p.addr)], state.now())
        .await
        .map_err(refused)?;
    let id = p.client_id.clone();
    let keys = shared_keys(state, p);
    let now = state.now();
    let (found, blocked) = state
        .store
        .read(move |c| {
            Ok((
                lookup(c, &id, hash.as_ref())?,
                shared_blocked(c, keys.as_ref(), now)?,
            ))
        })
        .await
        .map_err(unavailable)?;
    decide_counted(state, p, found, blocked, allow_public, attempt).await
}

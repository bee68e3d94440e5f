//! Client authentication at the token, introspection and revocation endpoints (RFC 6749 2.3).

use std::net::IpAddr;

use scopegate_core::model::{App as AppRecord, Capability, TokenRecord};
use scopegate_core::{Secret, SecretHash};
use scopegate_store::{apps, tokens, Conn};

use super::TokenError;
use crate::state::Service;
use crate::throttle::{client_counters, guess_counters, Attempt};

/// The credentials a request presented (Basic or the body; the http extractor parsed them).
#[derive(Debug, Clone)]
pub struct Credentials {
    /// The client_id presented.
    pub client_id: String,
    /// The secret presented, if any.
    pub secret: Option<Secret>,
    /// True when they came in an Authorization: Basic header.
    pub basic: bool,
    /// The caller's address, for throttling repeated failures.
    pub addr: Option<IpAddr>,
}

/// An authenticated client and the programs approved for it.
#[derive(Debug, Clone)]
pub struct Client {
    /// The app.
    pub app: AppRecord,
    /// Its approved programs.
    pub approved: Vec<String>,
    /// True for a public (native PKCE) client that presented no secret.
    pub public: bool,
    /// True when it authenticated with HTTP Basic.
    pub basic: bool,
}

/// What the store knows about a presented client: the app, whether the secret matched, and its
/// approved programs.
type Found = Option<(AppRecord, bool, Vec<String>)>;

/// Authenticates a client (one read transaction, throttled). `presented` is `None` when the
/// request carried no client_id; a public client (`allow_public`) may present a client_id alone.
pub async fn authenticate_client(
    state: &Service,
    presented: Option<&Credentials>,
    allow_public: bool,
) -> Result<Client, TokenError> {
    let p = required(presented, allow_public)?;
    throttled(state, p)?;
    // Reserved before the secret is checked, so parallel guesses cannot all pass the check
    // before the first failure is counted.
    let [attempt] = state
        .auth_failures
        .reserve([client_counters(&p.client_id, p.addr)], state.now())
        .await?;
    let (found, blocked, _) = read(state, p, None).await?;
    decide_counted(state, p, found, blocked, allow_public, attempt).await
}

/// Authenticates a client and looks `token` up in the same read transaction, with the
/// client-authentication and guessing throttles reserved first (an endpoint that answers about
/// tokens is a scanner's tool, RFC 7662 4). The guess is returned for the caller to count
/// (`failed()`) or release.
pub(super) async fn authenticate_with_token<'a>(
    state: &'a Service,
    presented: Option<&Credentials>,
    allow_public: bool,
    token: &Secret,
) -> Result<(Client, Option<TokenRecord>, Attempt<'a>), TokenError> {
    let p = required(presented, allow_public)?;
    throttled(state, p)?;
    let [attempt, guess] = state
        .auth_failures
        .reserve(
            [
                client_counters(&p.client_id, p.addr),
                guess_counters(p.addr),
            ],
            state.now(),
        )
        .await?;
    let token_hash = state.keys.token_hash.hash(token);
    let (found, blocked, t) = read(state, p, Some(token_hash)).await?;
    let client = decide_counted(state, p, found, blocked, allow_public, attempt).await?;
    Ok((client, t, guess))
}

/// Reserves a guess of a token, code or refresh token from the caller's address, before it is
/// looked up (RFC 6749 10.10): `failed()` it when nothing by that value exists.
pub(super) async fn guess_attempt<'a>(
    state: &'a Service,
    addr: Option<IpAddr>,
) -> Result<Attempt<'a>, TokenError> {
    let [g] = state
        .auth_failures
        .reserve([guess_counters(addr)], state.now())
        .await?;
    Ok(g)
}

/// The credentials, or the error for their absence.
fn required(p: Option<&Credentials>, allow_public: bool) -> Result<&Credentials, TokenError> {
    let p = p.ok_or(TokenError::MissingCredential("client_id"))?;
    if p.secret.is_none() && !allow_public {
        return Err(TokenError::MissingCredential("client_secret"));
    }
    Ok(p)
}

/// Refuses a client that failed too often from this address, or an address that presented too
/// many unknown tokens or codes (429, with Retry-After): the cheap check before any work.
fn throttled(state: &Service, p: &Credentials) -> Result<(), TokenError> {
    let now = state.now();
    let failures = &state.auth_failures;
    if let Some(wait) = failures.guessing(p.addr, now) {
        return Err(crate::throttle::Refused::Guessing(wait).into());
    }
    match failures.blocked(&p.client_id, p.addr, now) {
        Some(wait) => Err(crate::throttle::Refused::Failures(wait).into()),
        None => Ok(()),
    }
}

/// The client lookup, the shared failure counts and (optionally) a token, in one transaction.
async fn read(
    state: &Service,
    p: &Credentials,
    token_hash: Option<SecretHash>,
) -> Result<(Found, Option<i64>, Option<TokenRecord>), TokenError> {
    let secret = p.secret.as_ref().map(|s| state.keys.token_hash.hash(s));
    let id = p.client_id.clone();
    let keys = shared_keys(state, p);
    let now = state.now();
    let r = state
        .store
        .read(move |c| {
            let found = lookup(c, &id, secret.as_ref())?;
            let blocked = shared_blocked(c, keys.as_ref(), now)?;
            let t = match &token_hash {
                Some(h) => tokens::get(c, h)?,
                None => None,
            };
            Ok((found, blocked, t))
        })
        .await?;
    Ok(r)
}

/// Looks a presented client up (see [`Found`]). An unknown client and a wrong secret get the
/// same answer, after the same work (one store read and one keyed hash).
fn lookup(
    c: &mut dyn Conn,
    client_id: &str,
    secret: Option<&SecretHash>,
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

/// Decides a lookup.
fn decide(p: &Credentials, found: Found, allow_public: bool) -> Result<Client, TokenError> {
    match found {
        Some((app, true, approved)) => Ok(Client {
            app,
            approved,
            public: false,
            basic: p.basic,
        }),
        // A native PKCE app may omit the secret; PKCE then proves possession of the code.
        Some((app, false, approved))
            if p.secret.is_none() && allow_public && app.has(Capability::NativePkce) =>
        {
            Ok(Client {
                app,
                approved,
                public: true,
                basic: p.basic,
            })
        }
        // Without a secret the answer is the same whether or not the client exists.
        _ if p.secret.is_none() => Err(TokenError::MissingCredential("client_secret")),
        _ => Err(TokenError::InvalidClient { basic: p.basic }),
    }
}

/// The store keys of this client's failure counters when they are shared by several nodes (on
/// PostgreSQL); on SQLite one node's memory sees every failure, so there are none.
fn shared_keys(state: &Service, p: &Credentials) -> Option<[String; 2]> {
    if state.store.dialect() != scopegate_store::Dialect::Postgres {
        return None;
    }
    crate::throttle::keys(&p.client_id, p.addr).map(|ks| ks.map(|k| format!("client-auth|{k}")))
}

/// Seconds to wait when the shared failure counts pass the limits.
fn shared_blocked(
    c: &mut dyn Conn,
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
async fn decide_counted(
    state: &Service,
    p: &Credentials,
    found: Found,
    blocked: Option<i64>,
    allow_public: bool,
    attempt: Attempt<'_>,
) -> Result<Client, TokenError> {
    if let Some(wait) = blocked {
        return Err(crate::throttle::Refused::Failures(wait).into());
    }
    let r = decide(p, found, allow_public);
    if matches!(r, Err(TokenError::InvalidClient { .. })) {
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
            // The in-memory count above already holds; the shared one is best effort, and its
            // failure is logged rather than turning a refused secret into a 503.
            if let Err(e) = counted {
                tracing::warn!(error = %e, "counting a client-authentication failure failed");
            }
        }
    }
    r
}

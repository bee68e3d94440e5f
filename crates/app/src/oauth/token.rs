//! The token endpoint's grants: authorization_code, refresh_token, client_credentials.

use scopegate_core::model::{Capability, GrantId, TokenKind, TokenRecord};
use scopegate_core::oauth::{resolve_application_scopes, AppScopeRefusal};
use scopegate_core::secret::{ct_eq_str, sha256_b64url};
use scopegate_core::{ScopeSet, Secret, SecretHash};
use scopegate_store::tokens::{self, Redeem};
use scopegate_store::Conn;

use super::client::{authenticate_client, guess_attempt, Client, Credentials};
use super::{
    GrantRefusal, Scoping, TokenError, ACCESS_TOKEN_TTL, APP_TOKEN_TTL, REFRESH_TOKEN_TTL,
    ROTATION_GRACE,
};
use crate::config::Compat;
use crate::state::Service;

/// An authorization code presented for redemption (RFC 6749 4.1.3).
#[derive(Debug, Clone)]
pub struct CodeRedemption {
    /// The client's credentials, if any were presented.
    pub client: Option<Credentials>,
    /// The code.
    pub code: Secret,
    /// The redirect URL the code was issued for.
    pub redirect_uri: String,
    /// The PKCE verifier (RFC 7636 4.5).
    pub verifier: Option<Secret>,
}

/// A refresh token presented (RFC 6749 6).
#[derive(Debug, Clone)]
pub struct Refresh {
    /// The client's credentials, if any were presented.
    pub client: Option<Credentials>,
    /// The refresh token.
    pub refresh_token: Secret,
    /// A narrower scope asked for, as sent.
    pub scope: Option<String>,
}

/// A client credentials request (RFC 6749 4.4).
#[derive(Debug, Clone)]
pub struct AppToken {
    /// The client's credentials, if any were presented.
    pub client: Option<Credentials>,
    /// The scope asked for, as sent.
    pub scope: Option<String>,
}

/// Tokens issued and stored, for the response.
#[derive(Debug)]
pub struct Issued {
    /// The access token.
    pub access: Secret,
    /// The refresh token, when one goes with it.
    pub refresh: Option<Secret>,
    /// Seconds the access token lives.
    pub access_expires_in: i64,
    /// Seconds the refresh token has left.
    pub refresh_expires_in: Option<i64>,
    /// What the access token records.
    pub scopes: ScopeSet,
    /// The member the tokens act for, and what the ID token's claims follow (3-legged only).
    pub id_token: Option<IdTokenBasis>,
    /// Hashes of the tokens stored for this response and not yet handed out.
    undelivered: Vec<SecretHash>,
}

/// What an ID token for an issued access token is made from.
#[derive(Debug, Clone)]
pub struct IdTokenBasis {
    /// The app the tokens were issued to.
    pub client_id: String,
    /// The member.
    pub member_id: String,
    /// What the access token authorizes now.
    pub claims: ScopeSet,
    /// The authorization request's nonce.
    pub nonce: Option<String>,
    /// When the member signed in.
    pub auth_time: i64,
}

/// Redeems an authorization code (RFC 6749 4.1.3, RFC 7636 4.6): one write transaction that
/// consumes the code whatever happens next and stores the tokens.
pub async fn redeem_code(state: &Service, req: CodeRedemption) -> Result<Issued, TokenError> {
    // Neither a secret nor a PKCE verifier: whether the app is confidential or public, the
    // request lacks the one parameter that would prove it holds the code.
    let secret_presented = req.client.as_ref().is_some_and(|c| c.secret.is_some());
    if req.verifier.is_none() && state.config.compat == Compat::Standard && !secret_presented {
        return Err(TokenError::InvalidRequest(
            "A required parameter is missing: client_secret (confidential apps) or code_verifier (native PKCE apps)".into(),
        ));
    }
    let client = authenticate_client(state, req.client.as_ref(), req.verifier.is_some()).await?;
    // Reserved before the code is looked up (see throttle).
    let guess = guess_attempt(state, req.client.as_ref().and_then(|c| c.addr)).await?;
    // Public clients get rotating refresh tokens (RFC 9700 4.14); confidential ones only when the
    // platform enabled programmatic refresh for the app.
    let wants_refresh = client.public || client.app.has(Capability::RefreshTokens);
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let refresh = Secret::generate(state.entropy.as_ref(), "AQ");
    let ctx = CodeContext {
        code_hash: hash_of(state, &req.code),
        access_hash: hash_of(state, &access),
        refresh_hash: wants_refresh.then(|| hash_of(state, &refresh)),
        redirect_uri: req.redirect_uri,
        verifier: req.verifier,
        now: state.now(),
        scoping: Scoping::of(state),
        client: client.clone(),
    };
    let outcome = state.store.write(move |c| redeem_in(c, &ctx)).await?;
    let (scopes, basis) = match outcome {
        Ok(x) => x,
        Err(Redeemed::Unknown) => {
            // Nothing by that value exists: possibly a guess, counted against the address.
            guess.failed();
            return Err(TokenError::InvalidGrant(GrantRefusal::CodeNotFound));
        }
        Err(Redeemed::Refused(e)) => return Err(e),
    };
    let mut undelivered = vec![hash_of(state, &access)];
    if wants_refresh {
        undelivered.push(hash_of(state, &refresh));
    }
    Ok(Issued {
        access,
        refresh: wants_refresh.then_some(refresh),
        access_expires_in: ACCESS_TOKEN_TTL,
        refresh_expires_in: wants_refresh.then_some(REFRESH_TOKEN_TTL),
        scopes,
        id_token: Some(basis),
        undelivered,
    })
}

/// What the code's transaction needs, owned (the closure may run again on a retry).
struct CodeContext {
    code_hash: SecretHash,
    access_hash: SecretHash,
    refresh_hash: Option<SecretHash>,
    redirect_uri: String,
    verifier: Option<Secret>,
    now: i64,
    scoping: Scoping,
    client: Client,
}

/// Why a grant's transaction issued nothing.
enum Redeemed {
    /// No such code or refresh token exists: possibly a guess.
    Unknown,
    Refused(TokenError),
}

type Redemption = Result<(ScopeSet, IdTokenBasis), Redeemed>;

fn refused(e: TokenError) -> scopegate_store::Result<Redemption> {
    Ok(Err(Redeemed::Refused(e)))
}

/// The code's transaction: consume it, check its binding, store the tokens.
fn redeem_in(c: &mut dyn Conn, x: &CodeContext) -> scopegate_store::Result<Redemption> {
    let (now, code_hash) = (x.now, &x.code_hash);
    let record = match tokens::redeem_code(c, code_hash, now)? {
        Redeem::Unknown => return Ok(Err(Redeemed::Unknown)),
        Redeem::Replayed(_) => {
            // RFC 6749 4.1.2: a second use of the code MUST be refused and the tokens
            // issued from it SHOULD be revoked.
            tokens::revoke_code_lineage(c, code_hash, now)?;
            return refused(TokenError::InvalidGrant(GrantRefusal::CodeNotFound));
        }
        Redeem::Fresh(r) => r,
    };
    // The code is consumed even when a check below fails: a code presented with the
    // wrong verifier or redirect URL is likely stolen and must not get another try.
    let verifier_ok = match (&record.code_challenge, &x.verifier) {
        (Some(ch), Some(v)) => {
            let v = v.expose();
            valid_verifier(v) && ct_eq_str(&sha256_b64url(v), ch)
        }
        (None, None) => true,
        _ => false,
    };
    let client_id = &x.client.app.client_id;
    if &record.client_id != client_id
        || record.redirect_uri != x.redirect_uri
        || now >= record.expires_at
        || !verifier_ok
    {
        return refused(TokenError::InvalidGrant(GrantRefusal::CodeMismatch));
    }
    // After the binding checks, so a code that does not match at all answers as such.
    // RFC 6749 4.1.3 (and OAuth 2.1 4.1.3): a confidential client authenticates to
    // redeem its code. Only a code the native PKCE endpoint issued may be redeemed by
    // the verifier alone; a web-flow code of the same app needs the secret (docs/oauth.md).
    if x.client.public && !record.native {
        return refused(TokenError::MissingCredential("client_secret"));
    }
    let Some(grant) = tokens::grant_by_id(c, record.grant_id)?.filter(|g| g.revoked_at.is_none())
    else {
        return refused(TokenError::InvalidGrant(GrantRefusal::CodeNotFound));
    };
    let mut base = TokenRecord {
        hash: x.access_hash.clone(),
        kind: TokenKind::Access,
        client_id: client_id.clone(),
        grant_id: Some(grant.id),
        member_id: Some(record.member_id.clone()),
        scopes: record.scopes.clone(),
        created_at: now,
        authorized_at: grant.updated_at,
        expires_at: now + ACCESS_TOKEN_TTL,
        revoked_at: None,
        refresh_hash: None,
        code_hash: Some(code_hash.clone()),
        rotated_at: None,
        nonce: record.nonce.clone(),
        public_client: x.client.public,
        auth_time: record.auth_time,
    };
    let approved = &x.client.approved;
    let scopes = x.scoping.carried(&base, approved);
    base.scopes = scopes.clone();
    let claims = x.scoping.token_scopes(&base, approved);
    store_issued(c, base, x.refresh_hash.as_ref())?;
    Ok(Ok((
        scopes,
        IdTokenBasis {
            client_id: client_id.to_string(),
            member_id: record.member_id.into_string(),
            claims,
            nonce: record.nonce,
            auth_time: record.auth_time,
        },
    )))
}

/// Stores an access token, and the refresh token it goes with when there is one.
fn store_issued(
    c: &mut dyn Conn,
    access: TokenRecord,
    refresh_hash: Option<&SecretHash>,
) -> scopegate_store::Result<()> {
    let Some(rh) = refresh_hash else {
        return tokens::insert(c, &access);
    };
    let r = TokenRecord {
        hash: rh.clone(),
        kind: TokenKind::Refresh,
        expires_at: access.created_at + REFRESH_TOKEN_TTL,
        ..access.clone()
    };
    tokens::insert(c, &r)?;
    tokens::insert(
        c,
        &TokenRecord {
            refresh_hash: Some(rh.clone()),
            ..access
        },
    )
}

fn hash_of(state: &Service, token: &Secret) -> SecretHash {
    state.keys.token_hash.hash(token)
}

/// The response cannot be delivered (its ID token could not be made): the tokens stored for
/// it, never handed out, are revoked so they count for nothing (a live token lets a later
/// request skip the consent screen).
pub async fn withdraw_undelivered(state: &Service, issued: Issued) -> Result<(), TokenError> {
    let now = state.now();
    let undelivered = issued.undelivered;
    state
        .store
        .write(move |c| {
            for h in &undelivered {
                tokens::revoke(c, h, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(())
}

/// RFC 7636 4.1: 43 to 128 characters of [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

fn parse_scope(s: Option<&str>) -> Result<Option<ScopeSet>, TokenError> {
    s.map(|s| ScopeSet::parse(s).map_err(|e| TokenError::InvalidScope(e.to_string())))
        .transpose()
}

/// Refreshes an access token (RFC 6749 6), rotating a public client's refresh token (RFC 9700
/// 4.14.2), in one write transaction.
pub async fn refresh(state: &Service, req: Refresh) -> Result<Issued, TokenError> {
    let client = authenticate_client(state, req.client.as_ref(), true).await?;
    // Reserved before the refresh token is looked up (see throttle).
    let guess = guess_attempt(state, req.client.as_ref().and_then(|c| c.addr)).await?;
    let requested = parse_scope(req.scope.as_deref())?;
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let rotated = Secret::generate(state.entropy.as_ref(), "AQ");
    let ctx = RefreshContext {
        old_hash: hash_of(state, &req.refresh_token),
        access_hash: hash_of(state, &access),
        rotated_hash: hash_of(state, &rotated),
        requested,
        now: state.now(),
        scoping: Scoping::of(state),
        client,
    };
    let outcome = state.store.write(move |c| refresh_in(c, &ctx)).await?;
    let r = match outcome {
        Ok(r) => r,
        Err(Redeemed::Unknown) => {
            // Nothing by that value exists: possibly a guess, counted against the address.
            guess.failed();
            return Err(TokenError::InvalidGrant(GrantRefusal::RefreshToken));
        }
        Err(Redeemed::Refused(e)) => return Err(e),
    };
    let mut undelivered = vec![hash_of(state, &access)];
    if r.rotated {
        undelivered.push(hash_of(state, &rotated));
    }
    Ok(Issued {
        access,
        // Confidential clients keep their refresh token (LinkedIn returns the same one).
        refresh: Some(if r.rotated {
            rotated
        } else {
            req.refresh_token
        }),
        access_expires_in: r.access_expires_in,
        refresh_expires_in: Some(r.refresh_remaining),
        scopes: r.scopes,
        id_token: r.basis,
        undelivered,
    })
}

struct RefreshContext {
    old_hash: SecretHash,
    access_hash: SecretHash,
    rotated_hash: SecretHash,
    requested: Option<ScopeSet>,
    now: i64,
    scoping: Scoping,
    client: Client,
}

struct Refreshed {
    scopes: ScopeSet,
    access_expires_in: i64,
    rotated: bool,
    refresh_remaining: i64,
    basis: Option<IdTokenBasis>,
}

/// The refresh's transaction: check the refresh token, rotate it for a public client, store
/// the new access token.
fn refresh_in(
    c: &mut dyn Conn,
    x: &RefreshContext,
) -> scopegate_store::Result<Result<Refreshed, Redeemed>> {
    let (now, client_id) = (x.now, &x.client.app.client_id);
    let bad = || {
        Ok(Err(Redeemed::Refused(TokenError::InvalidGrant(
            GrantRefusal::RefreshToken,
        ))))
    };
    let Some(rt) = tokens::get(c, &x.old_hash)?
        .filter(|t| t.kind == TokenKind::Refresh && &t.client_id == client_id)
    else {
        return Ok(Err(Redeemed::Unknown));
    };
    // RFC 6749 6: a confidential client's refresh token needs the client's secret; only
    // a token issued to a public client may be refreshed without one.
    if x.client.public && !rt.public_client {
        return Ok(Err(Redeemed::Refused(TokenError::MissingCredential(
            "client_secret",
        ))));
    }
    if rt.revoked_at.is_some() || now >= rt.expires_at {
        return bad();
    }
    let grant = match rt.grant_id {
        Some(g) => tokens::grant_by_id(c, g)?.filter(|g| g.revoked_at.is_none()),
        None => None,
    };
    let Some(grant) = grant else {
        return bad();
    };
    if let Some(at) = rt.rotated_at {
        if now > at + ROTATION_GRACE {
            // RFC 9700 4.14.2: a rotated refresh token used again means one of two
            // parties is an attacker: revoke the whole grant.
            tokens::revoke_grant_tokens(c, grant.id, now)?;
            return bad();
        }
    }
    // RFC 6749 6: the scope may narrow what the resource owner granted, never widen it.
    let granted = rt.scopes.clone();
    let scopes = match &x.requested {
        Some(req) if !req.is_subset(&granted) => {
            return Ok(Err(Redeemed::Refused(TokenError::InvalidGrant(
                GrantRefusal::ScopeWidened,
            ))))
        }
        Some(req) => req.clone(),
        None => granted,
    };
    // What the new token records: of those, the ones the refresh token still
    // authorizes (a removed product's scopes are gone).
    let still = x.scoping.carried(&rt, &x.client.approved);
    let scopes = ScopeSet::from_names(
        scopes
            .iter()
            .filter(|s| still.contains(s))
            .map(str::to_string),
    );
    issue_refreshed(c, x, &rt, grant.id, scopes).map(Ok)
}

/// Stores what a valid refresh issues: the rotated refresh token (public clients) and the
/// new access token.
fn issue_refreshed(
    c: &mut dyn Conn,
    x: &RefreshContext,
    rt: &TokenRecord,
    grant_id: GrantId,
    scopes: ScopeSet,
) -> scopegate_store::Result<Refreshed> {
    let now = x.now;
    // The refresh token's lifetime counts from the first grant and is never extended; the
    // access token is capped at it.
    let access_exp = (now + ACCESS_TOKEN_TTL).min(rt.expires_at);
    let mut parent = x.old_hash.clone();
    let rotate = rt.public_client;
    if rotate {
        tokens::mark_rotated(c, &x.old_hash, now)?;
        tokens::insert(
            c,
            &TokenRecord {
                hash: x.rotated_hash.clone(),
                created_at: now,
                rotated_at: None,
                revoked_at: None,
                ..rt.clone()
            },
        )?;
        parent = x.rotated_hash.clone();
    }
    let issued = TokenRecord {
        hash: x.access_hash.clone(),
        kind: TokenKind::Access,
        client_id: x.client.app.client_id.clone(),
        grant_id: Some(grant_id),
        member_id: rt.member_id.clone(),
        scopes: scopes.clone(),
        created_at: now,
        authorized_at: rt.authorized_at,
        expires_at: access_exp,
        revoked_at: None,
        refresh_hash: Some(parent),
        code_hash: rt.code_hash.clone(),
        rotated_at: None,
        nonce: None,
        public_client: rt.public_client,
        auth_time: rt.auth_time,
    };
    tokens::insert(c, &issued)?;
    let basis = rt.member_id.clone().map(|member_id| IdTokenBasis {
        client_id: x.client.app.client_id.to_string(),
        member_id: member_id.into_string(),
        claims: x.scoping.token_scopes(&issued, &x.client.approved),
        nonce: None,
        auth_time: rt.auth_time,
    });
    Ok(Refreshed {
        scopes,
        access_expires_in: access_exp - now,
        rotated: rotate,
        refresh_remaining: rt.expires_at - now,
        basis,
    })
}

/// Issues a 2-legged token (RFC 6749 4.4) with the application permissions the app's approved
/// programs grant, durable before it is returned.
pub async fn client_credentials(state: &Service, req: AppToken) -> Result<Issued, TokenError> {
    let client = authenticate_client(state, req.client.as_ref(), false).await?;
    if !client.app.has(Capability::ClientCredentials) {
        return Err(TokenError::UnauthorizedClient);
    }
    let requested = parse_scope(req.scope.as_deref())?;
    let effective = state.effective_permissions(&client.approved);
    let scopes =
        resolve_application_scopes(&effective, requested.as_ref()).map_err(|r| match r {
            AppScopeRefusal::NoneHeld => TokenError::InvalidScope(
                "no approved program grants this application an application permission".into(),
            ),
            AppScopeRefusal::NotHeld(s) => TokenError::InvalidScope(format!(
                "Scope \"{s}\" is not an application permission granted to your application"
            )),
        })?;
    let now = state.now();
    let access = Secret::generate(state.entropy.as_ref(), "AQ");
    let record = TokenRecord {
        hash: hash_of(state, &access),
        kind: TokenKind::Access,
        client_id: client.app.client_id.clone(),
        grant_id: None,
        member_id: None,
        scopes: scopes.clone(),
        created_at: now,
        authorized_at: now,
        expires_at: now + APP_TOKEN_TTL,
        revoked_at: None,
        refresh_hash: None,
        code_hash: None,
        rotated_at: None,
        nonce: None,
        public_client: false,
        auth_time: 0,
    };
    let undelivered = vec![record.hash.clone()];
    // Durable before it is returned: the write resolves only after the commit.
    state
        .store
        .write(move |c| tokens::insert(c, &record))
        .await?;
    Ok(Issued {
        access,
        refresh: None,
        access_expires_in: APP_TOKEN_TTL,
        refresh_expires_in: None,
        scopes,
        id_token: None,
        undelivered,
    })
}

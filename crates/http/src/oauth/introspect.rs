//! POST /oauth/v2/introspectToken (LinkedIn's fields plus RFC 7662's) and POST /oauth/v2/revoke
//! (RFC 7009).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use scopegate_core::model::{TokenKind, TokenRecord, TokenState};
use scopegate_core::ScopeSet;
use scopegate_store::tokens;
use serde_json::json;

use super::client;
use super::form_request;
use super::token::narrowed;
use crate::state::ServiceState;
use crate::throttle::Attempt;
use crate::wire::{no_store, OAuthError};

/// The introspection endpoint. An app may introspect only its own tokens; anything else is
/// exactly `{"active": false}` (RFC 7662 2.2).
pub async fn introspect(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state
        .metrics
        .introspections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match introspect_inner(&state, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn introspect_inner(
    state: &ServiceState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, OAuthError> {
    let (client, t, guess) = authenticated_lookup(state, method, uri, headers, body, false).await?;
    let Some(t) = t.filter(|t| t.client_id == client.app.client_id) else {
        // Unknown (or not this app's): scanning for live tokens must not be free (RFC 7662 4).
        guess.failed();
        return Ok(no_store(StatusCode::OK, json!({"active": false})));
    };
    let now = state.now();
    let token_state = t.state(now);
    let scopes = narrowed(
        state,
        &client.approved,
        &ScopeSet::parse(&t.scopes).unwrap_or_default(),
    );
    let mut body = json!({
        "active": token_state == TokenState::Active,
        "status": token_state,
        "client_id": t.client_id,
        "created_at": t.created_at,
        "expires_at": t.expires_at,
        "authorized_at": t.authorized_at,
        "auth_type": if t.grant_id.is_some() { "3L" } else { "2L" },
        "scope": scopes.to_comma_separated(),
    });
    if token_state == TokenState::Active {
        body["exp"] = json!(t.expires_at);
        body["iat"] = json!(t.created_at);
        body["iss"] = json!(state.config.issuer());
        // The audience: the app the token was issued to (RFC 7662 2.2, RFC 9068's convention
        // for tokens meant for the platform's own API on the app's behalf).
        body["aud"] = json!(t.client_id);
        body["token_type"] = json!(match t.kind {
            TokenKind::Access => "Bearer",
            TokenKind::Refresh => "refresh_token",
        });
        if let Some(m) = &t.member_id {
            body["sub"] = json!(crate::oidc::pairwise_sub(state, &t.client_id, m));
        }
    }
    Ok(no_store(StatusCode::OK, body))
}

/// The revocation endpoint: 200 whatever the token's state (RFC 7009 2.2).
pub async fn revoke(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    state
        .metrics
        .revocations
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    match revoke_inner(&state, &method, &uri, &headers, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn revoke_inner(
    state: &ServiceState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Response, OAuthError> {
    // RFC 7009 2.1: a public client (native PKCE, no secret) may revoke its own tokens.
    let (client, t, guess) = authenticated_lookup(state, method, uri, headers, body, true).await?;
    // token_type_hint is only a hint (RFC 7009 2.1): every kind is searched. A token of another
    // client (or a confidential client's token presented by its public self) is answered exactly
    // like an unknown one, 200 (RFC 7009 2.2: an invalid token is not an error), and revokes
    // nothing: a different answer would tell a scanner that it found a live token.
    let Some(t) =
        t.filter(|t| t.client_id == client.app.client_id && (!client.public || t.public_client))
    else {
        guess.failed();
        return Ok(no_store(StatusCode::OK, json!({})));
    };
    drop(guess);
    let now = state.now();
    state
        .store
        .write(move |c| {
            tokens::revoke(c, &t.hash, now)?;
            // RFC 7009 2.1: revoking a refresh token also invalidates the tokens of the same
            // grant, including the refresh tokens it was rotated from or into.
            if let (TokenKind::Refresh, Some(g)) = (t.kind, t.grant_id) {
                tokens::revoke_grant_tokens(c, g, now)?;
            }
            Ok(())
        })
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "revocation: store failed");
            OAuthError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "the token could not be revoked right now; try again",
            )
        })?;
    Ok(no_store(StatusCode::OK, json!({})))
}

/// What introspection and revocation share: the form, the client's credentials (refused in the
/// URL query, RFC 6749 2.3.1), the client-authentication and guessing throttles reserved before
/// the secret is checked and the token looked up (an endpoint that answers about tokens is a
/// scanner's tool, RFC 7662 4), then client authentication and the token lookup in one read
/// transaction (the hot path). The guess is returned for the caller to count or release.
async fn authenticated_lookup<'a>(
    state: &'a ServiceState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    public_ok: bool,
) -> Result<(client::Client, Option<TokenRecord>, Attempt<'a>), OAuthError> {
    let form = form_request(method, uri, headers, body)?;
    client::refuse_query_credentials(uri)?;
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::missing("token"))?
        .to_string();
    let p = client::require(state, headers, &form, public_ok)?;
    client::throttled(state, &p)?;
    let [attempt, guess] = client::authentication_and_guess(state, &p).await?;
    let secret = p
        .secret
        .as_deref()
        .map(|s| state.keys.token_hash.hash_str(s));
    let token_hash = state.keys.token_hash.hash_str(&token).as_str().to_string();
    let id = p.client_id.clone();
    let keys = client::shared_keys(state, &p);
    let now = state.now();
    let (found, blocked, t) = state
        .store
        .read(move |c| {
            Ok((
                client::lookup(c, &id, secret.as_ref())?,
                client::shared_blocked(c, keys.as_ref(), now)?,
                tokens::get(c, &token_hash)?,
            ))
        })
        .await
        .map_err(client::unavailable)?;
    let client = client::decide_counted(state, &p, found, blocked, public_ok, attempt).await?;
    Ok((client, t, guess))
}

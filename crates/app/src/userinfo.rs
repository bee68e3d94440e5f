//! OIDC Core 5.3 userinfo: the claims an access token releases about its member.

use scopegate_core::model::{TokenKind, TokenState};
use scopegate_store::{apps, members, tokens, StoreError};
use serde_json::{json, Map, Value};

use crate::signing::{pairwise_sub, profile_claims};
use crate::state::Service;

/// Why userinfo answers no claims.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    /// Not an access token of ours, or its member is gone.
    #[error("invalid access token")]
    InvalidToken,
    /// The token was revoked.
    #[error("revoked access token")]
    Revoked,
    /// The token expired.
    #[error("expired access token")]
    Expired,
    /// The token does not authorize `openid` (now), or was issued to no member.
    #[error("the token does not authorize userinfo")]
    NotOpenid,
    /// The store could not answer: a 503, not a verdict on the token.
    #[error("store unavailable: {0}")]
    Unavailable(#[from] StoreError),
}

/// The userinfo claims for a presented bearer token: `sub` (pairwise) and the profile claims
/// of the scopes the token authorizes now (a removed product takes `openid` and the claims with
/// it).
pub async fn claims(state: &Service, token: &str) -> Result<Value, UserinfoError> {
    let hash = state.keys.token_hash.hash_str(token);
    // The token, its app's approved products and its member, in one read.
    let found = state
        .store
        .read(move |c| {
            let Some(t) = tokens::get(c, &hash)?.filter(|t| t.kind == TokenKind::Access) else {
                return Ok(None);
            };
            let approved = apps::approved_programs(c, &t.client_id)?;
            let member = match &t.member_id {
                Some(m) => members::by_id(c, m)?,
                None => None,
            };
            Ok(Some((t, approved, member)))
        })
        .await?;
    let (t, approved, member) = found.ok_or(UserinfoError::InvalidToken)?;
    match t.state(state.now()) {
        TokenState::Revoked => return Err(UserinfoError::Revoked),
        TokenState::Expired => return Err(UserinfoError::Expired),
        TokenState::Active => {}
    }
    let scopes = scopegate_core::enforce::effective_token_scopes(
        &state.catalog,
        &t,
        &approved,
        crate::clock::date_of(state.now()),
    );
    let member_id = t
        .member_id
        .clone()
        .filter(|_| scopes.contains("openid"))
        .ok_or(UserinfoError::NotOpenid)?;
    // A token whose member was deleted authorizes nothing.
    let member = member.ok_or(UserinfoError::InvalidToken)?;
    let mut claims = Map::new();
    claims.insert(
        "sub".into(),
        json!(pairwise_sub(state, &t.client_id, &member_id)),
    );
    claims.extend(profile_claims(state, &member, &scopes, false));
    Ok(Value::Object(claims))
}

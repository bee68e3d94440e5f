//! Introspection (RFC 7662, with LinkedIn's fields) and revocation (RFC 7009).

use scopegate_core::model::{TokenKind, TokenRecord, TokenState};
use scopegate_core::{ScopeSet, Secret};
use scopegate_store::tokens;

use super::client::{authenticate_with_token, Credentials};
use super::TokenError;
use crate::state::Service;

/// What introspection may say about a token: `None` is exactly `{"active": false}`.
#[derive(Debug, Clone)]
pub struct Introspection {
    /// The token.
    pub token: TokenRecord,
    /// Its state now.
    pub state: TokenState,
    /// Its scopes narrowed to what the app's approved products grant now.
    pub scopes: ScopeSet,
}

/// Introspects `token` for an authenticated client. An app may introspect only its own tokens;
/// anything else is `None`, and counts as a guess (RFC 7662 2.2, 4).
pub async fn introspect(
    state: &Service,
    client: Option<&Credentials>,
    token: &Secret,
) -> Result<Option<Introspection>, TokenError> {
    let (client, t, guess) = authenticate_with_token(state, client, false, token).await?;
    let Some(t) = t.filter(|t| t.client_id == client.app.client_id) else {
        // Unknown (or not this app's): scanning for live tokens must not be free (RFC 7662 4).
        guess.failed();
        return Ok(None);
    };
    let e = state.effective_permissions(&client.approved);
    let scopes = scopegate_core::enforce::granted_token_scopes(&state.catalog, &e, &t.scopes);
    Ok(Some(Introspection {
        state: t.state(state.now()),
        token: t,
        scopes,
    }))
}

/// Revokes `token` for an authenticated client; a public client (native PKCE, no secret) may
/// revoke its own (RFC 7009 2.1). Unknown tokens and other clients' tokens revoke nothing and
/// are not an error (RFC 7009 2.2).
pub async fn revoke(
    state: &Service,
    client: Option<&Credentials>,
    token: &Secret,
) -> Result<(), TokenError> {
    let (client, t, guess) = authenticate_with_token(state, client, true, token).await?;
    // token_type_hint is only a hint (RFC 7009 2.1): every kind is searched. A token of another
    // client (or a confidential client's token presented by its public self) is answered exactly
    // like an unknown one and revokes nothing: a different answer would tell a scanner that it
    // found a live token.
    let Some(t) =
        t.filter(|t| t.client_id == client.app.client_id && (!client.public || t.public_client))
    else {
        guess.failed();
        return Ok(());
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
        .await?;
    Ok(())
}

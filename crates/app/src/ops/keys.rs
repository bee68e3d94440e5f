//! Admin API keys: created by a platform admin, shown once, stored as a keyed hash.

use scopegate_core::Secret;
use scopegate_store::{audit, keys};

use crate::error::{Error, Result};
use crate::ops::Actor;
use crate::state::Service;

/// What a key is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// The admin API.
    Admin,
    /// A resource server calling the decision API.
    ResourceServer,
}

impl KeyKind {
    /// The kind as stored and audited.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Admin => "admin",
            KeyKind::ResourceServer => "resource-server",
        }
    }
    /// The prefix of its secrets, so a leaked key says what it opens.
    fn prefix(self) -> &'static str {
        match self {
            KeyKind::Admin => "sgk_",
            KeyKind::ResourceServer => "sgr_",
        }
    }
}

/// Creates a key; the returned secret is shown once.
pub async fn create(app: &Service, actor: &Actor, name: &str, kind: KeyKind) -> Result<Secret> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can create admin API keys".into(),
        ));
    }
    let name = name.trim().to_string();
    if name.is_empty() || name.len() > 100 || name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "the key name must be 1 to 100 printable characters".into(),
        ));
    }
    let secret = Secret::generate(app.entropy.as_ref(), kind.prefix());
    let hash = app.keys.token_hash.hash(&secret).as_str().to_string();
    let now = app.now();
    let by = actor.to_string();
    app.store
        .write(move |c| {
            keys::insert_api_key(c, &hash, &name, kind.as_str(), &by, now)?;
            audit::record(
                c,
                now,
                &by,
                &format!("{}_key.create", kind.as_str()),
                &name,
                "",
            )
        })
        .await?;
    Ok(secret)
}

/// Revokes the keys with this name.
pub async fn revoke(app: &Service, actor: &Actor, name: &str, kind: KeyKind) -> Result<u64> {
    if !actor.is_platform_admin() {
        return Err(Error::Forbidden(
            "only a platform admin can revoke admin API keys".into(),
        ));
    }
    let name = name.to_string();
    let now = app.now();
    let by = actor.to_string();
    let n = app
        .store
        .write(move |c| {
            let n = keys::revoke_api_key(c, &name, kind.as_str(), now)?;
            if n > 0 {
                audit::record(
                    c,
                    now,
                    &by,
                    &format!("{}_key.revoke", kind.as_str()),
                    &name,
                    "",
                )?;
            }
            Ok(n)
        })
        .await?;
    if n == 0 {
        return Err(Error::NotFound(
            "no live admin API key with that name".into(),
        ));
    }
    Ok(n)
}

/// The name of the live key of this kind that was presented, or None for no such key. A store
/// failure is an error: an outage must not read as "your key is wrong" (fail closed, loudly).
pub async fn authenticate(app: &Service, presented: &str, kind: KeyKind) -> Result<Option<String>> {
    let hash = app.keys.token_hash.hash_str(presented).as_str().to_string();
    Ok(app
        .store
        .read(move |c| keys::api_key_name(c, &hash, kind.as_str()))
        .await?)
}

//! Grants, authorization codes, access and refresh tokens, sessions. Looked up by keyed hash only.

use scopegate_core::model::{
    CodeRecord, Grant, GrantId, Session, TokenKind, TokenRecord, UnixTime,
};

use crate::{params, unknown, Conn, Result, Row, StoreError};
use scopegate_core::{ScopeSet, SecretHash};

const TOKEN_COLUMNS: &str = "hash, kind, client_id, grant_id, member_id, scopes, created_at, authorized_at, expires_at, revoked_at, refresh_hash, code_hash, rotated_at, nonce, public_client, auth_time";

fn token(r: &Row) -> Result<TokenRecord> {
    Ok(TokenRecord {
        hash: r.hash("hash")?,
        kind: match r.text("kind")?.as_str() {
            "refresh" => TokenKind::Refresh,
            "access" => TokenKind::Access,
            other => return Err(unknown("token kind", other)),
        },
        client_id: r.text("client_id")?.into(),
        grant_id: r.opt_int("grant_id")?.map(Into::into),
        member_id: r.opt_text("member_id")?.map(Into::into),
        scopes: r.scopes("scopes")?,
        created_at: r.int("created_at")?,
        authorized_at: r.int("authorized_at")?,
        expires_at: r.int("expires_at")?,
        revoked_at: r.opt_int("revoked_at")?,
        refresh_hash: r.opt_hash("refresh_hash")?,
        code_hash: r.opt_hash("code_hash")?,
        rotated_at: r.opt_int("rotated_at")?,
        nonce: r.opt_text("nonce")?,
        public_client: r.bool("public_client")?,
        auth_time: r.int("auth_time")?,
    })
}

/// Stores a token. It is durable when the surrounding write returns.
pub fn insert(c: &mut dyn Conn, t: &TokenRecord) -> Result<()> {
    c.execute(
        &format!("INSERT INTO tokens ({TOKEN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"),
        params![&t.hash, t.kind.as_str(), &t.client_id, t.grant_id, t.member_id.clone(), &t.scopes, t.created_at, t.authorized_at, t.expires_at, t.revoked_at, t.refresh_hash.clone(), t.code_hash.clone(), t.rotated_at, t.nonce.clone(), t.public_client, t.auth_time],
    )?;
    Ok(())
}

/// The token with this hash (one primary-key lookup).
pub fn get(c: &mut dyn Conn, hash: &SecretHash) -> Result<Option<TokenRecord>> {
    c.query_opt(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE hash = $1"),
        params![hash],
    )?
    .as_ref()
    .map(token)
    .transpose()
}

/// Revokes one token; for a refresh token, also the access tokens it issued (RFC 7009 2.1).
pub fn revoke(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<u64> {
    let mut n = c.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE hash = $2 AND revoked_at IS NULL",
        params![now, hash],
    )?;
    n += c.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE refresh_hash = $2 AND revoked_at IS NULL",
        params![now, hash],
    )?;
    Ok(n)
}

/// Revokes every token of a grant.
pub fn revoke_grant_tokens(
    c: &mut dyn Conn,
    grant_id: impl Into<GrantId>,
    now: UnixTime,
) -> Result<u64> {
    c.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND revoked_at IS NULL",
        params![now, Into::<GrantId>::into(grant_id)],
    )
}

/// Revokes every token of a grant of one kind.
pub fn revoke_grant_tokens_of_kind(
    c: &mut dyn Conn,
    grant_id: impl Into<GrantId>,
    kind: TokenKind,
    now: UnixTime,
) -> Result<u64> {
    c.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE grant_id = $2 AND kind = $3 AND revoked_at IS NULL",
        params![now, Into::<GrantId>::into(grant_id), kind.as_str()],
    )
}

/// Revokes every token descending from an authorization code (RFC 6749 4.1.2: code replay).
pub fn revoke_code_lineage(c: &mut dyn Conn, code_hash: &SecretHash, now: UnixTime) -> Result<u64> {
    c.execute(
        "UPDATE tokens SET revoked_at = $1 WHERE code_hash = $2 AND revoked_at IS NULL",
        params![now, code_hash],
    )
}

/// Marks a refresh token rotated, only if it was not already; returns whether this call did it.
pub fn mark_rotated(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<bool> {
    Ok(c.execute(
        "UPDATE tokens SET rotated_at = $1 WHERE hash = $2 AND rotated_at IS NULL AND revoked_at IS NULL",
        params![now, hash],
    )? == 1)
}

/// True when the grant has an access token that is neither revoked nor expired.
pub fn grant_has_live_access_token(
    c: &mut dyn Conn,
    grant_id: impl Into<GrantId>,
    now: UnixTime,
) -> Result<bool> {
    Ok(c.query_opt(
        "SELECT 1 FROM tokens WHERE grant_id = $1 AND kind = 'access' AND revoked_at IS NULL AND expires_at > $2 LIMIT 1",
        params![Into::<GrantId>::into(grant_id), now],
    )?
    .is_some())
}

/// Live 3-legged tokens of one app's grants, for Permitted services and audits.
pub fn tokens_of_client(c: &mut dyn Conn, client_id: &str) -> Result<Vec<TokenRecord>> {
    c.query(
        &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE client_id = $1 ORDER BY created_at"),
        params![client_id],
    )?
    .iter()
    .map(token)
    .collect()
}

/// Deletes at most `batch` expired codes, tokens and sessions older than `before`, using the
/// expiry indexes: many small deletes instead of one table scan that stalls the server.
pub fn purge_expired(c: &mut dyn Conn, before: UnixTime, batch: i64) -> Result<u64> {
    let mut n = 0;
    n += c.execute(
        "DELETE FROM tokens WHERE hash IN (SELECT hash FROM tokens WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        params![before, batch],
    )?;
    n += c.execute(
        "DELETE FROM auth_codes WHERE hash IN (SELECT hash FROM auth_codes WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        params![before, batch],
    )?;
    n += c.execute(
        "DELETE FROM sessions WHERE hash IN (SELECT hash FROM sessions WHERE expires_at < $1 ORDER BY expires_at LIMIT $2)",
        params![before, batch],
    )?;
    Ok(n)
}

/// Deletes at most `batch` attempt counters (sign-in and shared client-authentication
/// counters) whose last attempt was before `before`: they would be forgotten anyway, and an
/// attacker must not be able to grow the table for ever with made-up accounts.
pub fn purge_attempt_counters(c: &mut dyn Conn, before: UnixTime, batch: i64) -> Result<u64> {
    c.execute(
        "DELETE FROM sign_in_failures WHERE key IN (SELECT key FROM sign_in_failures WHERE window_start < $1 LIMIT $2)",
        params![before, batch],
    )
}

const CODE_COLUMNS: &str = "hash, client_id, grant_id, member_id, redirect_uri, scopes, code_challenge, nonce, auth_time, created_at, expires_at, consumed_at, native";

fn code(r: &Row) -> Result<CodeRecord> {
    Ok(CodeRecord {
        hash: r.hash("hash")?,
        client_id: r.text("client_id")?.into(),
        grant_id: r.int("grant_id")?.into(),
        member_id: r.text("member_id")?.into(),
        redirect_uri: r.text("redirect_uri")?,
        scopes: r.scopes("scopes")?,
        code_challenge: r.opt_text("code_challenge")?,
        nonce: r.opt_text("nonce")?,
        auth_time: r.int("auth_time")?,
        created_at: r.int("created_at")?,
        expires_at: r.int("expires_at")?,
        consumed_at: r.opt_int("consumed_at")?,
        native: r.bool("native")?,
    })
}

/// Stores an authorization code.
pub fn insert_code(c: &mut dyn Conn, k: &CodeRecord) -> Result<()> {
    c.execute(
        &format!("INSERT INTO auth_codes ({CODE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"),
        params![&k.hash, &k.client_id, k.grant_id, &k.member_id, &k.redirect_uri, &k.scopes, k.code_challenge.clone(), k.nonce.clone(), k.auth_time, k.created_at, k.expires_at, k.consumed_at, k.native],
    )?;
    Ok(())
}

/// Whether a code with this hash was ever stored, and if so whether it is still unused.
pub fn code_state(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<Option<bool>> {
    c.query_opt(
        "SELECT consumed_at, expires_at FROM auth_codes WHERE hash = $1",
        params![hash],
    )?
    .map(|r| -> Result<bool> { Ok(r.opt_int(0)?.is_none() && r.int(1)? > now) })
    .transpose()
}

/// The outcome of redeeming a code.
#[derive(Debug, Clone)]
pub enum Redeem {
    /// First use: the code, now consumed.
    Fresh(CodeRecord),
    /// Already used: the code as stored (its lineage must be revoked).
    Replayed(CodeRecord),
    /// No such code.
    Unknown,
}

/// Consumes a code atomically: of any number of concurrent redemptions, exactly one is `Fresh`.
pub fn redeem_code(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<Redeem> {
    let consumed = c.query_opt(
        &format!("UPDATE auth_codes SET consumed_at = $1 WHERE hash = $2 AND consumed_at IS NULL RETURNING {CODE_COLUMNS}"),
        params![now, hash],
    )?;
    if let Some(row) = consumed {
        return Ok(Redeem::Fresh(code(&row)?));
    }
    match c.query_opt(
        &format!("SELECT {CODE_COLUMNS} FROM auth_codes WHERE hash = $1"),
        params![hash],
    )? {
        Some(row) => Ok(Redeem::Replayed(code(&row)?)),
        None => Ok(Redeem::Unknown),
    }
}

const GRANT_COLUMNS: &str = "id, client_id, member_id, scopes, created_at, updated_at, revoked_at";

fn grant(r: &Row) -> Result<Grant> {
    Ok(Grant {
        id: r.int("id")?.into(),
        client_id: r.text("client_id")?.into(),
        member_id: r.text("member_id")?.into(),
        scopes: r.scopes("scopes")?,
        created_at: r.int("created_at")?,
        updated_at: r.int("updated_at")?,
        revoked_at: r.opt_int("revoked_at")?,
    })
}

/// The member's live grant for an app.
pub fn live_grant(c: &mut dyn Conn, client_id: &str, member_id: &str) -> Result<Option<Grant>> {
    c.query_opt(
        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE client_id = $1 AND member_id = $2 AND revoked_at IS NULL"),
        params![client_id, member_id],
    )?
    .as_ref()
    .map(grant)
    .transpose()
}

/// A grant by id.
pub fn grant_by_id(c: &mut dyn Conn, id: impl Into<GrantId>) -> Result<Option<Grant>> {
    c.query_opt(
        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"),
        params![Into::<GrantId>::into(id)],
    )?
    .as_ref()
    .map(grant)
    .transpose()
}

/// Records consent: creates the grant, or replaces its scopes. A different scope set invalidates
/// the grant's earlier access tokens (LinkedIn, reference 1.6). Returns the grant.
pub fn consent(
    c: &mut dyn Conn,
    client_id: &str,
    member_id: &str,
    scopes: &ScopeSet,
    now: UnixTime,
) -> Result<Grant> {
    if let Some(g) = live_grant(c, client_id, member_id)? {
        if g.scopes != *scopes {
            revoke_grant_tokens(c, g.id, now)?;
            c.execute(
                "UPDATE grants SET scopes = $1, updated_at = $2 WHERE id = $3",
                params![scopes, now, g.id],
            )?;
        }
        return grant_by_id(c, g.id)?.ok_or(StoreError::NotFound);
    }
    let id = c
        .query_one(
            "INSERT INTO grants (client_id, member_id, scopes, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            params![client_id, member_id, scopes, now],
        )?
        .int(0)?;
    grant_by_id(c, id)?.ok_or(StoreError::NotFound)
}

/// Revokes a member's grant for an app and every token of it. Returns false if none was live.
pub fn revoke_grant(
    c: &mut dyn Conn,
    client_id: &str,
    member_id: &str,
    now: UnixTime,
) -> Result<bool> {
    let Some(g) = live_grant(c, client_id, member_id)? else {
        return Ok(false);
    };
    revoke_grant_tokens(c, g.id, now)?;
    c.execute(
        "UPDATE grants SET revoked_at = $1 WHERE id = $2",
        params![now, g.id],
    )?;
    Ok(true)
}

/// Every live grant of a member (the Permitted services page).
pub fn grants_of_member(c: &mut dyn Conn, member_id: &str) -> Result<Vec<Grant>> {
    c.query(
        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE member_id = $1 AND revoked_at IS NULL ORDER BY updated_at DESC"),
        params![member_id],
    )?
    .iter()
    .map(grant)
    .collect()
}

/// Every live grant of an app.
pub fn grants_of_client(c: &mut dyn Conn, client_id: &str) -> Result<Vec<Grant>> {
    c.query(
        &format!("SELECT {GRANT_COLUMNS} FROM grants WHERE client_id = $1 AND revoked_at IS NULL ORDER BY id"),
        params![client_id],
    )?
    .iter()
    .map(grant)
    .collect()
}

/// Stores a session.
pub fn insert_session(c: &mut dyn Conn, s: &Session, now: UnixTime) -> Result<()> {
    c.execute(
        "INSERT INTO sessions (hash, member_id, csrf, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
        params![&s.hash, &s.member_id, &s.csrf, s.auth_time, now, s.expires_at],
    )?;
    Ok(())
}

/// A session that has not expired.
pub fn session(c: &mut dyn Conn, hash: &SecretHash, now: UnixTime) -> Result<Option<Session>> {
    c.query_opt(
        "SELECT hash, member_id, csrf, auth_time, expires_at FROM sessions WHERE hash = $1 AND expires_at > $2",
        params![hash, now],
    )?
    .map(|r| {
        Ok(Session {
            hash: r.hash(0)?,
            member_id: r.text(1)?.into(),
            csrf: r.text(2)?,
            auth_time: r.int(3)?,
            expires_at: r.int(4)?,
        })
    })
    .transpose()
}

/// Ends a session.
pub fn delete_session(c: &mut dyn Conn, hash: &SecretHash) -> Result<()> {
    c.execute("DELETE FROM sessions WHERE hash = $1", params![hash])?;
    Ok(())
}

/// Counts a failure under `key` in a sliding window; returns the count in the current window.
pub fn count_failure(c: &mut dyn Conn, key: &str, now: UnixTime, window: i64) -> Result<i64> {
    c.execute(
        "INSERT INTO sign_in_failures (key, failures, window_start) VALUES ($1, 1, $2) \
         ON CONFLICT (key) DO UPDATE SET \
           failures = CASE WHEN sign_in_failures.window_start <= $3 THEN 1 ELSE sign_in_failures.failures + 1 END, \
           window_start = CASE WHEN sign_in_failures.window_start <= $3 THEN $2 ELSE sign_in_failures.window_start END",
        params![key, now, now - window],
    )?;
    failures(c, key, now, window)
}

/// Failures counted under `key` in the current window.
pub fn failures(c: &mut dyn Conn, key: &str, now: UnixTime, window: i64) -> Result<i64> {
    Ok(c.query_opt(
        "SELECT failures FROM sign_in_failures WHERE key = $1 AND window_start > $2",
        params![key, now - window],
    )?
    .map(|r| r.int(0))
    .transpose()?
    .unwrap_or(0))
}

/// Forgets the failures under `key` (after a success).
pub fn clear_failures(c: &mut dyn Conn, key: &str) -> Result<()> {
    c.execute("DELETE FROM sign_in_failures WHERE key = $1", params![key])?;
    Ok(())
}

/// Attempts counted under `key` by a throttle with growing delays, and when the last one was
/// made. These keys keep the time of the last attempt in `window_start`.
pub fn attempts(c: &mut dyn Conn, key: &str) -> Result<Option<(i64, UnixTime)>> {
    c.query_opt(
        "SELECT failures, window_start FROM sign_in_failures WHERE key = $1",
        params![key],
    )?
    .map(|r| Ok((r.int(0)?, r.int(1)?)))
    .transpose()
}

/// Takes one attempt under `key`, setting its count to `count` and its last attempt to `now`,
/// only if the counter is still what the caller saw (`seen`, from [`attempts`]): a
/// compare-and-set, so concurrent attempts (several nodes, one row) each see the count the
/// previous one left. True when the attempt was taken.
pub fn take_attempt(
    c: &mut dyn Conn,
    key: &str,
    seen: Option<(i64, UnixTime)>,
    count: i64,
    now: UnixTime,
) -> Result<bool> {
    let changed = match seen {
        None => c.execute(
            "INSERT INTO sign_in_failures (key, failures, window_start) VALUES ($1, $2, $3) \
             ON CONFLICT (key) DO NOTHING",
            params![key, count, now],
        )?,
        Some((n, last)) => c.execute(
            "UPDATE sign_in_failures SET failures = $1, window_start = $2 \
             WHERE key = $3 AND failures = $4 AND window_start = $5",
            params![count, now, key, n, last],
        )?,
    };
    Ok(changed == 1)
}

/// Gives back one attempt taken under `key` (it succeeded, so it was no guess).
pub fn give_back_attempt(c: &mut dyn Conn, key: &str) -> Result<()> {
    c.execute(
        "UPDATE sign_in_failures SET failures = failures - 1 WHERE key = $1 AND failures > 0",
        params![key],
    )?;
    Ok(())
}

/// Live tokens (not revoked, not expired) created before `before`, optionally of one app, oldest
/// first: seed 003 step 8, verifying a migration by the timestamps of stored tokens.
pub fn live_issued_before(
    c: &mut dyn Conn,
    before: UnixTime,
    now: UnixTime,
    client_id: Option<&str>,
) -> Result<Vec<TokenRecord>> {
    let rows = match client_id {
        Some(id) => c.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE client_id = $1 AND created_at < $2 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > $3 ORDER BY created_at"),
            params![id, before, now],
        )?,
        None => c.query(
            &format!("SELECT {TOKEN_COLUMNS} FROM tokens WHERE created_at < $1 AND revoked_at IS NULL AND rotated_at IS NULL AND expires_at > $2 ORDER BY client_id, created_at"),
            params![before, now],
        )?,
    };
    rows.iter().map(token).collect()
}

/// Every live grant (for migration reports).
pub fn live_grants(c: &mut dyn Conn) -> Result<Vec<Grant>> {
    c.query(
        &format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE revoked_at IS NULL ORDER BY client_id, id"
        ),
        params![],
    )?
    .iter()
    .map(grant)
    .collect()
}

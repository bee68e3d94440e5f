//! Browser sessions and sign-in: a random cookie (only its keyed hash is stored), a per-session
//! CSRF token, and the sign-in throttle that is taken before any password is checked.

use std::net::IpAddr;

use scopegate_core::model::{Member, Session};
use scopegate_core::Secret;
use scopegate_store::{members, tokens, Conn};

use crate::error::{Error, Result};
use crate::throttle::{self, Schedule};
use crate::Service;

/// How long a sign-in lasts.
pub const SESSION_TTL: i64 = 12 * 3600;

/// A live session and its member.
#[derive(Debug, Clone)]
pub struct Current {
    pub member: Member,
    pub session: Session,
}

/// The current session named by the raw cookie value, if it is live. A store failure is an
/// error, never "signed out" (fail closed).
pub async fn current(svc: &Service, raw: &str) -> Result<Option<Current>> {
    if raw.is_empty() || raw.len() > 200 {
        return Ok(None);
    }
    let hash = svc.keys.token_hash.hash_str(raw);
    let now = svc.now();
    Ok(svc
        .store
        .read(move |c| {
            let Some(s) = tokens::session(c, &hash, now)? else {
                return Ok(None);
            };
            // A deprovisioned member's sessions were ended with the flag; refusing here too keeps
            // a session that raced the deprovision from outliving it.
            Ok(members::by_id(c, &s.member_id)?
                .filter(|m| m.active)
                .map(|member| Current { member, session: s }))
        })
        .await?)
}

/// Starts a session for `member_id`; returns the raw cookie value to set.
pub async fn start(svc: &Service, member_id: &str) -> Result<Secret> {
    let raw = Secret::generate(svc.entropy.as_ref(), "");
    let csrf = Secret::generate(svc.entropy.as_ref(), "");
    let now = svc.now();
    let s = Session {
        hash: svc.keys.token_hash.hash(&raw),
        member_id: member_id.into(),
        csrf: csrf.expose().to_string(),
        auth_time: now,
        expires_at: now + SESSION_TTL,
    };
    svc.store
        .write(move |c| {
            // Checked in the transaction that starts the session: a deprovision that commits
            // first is seen, one that commits after ends this session.
            match members::by_id(c, &s.member_id)? {
                Some(m) if m.active => tokens::insert_session(c, &s, now).map(|()| true),
                _ => Ok(false),
            }
        })
        .await?
        .then_some(raw)
        .ok_or_else(|| Error::Forbidden("this member is deprovisioned".into()))
}

/// Ends the session named by the raw cookie value. A sign-out that did not reach the store
/// says so: the session would stay valid for whoever holds a copy of the cookie.
pub async fn end(svc: &Service, raw: &str) -> Result<()> {
    let hash = svc.keys.token_hash.hash_str(raw);
    svc.store
        .write(move |c| tokens::delete_session(c, &hash))
        .await?;
    Ok(())
}

/// What a member typed on the sign-in form, and where from.
#[derive(Debug)]
pub struct Credentials {
    pub email: String,
    pub password: Secret,
    /// The address the attempt came from (the throttle's key).
    pub source: Option<IpAddr>,
}

/// Why a sign-in did not start a session.
#[derive(Debug, thiserror::Error)]
pub enum SignInError {
    /// Too many failures: try again after `wait` seconds (nothing was checked).
    #[error("too many failed attempts")]
    Throttled { wait: i64 },
    /// The email and password do not match (the same for an unknown email).
    #[error("the email and password do not match")]
    Mismatch,
    /// The throttle, the member store or the session store cannot be used: sign-in fails closed.
    #[error(transparent)]
    Failed(#[from] Error),
}

/// A started session.
#[derive(Debug)]
pub struct SignedIn {
    pub member: Member,
    /// The raw session cookie value.
    pub cookie: Secret,
}

/// Signs a member in: takes an attempt under the throttle, checks the password (even for an
/// unknown email, so the answer takes the same time), forgets this account's failures from this
/// address on success, and starts the session.
pub async fn sign_in(svc: &Service, creds: Credentials) -> Result<SignedIn, SignInError> {
    let email = creds.email.trim().to_lowercase();
    let now = svc.now();
    let counters = sign_in_counters(&email, creds.source);
    let reserving = counters.clone();
    if let Err(wait) = svc
        .store
        .write(move |c| reserve(c, &reserving, now))
        .await
        .map_err(Error::from)?
    {
        return Err(SignInError::Throttled { wait });
    }
    let found = svc
        .store
        .read(move |c| match members::by_email(c, &email)? {
            Some(m) => {
                let hash = members::password_hash(c, &m.id)?;
                Ok(Some((m, hash)))
            }
            None => Ok(None),
        })
        .await
        .map_err(Error::from)?;
    // A member without a password cannot sign in: the dummy hash still costs the same time.
    let stored = match &found {
        Some((_, Some(h))) => h.clone(),
        _ => crate::password::dummy_hash().to_string(),
    };
    let password = creds.password;
    let verified =
        tokio::task::spawn_blocking(move || crate::password::verify(password.expose(), &stored))
            .await
            .map_err(|e| Error::Internal(format!("password check: {e}")))?;
    let member = match found {
        Some((m, Some(_))) if verified && m.active => m,
        // The attempt was counted as a failure when it was reserved.
        _ => return Err(SignInError::Mismatch),
    };
    // A success was no guess: this account's failures from this address are forgotten, and the
    // address gets its attempt back (its other failures stay: they may be guesses at others).
    let [(pair, _), (addr, _)] = counters;
    svc.store
        .write(move |c| {
            tokens::clear_failures(c, &pair)?;
            tokens::give_back_attempt(c, &addr)
        })
        .await
        .map_err(Error::from)?;
    let cookie = start(svc, &member.id).await?;
    Ok(SignedIn { member, cookie })
}

/// The counters a sign-in attempt is made under, in the order they are taken (always the same
/// order, so concurrent transactions on PostgreSQL lock their rows alike): this account from
/// this address, then this address. There is deliberately no counter of the account alone: an
/// attacker could then lock the member out of every address; a member signing in from an
/// address with no failures is never delayed.
fn sign_in_counters(email: &str, addr: Option<IpAddr>) -> [(String, Schedule); 2] {
    let source = addr.map_or_else(|| "unknown".to_string(), throttle::source);
    // A digest of the account keeps every key small whatever was typed as the email (the
    // counters are stored rows).
    use sha2::Digest;
    let digest = sha2::Sha256::digest(email.to_lowercase().as_bytes());
    let account: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    [
        (
            format!("sign-in|pair|{account}|{source}"),
            throttle::SIGN_IN_PER_ACCOUNT_AND_ADDRESS,
        ),
        (
            format!("sign-in|addr|{source}"),
            throttle::SIGN_IN_PER_ADDRESS,
        ),
    ]
}

/// Compare-and-set rounds before a contended counter answers "wait a second".
const CAS_ROUNDS: usize = 32;

/// Takes one attempt under every counter before the password is checked, so parallel guesses
/// cannot all be checked before the first failure is counted: each attempt counts as a failure
/// until it succeeds. `Ok(Err(wait))` when a counter's delay has not passed yet (nothing is
/// taken then).
fn reserve(
    c: &mut dyn Conn,
    counters: &[(String, Schedule)],
    now: i64,
) -> scopegate_store::Result<std::result::Result<(), i64>> {
    // Every delay is looked at before anything is taken: an attempt refused by the address's
    // delay writes nothing (otherwise each refused guess at a new account would leave a row).
    for (key, schedule) in counters {
        if let Some((n, last)) = tokens::attempts(c, key)? {
            if let Some(w) = schedule.wait(n, last, now) {
                return Ok(Err(w));
            }
        }
    }
    for (i, (key, schedule)) in counters.iter().enumerate() {
        if let Err(wait) = take(c, key, schedule, now)? {
            for (k, _) in &counters[..i] {
                tokens::give_back_attempt(c, k)?;
            }
            return Ok(Err(wait));
        }
    }
    Ok(Ok(()))
}

/// Takes one attempt under one counter with compare-and-set; `Ok(Err(wait))` when its delay
/// has not passed or the counter stayed contended.
fn take(
    c: &mut dyn Conn,
    key: &str,
    schedule: &Schedule,
    now: i64,
) -> scopegate_store::Result<std::result::Result<(), i64>> {
    for _ in 0..CAS_ROUNDS {
        let seen = tokens::attempts(c, key)?;
        let (n, last) = seen.unwrap_or((0, now));
        if let Some(w) = schedule.wait(n, last, now) {
            return Ok(Err(w));
        }
        if tokens::take_attempt(c, key, seen, schedule.next_count(n, last, now), now)? {
            return Ok(Ok(()));
        }
    }
    Ok(Err(1))
}

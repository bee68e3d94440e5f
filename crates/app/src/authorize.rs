//! The authorization flow's reads and writes: the client a request names, the consent decision
//! from the member's grant, and issuing the code (with the consent when the member gave it).

use scopegate_core::model::{
    App, Capability, ClientId, CodeRecord, Grant, Member, MemberId, Session, UnixTime,
};
use scopegate_core::oauth::{consent_needed, Consent, ResolvedScopes};
use scopegate_core::oidc_request::Prompt;
use scopegate_core::{ScopeSet, Secret, SecretHash};
use scopegate_store::pending::{self, PendingRecord};
use scopegate_store::{apps, tokens, Conn, StoreError};

use crate::error::{Error, Result};
use crate::Service;

mod validate;
pub use validate::{
    trusted_client, validate, ErrorRedirect, RedirectError, Refusal, RequestParams, Trusted,
    Untrusted,
};

/// How long a request may wait for the member to sign in and answer (seconds).
pub const PENDING_TTL: i64 = 10 * 60;

/// An authorization request, validated once where it entered. Sign-in and consent carry it by
/// its pending id ([`begin`], [`pending`]), never as the parameters the client sent.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    pub app: App,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub resolved: ResolvedScopes,
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub prompt: Prompt,
    /// OIDC max_age: the longest time since sign-in the member may have (seconds).
    pub max_age: Option<i64>,
    /// OIDC login_hint: prefills the sign-in form.
    pub login_hint: Option<String>,
    /// The only End-User this request may be answered for: the `sub` of a verified
    /// `id_token_hint`, or an ID token `sub` value in the `claims` parameter (OIDC Core 3.1.2.1,
    /// 5.5.1). Pairwise, so it is compared with the member's `sub` for this app. (The other rule
    /// a `claims` request carries, an essential `acr`, refuses the request at validation.)
    pub required_sub: Option<String>,
    pub native: bool,
    /// The request's parameters as received: with the session and the grant it seeds the code
    /// of a request answered at once, without a pending id.
    pub query: String,
}

/// A pending request as stored: the validated request without the app record, which is read
/// again when the request is resumed (an app deleted meanwhile ends the request).
#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    client_id: String,
    redirect_uri: String,
    state: Option<String>,
    scopes: String,
    mapped: Vec<(String, Vec<String>)>,
    code_challenge: Option<String>,
    nonce: Option<String>,
    prompt_none: bool,
    prompt_consent: bool,
    login_hint: Option<String>,
    required_sub: Option<String>,
    native: bool,
    query: String,
}

/// The browser's handle on a pending request: 256 random bits, stored only as its keyed hash.
#[derive(Debug, Clone)]
pub struct RequestId(Secret);

impl RequestId {
    /// The id as it goes into a URL or a form (base64url, prefixed "PR").
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The id as the browser sent it back. Anything else than an id's shape is no id at all.
    pub fn parse(raw: &str) -> Option<RequestId> {
        let body = raw.strip_prefix("PR")?;
        (body.len() == 43
            && body
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| RequestId(Secret::new(raw)))
    }

    fn hash(&self, svc: &Service) -> SecretHash {
        svc.keys.token_hash.hash(&self.0)
    }
}

/// Why a pending request cannot be resumed.
#[derive(Debug, thiserror::Error)]
pub enum PendingError {
    /// Unknown, expired, cancelled, or its app is gone: the member starts again from the app.
    #[error("this sign-in request expired")]
    Expired,
    #[error(transparent)]
    Failed(#[from] Error),
}

/// Stores a validated request for the member to answer after signing in or on the consent
/// screen; returns the id the browser carries. The stored request is the one answered after
/// sign-in: `prompt=login` and `max_age` are honoured by reaching this point with a fresh
/// enough session or by the sign-in that follows, so they are dropped (kept, they would send
/// the member back to sign in whenever the round trip crossed a second boundary, `max_age=0`).
pub async fn begin(
    svc: &Service,
    req: &AuthorizeRequest,
    addr: Option<std::net::IpAddr>,
) -> std::result::Result<RequestId, BeginError> {
    if let Some(wait) = svc.auth_failures.pending_request(addr, svc.now()) {
        return Err(BeginError::Throttled(wait));
    }
    let id = RequestId(Secret::generate(svc.entropy.as_ref(), "PR"));
    let stored = Stored {
        client_id: req.app.client_id.to_string(),
        redirect_uri: req.redirect_uri.clone(),
        state: req.state.clone(),
        scopes: req.resolved.scopes.to_space_separated(),
        mapped: req.resolved.mapped.clone(),
        code_challenge: req.code_challenge.clone(),
        nonce: req.nonce.clone(),
        prompt_none: req.prompt.none,
        prompt_consent: req.prompt.consent,
        login_hint: req.login_hint.clone(),
        required_sub: req.required_sub.clone(),
        native: req.native,
        query: req.query.clone(),
    };
    let now = svc.now();
    let record = PendingRecord {
        hash: id.hash(svc),
        request: serde_json::to_string(&stored)
            .map_err(|e| Error::Internal(format!("pending request: {e}")))?,
        created_at: now,
        expires_at: now + PENDING_TTL,
    };
    svc.store
        .write(move |c| pending::insert(c, &record))
        .await
        .map_err(|e| BeginError::Failed(e.into()))?;
    Ok(id)
}

/// Why a request could not be stored to wait for sign-in or consent.
#[derive(Debug, thiserror::Error)]
pub enum BeginError {
    /// This address left too many requests waiting in this window: try again after `.0` seconds.
    #[error("too many authorization requests from this address")]
    Throttled(i64),
    #[error(transparent)]
    Failed(#[from] Error),
}

/// The pending request `id` names, as [`begin`] stored it, with its app read again. Unknown,
/// expired and cancelled ids are all [`PendingError::Expired`]: never a default request.
pub async fn pending(
    svc: &Service,
    id: &RequestId,
) -> std::result::Result<AuthorizeRequest, PendingError> {
    let (hash, now) = (id.hash(svc), svc.now());
    let found = svc
        .store
        .read(move |c| {
            let Some(record) = pending::get(c, &hash, now)? else {
                return Ok(None);
            };
            // A row this server wrote and cannot read back is a store failure, like any
            // stored value it does not recognise: never an expired (or a default) request.
            let stored: Stored = serde_json::from_str(&record.request)
                .map_err(|e| StoreError::Backend(format!("unreadable pending request: {e}")))?;
            let app = apps::get(c, &stored.client_id)?;
            let registered = apps::redirect_uris(c, &stored.client_id)?;
            Ok(Some((stored, app, registered)))
        })
        .await
        .map_err(Error::from)?;
    let Some((stored, Some(app), registered)) = found else {
        return Err(PendingError::Expired);
    };
    // What was checked when the request arrived is checked again as it resumes: an app that
    // lost this redirect URL (or the native flow) meanwhile gets no code sent there.
    if !validate::redirect_registered(&stored.redirect_uri, &registered, stored.native)
        || (stored.native && !app.has(Capability::NativePkce))
    {
        return Err(PendingError::Expired);
    }
    let scopes = ScopeSet::parse(&stored.scopes)
        .map_err(|e| Error::Internal(format!("pending request scopes: {e}")))?;
    Ok(AuthorizeRequest {
        app,
        redirect_uri: stored.redirect_uri,
        state: stored.state,
        resolved: ResolvedScopes {
            scopes,
            mapped: stored.mapped,
        },
        code_challenge: stored.code_challenge,
        nonce: stored.nonce,
        prompt: Prompt {
            none: stored.prompt_none,
            login: false,
            consent: stored.prompt_consent,
        },
        max_age: None,
        login_hint: stored.login_hint,
        required_sub: stored.required_sub,
        native: stored.native,
        query: stored.query,
    })
}

/// Ends a pending request (the member cancelled): its id is refused from now on.
pub async fn forget(svc: &Service, id: &RequestId) -> Result<()> {
    let hash = id.hash(svc);
    svc.store.write(move |c| pending::delete(c, &hash)).await?;
    Ok(())
}

/// A registered client as the authorization endpoint checks it.
#[derive(Debug, Clone)]
pub struct Client {
    pub app: App,
    /// Its registered redirect URLs.
    pub redirect_uris: Vec<String>,
    /// The programs approved for it (they decide its permissions).
    pub approved_programs: Vec<String>,
}

/// The client named by `client_id`, or `None` when no app has it.
pub async fn client(svc: &Service, client_id: &str) -> Result<Option<Client>> {
    let id = client_id.to_string();
    Ok(svc
        .store
        .read(move |c| {
            let Some(app) = apps::get(c, &id)? else {
                return Ok(None);
            };
            Ok(Some(Client {
                app,
                redirect_uris: apps::redirect_uris(c, &id)?,
                approved_programs: apps::approved_programs(c, &id)?,
            }))
        })
        .await?)
}

/// Whether `member` must see the consent screen for `scopes` of `client_id` (from the live
/// grant as stored; nothing is written).
pub async fn consent_decision(
    svc: &Service,
    client_id: &str,
    member_id: &str,
    scopes: &ScopeSet,
) -> Result<Consent> {
    let (client_id, member_id, now) = (client_id.to_string(), member_id.to_string(), svc.now());
    let found = svc
        .store
        .read(move |c| {
            let Some(g) = tokens::live_grant(c, &client_id, &member_id)? else {
                return Ok(None);
            };
            let live = tokens::grant_has_live_access_token(c, g.id, now)?;
            Ok(Some((g, live)))
        })
        .await?;
    let granted = found.as_ref().map(|(g, _)| g.scopes.clone());
    let live = found.as_ref().is_some_and(|(_, l)| *l);
    Ok(consent_needed(&svc.catalog, granted.as_ref(), live, scopes))
}

/// How a code is being issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The member pressed Allow (a POST with the session's CSRF token): records the consent,
    /// creating the grant or replacing its scopes (LinkedIn 1.6: a different scope set
    /// invalidates the grant's earlier tokens).
    Consented,
    /// The screen was skipped because the live grant covers the request: the grant is used as
    /// stored and nothing but the code is written, so a request any site can trigger can
    /// neither narrow a grant nor revoke its tokens.
    Covered,
}

/// A validated authorization request being answered with a code.
#[derive(Debug, Clone)]
pub struct IssueCode<'a> {
    pub client_id: &'a str,
    pub member: &'a Member,
    pub session: &'a Session,
    pub redirect_uri: &'a str,
    pub scopes: &'a ScopeSet,
    pub code_challenge: Option<&'a str>,
    pub nonce: Option<&'a str>,
    pub native: bool,
    /// Which request is answered: with the session and the grant it derives the code, so one
    /// request answered twice gets one code.
    pub request: Seed<'a>,
    /// How long the code lives (seconds).
    pub ttl: i64,
    pub answer: Answer,
}

/// What identifies the request a code answers.
#[derive(Debug, Clone, Copy)]
pub enum Seed<'a> {
    /// A request answered as it arrived (the grant covered it): its parameters as received. The
    /// same request sent again after its code was used is a new request, with a new code.
    Query(&'a str),
    /// A pending request, answered on the consent screen or after sign-in. Its id answers once:
    /// answered again while the code is unused, the same code; after, [`Issued::Answered`].
    Pending(&'a RequestId),
}

/// What issuing found.
#[derive(Debug)]
pub enum Issued {
    Code(Secret),
    /// `Covered`, but the grant no longer covers the request (revoked or changed meanwhile).
    NotCovered,
    /// The pending request's code was issued and used (or expired) already: no second code.
    Answered,
}

/// Issues a code, with the consent when the member gave it (one write: both or neither).
///
/// One authorization request answered twice in one session for one grant (a double-clicked
/// Allow, two tabs) gets one code: the code is derived from the session, the request and the
/// grant, so the second answer finds the first one's code unused and sends the same redirect
/// (RFC 9700 4.2: no second code for one request). A request repeated after its code was used
/// gets a fresh random code, and so does one answered for a new grant (after Remove access the
/// old grant's code is dead, and must not be handed back).
pub async fn issue_code(svc: &Service, input: IssueCode<'_>) -> Result<Issued> {
    let fresh = Secret::generate(svc.entropy.as_ref(), "AQ");
    let hasher = svc.keys.token_hash.clone();
    let (request, once) = match input.request {
        Seed::Query(q) => (q.to_string(), false),
        Seed::Pending(id) => (format!("pending|{}", id.hash(svc).as_str()), true),
    };
    let seed = format!(
        "consent-code|{}|{}|{}",
        input.session.hash.as_str(),
        if input.native { "native" } else { "web" },
        request
    );
    let requested = input.scopes.clone();
    let now = svc.now();
    let answer = input.answer;
    let (client_id, member_id) = (ClientId::from(input.client_id), input.member.id.clone());
    let (redirect_uri, native) = (input.redirect_uri.to_string(), input.native);
    let (code_challenge, nonce) = (
        input.code_challenge.map(str::to_string),
        input.nonce.map(str::to_string),
    );
    let (auth_time, expires_at) = (input.session.auth_time, now + input.ttl);
    let issued = svc
        .store
        .write(move |c| {
            let Some(grant) = grant_for(c, answer, &client_id, &member_id, &requested, now)? else {
                return Ok(Issued::NotCovered);
            };
            let derived = Secret::new(format!(
                "AQ{}",
                hasher.hash_str(&format!("{seed}|{}", grant.id)).as_str()
            ));
            let code = match tokens::code_state(c, &hasher.hash(&derived), now)? {
                // Answered already and not yet used: the same code again, nothing new stored.
                Some(true) => return Ok(Issued::Code(derived)),
                // RFC 9700 4.2: one pending request, one code.
                Some(false) if once => return Ok(Issued::Answered),
                Some(false) => fresh.clone(),
                None => derived,
            };
            tokens::insert_code(
                c,
                &CodeRecord {
                    hash: hasher.hash(&code),
                    client_id: client_id.clone(),
                    grant_id: grant.id,
                    member_id: member_id.clone(),
                    redirect_uri: redirect_uri.clone(),
                    scopes: requested.clone(),
                    code_challenge: code_challenge.clone(),
                    nonce: nonce.clone(),
                    auth_time,
                    created_at: now,
                    expires_at,
                    consumed_at: None,
                    native,
                },
            )?;
            Ok(Issued::Code(code))
        })
        .await?;
    if matches!(issued, Issued::Code(_)) {
        svc.metrics
            .codes_issued
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    Ok(issued)
}

/// The grant a code is issued under: the consent just given, or the live grant when it still
/// covers the request (`None` when it does not).
fn grant_for(
    c: &mut dyn Conn,
    answer: Answer,
    client_id: &ClientId,
    member_id: &MemberId,
    requested: &ScopeSet,
    now: UnixTime,
) -> scopegate_store::Result<Option<Grant>> {
    match answer {
        Answer::Consented => Ok(Some(tokens::consent(
            c, client_id, member_id, requested, now,
        )?)),
        Answer::Covered => {
            let Some(g) = tokens::live_grant(c, client_id, member_id)? else {
                return Ok(None);
            };
            if !requested.is_subset(&g.scopes)
                || !tokens::grant_has_live_access_token(c, g.id, now)?
            {
                return Ok(None);
            }
            Ok(Some(g))
        }
    }
}

//! The authorization flow's reads and writes: the client a request names, the consent decision
//! from the member's grant, and issuing the code (with the consent when the member gave it).

use scopegate_core::model::{
    App, ClientId, CodeRecord, Grant, Member, MemberId, Session, UnixTime,
};
use scopegate_core::oauth::{consent_needed, Consent};
use scopegate_core::{ScopeSet, Secret};
use scopegate_store::{apps, tokens, Conn};

use crate::error::Result;
use crate::Service;

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
    /// The request as received: with the session and the grant it derives the code, so one
    /// request answered twice gets one code.
    pub request: &'a str,
    /// How long the code lives (seconds).
    pub ttl: i64,
    pub answer: Answer,
}

/// What issuing found.
#[derive(Debug)]
pub enum Issued {
    Code(Secret),
    /// `Covered`, but the grant no longer covers the request (revoked or changed meanwhile).
    NotCovered,
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
    let seed = format!(
        "consent-code|{}|{}|{}",
        input.session.hash.as_str(),
        if input.native { "native" } else { "web" },
        input.request
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

//! Enforcement: one evaluation of a call against a route table (the sandbox API, the decision
//! API and forward-auth all use it). It chooses the route, reads the target strictly, loads the
//! token, its app's approved programs and its member's roles in one read, runs the core's
//! decision and spends the route's daily quotas.

use scopegate_core::enforce::{
    body_field, decide, parse_target, query_field, Allowed, Denial, Facts, Target, TargetProblem,
};
use scopegate_core::model::{RoleAssignment, TokenKind, TokenRecord};
use scopegate_core::routes::{Route, RouteTable, TargetKind, TargetSource};
use scopegate_store::{apps, members, sandbox, tokens};

use crate::signing::pairwise_sub;
use crate::state::Service;

/// A call to evaluate, as the HTTP layer read it.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    /// The presented access token; `None` when the request carries none the caller could read
    /// (the caller keeps its own reason, answered after the route is known to exist).
    pub token: Option<&'a str>,
    pub body: Option<&'a [u8]>,
}

/// An evaluated call.
pub struct Verdict {
    pub route: Route,
    pub token: Option<TokenRecord>,
    pub result: Result<Allowed, Denial>,
    /// `urn:li:person:{sub}` of the member, as the token's app sees them.
    pub person: Option<String>,
    pub target: Option<Target>,
    pub params: Vec<(String, String)>,
}

/// Why a call could not be evaluated at all (a denial is a [`Verdict`], not this).
#[derive(Debug, thiserror::Error)]
pub enum EnforceError {
    /// No route of the table answers this method and path.
    #[error("no route for {method} {path}")]
    NoRoute { method: String, path: String },
    /// The route exists and the call presented no readable token.
    #[error("no access token")]
    NoToken,
    /// The store could not answer: never an allow, a refusal or a throttle.
    #[error(transparent)]
    Store(#[from] crate::Error),
}

impl From<scopegate_store::StoreError> for EnforceError {
    fn from(e: scopegate_store::StoreError) -> Self {
        EnforceError::Store(e.into())
    }
}

/// The target a route names in this request: `Ok(None)` when it names none, or why it cannot be
/// read (repeated, not one string, not canonical).
fn read_target(
    route: &Route,
    params: &[(String, String)],
    query: Option<&str>,
    body: Option<&[u8]>,
) -> Result<Option<Target>, TargetProblem> {
    let (value, bare_id) = match &route.target {
        None => return Ok(None),
        Some(TargetSource::Path(n)) => (
            params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
            true,
        ),
        Some(TargetSource::Query(n)) => (query_field(query, n)?, false),
        Some(TargetSource::Body(n)) => match body {
            None => (None, false),
            Some(b) => (body_field(b, n)?, false),
        },
    };
    value
        .map(|v| parse_target(&v, route.kind, bare_id))
        .transpose()
}

type Chosen = (
    Route,
    Vec<(String, String)>,
    Result<Option<Target>, TargetProblem>,
);

/// The route a call takes and its target. Every candidate reads its own target; one that cannot
/// be read refuses the call (never a fallback to a sibling route or to "no target"). Then the
/// route is the one candidate acting on the kind named; with no target named, the one acting on
/// none.
fn choose(table: &RouteTable, call: &Call<'_>) -> Result<Chosen, EnforceError> {
    let no_route = || EnforceError::NoRoute {
        method: call.method.to_string(),
        path: call.path.to_string(),
    };
    let candidates = table.candidates(call.method, call.path);
    if candidates.is_empty() {
        return Err(no_route());
    }
    let readings: Vec<Result<Option<Target>, TargetProblem>> = candidates
        .iter()
        .map(|(route, params)| read_target(route, params, call.query, call.body))
        .collect();
    let named = readings.iter().any(|r| matches!(r, Ok(Some(_))));
    let matching: Vec<usize> = (0..candidates.len())
        .filter(|&i| match (&readings[i], candidates[i].0.kind) {
            (Ok(Some(t)), k) => named && t.kind() == k,
            (Ok(None), TargetKind::None) => !named,
            _ => false,
        })
        .collect();
    let problem = readings.iter().find_map(|r| r.as_ref().err().copied());
    let (chosen, target) = match (problem, matching.as_slice()) {
        (Some(p), _) => (0, Err(p)),
        (None, [i]) => (*i, readings[*i].clone()),
        (None, []) if named => (0, Err(TargetProblem::WrongKind)),
        (None, []) => (0, Err(TargetProblem::Missing)),
        (None, _) => (0, Err(TargetProblem::Ambiguous)),
    };
    let (route, params) = candidates
        .get(chosen)
        .map(|(r, p)| ((*r).clone(), p.clone()))
        .ok_or_else(no_route)?;
    Ok((route, params, target))
}

/// Evaluates a call against the deployment's route table (see [`evaluate_on`]).
pub async fn evaluate(state: &Service, call: Call<'_>) -> Result<Verdict, EnforceError> {
    let routes = state.routes.clone();
    evaluate_on(state, &routes, call).await
}

/// Evaluates a call against `table`: chooses the route, loads the token's facts, decides, and
/// counts the quota of an allowed call.
pub async fn evaluate_on(
    state: &Service,
    table: &RouteTable,
    call: Call<'_>,
) -> Result<Verdict, EnforceError> {
    let (route, params, target) = choose(table, &call)?;
    let token = call.token.ok_or(EnforceError::NoToken)?;
    let loaded = load(state, token).await?;
    let mut v = verdict(state, route, loaded, target, params);
    if let (Ok(_), Some(tok)) = (&v.result, &v.token) {
        if !spend_quota(state, &v.route, tok).await? {
            v.result = Err(Denial::QuotaExceeded);
        }
    }
    Ok(v)
}

type Loaded = (Option<TokenRecord>, Vec<String>, Vec<RoleAssignment>);

/// Decides a route on what [`load`] read.
fn verdict(
    state: &Service,
    route: Route,
    (t, approved, roles): Loaded,
    target: Result<Option<Target>, TargetProblem>,
    params: Vec<(String, String)>,
) -> Verdict {
    let person = t.as_ref().and_then(|t| {
        t.member_id
            .as_ref()
            .map(|m| pairwise_sub(state, &t.client_id, m))
    });
    let now = state.now();
    let result = decide(
        &state.catalog,
        &route,
        &Facts {
            token: t.as_ref(),
            approved: &approved,
            roles: &roles,
            person: person.as_deref(),
            target: target.as_ref().map(Option::as_ref).map_err(|p| *p),
            now,
            today: crate::clock::date_of(now),
        },
    );
    Verdict {
        route,
        token: t,
        result,
        person: person.map(|p| format!("urn:li:person:{p}")),
        target: target.ok().flatten(),
        params,
    }
}

/// The access token, its app's approved programs and its member's roles, in one read.
async fn load(state: &Service, token: &str) -> Result<Loaded, scopegate_store::StoreError> {
    let hash = state.keys.token_hash.hash_str(token);
    state
        .store
        .read(move |c| {
            let Some(t) = tokens::get(c, &hash)?.filter(|t| t.kind == TokenKind::Access) else {
                return Ok((None, vec![], vec![]));
            };
            let approved = apps::approved_programs(c, &t.client_id)?;
            let roles = match &t.member_id {
                Some(m) => members::roles_of(c, m)?,
                None => vec![],
            };
            Ok((Some(t), approved, roles))
        })
        .await
}

/// Counts the call against the route's daily quotas (reset at midnight UTC, as LinkedIn's are).
/// `Ok(false)`: over a quota. A store error is the caller's 503, never a throttle or an allow.
async fn spend_quota(
    state: &Service,
    route: &Route,
    t: &TokenRecord,
) -> Result<bool, scopegate_store::StoreError> {
    let q = route.quota;
    if q.app_daily.is_none() && q.member_daily.is_none() {
        return Ok(true);
    }
    let day = state.now().div_euclid(86_400);
    let app_key = format!("app|{}|{}", t.client_id, route.id);
    let member_key = t
        .member_id
        .as_ref()
        .map(|m| format!("member|{}|{m}|{}", t.client_id, route.id));
    let counts = state
        .store
        .write(move |c| {
            let a = if q.app_daily.is_some() {
                Some(sandbox::count_call(c, &app_key, day)?)
            } else {
                None
            };
            let m = match (&member_key, q.member_daily) {
                (Some(k), Some(_)) => Some(sandbox::count_call(c, k, day)?),
                _ => None,
            };
            Ok((a, m))
        })
        .await?;
    let over = |count: Option<i64>, limit: Option<i64>| matches!((count, limit), (Some(c), Some(l)) if c > l);
    Ok(!(over(counts.0, q.app_daily) || over(counts.1, q.member_daily)))
}

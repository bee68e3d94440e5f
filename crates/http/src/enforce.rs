//! Enforcement: one evaluation of a request against the route table, used by the sandbox API,
//! the decision API (`POST /authz/v1/check`) and forward-auth for gateways.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_core::enforce::{
    body_field, decide, parse_target, query_field, Allowed, Denial, Facts, Target, TargetProblem,
};
use scopegate_core::model::{RoleAssignment, TokenKind, TokenRecord};
use scopegate_core::routes::{Route, RouteTable, TargetKind, TargetSource};
use scopegate_store::{apps, members, sandbox, tokens};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::oidc::{bearer, pairwise_sub};
use crate::ops::keys::KeyKind;
use crate::state::{Service, ServiceState};
use crate::wire::ApiError;
use scopegate_app::Gateway;

/// A request to evaluate.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub token: Result<String, ApiError>,
    pub body: Option<&'a [u8]>,
    /// `LinkedIn-Version` (versioned /rest endpoints name it in the 403 message).
    pub version: Option<String>,
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

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
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

/// The error sent when the store cannot answer: an explicit 503, never an allow or a throttle.
fn unavailable(what: &str, e: &dyn std::fmt::Display) -> ApiError {
    tracing::error!(error = %e, "enforcement: {what}: store failed");
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        service_error_code: 503,
        code: None,
        message: "try again shortly".into(),
        challenge: None,
    }
}

/// Evaluates a call against the deployment's route table (see [`evaluate_on`]).
pub async fn evaluate(state: &Service, call: Call<'_>) -> Result<Verdict, ApiError> {
    let routes = state.routes.clone();
    evaluate_on(state, &routes, call).await
}

/// Evaluates a call: finds the route, reads its target strictly, loads the token, the app's
/// programs and the member's roles in one read, decides, and counts the quota. `Err` is a
/// response to send as is (no route, no token, the store down).
pub async fn evaluate_on(
    state: &Service,
    table: &RouteTable,
    call: Call<'_>,
) -> Result<Verdict, ApiError> {
    let candidates = table.candidates(call.method, call.path);
    if candidates.is_empty() {
        return Err(ApiError::not_found(format!(
            "no route for {} {}",
            call.method, call.path
        )));
    }
    // What does the request target? Every candidate reads its own target; one that cannot be
    // read refuses the call (never a fallback to a sibling route or to "no target"). Then the
    // route is the one candidate acting on the kind named; with no target named, the one acting
    // on none.
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
        .ok_or_else(|| ApiError::not_found("no route"))?;
    let token = call.token?;
    let loaded = load(state, &token)
        .await
        .map_err(|e| unavailable("loading the token", &e))?;
    let mut v = verdict(state, route, loaded, target, params);
    if let (Ok(_), Some(tok)) = (&v.result, &v.token) {
        let within = spend_quota(state, &v.route, tok)
            .await
            .map_err(|e| unavailable("counting the quota", &e))?;
        if !within {
            v.result = Err(Denial::QuotaExceeded);
        }
    }
    Ok(v)
}

type Loaded = (Option<TokenRecord>, Vec<String>, Vec<RoleAssignment>);

/// Decides a route on what [`load`] read: the same facts for a route-table call and for a
/// single-permission check.
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
    let hash = state.keys.token_hash.hash_str(token).as_str().to_string();
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

/// LinkedIn's error for a denial.
pub fn denial_error(
    state: &Service,
    route: &Route,
    method: &str,
    version: Option<&str>,
    d: &Denial,
) -> ApiError {
    match d {
        Denial::NoToken => ApiError::empty_token(),
        Denial::InvalidToken => ApiError::invalid_token(),
        Denial::ExpiredToken => ApiError::expired_token(),
        Denial::RevokedToken => ApiError::revoked_token(),
        Denial::QuotaExceeded => ApiError::throttled(),
        // A target the request cannot name (unreadable, repeated, not canonical, missing) is a
        // malformed request; one of another kind, or another member, is a permission refusal.
        Denial::TargetInvalid { problem }
            if !matches!(problem, TargetProblem::WrongKind | TargetProblem::Ambiguous) =>
        {
            let from = match &route.target {
                Some(TargetSource::Path(n)) => format!("the path's {{{n}}}"),
                Some(TargetSource::Query(n)) => format!("the query parameter {n}"),
                Some(TargetSource::Body(n)) => format!("the JSON body's {n}"),
                None => "the request".into(),
            };
            ApiError::bad_request(format!(
                "{} {}: the target is read from {from}, once, as a canonical URN",
                route.id,
                problem.describe()
            ))
        }
        Denial::ScopeMissing { .. }
        | Denial::RoleMissing { .. }
        | Denial::WrongTokenKind
        | Denial::TargetInvalid { .. }
        | Denial::OtherMember => {
            let version = version
                .map(str::to_string)
                .unwrap_or_else(|| state.routes.default_version.clone());
            ApiError::access_denied(&route.resource, &method.to_uppercase(), &version)
        }
    }
}

/// The Rest.li method LinkedIn names in its 403 messages (`posts.CREATE.202405`,
/// `organizations.FINDER-emailDomain.20230801`): the `X-RestLi-Method` header when the client
/// sent one, otherwise derived from the HTTP method, a `q=` finder and whether the path names a key.
pub fn restli_method(http: &str, header: Option<&str>, query: Option<&str>, keyed: bool) -> String {
    if let Some(h) = header.filter(|h| !h.is_empty()) {
        let h = h.to_uppercase();
        return match query_param(query, "q") {
            Some(q) if h == "FINDER" => format!("FINDER-{q}"),
            _ => h,
        };
    }
    match (http.to_uppercase().as_str(), keyed) {
        ("GET", _) if query_param(query, "q").is_some() => {
            format!("FINDER-{}", query_param(query, "q").unwrap_or_default())
        }
        ("GET", _) => "GET".into(),
        ("POST", false) => "CREATE".into(),
        ("POST", true) => "PARTIAL_UPDATE".into(),
        ("PUT", _) => "UPDATE".into(),
        ("DELETE", _) => "DELETE".into(),
        (other, _) => other.to_string(),
    }
}

/// Refuses a request whose method headers say something else than what was checked. A Rest.li
/// backend routes a POST by `X-RestLi-Method` (`BATCH_CREATE` acts on `elements`, `ACTION` on
/// whatever the action reads), and many frameworks honour `X-HTTP-Method-Override`: either would
/// let the backend perform another operation than the one enforcement allowed. So an override
/// header is refused, and `X-RestLi-Method` (sent by LinkedIn's own client on every call) must
/// name a method the checked HTTP method, path and query can mean.
pub fn method_headers_agree(
    headers: &HeaderMap,
    http: &str,
    query: Option<&str>,
    keyed: bool,
) -> Result<(), ApiError> {
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        if headers.contains_key(name) {
            return Err(ApiError::bad_request(format!(
                "{name} is not accepted: send the HTTP method itself"
            )));
        }
    }
    let mut sent = headers.get_all("x-restli-method").iter();
    let Some(first) = sent.next() else {
        return Ok(());
    };
    if sent.next().is_some() {
        return Err(ApiError::bad_request("X-RestLi-Method is repeated"));
    }
    let h = first
        .to_str()
        .map_err(|_| ApiError::bad_request("X-RestLi-Method is not readable"))?
        .trim()
        .to_ascii_uppercase();
    let has = |p: &str| query_param(query, p).is_some();
    let ok = match (http.to_ascii_uppercase().as_str(), keyed) {
        ("GET", true) => h == "GET",
        ("GET", false) => {
            h == "GET_ALL"
                || h == "GET"
                || (h == "FINDER" && has("q"))
                || (h == "BATCH_GET" && has("ids"))
        }
        ("POST", false) => h == "CREATE" || (h == "ACTION" && has("action")),
        ("POST", true) => h == "PARTIAL_UPDATE",
        ("PUT", true) => h == "UPDATE",
        ("DELETE", true) => h == "DELETE",
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "X-RestLi-Method {h} does not match the {http} request that was checked"
        )))
    }
}

fn reason(d: &Denial) -> &'static str {
    match d {
        Denial::NoToken => "no_token",
        Denial::InvalidToken => "invalid_token",
        Denial::ExpiredToken => "expired",
        Denial::RevokedToken => "revoked",
        Denial::WrongTokenKind => "wrong_token_kind",
        Denial::ScopeMissing { .. } => "scope_missing",
        Denial::RoleMissing { .. } => "role_missing",
        Denial::QuotaExceeded => "quota_exceeded",
        Denial::TargetInvalid { .. } => "target_invalid",
        Denial::OtherMember => "other_member",
    }
}

/// The body of `POST /authz/v1/check`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub token: Option<String>,
    /// A route of the table: method and path (with the query, if the route reads one).
    pub method: Option<String>,
    pub path: Option<String>,
    /// Or a permission, checked directly.
    pub permission: Option<String>,
    /// The resource the call acts on (a URN), when the route or permission needs one.
    pub resource: Option<String>,
    /// A JSON body the route reads its target from.
    pub body: Option<Value>,
}

/// POST /authz/v1/check: for resource servers, authenticated with a resource-server key.
pub async fn check(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim().to_string());
    // An outage is a 503, not a 401 telling the caller its key is wrong.
    let authorized = match key {
        Some(k) => {
            match crate::ops::keys::authenticate(&state, &k, KeyKind::ResourceServer).await {
                Ok(name) => name.is_some(),
                Err(e) => {
                    return unavailable("authenticating the resource server", &e).into_response()
                }
            }
        }
        None => false,
    };
    if !authorized {
        let mut r = (StatusCode::UNAUTHORIZED, Json(json!({"status": 401, "message": "a resource-server key is required: Authorization: Bearer sgr_…"}))).into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"scopegate-authz\""),
        );
        return r;
    }
    let req: CheckRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": 400, "message": format!("the JSON body is invalid: {e}")})),
            )
                .into_response()
        }
    };
    let token = req
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::empty_token);
    let (method, path, query, body) =
        match (&req.permission, &req.method, &req.path) {
            (Some(p), None, None) => {
                // A permission check: evaluate against a one-route table made for it.
                return check_permission(&state, p, token, req.resource.as_deref()).await;
            }
            (None, Some(m), Some(p)) => {
                let (path, query) = p
                    .split_once('?')
                    .map(|(a, b)| (a.to_string(), Some(b.to_string())))
                    .unwrap_or((p.clone(), None));
                // A body given as a string is the request's raw body, read as the backend
                // received it (duplicate keys included); an object is the body as parsed.
                let body = req.body.as_ref().map(|b| match b {
                    Value::String(raw) => raw.clone().into_bytes(),
                    other => other.to_string().into_bytes(),
                });
                (m.clone(), path, query, body)
            }
            _ => return (
                StatusCode::BAD_REQUEST,
                Json(
                    json!({"status": 400, "message": "give either permission, or method and path"}),
                ),
            )
                .into_response(),
        };
    let call = Call {
        method: &method,
        path: &path,
        query: query.as_deref(),
        token,
        body: body.as_deref(),
        version: None,
    };
    decision_response(evaluate(&state, call).await)
}

/// The decision API's answer: the verdict as JSON; no token is a verdict too; an unknown route
/// is a 404 and a store outage a 503 (never `allowed: false` with a 200, which reads as a refusal).
fn decision_response(v: Result<Verdict, ApiError>) -> Response {
    match v {
        Ok(v) => Json(verdict_json(&v)).into_response(),
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            Json(json!({"allowed": false, "reason": "no_token"})).into_response()
        }
        Err(e) => (e.status, Json(e.body())).into_response(),
    }
}

async fn check_permission(
    state: &ServiceState,
    permission: &str,
    token: Result<String, ApiError>,
    resource: Option<&str>,
) -> Response {
    let Some(p) = state.catalog.permission(permission) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"status": 400, "message": format!("\"{permission}\" is not a permission of the catalog")}))).into_response();
    };
    // A one-route table for the permission, evaluated like any route: a role-restricted
    // permission acts on its resource type (and needs the resource); any other member permission
    // acts only as the member, so a resource, when given, must be the member's own person URN.
    let target = match (&p.role_restriction, resource) {
        (Some(rr), _) => format!(
            "when = \"{}\"\ntarget = {{ from = \"query\", name = \"resource\" }}\n",
            rr.resource.as_str()
        ),
        (None, Some(_)) => {
            "when = \"person\"\ntarget = { from = \"query\", name = \"resource\" }\n".into()
        }
        (None, None) => String::new(),
    };
    let toml = format!(
        "[api]\nname = \"check\"\n[[route]]\nmethod = \"GET\"\npath = \"/check\"\nresource = \"check\"\npermissions = [\"{}\"]\n{target}",
        p.name
    );
    let table = match RouteTable::from_toml(&toml, &state.catalog) {
        Ok(t) => t,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": 400, "message": "the permission cannot be checked"})),
            )
                .into_response()
        }
    };
    let query = resource.map(|r| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("resource", r)
            .finish()
    });
    let call = Call {
        method: "GET",
        path: "/check",
        query: query.as_deref(),
        token,
        body: None,
        version: None,
    };
    decision_response(evaluate_on(state, &table, call).await)
}

fn verdict_json(v: &Verdict) -> Value {
    let mut out = json!({
        "allowed": v.result.is_ok(),
        "route": v.route.id,
        "app": v.token.as_ref().map(|t| t.client_id.clone()),
        "member": v.person,
    });
    match &v.result {
        Ok(a) => {
            out["permission"] = json!(a.permission);
            out["scopes"] = json!(a.scopes);
        }
        Err(d) => {
            out["reason"] = json!(reason(d));
            out["detail"] = json!(d);
            if let Some(t) = &v.token {
                out["scopes"] = json!(t
                    .scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>());
            }
        }
    }
    out
}

const FORWARD_AUTH: &str = "/authz/v1/forward-auth";

/// The one value of a header, or a refusal when it is repeated or not text.
fn single_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let mut all = headers.get_all(name).iter();
    let Some(v) = all.next() else { return Ok(None) };
    if all.next().is_some() {
        return Err(ApiError::bad_request(format!(
            "{name} appears more than once"
        )));
    }
    v.to_str()
        .map(|v| Some(v.to_string()))
        .map_err(|_| ApiError::bad_request(format!("{name} is not text")))
}

/// The original request's method and URI, from the one source the deployment's gateway writes.
fn original_request(
    gateway: Gateway,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(String, String), ApiError> {
    let suffix = uri.path().strip_prefix(FORWARD_AUTH).unwrap_or(uri.path());
    let (m, u) = match gateway {
        Gateway::Nginx | Gateway::Traefik => {
            let (mh, uh) = if gateway == Gateway::Nginx {
                ("x-original-method", "x-original-uri")
            } else {
                ("x-forwarded-method", "x-forwarded-uri")
            };
            // The route named twice: in the headers and in the path (Envoy style).
            if !suffix.is_empty() || uri.query().is_some() {
                return Err(ApiError::bad_request(format!(
                    "forward-auth behind {gateway:?} is called at {FORWARD_AUTH} exactly; the route comes from {uh}"
                )));
            }
            let missing = |h: &str| {
                ApiError::bad_request(format!(
                    "{h} is missing: the gateway must send the original request's method and URI (docs/routes.md)"
                ))
            };
            (
                single_header(headers, mh)?.ok_or_else(|| missing(mh))?,
                single_header(headers, uh)?.ok_or_else(|| missing(uh))?,
            )
        }
        Gateway::Envoy => {
            let path = if suffix.is_empty() { "/" } else { suffix };
            let u = match uri.query() {
                Some(q) => format!("{path}?{q}"),
                None => path.to_string(),
            };
            (method.as_str().to_string(), u)
        }
    };
    // An origin-form request target (RFC 9112 3.2.1): an absolute URI names a host too.
    if !u.starts_with('/') || u.contains('#') {
        return Err(ApiError::bad_request(
            "the original URI must be a path with an optional query",
        ));
    }
    Ok((m, u))
}

/// `/authz/v1/forward-auth` for nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz.
/// The original method and URI come only from the source of the configured gateway
/// ([`Gateway`]); without one configured, forward-auth refuses every request.
pub async fn forward_auth(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(gateway) = state.config.forward_auth_gateway else {
        return ApiError::not_found(
            "forward-auth is off: name the gateway in front of scopegate with --forward-auth-gateway nginx|traefik|envoy (docs/routes.md)",
        )
        .into_response();
    };
    let (original_method, original_uri) = match original_request(gateway, &method, &uri, &headers) {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    // Two Authorization headers: the gateway's backend might read the other one.
    if headers.get_all(header::AUTHORIZATION).iter().count() > 1 {
        return ApiError::bad_authorization("more than one Authorization header").into_response();
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (path, query) = original_uri
        .split_once('?')
        .map(|(a, b)| (a.to_string(), Some(b.to_string())))
        .unwrap_or((original_uri.clone(), None));
    let call = Call {
        method: &original_method,
        path: &path,
        query: query.as_deref(),
        token: bearer(&headers),
        body: if body.is_empty() { None } else { Some(&body) },
        version: header("linkedin-version"),
    };
    let version = call.version.clone();
    let evaluated = evaluate(&state, call).await;
    if let Ok(v) = &evaluated {
        let keyed = !v.params.is_empty();
        if let Err(e) = method_headers_agree(&headers, &original_method, query.as_deref(), keyed) {
            return e.into_response();
        }
    }
    match evaluated {
        Err(e) => e.into_response(),
        Ok(v) => match &v.result {
            Ok(a) => {
                let mut res = StatusCode::OK.into_response();
                let h = res.headers_mut();
                let mut set = |k: &'static str, val: &str| {
                    if let Ok(val) = HeaderValue::from_str(val) {
                        h.insert(k, val);
                    }
                };
                set(
                    "x-scopegate-app",
                    v.token.as_ref().map(|t| t.client_id.as_str()).unwrap_or(""),
                );
                set("x-scopegate-member", v.person.as_deref().unwrap_or(""));
                set("x-scopegate-scopes", &a.scopes.join(" "));
                set("x-scopegate-permission", &a.permission);
                res
            }
            Err(d) => denial_error(
                &state,
                &v.route,
                &restli_method(
                    &original_method,
                    header("x-restli-method").as_deref(),
                    query.as_deref(),
                    !v.params.is_empty(),
                ),
                version.as_deref(),
                d,
            )
            .into_response(),
        },
    }
}

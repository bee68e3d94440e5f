//! Enforcement: one evaluation of a request against the route table, used by the sandbox API,
//! the decision API (`POST /authz/v1/check`) and forward-auth for gateways.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_core::catalog::ResourceType;
use scopegate_core::enforce::{decide, parse_target, Allowed, Denial, Facts, Target};
use scopegate_core::model::{RoleAssignment, TokenKind, TokenRecord};
use scopegate_core::routes::{Route, TargetKind, TargetSource};
use scopegate_store::{apps, members, sandbox, tokens};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::oidc::{bearer, pairwise_sub};
use crate::ops::keys::{self, KeyKind};
use crate::state::{App, AppState};
use crate::wire::ApiError;

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

fn target_value(
    route: &Route,
    params: &[(String, String)],
    query: Option<&str>,
    body: Option<&[u8]>,
) -> Option<String> {
    match route.target.as_ref()? {
        TargetSource::Path(n) => params.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()),
        TargetSource::Query(n) => {
            // LinkedIn's finders wrap lists: accounts=List(urn%3Ali%3AsponsoredAccount%3A1).
            let v = query_param(query, n)?;
            Some(
                v.strip_prefix("List(")
                    .and_then(|r| r.strip_suffix(')'))
                    .map(str::to_string)
                    .unwrap_or(v),
            )
        }
        TargetSource::Body(n) => {
            let v: Value = serde_json::from_slice(body?).ok()?;
            v.get(n)?.as_str().map(str::to_string)
        }
    }
}

fn kind_of(t: Option<&Target>) -> TargetKind {
    match t {
        None => TargetKind::None,
        Some(Target::Person(_)) => TargetKind::Person,
        Some(Target::Resource(ResourceType::Organization, _)) => TargetKind::Organization,
        Some(Target::Resource(ResourceType::AdAccount, _)) => TargetKind::AdAccount,
        Some(Target::Other(_)) => TargetKind::None,
    }
}

fn expected_type(route: &Route, catalog: &scopegate_core::Catalog) -> Option<ResourceType> {
    route.permissions.iter().find_map(|p| {
        catalog
            .permission(p)
            .and_then(|x| x.role_restriction.as_ref())
            .map(|r| r.resource)
    })
}

/// Evaluates a call: finds the route, loads the token, the app's programs and the member's
/// roles in one read, and decides. `Err` is a response to send as is (no route, no token).
pub async fn evaluate(state: &App, call: Call<'_>) -> Result<Verdict, ApiError> {
    let candidates = state.routes.candidates(call.method, call.path);
    if candidates.is_empty() {
        return Err(ApiError::not_found(format!(
            "no route for {} {}",
            call.method, call.path
        )));
    }
    // What does the request target? The first candidate that can read a target decides the
    // kind; then the route for that kind is chosen (one path may serve several kinds).
    let named = candidates.iter().find_map(|(route, params)| {
        target_value(route, params, call.query, call.body)
            .map(|v| parse_target(&v, expected_type(route, &state.catalog)))
    });
    let kind = kind_of(named.as_ref());
    let (route, params) = candidates
        .iter()
        .find(|(route, _)| route.when.is_none_or(|w| w == kind))
        .or_else(|| candidates.first())
        .map(|(r, p)| ((*r).clone(), p.clone()))
        .ok_or_else(|| ApiError::not_found("no route"))?;
    let target = target_value(&route, &params, call.query, call.body)
        .map(|v| parse_target(&v, expected_type(&route, &state.catalog)));
    let token = call.token?;
    let loaded = load(state, &token).await.map_err(|e| {
        tracing::error!(error = %e, "enforcement: store failed");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            service_error_code: 503,
            code: None,
            message: "try again shortly".into(),
            challenge: None,
        }
    })?;
    let mut v = verdict(state, route, loaded, target, params);
    if let (Ok(_), Some(tok)) = (&v.result, &v.token) {
        if let Err(d) = spend_quota(state, &v.route, tok).await {
            v.result = Err(d);
        }
    }
    Ok(v)
}

type Loaded = (Option<TokenRecord>, Vec<String>, Vec<RoleAssignment>);

/// Decides a route on what [`load`] read: the same facts for a route-table call and for a
/// single-permission check.
fn verdict(
    state: &App,
    route: Route,
    (t, approved, roles): Loaded,
    target: Option<Target>,
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
            target: target.as_ref(),
            now,
            today: crate::clock::date_of(now),
        },
    );
    Verdict {
        route,
        token: t,
        result,
        person: person.map(|p| format!("urn:li:person:{p}")),
        target,
        params,
    }
}

/// The access token, its app's approved programs and its member's roles, in one read.
async fn load(state: &App, token: &str) -> Result<Loaded, scopegate_store::StoreError> {
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
async fn spend_quota(state: &App, route: &Route, t: &TokenRecord) -> Result<(), Denial> {
    let q = route.quota;
    if q.app_daily.is_none() && q.member_daily.is_none() {
        return Ok(());
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
        .await
        .map_err(|_| Denial::QuotaExceeded)?;
    let over = |count: Option<i64>, limit: Option<i64>| matches!((count, limit), (Some(c), Some(l)) if c > l);
    if over(counts.0, q.app_daily) || over(counts.1, q.member_daily) {
        return Err(Denial::QuotaExceeded);
    }
    Ok(())
}

/// LinkedIn's error for a denial.
pub fn denial_error(
    state: &App,
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
        Denial::ScopeMissing { .. } | Denial::RoleMissing { .. } | Denial::WrongTokenKind => {
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
pub async fn check(State(state): State<AppState>, headers: HeaderMap, bytes: Bytes) -> Response {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim().to_string());
    let authorized = match key {
        Some(k) => keys::authenticate(&state, &k, KeyKind::ResourceServer)
            .await
            .is_some(),
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
                (
                    m.clone(),
                    path,
                    query,
                    req.body.as_ref().map(|b| b.to_string().into_bytes()),
                )
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
    match evaluate(&state, call).await {
        Ok(v) => Json(verdict_json(&v)).into_response(),
        Err(e) if e.status == StatusCode::NOT_FOUND => (StatusCode::NOT_FOUND, Json(e.body())).into_response(),
        Err(e) => Json(json!({"allowed": false, "reason": if e.service_error_code == 401 { "no_token" } else { "error" }, "status": e.status.as_u16()})).into_response(),
    }
}

async fn check_permission(
    state: &AppState,
    permission: &str,
    token: Result<String, ApiError>,
    resource: Option<&str>,
) -> Response {
    let Some(p) = state.catalog.permission(permission) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"status": 400, "message": format!("\"{permission}\" is not a permission of the catalog")}))).into_response();
    };
    let toml = format!(
        "[api]\nname = \"check\"\n[[route]]\nmethod = \"GET\"\npath = \"/check\"\nresource = \"check\"\npermissions = [\"{}\"]\n{}",
        p.name,
        if p.role_restriction.is_some() { "target = { from = \"query\", name = \"resource\" }\n" } else { "" }
    );
    let table = match scopegate_core::routes::RouteTable::from_toml(&toml, &state.catalog) {
        Ok(t) => t,
        Err(_) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"status": 400, "message": "the permission cannot be checked"})),
            )
                .into_response()
        }
    };
    let route = table.routes[0].clone();
    let token = match token {
        Ok(t) => t,
        Err(_) => return Json(json!({"allowed": false, "reason": "no_token"})).into_response(),
    };
    let loaded = load(state, &token).await;
    let Ok(loaded) = loaded else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": 503, "message": "try again shortly"})),
        )
            .into_response();
    };
    let target = resource.map(|r| parse_target(r, p.role_restriction.as_ref().map(|x| x.resource)));
    let v = verdict(state, route, loaded, target, vec![]);
    Json(verdict_json(&v)).into_response()
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

/// `/authz/v1/forward-auth` for nginx `auth_request`, Traefik ForwardAuth and Envoy ext_authz.
/// The original method and URI come from X-Original-Method/X-Original-URI (nginx),
/// X-Forwarded-Method/X-Forwarded-Uri (Traefik), or, for Envoy, the request itself with the
/// `/authz/v1/forward-auth` prefix removed.
pub async fn forward_auth(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let original_method = header("x-original-method")
        .or_else(|| header("x-forwarded-method"))
        .unwrap_or_else(|| method.as_str().to_string());
    let original_uri = header("x-original-uri")
        .or_else(|| header("x-forwarded-uri"))
        .unwrap_or_else(|| {
            let p = uri
                .path()
                .strip_prefix("/authz/v1/forward-auth")
                .unwrap_or(uri.path());
            match uri.query() {
                Some(q) => format!("{p}?{q}"),
                None => p.to_string(),
            }
        });
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
    match evaluate(&state, call).await {
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

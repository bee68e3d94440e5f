//! Enforcement: one evaluation of a request against the route table, used by the sandbox API,
//! the decision API (`POST /authz/v1/check`) and forward-auth for gateways.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_app::enforce::{self, EnforceError};
use scopegate_core::enforce::{Allowed, Denial, TargetProblem};
use scopegate_core::routes::{Route, RouteTable, TargetSource};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::extract::bearer::bearer;
use crate::wire::{self, ApiError};
use scopegate_app::ops::keys::KeyKind;
use scopegate_app::state::{Service, ServiceState};
use scopegate_app::Gateway;

use scopegate_app::enforce::Verdict;

/// A request to evaluate, as read from HTTP.
pub struct Call<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub token: Result<String, ApiError>,
    pub body: Option<&'a [u8]>,
    /// `LinkedIn-Version` (versioned /rest endpoints name it in the 403 message).
    pub version: Option<String>,
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Evaluates a call against the deployment's route table (see [`evaluate_on`]).
pub async fn evaluate(state: &Service, call: Call<'_>) -> Result<Verdict, ApiError> {
    let routes = state.routes.clone();
    evaluate_on(state, &routes, call).await
}

/// Evaluates a call in the app layer. `Err` is a response to send as is: no route, the token's
/// own refusal (answered only once the route is known to exist), the store down.
pub async fn evaluate_on(
    state: &Service,
    table: &RouteTable,
    call: Call<'_>,
) -> Result<Verdict, ApiError> {
    let (token, refusal) = match call.token {
        Ok(t) => (Some(t), None),
        Err(e) => (None, Some(e)),
    };
    let app_call = enforce::Call {
        method: call.method,
        path: call.path,
        query: call.query,
        token: token.as_deref(),
        body: call.body,
    };
    match enforce::evaluate_on(state, table, app_call).await {
        Err(EnforceError::NoToken) => Err(refusal.unwrap_or_else(ApiError::empty_token)),
        other => other.map_err(ApiError::from),
    }
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

/// Is the decision API's caller a resource server? An outage is a 503, not a 401 telling the
/// caller its key is wrong.
async fn resource_server(state: &Service, headers: &HeaderMap) -> Result<(), Response> {
    let key = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
        .map(|(_, k)| k.trim().to_string());
    let Some(k) = key else {
        return Err(wire::resource_server_key_required());
    };
    match scopegate_app::ops::keys::authenticate(state, &k, KeyKind::ResourceServer).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(wire::resource_server_key_required()),
        Err(e) => Err(ApiError::from(e).into_response()),
    }
}

/// POST /authz/v1/check: for resource servers, authenticated with a resource-server key.
pub async fn check(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    if let Err(r) = resource_server(&state, &headers).await {
        return r;
    }
    let req: CheckRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return wire::status_message(
                StatusCode::BAD_REQUEST,
                &format!("the JSON body is invalid: {e}"),
            )
        }
    };
    let token = req
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or_else(ApiError::empty_token);
    match (&req.permission, &req.method, &req.path) {
        // A permission check: evaluate against a one-route table made for it.
        (Some(p), None, None) => check_permission(&state, p, token, req.resource.as_deref()).await,
        (None, Some(m), Some(p)) => check_route(&state, m, p, req.body.as_ref(), token).await,
        _ => wire::status_message(
            StatusCode::BAD_REQUEST,
            "give either permission, or method and path",
        ),
    }
}

/// The decision API on a route of the table.
async fn check_route(
    state: &Service,
    method: &str,
    target: &str,
    body: Option<&Value>,
    token: Result<String, ApiError>,
) -> Response {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = (target.contains('?')).then_some(query);
    // A body given as a string is the request's raw body, read as the backend received it
    // (duplicate keys included); an object is the body as parsed.
    let body = body.map(|b| match b {
        Value::String(raw) => raw.clone().into_bytes(),
        other => other.to_string().into_bytes(),
    });
    let call = Call {
        method,
        path,
        query,
        token,
        body: body.as_deref(),
        version: None,
    };
    decision_response(evaluate(state, call).await)
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
        return wire::status_message(
            StatusCode::BAD_REQUEST,
            &format!("\"{permission}\" is not a permission of the catalog"),
        );
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
            return wire::status_message(
                StatusCode::BAD_REQUEST,
                "the permission cannot be checked",
            )
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
                out["scopes"] = json!(t.scopes.iter().collect::<Vec<_>>());
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
        let keyed = v.route.keyed();
        if let Err(e) = method_headers_agree(&headers, &original_method, query.as_deref(), keyed) {
            return e.into_response();
        }
    }
    match evaluated {
        Err(e) => e.into_response(),
        Ok(v) => match &v.result {
            Ok(a) => allowed_response(&v, a),
            Err(d) => denial_error(
                &state,
                &v.route,
                &restli_method(
                    &original_method,
                    header("x-restli-method").as_deref(),
                    query.as_deref(),
                    v.route.keyed(),
                ),
                version.as_deref(),
                d,
            )
            .into_response(),
        },
    }
}

/// Forward-auth's 200: who the call is for, in headers the gateway passes to the backend.
fn allowed_response(v: &Verdict, a: &Allowed) -> Response {
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

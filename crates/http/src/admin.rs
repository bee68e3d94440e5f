//! The JSON admin API under /admin/v1, for automation. Authenticated by an admin API key
//! (`Authorization: Bearer sgk_…`); described by the OpenAPI document at /admin/v1/openapi.json.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use scopegate_core::model::Capability;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::error::Error;
use crate::ops::apps::AppInput;
use crate::ops::members::MemberInput;
use crate::ops::{self, Actor};
use crate::state::ServiceState;
use crate::wire::admin_error;

const OPENAPI: &str = include_str!("../openapi.json");

/// Every admin route.
pub fn routes() -> Router<ServiceState> {
    Router::new()
        .route("/admin/v1/openapi.json", get(openapi))
        .route("/admin/v1/catalog", get(catalog))
        .route("/admin/v1/members", get(list_members).post(create_member))
        .route("/admin/v1/apps", get(list_apps).post(create_app))
        .route(
            "/admin/v1/apps/{client_id}",
            get(show_app).delete(delete_app),
        )
        .route("/admin/v1/apps/{client_id}/secrets", post(rotate_secret))
        .route(
            "/admin/v1/apps/{client_id}/secrets/{secret_id}",
            delete(delete_secret),
        )
        .route(
            "/admin/v1/apps/{client_id}/redirect-uris",
            post(add_redirect).delete(remove_redirect),
        )
        .route(
            "/admin/v1/apps/{client_id}/capabilities/{capability}",
            put(set_capability),
        )
        .route(
            "/admin/v1/apps/{client_id}/products/{program}",
            post(request_product).delete(remove_product),
        )
        .route("/admin/v1/reviews", get(reviews))
        .route("/admin/v1/reviews/{client_id}/{program}", post(decide))
        .route("/admin/v1/audit", get(audit))
        .route("/admin/v1/migrations/report", get(migration_report))
        .route(
            "/admin/v1/apps/{client_id}/defaults",
            get(show_defaults).put(set_defaults),
        )
        .route("/admin/v1/apps/{client_id}/extension", put(set_extension))
        .layer(axum::middleware::map_response(json_rejections))
        .layer(axum::middleware::map_request(read_body))
}

/// Reads the whole request body before the handler runs, even for handlers that take none: a
/// body left unread makes the server close the connection under a client still sending it
/// (the client sees a broken connection instead of the answer).
async fn read_body(req: axum::extract::Request) -> Result<axum::extract::Request, Response> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, crate::http::MAX_BODY).await {
        Ok(bytes) => Ok(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        )),
        Err(_) => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": {"status": 413, "message": "the request body is too large"}})),
        )
            .into_response()),
    }
}

/// axum answers a path, query or body it cannot extract with a text/plain 4xx; the admin API
/// promises its JSON error shape on every answer (the OpenAPI document's `Error`).
async fn json_rejections(res: Response) -> Response {
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/plain"));
    if !(res.status().is_client_error() && plain) {
        return res;
    }
    let status = res.status();
    let bytes = axum::body::to_bytes(res.into_body(), 4096)
        .await
        .unwrap_or_default();
    let message: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": message}})),
    )
        .into_response()
}

/// The authenticated admin caller.
pub struct Admin(pub Actor);

impl FromRequestParts<ServiceState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServiceState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = || {
            let body = json!({"error": {"status": 401, "message": "an admin API key is required: Authorization: Bearer sgk_…"}});
            let mut r = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"scopegate-admin\""),
            );
            r
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(unauthorized)?;
        let (scheme, key) = value.split_once(' ').ok_or_else(unauthorized)?;
        if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
            return Err(unauthorized());
        }
        match ops::keys::authenticate(state, key.trim(), ops::keys::KeyKind::Admin).await {
            Ok(Some(name)) => Ok(Admin(Actor::ApiKey(name))),
            Ok(None) => Err(unauthorized()),
            Err(e) => Err(crate::wire::admin_error(&e)),
        }
    }
}

fn ok(status: StatusCode, v: serde_json::Value) -> Response {
    (status, Json(v)).into_response()
}

fn reply<T: serde::Serialize>(r: Result<T, Error>) -> Response {
    match r {
        Ok(v) => ok(StatusCode::OK, json!(v)),
        Err(e) => admin_error(&e),
    }
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Response> {
    serde_json::from_slice(bytes)
        .map_err(|e| admin_error(&Error::Invalid(format!("the JSON body is invalid: {e}"))))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn catalog(State(state): State<ServiceState>, _: Admin) -> Response {
    ok(StatusCode::OK, json!(*state.catalog))
}

async fn list_members(State(state): State<ServiceState>, _: Admin) -> Response {
    reply(ops::members::list(&state).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    password: String,
    first_name: String,
    #[serde(default)]
    last_name: String,
    #[serde(default)]
    headline: String,
    #[serde(default)]
    picture_url: String,
    #[serde(default)]
    locale: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    platform_admin: bool,
}

async fn create_member(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    bytes: Bytes,
) -> Response {
    let m: NewMember = match body(&bytes) {
        Ok(m) => m,
        Err(r) => return r,
    };
    let input = MemberInput {
        email: m.email,
        password: m.password,
        first_name: m.first_name,
        last_name: m.last_name,
        headline: m.headline,
        picture_url: m.picture_url,
        locale: m.locale,
        email_verified: m.email_verified,
        platform_admin: m.platform_admin,
    };
    match ops::members::create(&state, &actor, input).await {
        Ok(m) => ok(StatusCode::CREATED, json!(m)),
        Err(e) => admin_error(&e),
    }
}

async fn list_apps(State(state): State<ServiceState>, Admin(actor): Admin) -> Response {
    reply(ops::apps::list(&state, &actor).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewApp {
    name: String,
    owner: String,
    #[serde(default)]
    redirect_uris: Vec<String>,
    organization_id: Option<i64>,
    #[serde(default)]
    privacy_policy_url: String,
    #[serde(default)]
    logo_url: String,
}

async fn create_app(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    bytes: Bytes,
) -> Response {
    let a: NewApp = match body(&bytes) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let input = AppInput {
        name: a.name,
        owner: a.owner,
        organization_id: a.organization_id,
        privacy_policy_url: a.privacy_policy_url,
        logo_url: a.logo_url,
        redirect_uris: a.redirect_uris,
    };
    match ops::apps::create(&state, &actor, input).await {
        Ok(made) => ok(
            StatusCode::CREATED,
            json!({"client_id": made.app.client_id, "client_secret": made.client_secret.expose(), "app": made.app}),
        ),
        Err(e) => admin_error(&e),
    }
}

async fn show_app(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Response {
    reply(ops::apps::details(&state, &actor, &id).await)
}

async fn delete_app(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Response {
    match ops::apps::delete(&state, &actor, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(&e),
    }
}

async fn rotate_secret(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Response {
    match ops::apps::rotate_secret(&state, &actor, &id).await {
        Ok((secret, sid)) => ok(
            StatusCode::CREATED,
            json!({"id": sid, "client_secret": secret.expose()}),
        ),
        Err(e) => admin_error(&e),
    }
}

async fn delete_secret(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, sid)): Path<(String, String)>,
) -> Response {
    let Ok(sid) = sid.parse::<i64>() else {
        return admin_error(&Error::Invalid("the secret id must be a number".into()));
    };
    match ops::apps::delete_secret(&state, &actor, &id, sid).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Uri {
    uri: String,
}

async fn add_redirect(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let u: Uri = match body(&bytes) {
        Ok(u) => u,
        Err(r) => return r,
    };
    match ops::apps::set_redirect_uri(&state, &actor, &id, &u.uri, true).await {
        Ok(uri) => ok(StatusCode::CREATED, json!({"uri": uri})),
        Err(e) => admin_error(&e),
    }
}

async fn remove_redirect(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Query(u): Query<Uri>,
) -> Response {
    match ops::apps::set_redirect_uri(&state, &actor, &id, &u.uri, false).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Enabled {
    enabled: bool,
}

async fn set_capability(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, cap)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let Some(cap) = Capability::parse(&cap) else {
        return admin_error(&Error::Invalid(format!(
            "unknown capability \"{cap}\": use client-credentials, refresh-tokens or native-pkce"
        )));
    };
    let e: Enabled = match body(&bytes) {
        Ok(e) => e,
        Err(r) => return r,
    };
    reply(
        ops::apps::set_capability(&state, &actor, &id, cap, e.enabled)
            .await
            .map(|()| json!({"capability": cap.as_str(), "enabled": e.enabled})),
    )
}

async fn request_product(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, program)): Path<(String, String)>,
) -> Response {
    reply(
        ops::apps::request_product(&state, &actor, &id, &program)
            .await
            .map(|s| json!({"program": program, "status": s})),
    )
}

async fn remove_product(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, program)): Path<(String, String)>,
) -> Response {
    match ops::apps::remove_product(&state, &actor, &id, &program).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => admin_error(&e),
    }
}

async fn reviews(State(state): State<ServiceState>, Admin(actor): Admin) -> Response {
    reply(ops::apps::review_queue(&state, &actor).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    decision: String,
    reason: Option<String>,
}

async fn decide(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, program)): Path<(String, String)>,
    bytes: Bytes,
) -> Response {
    let d: Decision = match body(&bytes) {
        Ok(d) => d,
        Err(r) => return r,
    };
    let approve = match d.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return admin_error(&Error::Invalid("decision must be approve or deny".into())),
    };
    reply(ops::apps::decide(&state, &actor, &id, &program, approve, d.reason).await.map(|()| json!({"client_id": id, "program": program, "status": if approve { "approved" } else { "denied" }})))
}

#[derive(Deserialize)]
struct AuditQuery {
    target: Option<String>,
    limit: Option<i64>,
}

async fn audit(
    State(state): State<ServiceState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let r = state
        .store
        .read(move |c| scopegate_store::audit::list(c, q.target.as_deref(), limit))
        .await
        .map_err(Error::from);
    reply(r)
}

async fn migration_report(State(state): State<ServiceState>, Admin(actor): Admin) -> Response {
    reply(ops::migrate::report(&state, &actor).await)
}

async fn show_defaults(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Response {
    reply(ops::migrate::defaults(&state, &actor, &id).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Scopes {
    scopes: String,
}

async fn set_defaults(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let b: Scopes = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    reply(ops::migrate::set_defaults(&state, &actor, &id, &b.scopes).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Extension {
    until: Option<String>,
}

async fn set_extension(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    let b: Extension = match body(&bytes) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let until = match b.until.as_deref() {
        None => None,
        Some(d) => {
            match time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")) {
                Ok(d) => Some(d),
                Err(_) => {
                    return admin_error(&Error::Invalid(
                        "until must be a date like 2027-01-31, or null".into(),
                    ))
                }
            }
        }
    };
    reply(ops::migrate::set_extension(&state, &actor, &id, until).await)
}

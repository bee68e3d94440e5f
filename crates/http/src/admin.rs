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

use crate::wire::admin::AdminError;
use scopegate_app::error::Error;
use scopegate_app::ops::apps::AppInput;
use scopegate_app::ops::members::MemberInput;
use scopegate_app::ops::{self, Actor};
use scopegate_app::state::ServiceState;

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
    match axum::body::to_bytes(body, crate::extract::MAX_BODY).await {
        Ok(bytes) => Ok(axum::extract::Request::from_parts(
            parts,
            axum::body::Body::from(bytes),
        )),
        Err(_) => Err(AdminError::too_large().into_response()),
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
    AdminError::new(status, message).into_response()
}

/// The authenticated admin caller.
pub struct Admin(pub Actor);

impl FromRequestParts<ServiceState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServiceState,
    ) -> Result<Self, Self::Rejection> {
        let unauthorized = AdminError::unauthorized;
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
            Err(e) => Err(e.into()),
        }
    }
}

/// What every admin handler answers: a JSON success or the admin error shape.
type Reply = Result<Response, AdminError>;

fn ok(status: StatusCode, v: serde_json::Value) -> Reply {
    Ok((status, Json(v)).into_response())
}

/// 200 with the operation's outcome as JSON, or its error in the admin shape.
fn reply<T: serde::Serialize>(r: Result<T, Error>) -> Reply {
    ok(StatusCode::OK, json!(r?))
}

fn no_content(r: Result<(), Error>) -> Reply {
    r?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, AdminError> {
    serde_json::from_slice(bytes)
        .map_err(|e| AdminError::invalid(format!("the JSON body is invalid: {e}")))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn catalog(State(state): State<ServiceState>, _: Admin) -> Reply {
    ok(StatusCode::OK, json!(*state.catalog))
}

async fn list_members(State(state): State<ServiceState>, _: Admin) -> Reply {
    reply(ops::members::list(&state).await)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewMember {
    email: String,
    password: scopegate_core::Secret,
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
) -> Reply {
    let m: NewMember = body(&bytes)?;
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
    let m = ops::members::create(&state, &actor, input).await?;
    ok(StatusCode::CREATED, json!(m))
}

async fn list_apps(State(state): State<ServiceState>, Admin(actor): Admin) -> Reply {
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

async fn create_app(State(state): State<ServiceState>, Admin(actor): Admin, bytes: Bytes) -> Reply {
    let a: NewApp = body(&bytes)?;
    let input = AppInput {
        name: a.name,
        owner: a.owner,
        organization_id: a.organization_id,
        privacy_policy_url: a.privacy_policy_url,
        logo_url: a.logo_url,
        redirect_uris: a.redirect_uris,
    };
    let made = ops::apps::create(&state, &actor, input).await?;
    ok(
        StatusCode::CREATED,
        json!({"client_id": made.app.client_id, "client_secret": made.client_secret.expose(), "app": made.app}),
    )
}

async fn show_app(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Reply {
    reply(ops::apps::details(&state, &actor, &id).await)
}

async fn delete_app(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Reply {
    no_content(ops::apps::delete(&state, &actor, &id).await)
}

async fn rotate_secret(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Reply {
    let (secret, sid) = ops::apps::rotate_secret(&state, &actor, &id).await?;
    ok(
        StatusCode::CREATED,
        json!({"id": sid, "client_secret": secret.expose()}),
    )
}

async fn delete_secret(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path((id, sid)): Path<(String, String)>,
) -> Reply {
    let Ok(sid) = sid.parse::<i64>() else {
        return Err(AdminError::invalid("the secret id must be a number"));
    };
    no_content(ops::apps::delete_secret(&state, &actor, &id, sid).await)
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
) -> Reply {
    let u: Uri = body(&bytes)?;
    let uri = ops::apps::set_redirect_uri(&state, &actor, &id, &u.uri, true).await?;
    ok(StatusCode::CREATED, json!({"uri": uri}))
}

async fn remove_redirect(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
    Query(u): Query<Uri>,
) -> Reply {
    no_content(
        ops::apps::set_redirect_uri(&state, &actor, &id, &u.uri, false)
            .await
            .map(|_| ()),
    )
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
) -> Reply {
    let Some(cap) = Capability::parse(&cap) else {
        return Err(AdminError::invalid(format!(
            "unknown capability \"{cap}\": use client-credentials, refresh-tokens or native-pkce"
        )));
    };
    let e: Enabled = body(&bytes)?;
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
) -> Reply {
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
) -> Reply {
    no_content(ops::apps::remove_product(&state, &actor, &id, &program).await)
}

async fn reviews(State(state): State<ServiceState>, Admin(actor): Admin) -> Reply {
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
) -> Reply {
    let d: Decision = body(&bytes)?;
    let approve = match d.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(AdminError::invalid("decision must be approve or deny")),
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
    Admin(actor): Admin,
    Query(q): Query<AuditQuery>,
) -> Reply {
    reply(
        scopegate_app::audit::list(&state, &actor, q.target.as_deref(), q.limit.unwrap_or(100))
            .await,
    )
}

async fn migration_report(State(state): State<ServiceState>, Admin(actor): Admin) -> Reply {
    reply(ops::migrate::report(&state, &actor).await)
}

async fn show_defaults(
    State(state): State<ServiceState>,
    Admin(actor): Admin,
    Path(id): Path<String>,
) -> Reply {
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
) -> Reply {
    let b: Scopes = body(&bytes)?;
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
) -> Reply {
    let b: Extension = body(&bytes)?;
    let until = match b.until.as_deref() {
        None => None,
        Some(d) => {
            match time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")) {
                Ok(d) => Some(d),
                Err(_) => {
                    return Err(AdminError::invalid(
                        "until must be a date like 2027-01-31, or null",
                    ))
                }
            }
        }
    };
    reply(ops::migrate::set_extension(&state, &actor, &id, until).await)
}

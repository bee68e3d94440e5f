//! The developer portal: My apps, an app's Settings / Auth / Products tabs, the review queue.
//! Every rule lives in [`scopegate_app::ops::apps`]; these handlers parse, call and render.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use maud::{html, Markup};
use scopegate_core::model::Capability;
use scopegate_core::portal::{ProductStatus, REJECTION_REASONS};
use scopegate_core::Access;

use crate::extract::session::{CsrfForm, CsrfRejection};
use crate::form::Params;
use crate::web::layout::{self, csrf_field, page, with_notice};
use crate::web::session::SignedIn;
use scopegate_app::error::Error;
use scopegate_app::ops::apps::{self as app_ops, AppDetails, AppInput};
use scopegate_app::ops::Actor;
use scopegate_app::state::ServiceState;

pub fn routes() -> Router<ServiceState> {
    Router::new()
        .route("/developers/apps", get(list).post(create))
        .route("/developers/apps/new", get(new_form))
        .route("/developers/apps/{id}", get(settings_tab))
        .route(
            "/developers/apps/{id}/settings",
            get(settings_tab).post(update_settings),
        )
        .route("/developers/apps/{id}/auth", get(auth_tab))
        .route("/developers/apps/{id}/products", get(products_tab))
        .route("/developers/apps/{id}/action", post(app_action))
        .route(
            "/developers/admin/review",
            get(review_queue).post(review_decide),
        )
        .route("/developers/admin/migrations", get(migrations_report))
}

/// A date for people: 2026-11-27.
pub fn date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .map(|d| d.date().to_string())
        .unwrap_or_default()
}

fn actor(s: &SignedIn) -> Actor {
    Actor::Member {
        id: s.member.id.to_string(),
        platform_admin: s.member.platform_admin,
    }
}

#[derive(serde::Deserialize, Default)]
pub struct Notice {
    ok: Option<String>,
    error: Option<String>,
}

fn notices(n: &Notice) -> Markup {
    html! {
        @if let Some(t) = &n.ok { div.notice.ok role="status" { (t) } }
        @if let Some(t) = &n.error { div.notice.error role="alert" { (t) } }
    }
}

/// The error page for a failed operation.
fn failed(e: &Error) -> Response {
    crate::wire::page::failure_page(e)
}

/// GET /developers/apps
async fn list(State(state): State<ServiceState>, s: SignedIn, Query(n): Query<Notice>) -> Response {
    let apps = match app_ops::list(&state, &actor(&s)).await {
        Ok(a) => a,
        Err(e) => return failed(&e),
    };
    let viewer = s.viewer();
    layout::respond(
        StatusCode::OK,
        page(
            "My apps",
            &viewer,
            false,
            html! {
                div.page-head { h1 { "My apps" } a.button href="/developers/apps/new" { "Create app" } }
                (notices(&n))
                @if apps.is_empty() {
                    div.card { p { "You have no apps yet. Create one to get a client ID and request products." } }
                } @else {
                    div.card { table {
                        thead { tr { th { "App" } th { "Client ID" } th { "Created" } } }
                        tbody { @for a in &apps { tr {
                            td { a href={ "/developers/apps/" (a.client_id) "/settings" } { (a.name) } }
                            td { code { (a.client_id) } }
                            td { (date(a.created_at)) }
                        } } }
                    } }
                }
            },
        ),
    )
}

/// The company pages the member may attach an app to: every one for a platform admin, otherwise
/// those on which they hold the administrator role (the rule itself is in `ops::apps::create`).
async fn organizations_for(
    state: &ServiceState,
    s: &SignedIn,
) -> Result<Vec<(i64, String)>, Error> {
    app_ops::attachable_organizations(state, &actor(s)).await
}

fn new_app_form(s: &SignedIn, orgs: &[(i64, String)], error: Option<&str>) -> Markup {
    html! {
        div.card {
            h1 { "Create an app" }
            @if let Some(e) = error { div.notice.error role="alert" { (e) } }
            form method="post" action="/developers/apps" {
                (csrf_field(&s.session.csrf))
                label for="name" { "App name" }
                input #name type="text" name="name" required maxlength="100";
                label for="organization" { "Company page" }
                select #organization name="organization" {
                    option value="" { "None" }
                    @for (id, name) in orgs { option value=(id) { (name) " (urn:li:organization:" (id) ")" } }
                }
                label for="privacy" { "Privacy policy URL" }
                input #privacy type="url" name="privacy_policy_url" placeholder="https://example.com/privacy";
                label for="logo" { "App logo URL" }
                input #logo type="url" name="logo_url" placeholder="https://example.com/logo.png";
                label for="redirect" { "Authorized redirect URL" }
                input #redirect type="url" name="redirect_uri" placeholder="https://example.com/auth/callback";
                p.hint { "Absolute https URLs; http only for 127.0.0.1, [::1] and localhost. You can add more on the Auth tab." }
                div.actions { button type="submit" { "Create app" } a.button.secondary href="/developers/apps" { "Cancel" } }
            }
        }
    }
}

/// GET /developers/apps/new
async fn new_form(State(state): State<ServiceState>, s: SignedIn) -> Response {
    let orgs = match organizations_for(&state, &s).await {
        Ok(o) => o,
        Err(e) => return failed(&e),
    };
    let viewer = s.viewer();
    layout::respond(
        StatusCode::OK,
        page(
            "Create an app",
            &viewer,
            true,
            new_app_form(&s, &orgs, None),
        ),
    )
}

/// POST /developers/apps: creates the app and shows its secret once.
async fn create(
    State(state): State<ServiceState>,
    form: Result<CsrfForm, CsrfRejection>,
) -> Response {
    let CsrfForm { signed_in: s, form } = match form {
        Ok(f) => f,
        Err(r) => return r.returning_to("/developers/apps/new"),
    };
    // A company page that is named but is not an id is refused, never dropped silently.
    let organization_id = match form.get("organization").map(str::trim) {
        None | Some("") => None,
        Some(o) => match o.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return failed(&Error::Invalid(
                    "the company page must be chosen from the list".into(),
                ))
            }
        },
    };
    let input = AppInput {
        name: form.get("name").unwrap_or("").to_string(),
        owner: s.member.id.to_string(),
        organization_id,
        privacy_policy_url: form.get("privacy_policy_url").unwrap_or("").to_string(),
        logo_url: form.get("logo_url").unwrap_or("").to_string(),
        redirect_uris: form
            .get("redirect_uri")
            .map(|u| vec![u.to_string()])
            .unwrap_or_default(),
    };
    let viewer = s.viewer();
    match app_ops::create(&state, &actor(&s), input).await {
        Ok(made) => secret_shown_once(
            StatusCode::CREATED,
            &viewer,
            &ShownOnce {
                title: "App created",
                heading: &format!("{} is ready", made.app.name),
                notice: "scopegate keeps only a hash of it.",
                client_id: &made.app.client_id,
                secret: &made.client_secret,
                next: (
                    &format!("/developers/apps/{}/products", made.app.client_id),
                    "Continue to Products",
                ),
            },
        ),
        Err(e) => {
            let orgs = match organizations_for(&state, &s).await {
                Ok(o) => o,
                Err(read) => return failed(&read),
            };
            layout::respond(
                crate::wire::page::status_of(&e),
                page(
                    "Create an app",
                    &viewer,
                    true,
                    new_app_form(&s, &orgs, Some(&e.public_message())),
                ),
            )
        }
    }
}

fn tabs(d: &AppDetails, on: &str) -> Markup {
    let id = &d.app.client_id;
    html! {
        div.app-head {
            div.logo { (layout::initial(&d.app.name)) }
            div { h1 { (d.app.name) } p.hint { "Client ID " code { (id) } } }
        }
        nav.tabs {
            @for (tab, label) in [("settings", "Settings"), ("auth", "Auth"), ("products", "Products")] {
                a class=[(tab == on).then_some("on")] href={ "/developers/apps/" (id) "/" (tab) } { (label) }
            }
        }
    }
}

async fn load(state: &ServiceState, s: &SignedIn, id: &str) -> Result<AppDetails, Response> {
    app_ops::details(state, &actor(s), id)
        .await
        .map_err(|e| match e {
            Error::NotFound(_) => layout::error_page(
                crate::wire::page::status_of(&e),
                "App not found",
                &e.public_message(),
            ),
            other => failed(&other),
        })
}

async fn tab_page(state: &ServiceState, s: SignedIn, id: &str, tab: &str, n: &Notice) -> Response {
    let d = match load(state, &s, id).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    let viewer = s.viewer();
    let body = match tab {
        "auth" => auth_body(state, &s, &d),
        "products" => products_body(state, &s, &d),
        _ => settings_body(&s, &d),
    };
    layout::respond(
        StatusCode::OK,
        page(
            &d.app.name,
            &viewer,
            false,
            html! { (tabs(&d, tab)) (notices(n)) (body) },
        ),
    )
}

async fn settings_tab(
    State(state): State<ServiceState>,
    s: SignedIn,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    tab_page(&state, s, &id, "settings", &n).await
}
async fn auth_tab(
    State(state): State<ServiceState>,
    s: SignedIn,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    tab_page(&state, s, &id, "auth", &n).await
}
async fn products_tab(
    State(state): State<ServiceState>,
    s: SignedIn,
    Path(id): Path<String>,
    Query(n): Query<Notice>,
) -> Response {
    tab_page(&state, s, &id, "products", &n).await
}

fn action_form(
    s: &SignedIn,
    id: &str,
    action: &str,
    fields: &[(&str, &str)],
    label: &str,
    class: &str,
) -> Markup {
    html! {
        form.inline method="post" action={ "/developers/apps/" (id) "/action" } {
            (csrf_field(&s.session.csrf))
            input type="hidden" name="action" value=(action);
            @for (k, v) in fields { input type="hidden" name=(k) value=(v); }
            button class=(class) type="submit" { (label) }
        }
    }
}

fn settings_body(s: &SignedIn, d: &AppDetails) -> Markup {
    let a = &d.app;
    html! {
        div.card {
            h2 { "App settings" }
            form method="post" action={ "/developers/apps/" (a.client_id) "/settings" } {
                (csrf_field(&s.session.csrf))
                label for="name" { "App name" }
                input #name type="text" name="name" value=(a.name) required maxlength="100";
                label for="privacy" { "Privacy policy URL" }
                input #privacy type="url" name="privacy_policy_url" value=(a.privacy_policy_url);
                label for="logo" { "App logo URL" }
                input #logo type="url" name="logo_url" value=(a.logo_url);
                p.hint { "Company page: " @match a.organization_id { Some(o) => code { "urn:li:organization:" (o) }, None => "none" } }
                div.actions { button type="submit" { "Save" } }
            }
        }
        div.card {
            h2 { "Platform capabilities" }
            p.hint { "Switched on by the platform, never self-service." }
            table { tbody {
                @for cap in Capability::ALL { tr {
                    td { code { (cap.as_str()) } }
                    td { @if a.has(cap) { span.badge.approved { "Enabled" } } @else { span.badge { "Off" } } }
                    td { @if s.member.platform_admin {
                        @if a.has(cap) { (action_form(s, &a.client_id, "disable", &[("capability", cap.as_str())], "Disable", "secondary")) }
                        @else { (action_form(s, &a.client_id, "enable", &[("capability", cap.as_str())], "Enable", "secondary")) }
                    } }
                } }
            } }
        }
        div.card {
            h2 { "Delete app" }
            p { "Deleting the app revokes every token and grant it holds. This cannot be undone." }
            (action_form(s, &a.client_id, "delete", &[], "Delete this app", "danger"))
        }
    }
}

fn auth_body(state: &ServiceState, s: &SignedIn, d: &AppDetails) -> Markup {
    let a = &d.app;
    let perm = |name: &str| {
        state
            .catalog
            .permission(name)
            .map(|p| p.description.clone())
            .unwrap_or_default()
    };
    html! {
        div.card {
            h2 { "Application credentials" }
            p { "Client ID " code { (a.client_id) } }
            table {
                thead { tr { th { "Client secret" } th { "Created" } th {} } }
                tbody { @for sec in &d.secrets { tr {
                    td { code { (sec.hint) } }
                    td { (date(sec.created_at)) }
                    td { @if d.secrets.len() > 1 { (action_form(s, &a.client_id, "delete-secret", &[("secret_id", &sec.id.to_string())], "Delete", "danger")) } }
                } } }
            }
            div.actions { (action_form(s, &a.client_id, "rotate", &[], "Generate a new client secret", "secondary")) }
            p.hint { "At most two secrets: the old one keeps working until you delete it." }
        }
        div.card {
            h2 { "Authorized redirect URLs for your app" }
            table { tbody { @for u in &d.redirect_uris { tr {
                td { code { (u) } }
                td { (action_form(s, &a.client_id, "remove-redirect", &[("redirect_uri", u)], "Remove", "secondary")) }
            } } } }
            form method="post" action={ "/developers/apps/" (a.client_id) "/action" } {
                (csrf_field(&s.session.csrf))
                input type="hidden" name="action" value="add-redirect";
                label for="redirect" { "Add a redirect URL" }
                input #redirect type="url" name="redirect_uri" required placeholder="https://example.com/auth/callback";
                div.actions { button type="submit" { "Add" } }
            }
        }
        div.card {
            h2 { "OAuth 2.0 scopes" }
            p.hint { "What your approved products let you request." }
            @if d.permissions.member.is_empty() && d.permissions.application.is_empty() && d.permissions.auto_granted.is_empty() {
                p.empty { "No scopes yet: add a product on the Products tab." }
            }
            table {
                thead { tr { th { "Scope" } th { "Flow" } th { "Description" } } }
                tbody {
                    @for p in &d.permissions.member { tr { td { code { (p) } } td { "Member (3-legged)" } td { (perm(p)) } } }
                    @for p in &d.permissions.application { tr { td { code { (p) } } td { "Application (2-legged)" } td { (perm(p)) } } }
                    @for p in &d.permissions.auto_granted { tr { td { code { (p) } } td { span.badge.approved { "Granted automatically" } " do not request" } td { (perm(p)) } } }
                }
            }
        }
    }
}

fn badge(status: ProductStatus) -> Markup {
    let class = match status {
        ProductStatus::Approved => "badge approved",
        ProductStatus::Requested => "badge requested",
        ProductStatus::Denied => "badge denied",
        ProductStatus::Closed => "badge closed",
        ProductStatus::Available => "badge",
    };
    html! { span class=(class) { (status.label()) } }
}

fn products_body(state: &ServiceState, s: &SignedIn, d: &AppDetails) -> Markup {
    let id = &d.app.client_id;
    html! {
        div.card {
            h2 { "Products" }
            p.hint { "Open products are added at once; partner programs are reviewed by the platform." }
            table {
                thead { tr { th { "Product" } th { "Grants" } th { "Status" } th {} } }
                tbody { @for p in &d.products { tr {
                    td { strong { (p.name) } br; span.hint { (p.area) " · " (match p.access { Access::Open => "open", Access::Approval => "needs approval", Access::Closed => "closed" }) } }
                    td { @if p.permissions.is_empty() { span.empty { "No API permissions yet" } } @for perm in &p.permissions { code { (perm) } " " } }
                    td { (badge(p.status)) @if let Some(r) = &p.reason { br; span.hint { (r) } } }
                    td {
                        @match p.status {
                            ProductStatus::Available | ProductStatus::Denied => {
                                @let prereq = state.catalog.program(&p.program_id).map(|pr| pr.prerequisites.clone()).unwrap_or_default();
                                @let met = prereq.is_empty() || d.products.iter().any(|o| prereq.contains(&o.program_id) && o.status == ProductStatus::Approved);
                                (action_form(s, id, "request", &[("program", &p.program_id)], if p.access == Access::Open { "Add product" } else { "Request access" }, "secondary"))
                                @if !met { br; span.hint { "Requires an approved " (prereq.iter().filter_map(|x| state.catalog.program(x).map(|p| p.name.clone())).collect::<Vec<_>>().join(" or ")) } }
                            }
                            ProductStatus::Approved => {
                                (action_form(s, id, "remove", &[("program", &p.program_id)], "Remove", "secondary"))
                            }
                            ProductStatus::Requested => {
                                (action_form(s, id, "remove", &[("program", &p.program_id)], "Withdraw request", "secondary"))
                            }
                            ProductStatus::Closed => { span.hint { "Cannot be requested" } }
                        }
                    }
                } } }
            }
        }
    }
}

/// POST /developers/apps/{id}/settings
async fn update_settings(
    State(state): State<ServiceState>,
    Path(id): Path<String>,
    form: Result<CsrfForm, CsrfRejection>,
) -> Response {
    let here = format!("/developers/apps/{id}/settings");
    let CsrfForm { signed_in: s, form } = match form {
        Ok(f) => f,
        Err(r) => return r.returning_to(&here),
    };
    let r = app_ops::update_settings(
        &state,
        &actor(&s),
        &id,
        form.get("name").unwrap_or(""),
        form.get("privacy_policy_url").unwrap_or(""),
        form.get("logo_url").unwrap_or(""),
    )
    .await;
    match r {
        Ok(()) => with_notice(&here, "ok", "Settings saved."),
        Err(e) => with_notice(&here, "error", &e.public_message()),
    }
}

/// A page that shows a new client secret, the only time it is ever shown.
struct ShownOnce<'a> {
    title: &'a str,
    heading: &'a str,
    notice: &'a str,
    client_id: &'a str,
    secret: &'a scopegate_core::Secret,
    next: (&'a str, &'a str),
}

fn secret_shown_once(status: StatusCode, viewer: &layout::Viewer, p: &ShownOnce) -> Response {
    layout::respond(
        status,
        page(
            p.title,
            viewer,
            true,
            html! {
                div.card {
                    h1 { (p.heading) }
                    div.notice.warn { "Copy the client secret now: it is shown only this once. " (p.notice) }
                    label { "Client ID" }
                    div.plain #client-id { (p.client_id) }
                    label { "Client secret" }
                    div.secret #client-secret { (p.secret.expose()) }
                    div.actions { a.button href=(p.next.0) { (p.next.1) } }
                }
            },
        ),
    )
}

/// The answer to "Generate a new client secret": the secret in this response's page only, never
/// in a URL (a redirect would leave it in the browser's history and the address bar).
async fn rotated(state: &ServiceState, s: &SignedIn, who: &Actor, id: &str) -> Response {
    let back = format!("/developers/apps/{id}/auth");
    match app_ops::rotate_secret(state, who, id).await {
        Ok((secret, _)) => secret_shown_once(
            StatusCode::OK,
            &s.viewer(),
            &ShownOnce {
                title: "New client secret",
                heading: "New client secret",
                notice: "The previous secret keeps working until you delete it.",
                client_id: id,
                secret: &secret,
                next: (&back, "Back to Auth"),
            },
        ),
        Err(e) => with_notice(&back, "error", &e.public_message()),
    }
}

/// The small buttons' actions, parsed once from the posted form (its `action` field and the
/// fields that action needs); a form that names no known action, or lacks a field, is refused
/// here with a typed error before any operation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
enum AppAction {
    Rotate,
    DeleteSecret(i64),
    AddRedirect(String),
    RemoveRedirect(String),
    Request(String),
    Remove(String),
    Capability(Capability, bool),
    Delete,
}

/// Why a posted action was refused before it ran.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum ActionRefused {
    #[error("unknown action")]
    UnknownAction,
    #[error("no secret was named")]
    NoSecret,
    #[error("unknown capability")]
    UnknownCapability,
}

impl ActionRefused {
    /// The tab the refusal lands on: the one whose button sent the form.
    fn tab(&self) -> &'static str {
        match self {
            ActionRefused::NoSecret => "auth",
            ActionRefused::UnknownAction | ActionRefused::UnknownCapability => "settings",
        }
    }
}

impl AppAction {
    /// Parses the posted form's `action` and the fields it needs.
    fn parse(form: &Params) -> Result<AppAction, ActionRefused> {
        let field = |name: &str| form.get(name).unwrap_or("").to_string();
        let capability = |on: bool| {
            form.get("capability")
                .and_then(Capability::parse)
                .map(|cap| AppAction::Capability(cap, on))
                .ok_or(ActionRefused::UnknownCapability)
        };
        Ok(match form.get("action").unwrap_or("") {
            "rotate" => AppAction::Rotate,
            "delete-secret" => AppAction::DeleteSecret(
                form.get("secret_id")
                    .and_then(|v| v.parse().ok())
                    .ok_or(ActionRefused::NoSecret)?,
            ),
            "add-redirect" => AppAction::AddRedirect(field("redirect_uri")),
            "remove-redirect" => AppAction::RemoveRedirect(field("redirect_uri")),
            "request" => AppAction::Request(field("program")),
            "remove" => AppAction::Remove(field("program")),
            "enable" => capability(true)?,
            "disable" => capability(false)?,
            "delete" => AppAction::Delete,
            _ => return Err(ActionRefused::UnknownAction),
        })
    }

    /// The tab the answer lands on.
    fn tab(&self) -> &'static str {
        match self {
            AppAction::Rotate
            | AppAction::DeleteSecret(_)
            | AppAction::AddRedirect(_)
            | AppAction::RemoveRedirect(_) => "auth",
            AppAction::Request(_) | AppAction::Remove(_) => "products",
            AppAction::Capability(..) | AppAction::Delete => "settings",
        }
    }
}

/// Runs one action that answers with a notice on its tab; `Rotate` and `Delete` answer
/// otherwise (see `app_action`).
async fn run_action(
    state: &ServiceState,
    who: &Actor,
    id: &str,
    action: &AppAction,
) -> Result<String, Error> {
    match action {
        AppAction::DeleteSecret(sid) => app_ops::delete_secret(state, who, id, *sid)
            .await
            .map(|()| "Secret deleted.".to_string()),
        AppAction::AddRedirect(uri) => app_ops::set_redirect_uri(state, who, id, uri, true)
            .await
            .map(|u| format!("Added {u}.")),
        AppAction::RemoveRedirect(uri) => app_ops::set_redirect_uri(state, who, id, uri, false)
            .await
            .map(|u| format!("Removed {u}.")),
        AppAction::Request(program) => {
            app_ops::request_product(state, who, id, program)
                .await
                .map(|st| match st {
                    scopegate_core::model::RequestStatus::Approved => "Product added.".to_string(),
                    _ => "Access requested. A platform admin will review it.".to_string(),
                })
        }
        AppAction::Remove(program) => {
            app_ops::remove_product(state, who, id, program)
                .await
                .map(|()| {
                    "Product removed. Its permissions are gone from the app and its tokens."
                        .to_string()
                })
        }
        AppAction::Capability(cap, on) => app_ops::set_capability(state, who, id, *cap, *on)
            .await
            .map(|()| {
                let done = if *on { "enabled" } else { "disabled" };
                format!("{} {done}.", cap.as_str())
            }),
        AppAction::Rotate | AppAction::Delete => Err(Error::Internal(
            "an action that answers with its own page".into(),
        )),
    }
}

/// POST /developers/apps/{id}/action: one endpoint for the small buttons.
async fn app_action(
    State(state): State<ServiceState>,
    Path(id): Path<String>,
    form: Result<CsrfForm, CsrfRejection>,
) -> Response {
    let settings = format!("/developers/apps/{id}/settings");
    let CsrfForm { signed_in: s, form } = match form {
        Ok(f) => f,
        Err(r) => return r.returning_to(&settings),
    };
    let who = actor(&s);
    let action = match AppAction::parse(&form) {
        Ok(a) => a,
        Err(refused) => {
            let here = format!("/developers/apps/{id}/{}", refused.tab());
            return with_notice(&here, "error", &refused.to_string());
        }
    };
    let here = format!("/developers/apps/{id}/{}", action.tab());
    match action {
        AppAction::Rotate => rotated(&state, &s, &who, &id).await,
        AppAction::Delete => match app_ops::delete(&state, &who, &id).await {
            Ok(()) => with_notice(
                "/developers/apps",
                "ok",
                "App deleted. Its grants and tokens are revoked.",
            ),
            Err(e) => with_notice(&settings, "error", &e.public_message()),
        },
        _ => match run_action(&state, &who, &id, &action).await {
            Ok(msg) => with_notice(&here, "ok", &msg),
            Err(e) => with_notice(&here, "error", &e.public_message()),
        },
    }
}

/// GET /developers/admin/review
async fn review_queue(
    State(state): State<ServiceState>,
    s: SignedIn,
    Query(n): Query<Notice>,
) -> Response {
    let queue = match app_ops::review_queue(&state, &actor(&s)).await {
        Ok(q) => q,
        Err(e) => return failed(&e),
    };
    let mut rows = Vec::new();
    for r in &queue {
        // A request outlives nothing it names, but a member may have gone: only "not found"
        // falls back; a failed read is the error page.
        let app = match app_ops::get(&state, &r.client_id).await {
            Ok(a) => Some(a),
            Err(Error::NotFound(_)) => None,
            Err(e) => return failed(&e),
        };
        // Show who asked by name, not by internal id.
        let who = match r.requested_by.strip_prefix("member:") {
            Some(id) => match scopegate_app::ops::members::find(&state, id).await {
                Ok(m) => format!("{} ({})", m.full_name(), m.email),
                Err(Error::NotFound(_)) => r.requested_by.clone(),
                Err(e) => return failed(&e),
            },
            None => r.requested_by.clone(),
        };
        rows.push((r.clone(), app, who));
    }
    let viewer = s.viewer();
    layout::respond(
        StatusCode::OK,
        page(
            "Review queue",
            &viewer,
            false,
            html! {
                h1 { "Partner program review queue" }
                (notices(&n))
                @if rows.is_empty() { div.card { p { "Nothing is waiting for review." } } }
                @for (r, app, who) in &rows {
                    div.card {
                        h2 { (app.as_ref().map(|a| a.name.clone()).unwrap_or_default()) " → " (state.catalog.program(&r.program_id).map(|p| p.name.clone()).unwrap_or_else(|| r.program_id.clone())) }
                        p.hint { "App " code { (r.client_id) } " · requested " (date(r.requested_at)) " by " (who) }
                        form method="post" action="/developers/admin/review" {
                            (csrf_field(&s.session.csrf))
                            input type="hidden" name="client_id" value=(r.client_id);
                            input type="hidden" name="program" value=(r.program_id);
                            label for={ "reason-" (r.client_id) (r.program_id) } { "Reason (for a denial)" }
                            select id={ "reason-" (r.client_id) (r.program_id) } name="reason" {
                                option value="" { "Choose a reason…" }
                                @for reason in REJECTION_REASONS { option value=(reason) { (reason) } }
                            }
                            label for={ "other-" (r.client_id) (r.program_id) } { "Or your own words" }
                            input id={ "other-" (r.client_id) (r.program_id) } type="text" name="reason_text" maxlength="500";
                            div.actions {
                                button type="submit" name="decision" value="approve" { "Approve" }
                                button.danger type="submit" name="decision" value="deny" { "Deny" }
                            }
                        }
                    }
                }
            },
        ),
    )
}

/// POST /developers/admin/review
async fn review_decide(
    State(state): State<ServiceState>,
    form: Result<CsrfForm, CsrfRejection>,
) -> Response {
    let CsrfForm { signed_in: s, form } = match form {
        Ok(f) => f,
        Err(r) => return r.returning_to("/developers/admin/review"),
    };
    let approve = form.get("decision") == Some("approve");
    let reason = form
        .get("reason_text")
        .or(form.get("reason"))
        .map(str::to_string);
    let client_id = form.get("client_id").unwrap_or("").to_string();
    let program = form.get("program").unwrap_or("").to_string();
    match app_ops::decide(&state, &actor(&s), &client_id, &program, approve, reason).await {
        Ok(()) => {
            let program_name = state
                .catalog
                .program(&program)
                .map(|p| p.name.clone())
                .unwrap_or(program.clone());
            let verb = if approve { "Approved" } else { "Denied" };
            with_notice(
                "/developers/admin/review",
                "ok",
                &format!("{verb} {program_name} for app {client_id}."),
            )
        }
        Err(e) => with_notice("/developers/admin/review", "error", &e.public_message()),
    }
}

/// GET /developers/admin/migrations: apps still on deprecated permissions or default scopes.
async fn migrations_report(State(state): State<ServiceState>, s: SignedIn) -> Response {
    let rows = match scopegate_app::ops::migrate::report(&state, &actor(&s)).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let viewer = s.viewer();
    layout::respond(
        StatusCode::OK,
        page(
            "Permission migrations",
            &viewer,
            false,
            html! {
                h1 { "Permission migrations" }
                p.lede { "Apps whose members still hold deprecated permissions, or that rely on default scopes under an extension." }
                @if rows.is_empty() {
                    div.card { p { "Every app is on current permissions. Nothing to migrate." } }
                } @else {
                    div.card { table {
                        thead { tr { th { "App" } th { "Deprecated permissions held" } th { "Members to re-authorize" } th { "Default scopes" } } }
                        tbody { @for r in &rows { tr {
                            td { strong { (r.name) } br; code { (r.client_id) } }
                            td { @if r.deprecated_permissions.is_empty() { span.empty { "none" } } @for p in &r.deprecated_permissions { code { (p) } " " } }
                            td { (r.members_to_reauthorize) }
                            td { @if r.default_scopes.is_empty() { span.empty { "none" } } @else {
                                @for p in &r.default_scopes { code { (p) } " " }
                                br; span.hint { "extension until " (r.extension_until.clone().unwrap_or_default()) }
                            } }
                        } } }
                    } }
                }
                p.hint { "Plan an app's new scope string with " code { "scopegate migrate plan" } ", find old permissions in its code with " code { "scopegate migrate scan" } ", and verify the migration with " code { "scopegate migrate tokens --issued-before" } "." }
            },
        ),
    )
}

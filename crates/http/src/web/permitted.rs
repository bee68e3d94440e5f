//! Permitted services: the apps a member authorized, and revoking them.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use scopegate_app::grants::{self, Permitted};

use crate::extract::session::{CsrfForm, CsrfRejection};
use crate::web::layout::{self, csrf_field, page, to_login};
use crate::web::session::{self, SignedIn};
use crate::wire::page::PageError;
use scopegate_app::state::ServiceState;

/// GET /psettings/permitted-services
pub async fn page_handler(
    state: &ServiceState,
    headers: &HeaderMap,
    notice: Option<&str>,
) -> Response {
    let s = match session::current(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login(HERE),
        Err(e) => return crate::wire::page::failure_page(&e),
    };
    match render(state, &s, notice).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

const HERE: &str = "/psettings/permitted-services";

async fn render(
    state: &ServiceState,
    s: &SignedIn,
    notice: Option<&str>,
) -> Result<Response, PageError> {
    // An outage is not "no apps": the member would think nothing can reach their account.
    let rows = grants::of_member(state, &s.member.id).await.map_err(|e| {
        PageError::unavailable(
            "permitted services: reading the grants",
            &e,
            "Your permitted services could not be read. Please try again in a moment.",
        )
    })?;
    let viewer = s.viewer();
    Ok(layout::respond(
        StatusCode::OK,
        page(
            "Permitted services",
            &viewer,
            false,
            html! {
                h1 { "Permitted services" }
                p.lede { "Apps you allowed to access some of your data. You can stop access at any time." }
                @if let Some(n) = notice { div.notice.ok role="status" { (n) } }
                @if rows.is_empty() {
                    div.card { p { "You have not allowed any app to access your account." } }
                }
                @for Permitted { grant: g, app: a } in &rows {
                    div.card {
                        div.app-head {
                            div.logo { (layout::initial(&a.name)) }
                            div { h2 { (a.name) } p.hint { "Allowed " (crate::web::portal::date(g.updated_at)) } }
                        }
                        p { "You have granted the following access to the service:" }
                        ul.consents {
                            @for scope in g.scopes.iter() {
                                li { (state.catalog.permission(scope).and_then(|p| p.consent.clone()).unwrap_or_else(|| scope.to_string())) }
                            }
                        }
                        form method="post" action="/psettings/permitted-services/revoke" {
                            (csrf_field(&s.session.csrf))
                            input type="hidden" name="client_id" value=(a.client_id);
                            button.danger type="submit" { "Remove access for " (a.name) }
                        }
                    }
                }
            },
        ),
    ))
}

#[derive(serde::Deserialize)]
pub struct Notice {
    ok: Option<String>,
}

pub async fn show(
    State(state): State<ServiceState>,
    headers: HeaderMap,
    axum::extract::Query(n): axum::extract::Query<Notice>,
) -> Response {
    page_handler(&state, &headers, n.ok.as_deref()).await
}

/// POST /psettings/permitted-services/revoke: revokes the grant and all its tokens at once.
pub async fn revoke(
    State(state): State<ServiceState>,
    form: Result<CsrfForm, CsrfRejection>,
) -> Response {
    let CsrfForm { signed_in, form } = match form {
        Ok(f) => f,
        Err(r) => return r.returning_to(HERE),
    };
    let Some(client_id) = form.get("client_id") else {
        return layout::error_page(StatusCode::BAD_REQUEST, "Invalid form", "No app was named.");
    };
    let revoked = match grants::revoke(&state, &signed_in.member.id, client_id).await {
        Ok(r) => r,
        Err(e) => {
            // The app may still have access: say so, never "it had none".
            tracing::error!(error = %e, "permitted services: revoking the grant failed");
            return layout::error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Access not removed",
                "The app's access could not be removed: its tokens may still work. Please try again in a moment.",
            );
        }
    };
    let notice = if revoked {
        "Access removed. The app's tokens for your account no longer work."
    } else {
        "That app had no access."
    };
    // Post/redirect/get: reloading the page must not send the form again.
    layout::with_notice(HERE, "ok", notice)
}

//! Permitted services: the apps a member authorized, and revoking them.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::html;
use scopegate_store::{apps, tokens};

use crate::form::Params;
use crate::state::ServiceState;
use crate::web::layout::{self, csrf_field, page, to_login};
use crate::web::session;

/// GET /psettings/permitted-services
pub async fn page_handler(
    state: &ServiceState,
    headers: &HeaderMap,
    notice: Option<&str>,
) -> Response {
    let s = match session::current(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login("/psettings/permitted-services"),
        Err(e) => return layout::failure_page(&e),
    };
    let member_id = s.member.id.clone();
    let rows = state
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for g in tokens::grants_of_member(c, &member_id)? {
                if let Some(a) = apps::get(c, &g.client_id)? {
                    out.push((g, a));
                }
            }
            Ok(out)
        })
        .await;
    // An outage is not "no apps": the member would think nothing can reach their account.
    let rows = match rows {
        Ok(r) => r,
        Err(e) => {
            return layout::unavailable_page(
                "permitted services: reading the grants",
                &e,
                "Your permitted services could not be read. Please try again in a moment.",
            );
        }
    };
    let viewer = s.viewer();
    layout::respond(
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
                @for (g, a) in &rows {
                    div.card {
                        div.app-head {
                            div.logo { (layout::initial(&a.name)) }
                            div { h2 { (a.name) } p.hint { "Allowed " (crate::web::portal::date(g.updated_at)) } }
                        }
                        p { "You have granted the following access to the service:" }
                        ul.consents {
                            @for scope in g.scopes.split(',').filter(|s| !s.is_empty()) {
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
    )
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
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let s = match session::current(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return to_login("/psettings/permitted-services"),
        Err(e) => return layout::failure_page(&e),
    };
    let form = std::str::from_utf8(&body)
        .ok()
        .and_then(|b| Params::parse(b).ok())
        .unwrap_or_default();
    if !session::csrf_ok(&s, form.get("csrf")) {
        return layout::error_page(
            StatusCode::FORBIDDEN,
            "Invalid form",
            "The form expired. Reload the page and try again.",
        );
    }
    let Some(client_id) = form.get("client_id").map(str::to_string) else {
        return layout::error_page(StatusCode::BAD_REQUEST, "Invalid form", "No app was named.");
    };
    let member_id = s.member.id.clone();
    let now = state.now();
    let cid = client_id.clone();
    let actor = format!("member:{member_id}");
    let revoked = state
        .store
        .write(move |c| {
            let done = tokens::revoke_grant(c, &cid, &member_id, now)?;
            if done {
                scopegate_store::audit::record(
                    c,
                    now,
                    &actor,
                    "grant.revoke",
                    &cid,
                    "Permitted services",
                )?;
            }
            Ok(done)
        })
        .await;
    let revoked = match revoked {
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
    layout::with_notice("/psettings/permitted-services", "ok", notice)
}

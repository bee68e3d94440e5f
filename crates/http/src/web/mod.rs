//! Server-rendered pages: sign-in, consent, Permitted services, the developer portal. They work
//! without JavaScript; every form carries a CSRF token.

pub mod layout;
pub mod permitted;
pub mod portal;
pub mod session;
pub mod signin;

use axum::routing::{get, post};
use axum::Router;

use scopegate_app::state::ServiceState;

/// The page routes.
pub fn routes() -> Router<ServiceState> {
    Router::new()
        .route("/static/scopegate.css", get(layout::stylesheet))
        .route("/static/favicon.svg", get(layout::favicon))
        .route("/favicon.ico", get(layout::favicon))
        .route("/login", get(signin::show).post(signin::submit))
        .route("/logout", post(signin::logout))
        .route("/psettings/permitted-services", get(permitted::show))
        .route(
            "/psettings/permitted-services/revoke",
            post(permitted::revoke),
        )
        .merge(portal::routes())
}

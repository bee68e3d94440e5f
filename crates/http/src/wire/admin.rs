//! The admin API's errors: `{"error": {"status", "message"}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::error::Error;

/// The admin API's error shape: `{"error": {"status", "message"}}`.
pub fn admin_error(e: &Error) -> Response {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        Json(json!({"error": {"status": status.as_u16(), "message": e.public_message()}})),
    )
        .into_response()
}

//! The LinkedIn-shaped sandbox API under /v2 and /rest: reads the request, has it enforced by the
//! route table (the same evaluation as the decision API and forward-auth), runs the allowed
//! route's action in the application layer ([`scopegate_app::sandbox`]) and answers in LinkedIn's
//! format.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_app::sandbox::{self, Answer, ApiVersion, SandboxError};

use crate::enforce::{denial_error, evaluate, method_headers_agree, restli_method, Call};
use crate::extract::bearer::Presented;
use crate::wire::ApiError;
use scopegate_app::state::ServiceState;

/// Any /v2 or /rest call the router did not answer otherwise.
pub async fn handle(
    State(state): State<ServiceState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Presented(token): Presented,
    body: Bytes,
) -> Response {
    if !state.sandbox {
        return ApiError::not_found("Resource not found").into_response();
    }
    let version = match version_rule(&state, uri.path(), &headers) {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let call = Call {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        token,
        body: if body.is_empty() { None } else { Some(&body) },
        version: version.clone(),
    };
    let verdict = match evaluate(&state, call).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let keyed = verdict.route.keyed();
    if let Err(e) = method_headers_agree(&headers, method.as_str(), uri.query(), keyed) {
        return e.into_response();
    }
    let restli = restli_method(
        method.as_str(),
        headers.get("x-restli-method").and_then(|v| v.to_str().ok()),
        uri.query(),
        keyed,
    );
    let denied = |d| denial_error(&state, &verdict.route, &restli, version.as_deref(), d);
    if let Err(d) = &verdict.result {
        return denied(d).into_response();
    }
    match sandbox::run(&state, &verdict, uri.query(), &body).await {
        Ok(answer) => answered(answer),
        Err(SandboxError::Refused(d)) => denied(&d).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The `LinkedIn-Version` a call names. On /rest it is required, once, and must be active in
/// the deployment's version table (LinkedIn's window by default); /v2 is unversioned and only
/// names it in its 403 messages when sent.
fn version_rule(
    state: &ServiceState,
    path: &str,
    headers: &HeaderMap,
) -> Result<Option<String>, ApiError> {
    let mut sent = headers.get_all("linkedin-version").iter();
    let first = sent.next();
    if !path.starts_with("/rest/") {
        return Ok(first.and_then(|v| v.to_str().ok()).map(str::to_string));
    }
    let Some(raw) = first else {
        return Err(ApiError::version_missing());
    };
    if sent.next().is_some() {
        return Err(ApiError::bad_request("LinkedIn-Version is repeated"));
    }
    let raw = raw
        .to_str()
        .map_err(|_| ApiError::nonexistent_version())?
        .trim();
    match ApiVersion::parse(raw) {
        Some(v) if state.config.api_versions.is_active(&v, state.now()) => {
            Ok(Some(raw.to_string()))
        }
        Some(v) => Err(ApiError::version_not_active(&format!("{}01", v.name()))),
        // A malformed version is named only when short enough to be one.
        None if raw.len() <= 16 => Err(ApiError::version_not_active(raw)),
        None => Err(ApiError::nonexistent_version()),
    }
}

/// LinkedIn's answer: a create is 201 with an empty body and the new id in `x-restli-id` (its
/// client reads `entity_id` from there); a change is 204; a read is the JSON.
fn answered(answer: Answer) -> Response {
    match answer {
        Answer::Created { urn, location } => {
            let mut res = StatusCode::CREATED.into_response();
            if let (Ok(id), Ok(at)) = (
                HeaderValue::from_str(&urn),
                HeaderValue::from_str(&location),
            ) {
                res.headers_mut().insert("x-restli-id", id);
                res.headers_mut().insert(header::LOCATION, at);
            }
            res
        }
        Answer::Done => StatusCode::NO_CONTENT.into_response(),
        Answer::Body(v) => Json(v).into_response(),
    }
}

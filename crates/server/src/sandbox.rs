//! The LinkedIn-shaped sandbox API under /v2 and /rest. Every call is enforced by the route
//! table (the same evaluation as the decision API and forward-auth); an allowed call runs the
//! route's action, which stores what it is given or reads what scopegate holds: nothing is canned
//! but LinkedIn's reference lists (targeting facets).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use scopegate_core::catalog::ResourceType;
use scopegate_core::enforce::Target;
use scopegate_core::model::urn;
use scopegate_store::{members, sandbox};
use serde_json::{json, Value};

use crate::enforce::{denial_error, evaluate, Call, Verdict};
use crate::oidc::{bearer, pairwise_sub};
use crate::state::AppState;
use crate::wire::ApiError;

/// Any /v2 or /rest call the router did not answer otherwise.
pub async fn handle(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !state.sandbox {
        return ApiError::not_found("Resource not found").into_response();
    }
    let version = headers
        .get("linkedin-version")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if uri.path().starts_with("/rest/")
        && version.as_deref().is_some_and(|v| {
            !(v.len() == 6 || v.len() == 9) || !v.chars().all(|c| c.is_ascii_digit() || c == '.')
        })
    {
        return ApiError {
            status: StatusCode::from_u16(426).unwrap_or(StatusCode::BAD_REQUEST),
            service_error_code: 426,
            code: Some("NONEXISTENT_VERSION"),
            message: "Requested version is not active".into(),
            challenge: None,
        }
        .into_response();
    }
    let call = Call {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query(),
        token: bearer(&headers),
        body: if body.is_empty() { None } else { Some(&body) },
        version: version.clone(),
    };
    let verdict = match evaluate(&state, call).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    if let Err(d) = &verdict.result {
        let restli = crate::enforce::restli_method(
            method.as_str(),
            headers.get("x-restli-method").and_then(|v| v.to_str().ok()),
            uri.query(),
            !verdict.params.is_empty(),
        );
        return denial_error(&state, &verdict.route, &restli, version.as_deref(), d)
            .into_response();
    }
    match run(&state, &verdict, uri.query(), &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn internal(e: scopegate_store::StoreError) -> ApiError {
    tracing::error!(error = %e, "sandbox: store failed");
    ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        service_error_code: 500,
        code: None,
        message: "Internal error".into(),
        challenge: None,
    }
}

fn param(v: &Verdict, name: &str) -> Option<String> {
    v.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

fn target_string(t: &Option<Target>) -> Option<String> {
    match t {
        Some(Target::Resource(rt, id)) => Some(urn(*rt, *id)),
        Some(Target::Person(p)) => Some(format!("urn:li:person:{p}")),
        None => None,
    }
}

fn collection_urn(collection: &str, id: i64) -> String {
    match collection {
        "posts" => format!("urn:li:share:{id}"),
        "adCampaigns" => format!("urn:li:sponsoredCampaign:{id}"),
        other => format!("urn:li:{other}:{id}"),
    }
}

fn paged(elements: Vec<Value>) -> Value {
    let n = elements.len();
    json!({"elements": elements, "paging": {"start": 0, "count": n, "total": n, "links": []}})
}

async fn run(
    state: &AppState,
    v: &Verdict,
    query: Option<&str>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let action = v.route.action.clone().unwrap_or_default();
    let token = v.token.as_ref().ok_or_else(ApiError::invalid_token)?;
    let client_id = token.client_id.clone();
    let member_id = token.member_id.clone();
    let mut parts = action.splitn(3, ':');
    let (verb, collection) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("").to_string(),
    );
    let now = state.now();
    match verb {
        "create" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|_| ApiError::bad_request("the body must be a JSON object"))?;
            if !doc.is_object() {
                return Err(ApiError::bad_request("the body must be a JSON object"));
            }
            let target = target_string(&v.target);
            let o = sandbox::Object {
                id: 0,
                collection: collection.clone(),
                client_id,
                member_id,
                target,
                body: String::new(),
                created_at: now,
            };
            let stored_doc = doc.clone();
            let id = state
                .store
                .write(move |c| {
                    let mut o = o.clone();
                    o.body = stored_doc.to_string();
                    sandbox::create(c, &o)
                })
                .await
                .map_err(internal)?;
            let id_urn = collection_urn(&collection, id);
            // LinkedIn answers a create with 201, an empty body and the new id in x-restli-id
            // (its client reads `entity_id` from there).
            let mut res = StatusCode::CREATED.into_response();
            if let Ok(h) = HeaderValue::from_str(&id_urn) {
                res.headers_mut().insert("x-restli-id", h.clone());
                res.headers_mut().insert(
                    header::LOCATION,
                    HeaderValue::from_str(&format!("{}/{}", v.route.path, id)).unwrap_or(h),
                );
            }
            Ok(res)
        }
        "get" => {
            let raw = param(v, "id").unwrap_or_default();
            let id: i64 = raw
                .rsplit(':')
                .next()
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| ApiError::not_found("no such entity"))?;
            let c2 = collection.clone();
            let o = state
                .store
                .read(move |c| sandbox::get(c, &c2, id))
                .await
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("no such entity"))?;
            let mut doc: Value = serde_json::from_str(&o.body).unwrap_or(json!({}));
            doc["id"] = json!(collection_urn(&collection, o.id));
            Ok(Json(doc).into_response())
        }
        "list" => {
            let target = target_string(&v.target);
            let c2 = collection.clone();
            let objs = state
                .store
                .read(move |c| sandbox::list(c, &c2, target.as_deref(), 100))
                .await
                .map_err(internal)?;
            let elements = objs
                .iter()
                .map(|o| {
                    let mut d: Value = serde_json::from_str(&o.body).unwrap_or(json!({}));
                    d["id"] = json!(collection_urn(&collection, o.id));
                    d
                })
                .collect();
            Ok(Json(paged(elements)).into_response())
        }
        "update" => {
            let patch: Value = serde_json::from_slice(body)
                .map_err(|_| ApiError::bad_request("the body must be a JSON object"))?;
            let target = target_string(&v.target);
            let o = sandbox::Object {
                id: 0,
                collection: format!("{collection}-updates"),
                client_id,
                member_id,
                target,
                body: patch.to_string(),
                created_at: now,
            };
            state
                .store
                .write(move |c| sandbox::create(c, &o))
                .await
                .map_err(internal)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => computed(state, v, &action, query).await,
    }
}

async fn member(state: &AppState, v: &Verdict) -> Result<scopegate_core::model::Member, ApiError> {
    let id = v
        .token
        .as_ref()
        .and_then(|t| t.member_id.clone())
        .ok_or_else(ApiError::invalid_token)?;
    state
        .store
        .read(move |c| members::by_id(c, &id))
        .await
        .map_err(internal)?
        .ok_or_else(ApiError::invalid_token)
}

/// Actions that answer from what scopegate holds (members, roles, resources).
async fn computed(
    state: &AppState,
    v: &Verdict,
    action: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let client_id = v
        .token
        .as_ref()
        .map(|t| t.client_id.clone())
        .unwrap_or_default();
    let person_of = |m: &str| format!("urn:li:person:{}", pairwise_sub(state, &client_id, m));
    match action {
        "userinfo" | "me" => {
            let m = member(state, v).await?;
            let sub = pairwise_sub(state, &client_id, &m.id);
            Ok(Json(json!({
                "id": sub,
                "localizedFirstName": m.first_name,
                "localizedLastName": m.last_name,
                "localizedHeadline": m.headline,
                "vanityName": m.first_name.to_lowercase(),
            }))
            .into_response())
        }
        "email" => {
            let m = member(state, v).await?;
            Ok(Json(json!({"elements": [{"handle": "urn:li:emailAddress:1", "handle~": {"emailAddress": m.email}}]})).into_response())
        }
        "connections" => {
            // First-degree connections in the sandbox: the members sharing an organization or ad account.
            let m = member(state, v).await?;
            let id = m.id.clone();
            let n = state
                .store
                .read(move |c| {
                    let mine = members::roles_of(c, &id)?;
                    let mut others = std::collections::BTreeSet::new();
                    for r in mine {
                        for a in members::roles_on(c, r.resource_type, r.resource_id)? {
                            if a.member_id != id {
                                others.insert(a.member_id);
                            }
                        }
                    }
                    Ok(others.len())
                })
                .await
                .map_err(internal)?;
            Ok(Json(json!({"firstDegreeSize": n})).into_response())
        }
        "organizationAcls" => {
            let m = member(state, v).await?;
            let only = match &v.target {
                Some(Target::Resource(ResourceType::Organization, id)) => Some(*id),
                _ => None,
            };
            let role_filter = query.and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "role").map(|(_, v)| v.into_owned()));
            let id = m.id.clone();
            let rows = state
                .store
                .read(move |c| match only {
                    Some(org) => members::roles_on(c, ResourceType::Organization, org),
                    None => Ok(members::roles_of(c, &id)?.into_iter().filter(|r| r.resource_type == ResourceType::Organization).collect()),
                })
                .await
                .map_err(internal)?;
            let elements = rows
                .iter()
                .filter(|r| role_filter.as_ref().is_none_or(|f| *f == r.role))
                .map(|r| json!({"roleAssignee": person_of(&r.member_id), "state": "APPROVED", "role": r.role, "organization": urn(ResourceType::Organization, r.resource_id)}))
                .collect();
            Ok(Json(paged(elements)).into_response())
        }
        "organization" => {
            let id: i64 = param(v, "id").and_then(|x| x.rsplit(':').next().and_then(|n| n.parse().ok())).ok_or_else(|| ApiError::not_found("no such organization"))?;
            let org = state.store.read(move |c| members::resource(c, ResourceType::Organization, id)).await.map_err(internal)?.ok_or_else(|| ApiError::not_found("no such organization"))?;
            Ok(Json(json!({"id": org.id, "localizedName": org.name, "$URN": org.urn()})).into_response())
        }
        "adAccount" => {
            let Some(Target::Resource(ResourceType::AdAccount, id)) = v.target else { return Err(ApiError::not_found("no such ad account")) };
            let acc = state.store.read(move |c| members::resource(c, ResourceType::AdAccount, id)).await.map_err(internal)?.ok_or_else(|| ApiError::not_found("no such ad account"))?;
            Ok(Json(json!({"id": acc.id, "name": acc.name, "reference": urn(ResourceType::AdAccount, acc.id), "status": "ACTIVE", "type": "BUSINESS", "currency": "USD"})).into_response())
        }
        "adAccountUsers" => {
            let Some(Target::Resource(ResourceType::AdAccount, id)) = v.target else { return Ok(Json(paged(vec![])).into_response()) };
            let rows = state.store.read(move |c| members::roles_on(c, ResourceType::AdAccount, id)).await.map_err(internal)?;
            let elements = rows.iter().map(|r| json!({"account": urn(ResourceType::AdAccount, id), "user": person_of(&r.member_id), "role": r.role})).collect();
            Ok(Json(paged(elements)).into_response())
        }
        "adAnalytics" => {
            let target = target_string(&v.target).unwrap_or_default();
            let n = state.store.read(move |c| sandbox::count(c, "adCampaigns", &target)).await.map_err(internal)?;
            Ok(Json(paged(vec![json!({"campaigns": n, "impressions": 0, "clicks": 0, "costInLocalCurrency": "0"})])).into_response())
        }
        "targetingFacets" => Ok(Json(paged(
            ["locations", "industries", "seniorities", "titles", "skills", "employers", "degrees", "interfaceLocales", "ageRanges", "genders"]
                .iter()
                .map(|f| json!({"facetName": f, "adTargetingFacetUrn": format!("urn:li:adTargetingFacet:{f}"), "entityTypes": []}))
                .collect(),
        ))
        .into_response()),
        "salesNavigatorProfiles" => {
            // Matched, publicly available member profile information (2-legged).
            let all = state.store.read(members::list).await.map_err(internal)?;
            let elements = all.iter().filter(|m| !m.platform_admin).map(|m| json!({"member": person_of(&m.id), "firstName": m.first_name, "lastName": m.last_name, "headline": m.headline})).collect();
            Ok(Json(paged(elements)).into_response())
        }
        other => Err(ApiError::not_found(format!("the sandbox has no action \"{other}\""))),
    }
}

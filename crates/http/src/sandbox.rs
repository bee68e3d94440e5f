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
use scopegate_core::enforce::{Denial, Target};
use scopegate_core::model::{urn, RoleAssignment};
use scopegate_core::routes::parse_urn;
use scopegate_core::Entropy;
use scopegate_store::sandbox::Owner;
use scopegate_store::{members, sandbox};
use serde_json::{json, Value};

use crate::enforce::{denial_error, evaluate, Call, Verdict};
use crate::oidc::{bearer, pairwise_sub};
use crate::state::ServiceState;
use crate::wire::ApiError;

/// Any /v2 or /rest call the router did not answer otherwise.
pub async fn handle(
    State(state): State<ServiceState>,
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
    if let Err(e) = crate::enforce::method_headers_agree(
        &headers,
        method.as_str(),
        uri.query(),
        !verdict.params.is_empty(),
    ) {
        return e.into_response();
    }
    let restli = crate::enforce::restli_method(
        method.as_str(),
        headers.get("x-restli-method").and_then(|v| v.to_str().ok()),
        uri.query(),
        !verdict.params.is_empty(),
    );
    if let Err(d) = &verdict.result {
        return denial_error(&state, &verdict.route, &restli, version.as_deref(), d)
            .into_response();
    }
    match run(
        &state,
        &verdict,
        uri.query(),
        &body,
        &restli,
        version.as_deref(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// A store failure: 503 when the store cannot answer, 500 for what is broken (the detail logged
/// once by that mapping, never sent), through the app's one mapping.
fn internal(e: scopegate_store::StoreError) -> ApiError {
    ApiError::from(scopegate_app::Error::from(e))
}

/// A stored body that is not JSON is a broken record, not an empty object: answering `{}` (or
/// patching `{}` and writing it back) would lose what was stored.
fn stored_body(o: &sandbox::Object) -> Result<Value, scopegate_store::StoreError> {
    serde_json::from_str(&o.body).map_err(|e| {
        scopegate_store::StoreError::Backend(format!(
            "stored sandbox object {}/{} is not JSON: {e}",
            o.collection, o.id
        ))
    })
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

/// The smallest 19-digit number: ids are as long as LinkedIn's share ids.
const ID_MIN: i64 = 1_000_000_000_000_000_000;

/// A new object id: random (about 62.9 bits, the 19-digit positive i64s LinkedIn's ids are),
/// drawn per object, so no id tells anything of another, in its collection or any other.
fn new_id(entropy: &dyn Entropy) -> i64 {
    let mut b = [0u8; 8];
    entropy.fill(&mut b);
    let span = u64::try_from(i64::MAX - ID_MIN).unwrap_or(u64::MAX);
    let offset = i64::try_from(u64::from_be_bytes(b) % span).unwrap_or(0);
    ID_MIN + offset
}

/// An id from a path segment: the number, or a URN ending in it.
fn object_id(raw: &str) -> Option<i64> {
    raw.rsplit(':').next().and_then(|x| x.parse().ok())
}

/// Roles that may change what an organization or ad account owns when the permission that
/// allowed the call names no roles: the roles of the catalog's w_organization_social and rw_ads
/// (a read-only role such as ANALYST or VIEWER reads, and changes nothing).
const ORGANIZATION_WRITERS: &[&str] = &[
    "ADMINISTRATOR",
    "DIRECT_SPONSORED_CONTENT_POSTER",
    "LEAD_GEN_FORMS_MANAGER",
];
const AD_ACCOUNT_WRITERS: &[&str] = &[
    "ACCOUNT_BILLING_ADMIN",
    "ACCOUNT_MANAGER",
    "CAMPAIGN_MANAGER",
    "CREATIVE_MANAGER",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

/// The caller, as ownership sees it.
#[derive(Debug, Clone)]
struct Caller {
    client_id: String,
    member_id: Option<String>,
    /// The permission that allowed the call, and its roles when it is role-restricted.
    permission: String,
    restriction: Option<(ResourceType, Vec<String>)>,
}

impl Caller {
    fn of(state: &ServiceState, v: &Verdict) -> Result<Caller, ApiError> {
        let token = v.token.as_ref().ok_or_else(ApiError::invalid_token)?;
        let permission = v
            .result
            .as_ref()
            .map(|a| a.permission.clone())
            .unwrap_or_default();
        let restriction = state
            .catalog
            .permission(&permission)
            .and_then(|p| p.role_restriction.as_ref())
            .map(|r| (r.resource, r.roles.clone()));
        Ok(Caller {
            client_id: token.client_id.to_string(),
            member_id: token.member_id.as_deref().map(str::to_string),
            permission,
            restriction,
        })
    }

    /// Who owns what this caller makes for `target`: the app for a 2-legged token; the
    /// organization or ad account it names; otherwise the member, through this app.
    fn owner_for(&self, target: &Option<Target>) -> Owner {
        match (&self.member_id, target) {
            (None, _) => Owner::App {
                client_id: self.client_id.clone(),
            },
            (Some(_), Some(Target::Resource(rt, id))) => Owner::Resource(urn(*rt, *id)),
            (Some(m), _) => Owner::Member {
                client_id: self.client_id.clone(),
                member_id: m.clone(),
            },
        }
    }

    /// The roles on a resource type that allow `access`: the allowing permission's own roles
    /// when it has them; any role to read; the writers' roles to change.
    fn role_allows(&self, rt: ResourceType, role: &str, access: Access) -> bool {
        match (&self.restriction, access) {
            (Some((r, roles)), _) if *r == rt => roles.iter().any(|x| x == role),
            (_, Access::Read) => true,
            (_, Access::Write) => match rt {
                ResourceType::Organization => ORGANIZATION_WRITERS.contains(&role),
                ResourceType::AdAccount => AD_ACCOUNT_WRITERS.contains(&role),
            },
        }
    }

    /// May this caller read (or change) what `owner` owns? `roles` are the caller's roles.
    fn may(&self, owner: &Owner, roles: &[RoleAssignment], access: Access) -> bool {
        match owner {
            Owner::App { client_id } => self.member_id.is_none() && *client_id == self.client_id,
            Owner::Member {
                client_id,
                member_id,
            } => self.member_id.as_ref() == Some(member_id) && *client_id == self.client_id,
            Owner::Resource(u) => {
                let (Some(me), Some((rt, id))) = (&self.member_id, parse_urn(u)) else {
                    return false;
                };
                roles.iter().any(|a| {
                    a.member_id == *me
                        && a.resource_type == rt
                        && a.resource_id == id
                        && self.role_allows(rt, &a.role, access)
                })
            }
            Owner::Nobody => false,
        }
    }

    /// The caller's roles (none for a 2-legged token), read in the caller's transaction.
    fn roles(
        &self,
        c: &mut dyn scopegate_store::Conn,
    ) -> scopegate_store::Result<Vec<RoleAssignment>> {
        match &self.member_id {
            Some(m) => members::roles_of(c, m),
            None => Ok(vec![]),
        }
    }

    /// LinkedIn's 403 for a change to a resource the member holds no writing role on.
    fn refusal(
        &self,
        state: &ServiceState,
        v: &Verdict,
        restli: &str,
        version: Option<&str>,
        owner: &Owner,
    ) -> ApiError {
        let (resource, roles) = match owner {
            Owner::Resource(u) => {
                let roles = match (&self.restriction, parse_urn(u)) {
                    (Some((r, roles)), Some((rt, _))) if *r == rt => roles.clone(),
                    (_, Some((ResourceType::AdAccount, _))) => {
                        AD_ACCOUNT_WRITERS.iter().map(|r| r.to_string()).collect()
                    }
                    _ => ORGANIZATION_WRITERS.iter().map(|r| r.to_string()).collect(),
                };
                (Some(u.clone()), roles)
            }
            _ => (None, vec![]),
        };
        denial_error(
            state,
            &v.route,
            restli,
            version,
            &Denial::RoleMissing {
                permission: self.permission.clone(),
                resource,
                roles,
            },
        )
    }
}

/// The body shown for a stored object: what was stored, with its id.
fn shown(o: &sandbox::Object) -> Result<Value, ApiError> {
    let mut d = stored_body(o).map_err(internal)?;
    d["id"] = json!(collection_urn(&o.collection, o.id));
    Ok(d)
}

/// Fields a partial update may not touch: the id, and the fields that name the owner.
const FIXED_FIELDS: &[&str] = &["id", "author", "account", "owner"];

/// Applies a Rest.li partial update (`{"patch": {"$set": {...}, "$delete": [...]}}`).
fn apply_patch(doc: &mut Value, patch: &Value) -> Result<(), ApiError> {
    let bad = || ApiError::bad_request("the body must be {\"patch\": {\"$set\": {...}}}");
    let p = patch
        .get("patch")
        .and_then(Value::as_object)
        .ok_or_else(bad)?;
    let set = match p.get("$set") {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(bad()),
        None => serde_json::Map::new(),
    };
    let delete: Vec<String> = match p.get("$delete") {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| x.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
        None => vec![],
    };
    if set
        .keys()
        .chain(delete.iter())
        .any(|k| FIXED_FIELDS.contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(
            "a partial update cannot change the id, author, account or owner",
        ));
    }
    let obj = doc.as_object_mut().ok_or_else(bad)?;
    for k in &delete {
        obj.remove(k);
    }
    obj.extend(set);
    Ok(())
}

async fn run(
    state: &ServiceState,
    v: &Verdict,
    query: Option<&str>,
    body: &[u8],
    restli: &str,
    version: Option<&str>,
) -> Result<Response, ApiError> {
    let action = v.route.action.clone().unwrap_or_default();
    let caller = Caller::of(state, v)?;
    let mut parts = action.splitn(3, ':');
    let (verb, collection) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or("").to_string(),
    );
    let now = state.now();
    match verb {
        // "update" records a change to a resource scopegate holds (an organization), as an
        // object its owner may see; "create" stores a new object.
        "create" | "update" => {
            let doc: Value = serde_json::from_slice(body)
                .map_err(|_| ApiError::bad_request("the body must be a JSON object"))?;
            if !doc.is_object() {
                return Err(ApiError::bad_request("the body must be a JSON object"));
            }
            let owner = caller.owner_for(&v.target);
            let o = sandbox::Object {
                id: 0,
                collection: if verb == "update" {
                    format!("{collection}-updates")
                } else {
                    collection.clone()
                },
                owner: owner.clone(),
                client_id: caller.client_id.clone(),
                member_id: caller.member_id.clone(),
                target: target_string(&v.target),
                body: doc.to_string(),
                created_at: now,
            };
            let (entropy, who) = (state.entropy.clone(), caller.clone());
            let id = state
                .store
                .write(move |c| {
                    // Only a member with a writing role there makes an organization's or an ad
                    // account's objects (a permission without roles does not reach them).
                    if !who.may(&o.owner, &who.roles(c)?, Access::Write) {
                        return Ok(None);
                    }
                    // Ids are random: a taken one (about 2^-62 likely) is drawn again.
                    for _ in 0..4 {
                        let o = sandbox::Object {
                            id: new_id(entropy.as_ref()),
                            ..o.clone()
                        };
                        if sandbox::create(c, &o)? {
                            return Ok(Some(o.id));
                        }
                    }
                    Err(scopegate_store::StoreError::Conflict(
                        "no free sandbox id".into(),
                    ))
                })
                .await
                .map_err(internal)?;
            let Some(id) = id else {
                return Err(caller.refusal(state, v, restli, version, &owner));
            };
            if verb == "update" {
                return Ok(StatusCode::NO_CONTENT.into_response());
            }
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
        // A refused read answers exactly as a missing object does, so ids reveal nothing.
        "get" => {
            let id = object_id(&param(v, "id").unwrap_or_default())
                .ok_or_else(|| ApiError::not_found("no such entity"))?;
            let o = state
                .store
                .read(move |c| {
                    let Some(o) = sandbox::get(c, &collection, id)? else {
                        return Ok(None);
                    };
                    let roles = caller.roles(c)?;
                    Ok(caller.may(&o.owner, &roles, Access::Read).then_some(o))
                })
                .await
                .map_err(internal)?
                .ok_or_else(|| ApiError::not_found("no such entity"))?;
            Ok(Json(shown(&o)?).into_response())
        }
        // A finder shows only what the caller may read: the owner its target names, if the
        // caller may read that owner's objects, and nothing else.
        "list" => {
            let target = target_string(&v.target);
            let owner = caller.owner_for(&v.target);
            let objs = state
                .store
                .read(move |c| {
                    if !caller.may(&owner, &caller.roles(c)?, Access::Read) {
                        return Ok(vec![]);
                    }
                    sandbox::list(c, &collection, &owner, target.as_deref(), 100)
                })
                .await
                .map_err(internal)?;
            let shown_all = objs.iter().map(shown).collect::<Result<Vec<_>, _>>()?;
            Ok(Json(paged(shown_all)).into_response())
        }
        // Changes answer 404 for what the caller may not change, as for what does not exist.
        "patch" | "delete" => {
            let id = object_id(&param(v, "id").unwrap_or_default())
                .ok_or_else(|| ApiError::not_found("no such entity"))?;
            let patch: Option<Value> = if verb == "patch" {
                Some(
                    serde_json::from_slice(body)
                        .map_err(|_| ApiError::bad_request("the body must be a JSON object"))?,
                )
            } else {
                None
            };
            let changed = state
                .store
                .write(move |c| {
                    let Some(o) = sandbox::get(c, &collection, id)? else {
                        return Ok(Ok(false));
                    };
                    if !caller.may(&o.owner, &caller.roles(c)?, Access::Write) {
                        return Ok(Ok(false));
                    }
                    match &patch {
                        Some(p) => {
                            let mut doc = stored_body(&o)?;
                            if let Err(e) = apply_patch(&mut doc, p) {
                                return Ok(Err(e));
                            }
                            sandbox::update_body(c, &collection, id, &doc.to_string()).map(Ok)
                        }
                        None => sandbox::delete(c, &collection, id).map(Ok),
                    }
                })
                .await
                .map_err(internal)??;
            if !changed {
                return Err(ApiError::not_found("no such entity"));
            }
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        _ => computed(state, v, &caller, &action, query).await,
    }
}

async fn member(
    state: &ServiceState,
    v: &Verdict,
) -> Result<scopegate_core::model::Member, ApiError> {
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
    state: &ServiceState,
    v: &Verdict,
    caller: &Caller,
    action: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let client_id = v
        .token
        .as_ref()
        .map(|t| t.client_id.to_string())
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
            let (id, who) = (m.id.clone(), caller.clone());
            let rows = state
                .store
                .read(move |c| match only {
                    // An organization's ACL is for those who hold a role on it.
                    Some(org) => {
                        if !who.may(&Owner::Resource(urn(ResourceType::Organization, org)), &who.roles(c)?, Access::Read) {
                            return Ok(vec![]);
                        }
                        members::roles_on(c, ResourceType::Organization, org)
                    }
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
            // Counts only the campaigns of an account the member may read.
            let owner = caller.owner_for(&v.target);
            let who = caller.clone();
            let n = state
                .store
                .read(move |c| match &owner {
                    Owner::Resource(u) if who.may(&owner, &who.roles(c)?, Access::Read) => sandbox::count(c, "adCampaigns", u),
                    _ => Ok(0),
                })
                .await
                .map_err(internal)?;
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

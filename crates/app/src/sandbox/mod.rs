//! The LinkedIn-shaped sandbox API's actions. A call reaches here only once enforcement allowed
//! it ([`crate::enforce`]); its route's action then stores what it is given or reads what
//! scopegate holds: nothing is canned but LinkedIn's reference lists (targeting facets).
//! Ownership is decided here, inside each action's own transaction: nobody reads or changes what
//! they do not own, and a refused read looks exactly like a missing object.

use scopegate_core::catalog::ResourceType;
use scopegate_core::enforce::{Denial, Target};
use scopegate_core::model::{urn, RoleAssignment};
use scopegate_core::routes::parse_urn;
use scopegate_core::Entropy;
use scopegate_store::sandbox::{self, Object, Owner};
use scopegate_store::{members, Conn, StoreError};
use serde_json::{json, Value};

mod computed;
mod marketing;
mod page;
pub use scopegate_core::versions::{ApiVersion, ApiVersions};

use crate::enforce::Verdict;
use crate::state::Service;

/// What an allowed call answers.
#[derive(Debug)]
pub enum Answer {
    /// A new object: its URN (LinkedIn's `x-restli-id`) and the path it can be read at.
    Created { urn: String, location: String },
    /// A change was made; there is nothing to show (LinkedIn's 204).
    Done,
    /// A body to show.
    Body(Value),
}

/// Why an allowed call could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The request's body or key is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// Nothing the caller may see is there (also what a refused read answers).
    #[error("{0}")]
    NotFound(String),
    /// The member holds no role allowing this change on the resource: LinkedIn's 403.
    #[error("role missing")]
    Refused(Denial),
    /// The call needs a member and the token names none that exists.
    #[error("invalid access token")]
    InvalidToken,
    /// The store could not answer (or holds a broken record): never an empty answer.
    #[error(transparent)]
    Failed(#[from] crate::Error),
}

impl From<StoreError> for SandboxError {
    fn from(e: StoreError) -> Self {
        SandboxError::Failed(e.into())
    }
}

type Result<T> = std::result::Result<T, SandboxError>;

/// A stored body that is not JSON is a broken record, not an empty object: answering `{}` (or
/// patching `{}` and writing it back) would lose what was stored.
fn stored_body(o: &Object) -> std::result::Result<Value, StoreError> {
    serde_json::from_str(&o.body).map_err(|e| {
        StoreError::Backend(format!(
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
        "adCampaignGroups" => format!("urn:li:sponsoredCampaignGroup:{id}"),
        other => format!("urn:li:{other}:{id}"),
    }
}

/// A Rest.li collection page of everything found: `start`/`count` from the query.
fn paged(elements: Vec<Value>, query: Option<&str>) -> Result<Answer> {
    Ok(page::Page::of(query)?.answer(elements))
}

/// A query parameter sent at most once, decoded. A repeated or undecodable one is refused: a
/// finder that picked either occurrence (or none) would be guessing what was asked.
fn query_once(query: Option<&str>, name: &str) -> Result<Option<String>> {
    let raw = scopegate_core::restli::raw_param(query, name)
        .map_err(|_| SandboxError::BadRequest(format!("{name} is repeated")))?;
    raw.map(|r| {
        scopegate_core::restli::decode(r)
            .map_err(|e| SandboxError::BadRequest(format!("{name}: {e}")))
    })
    .transpose()
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

/// The key a path names: the number, or a URN ending in it. Missing or unreadable is a miss.
fn key(v: &Verdict) -> Result<i64> {
    param(v, "id")
        .and_then(|raw| raw.rsplit(':').next().and_then(|x| x.parse().ok()))
        .ok_or_else(|| SandboxError::NotFound("no such entity".into()))
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
    /// The route's own narrowing of the permission's roles (the table's `roles`): who may act
    /// on an ad account's data is narrower than everyone `rw_ads` names.
    route_roles: Option<Vec<String>>,
}

impl Caller {
    /// The caller of an allowed call; a verdict without a token or an allow is no caller.
    fn of(state: &Service, v: &Verdict) -> Result<Caller> {
        let token = v.token.as_ref().ok_or(SandboxError::InvalidToken)?;
        let permission = v
            .result
            .as_ref()
            .map(|a| a.permission.clone())
            .map_err(|_| SandboxError::InvalidToken)?;
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
            route_roles: v.route.roles.clone(),
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
        if self
            .route_roles
            .as_ref()
            .is_some_and(|n| !n.iter().any(|x| x == role))
        {
            return false;
        }
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

    /// [`Caller::may`] with the caller's roles read in the caller's transaction (none for a
    /// 2-legged token).
    fn may_in(
        &self,
        c: &mut dyn Conn,
        owner: &Owner,
        access: Access,
    ) -> scopegate_store::Result<bool> {
        let roles = match &self.member_id {
            Some(m) => members::roles_of(c, m)?,
            None => vec![],
        };
        Ok(self.may(owner, &roles, access))
    }

    /// The denial for a change to a resource the member holds no writing role on: it names the
    /// roles that would have allowed it.
    fn refusal(&self, owner: &Owner) -> SandboxError {
        let (resource, roles) = match owner {
            Owner::Resource(u) if self.route_roles.is_some() => (
                Some(u.clone()),
                self.route_roles.clone().unwrap_or_default(),
            ),
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
        SandboxError::Refused(Denial::RoleMissing {
            permission: self.permission.clone(),
            resource,
            roles,
        })
    }
}

/// The body shown for a stored object: what was stored, with its id.
fn shown(o: &Object) -> Result<Value> {
    let mut d = stored_body(o)?;
    d["id"] = json!(collection_urn(&o.collection, o.id));
    Ok(d)
}

/// Fields a partial update may not touch: the id, and the fields that name the owner.
const FIXED_FIELDS: &[&str] = &["id", "author", "account", "owner"];

/// Applies a Rest.li partial update (`{"patch": {"$set": {...}, "$delete": [...]}}`).
fn apply_patch(doc: &mut Value, patch: &Value) -> Result<()> {
    let bad = || SandboxError::BadRequest("the body must be {\"patch\": {\"$set\": {...}}}".into());
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
            .collect::<Result<_>>()?,
        Some(_) => return Err(bad()),
        None => vec![],
    };
    if set
        .keys()
        .chain(delete.iter())
        .any(|k| FIXED_FIELDS.contains(&k.as_str()))
    {
        return Err(SandboxError::BadRequest(
            "a partial update cannot change the id, author, account or owner".into(),
        ));
    }
    let obj = doc.as_object_mut().ok_or_else(bad)?;
    for k in &delete {
        obj.remove(k);
    }
    obj.extend(set);
    Ok(())
}

fn json_object(body: &[u8]) -> Result<Value> {
    let bad = || SandboxError::BadRequest("the body must be a JSON object".into());
    let doc: Value = serde_json::from_slice(body).map_err(|_| bad())?;
    if doc.is_object() {
        Ok(doc)
    } else {
        Err(bad())
    }
}

/// The route's path with the request's path parameters filled in.
fn filled_path(v: &Verdict) -> String {
    v.params.iter().fold(v.route.path.clone(), |p, (k, val)| {
        p.replace(&format!("{{{k}}}"), &scopegate_core::restli::encode(val))
    })
}

/// Runs the action of an allowed call's route (`verb:collection`), with the request's query and
/// body.
pub async fn run(state: &Service, v: &Verdict, query: Option<&str>, body: &[u8]) -> Result<Answer> {
    let action = v.route.action.clone().unwrap_or_default();
    let caller = Caller::of(state, v)?;
    let (verb, collection) = action.split_once(':').unwrap_or((action.as_str(), ""));
    let collection = collection.split(':').next().unwrap_or("").to_string();
    match verb {
        "create" => {
            let id = create(state, v, caller, &collection, body).await?;
            Ok(Answer::Created {
                urn: collection_urn(&collection, id),
                location: format!("{}/{}", filled_path(v), id),
            })
        }
        // "update" records a change to a resource scopegate holds (an organization), as an
        // object its owner may see.
        "update" => {
            create(state, v, caller, &format!("{collection}-updates"), body).await?;
            Ok(Answer::Done)
        }
        "get" => get(state, v, caller, collection).await,
        "list" => list(state, v, caller, collection, query).await,
        // An ad account is a resource scopegate holds, with what members set on it beside.
        "patch" if collection == "adAccounts" => {
            marketing::patch_account(state, v, caller, body).await
        }
        "patch" => {
            let patch = serde_json::from_slice(body)
                .map_err(|_| SandboxError::BadRequest("the body must be a JSON object".into()))?;
            change(state, v, caller, collection, Some(patch)).await
        }
        "delete" => change(state, v, caller, collection, None).await,
        "adAccount" => marketing::get_account(state, v, caller).await,
        "adAccounts" => marketing::accounts(state, caller, query).await,
        "newAdAccount" => marketing::create_account(state, caller, body).await,
        _ => computed::computed(state, v, &caller, &action, query).await,
    }
}

/// Stores a new object and returns its id. Only a member with a writing role there makes an
/// organization's or an ad account's objects (a permission without roles does not reach them).
async fn create(
    state: &Service,
    v: &Verdict,
    caller: Caller,
    collection: &str,
    body: &[u8],
) -> Result<i64> {
    let mut doc = json_object(body)?;
    let target = target_string(&v.target);
    marketing::prepare(collection, &mut doc, target.as_deref())?;
    let owner = caller.owner_for(&v.target);
    let o = Object {
        id: 0,
        collection: collection.to_string(),
        owner: owner.clone(),
        client_id: caller.client_id.clone(),
        member_id: caller.member_id.clone(),
        target,
        body: doc.to_string(),
        created_at: state.now(),
    };
    let (entropy, who) = (state.entropy.clone(), caller.clone());
    let id = state
        .store
        .write(move |c| {
            if !who.may_in(c, &o.owner, Access::Write)? {
                return Ok(None);
            }
            // Ids are random: a taken one (about 2^-62 likely) is drawn again.
            for _ in 0..4 {
                let o = Object {
                    id: new_id(entropy.as_ref()),
                    ..o.clone()
                };
                if sandbox::create(c, &o)? {
                    return Ok(Some(o.id));
                }
            }
            Err(StoreError::Conflict("no free sandbox id".into()))
        })
        .await?;
    id.ok_or_else(|| caller.refusal(&owner))
}

/// An object a keyed route names: one of its collection and, when the route names a target (an
/// ad account's campaigns), made for that target. Anything else is not there.
fn keyed_object(
    c: &mut dyn Conn,
    v_target: &Option<String>,
    collection: &str,
    id: i64,
) -> scopegate_store::Result<Option<Object>> {
    Ok(sandbox::get(c, collection, id)?.filter(|o| v_target.is_none() || o.target == *v_target))
}

/// One object, if the caller may read it.
async fn get(state: &Service, v: &Verdict, caller: Caller, collection: String) -> Result<Answer> {
    let id = key(v)?;
    let target = target_string(&v.target);
    let o = state
        .store
        .read(move |c| {
            let Some(o) = keyed_object(c, &target, &collection, id)? else {
                return Ok(None);
            };
            Ok(caller.may_in(c, &o.owner, Access::Read)?.then_some(o))
        })
        .await?
        .ok_or_else(|| SandboxError::NotFound("no such entity".into()))?;
    Ok(Answer::Body(shown(&o)?))
}

/// A finder shows only what the caller may read: the owner its target names, if the caller may
/// read that owner's objects, and nothing else; `search=(…)` narrows it, `start`/`count` page it.
async fn list(
    state: &Service,
    v: &Verdict,
    caller: Caller,
    collection: String,
    query: Option<&str>,
) -> Result<Answer> {
    let wanted = page::criteria(query)?;
    let p = page::Page::of(query)?;
    let target = target_string(&v.target);
    let owner = caller.owner_for(&v.target);
    let objs = state
        .store
        .read(move |c| {
            if !caller.may_in(c, &owner, Access::Read)? {
                return Ok(vec![]);
            }
            sandbox::list(c, &collection, &owner, target.as_deref(), page::MAX_SCAN)
        })
        .await?;
    let mut found = Vec::new();
    for o in &objs {
        let d = shown(o)?;
        if wanted
            .as_ref()
            .map(|w| page::meets(&d, w))
            .transpose()?
            .unwrap_or(true)
        {
            found.push(d);
        }
    }
    Ok(p.answer(found))
}

/// A partial update (`patch`) or a delete (`None`). What the caller may not see answers 404, as
/// what does not exist does; what they see and may not change is LinkedIn's 403.
async fn change(
    state: &Service,
    v: &Verdict,
    caller: Caller,
    collection: String,
    patch: Option<Value>,
) -> Result<Answer> {
    let id = key(v)?;
    let target = target_string(&v.target);
    let missing = || SandboxError::NotFound("no such entity".into());
    state
        .store
        .write(move |c| {
            let Some(o) = keyed_object(c, &target, &collection, id)? else {
                return Ok(Err(missing()));
            };
            if !caller.may_in(c, &o.owner, Access::Write)? {
                return Ok(Err(if caller.may_in(c, &o.owner, Access::Read)? {
                    caller.refusal(&o.owner)
                } else {
                    missing()
                }));
            }
            let mut doc = stored_body(&o)?;
            let outcome = match &patch {
                Some(p) => apply_patch(&mut doc, p),
                None => marketing::deletable(&collection, &doc),
            };
            if let Err(e) = outcome {
                return Ok(Err(e));
            }
            let done = match &patch {
                Some(_) => sandbox::update_body(c, &collection, id, &doc.to_string())?,
                None => sandbox::delete(c, &collection, id)?,
            };
            Ok(if done {
                Ok(Answer::Done)
            } else {
                Err(missing())
            })
        })
        .await?
}

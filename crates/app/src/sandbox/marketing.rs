//! LinkedIn's versioned Marketing API (docs/routes.md "Marketing"): ad accounts (get, the
//! `search` finder, batch get, create, partial update) and the rules of the campaign groups and
//! campaigns that are their sub-resources (`/rest/adAccounts/{id}/adCampaigns`).

use std::collections::BTreeSet;

use scopegate_core::catalog::ResourceType;
use scopegate_core::model::{urn, RoleAssignment};
use scopegate_core::restli;
use scopegate_core::routes::{canonical_id, parse_urn};
use scopegate_store::sandbox::{self, Object, Owner};
use scopegate_store::{members, Conn, StoreError};
use serde_json::{json, Map, Value};

use super::page::{criteria, meets, Page};
use super::{
    apply_patch, json_object, key, stored_body, Access, Answer, Caller, Result, SandboxError,
};
use crate::enforce::Verdict;
use crate::state::Service;

/// The collection holding what a member set on an ad account beyond its name (status, type,
/// currency, reference…), one object per account, under the account's own id. Who may change it
/// is the route's `roles` (ACCOUNT_MANAGER and the billing admin).
const ACCOUNT_FIELDS: &str = "adAccounts";

/// What a new campaign or campaign group starts as: it belongs to the account of its path (a
/// body naming another account is refused) and is a DRAFT unless it says otherwise.
pub(super) fn prepare(collection: &str, doc: &mut Value, account: Option<&str>) -> Result<()> {
    if !matches!(collection, "adCampaigns" | "adCampaignGroups") {
        return Ok(());
    }
    let (Some(account), Some(obj)) = (account, doc.as_object_mut()) else {
        return Ok(());
    };
    match obj.get("account") {
        Some(Value::String(a)) if a == account => {}
        None => {
            obj.insert("account".into(), json!(account));
        }
        Some(_) => {
            return Err(SandboxError::BadRequest(format!(
                "account must be {account}, the ad account of the path"
            )))
        }
    }
    match obj.get("status") {
        Some(Value::String(_)) => {}
        None => {
            obj.insert("status".into(), json!("DRAFT"));
        }
        Some(_) => return Err(SandboxError::BadRequest("status must be a string".into())),
    }
    Ok(())
}

/// LinkedIn deletes only DRAFT campaigns and campaign groups; the others are archived or set to
/// PENDING_DELETION by a partial update instead.
pub(super) fn deletable(collection: &str, doc: &Value) -> Result<()> {
    let what = match collection {
        "adCampaigns" => "campaigns",
        "adCampaignGroups" => "campaign groups",
        _ => return Ok(()),
    };
    if doc.get("status").and_then(Value::as_str) == Some("DRAFT") {
        Ok(())
    } else {
        Err(SandboxError::BadRequest(format!(
            "Only {what} in DRAFT status can be deleted; set the status to PENDING_DELETION or ARCHIVED instead"
        )))
    }
}

/// An ad account as LinkedIn shows it: its stored name and id, with what members set on it.
fn account_shown(
    r: &scopegate_core::model::Resource,
    fields: Option<&Object>,
) -> scopegate_store::Result<Value> {
    let mut doc = json!({
        "id": r.id,
        "name": r.name,
        "reference": Value::Null,
        "status": "ACTIVE",
        "type": "BUSINESS",
        "currency": "USD",
        "test": false,
    });
    if let (Some(o), Some(obj)) = (fields, doc.as_object_mut()) {
        if let Value::Object(set) = stored_body(o)? {
            for (k, v) in set {
                if k != "id" {
                    obj.insert(k, v);
                }
            }
        }
    }
    if doc["reference"].is_null() {
        if let Some(obj) = doc.as_object_mut() {
            obj.remove("reference");
        }
    }
    Ok(doc)
}

/// An ad account the caller holds a role on, in the caller's transaction: `None` when it does
/// not exist or the caller may not read it (a refused read looks like a missing one).
fn readable_account(
    c: &mut dyn Conn,
    caller: &Caller,
    id: i64,
) -> scopegate_store::Result<Option<Value>> {
    let owner = Owner::Resource(urn(ResourceType::AdAccount, id));
    if !caller.may_in(c, &owner, Access::Read)? {
        return Ok(None);
    }
    let Some(r) = members::resource(c, ResourceType::AdAccount, id)? else {
        return Ok(None);
    };
    let fields = sandbox::get(c, ACCOUNT_FIELDS, id)?;
    account_shown(&r, fields.as_ref()).map(Some)
}

/// GET /rest/adAccounts/{id}.
pub(super) async fn get_account(state: &Service, v: &Verdict, caller: Caller) -> Result<Answer> {
    let id = match &v.target {
        Some(scopegate_core::enforce::Target::Resource(ResourceType::AdAccount, id)) => *id,
        _ => return Err(SandboxError::NotFound("no such ad account".into())),
    };
    state
        .store
        .read(move |c| readable_account(c, &caller, id))
        .await?
        .map(Answer::Body)
        .ok_or_else(|| SandboxError::NotFound("no such ad account".into()))
}

/// An ad account key of a batch get: `123` or `urn:li:sponsoredAccount:123`.
fn account_key(k: &str) -> Option<i64> {
    canonical_id(k).or_else(|| match parse_urn(k) {
        Some((ResourceType::AdAccount, id)) => Some(id),
        _ => None,
    })
}

/// GET /rest/adAccounts: the `search` finder (`q=search&search=(…)`) or a batch get
/// (`ids=List(…)`), over the accounts the member holds a role on.
pub(super) async fn accounts(
    state: &Service,
    caller: Caller,
    query: Option<&str>,
) -> Result<Answer> {
    let ids = restli::raw_param(query, "ids")
        .map_err(|_| SandboxError::BadRequest("ids is repeated".into()))?;
    match (ids, super::query_once(query, "q")?.as_deref()) {
        (Some(raw), None) => batch_get(state, caller, raw).await,
        // A bare GET answers as the finder without criteria.
        (None, Some("search") | None) => search(state, caller, query).await,
        _ => Err(SandboxError::BadRequest(
            "GET /rest/adAccounts takes q=search or ids=List(…)".into(),
        )),
    }
}

async fn batch_get(state: &Service, caller: Caller, raw: &str) -> Result<Answer> {
    let list = restli::parse(raw).map_err(|e| SandboxError::BadRequest(format!("ids: {e}")))?;
    let keys: Vec<String> = list
        .as_list()
        .ok_or_else(|| SandboxError::BadRequest("ids must be List(…)".into()))?
        .iter()
        .map(|k| k.as_str().map(str::to_string))
        .collect::<Option<_>>()
        .ok_or_else(|| SandboxError::BadRequest("ids must be a list of ids".into()))?;
    let found = state
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for k in &keys {
                let doc = match account_key(k) {
                    Some(id) => readable_account(c, &caller, id)?,
                    None => None,
                };
                out.push((k.clone(), doc));
            }
            Ok(out)
        })
        .await?;
    let (mut results, mut statuses, mut errors) = (Map::new(), Map::new(), Map::new());
    for (k, doc) in found {
        match doc {
            Some(d) => {
                results.insert(k.clone(), d);
                statuses.insert(k, json!(200));
            }
            None => {
                statuses.insert(k.clone(), json!(404));
                errors.insert(
                    k,
                    json!({"status": 404, "serviceErrorCode": 404, "code": "NOT_FOUND", "message": "no such ad account"}),
                );
            }
        }
    }
    Ok(Answer::Body(
        json!({"results": results, "statuses": statuses, "errors": errors}),
    ))
}

async fn search(state: &Service, caller: Caller, query: Option<&str>) -> Result<Answer> {
    let page = Page::of(query)?;
    let wanted = criteria(query)?;
    let Some(member) = caller.member_id.clone() else {
        return Err(SandboxError::InvalidToken);
    };
    let shown = state
        .store
        .read(move |c| {
            let held: BTreeSet<i64> = members::roles_of(c, &member)?
                .into_iter()
                .filter(|r| r.resource_type == ResourceType::AdAccount)
                .map(|r| r.resource_id)
                .collect();
            let mut out = Vec::new();
            for id in held {
                if let Some(d) = readable_account(c, &caller, id)? {
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await?;
    let mut found = Vec::new();
    for d in shown {
        if wanted
            .as_ref()
            .map(|w| meets(&d, w))
            .transpose()?
            .unwrap_or(true)
        {
            found.push(d);
        }
    }
    Ok(page.answer(found))
}

/// POST /rest/adAccounts: a new ad account, whose creator is its ACCOUNT_BILLING_ADMIN (the one
/// user an account has in that role [ADUSERS]).
pub(super) async fn create_account(state: &Service, caller: Caller, body: &[u8]) -> Result<Answer> {
    let mut doc = json_object(body)?;
    // LinkedIn requires a name; the sandbox names an unnamed account rather than refuse it.
    let name = match doc.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 200 => n.trim().to_string(),
        None => "New ad account".to_string(),
        _ => {
            return Err(SandboxError::BadRequest(
                "name must be 1 to 200 characters".into(),
            ))
        }
    };
    let member = caller.member_id.clone().ok_or(SandboxError::InvalidToken)?;
    if let Some(obj) = doc.as_object_mut() {
        for k in ["id", "name"] {
            obj.remove(k);
        }
    }
    let (now, client_id) = (state.now(), caller.client_id.clone());
    let id = state
        .store
        .write(move |c| {
            let r = members::create_resource(c, ResourceType::AdAccount, &name, now)?;
            let role = RoleAssignment {
                resource_type: ResourceType::AdAccount,
                resource_id: r.id,
                member_id: member.clone().into(),
                role: "ACCOUNT_BILLING_ADMIN".into(),
                source: scopegate_core::model::MANUAL_ROLE_SOURCE.into(),
            };
            members::grant_role(c, &role, now)?;
            // The same events the CLI's account creation and role grant record.
            let actor = crate::ops::Actor::Member {
                id: member.clone(),
                platform_admin: false,
            }
            .to_string();
            let action = format!("{}.create", ResourceType::AdAccount.as_str());
            scopegate_store::audit::record(c, now, &actor, &action, &r.urn(), &r.name)?;
            let detail = format!("{} {}", role.member_id, role.role);
            scopegate_store::audit::record(c, now, &actor, "role.grant", &r.urn(), &detail)?;
            let fields = Object {
                id: r.id,
                collection: ACCOUNT_FIELDS.into(),
                owner: Owner::Resource(r.urn()),
                client_id: client_id.clone(),
                member_id: Some(member.clone()),
                target: Some(r.urn()),
                body: doc.to_string(),
                created_at: now,
            };
            if !sandbox::create(c, &fields)? {
                return Err(StoreError::Conflict("ad account fields exist".into()));
            }
            Ok(r.id)
        })
        .await?;
    Ok(Answer::Created {
        urn: urn(ResourceType::AdAccount, id),
        location: format!("/rest/adAccounts/{id}"),
    })
}

/// POST /rest/adAccounts/{id} (PARTIAL_UPDATE): only an account's managers change its data.
pub(super) async fn patch_account(
    state: &Service,
    v: &Verdict,
    caller: Caller,
    body: &[u8],
) -> Result<Answer> {
    let id = key(v)?;
    let patch = json_object(body)?;
    let account = urn(ResourceType::AdAccount, id);
    let owner = Owner::Resource(account.clone());
    let (now, who) = (state.now(), caller.clone());
    let done = state
        .store
        .write(move |c| {
            if members::resource(c, ResourceType::AdAccount, id)?.is_none()
                || !who.may_in(c, &owner, Access::Read)?
            {
                return Ok(Err(SandboxError::NotFound("no such ad account".into())));
            }
            if !who.may_in(c, &owner, Access::Write)? {
                return Ok(Err(who.refusal(&owner)));
            }
            let stored = sandbox::get(c, ACCOUNT_FIELDS, id)?;
            let mut doc = match &stored {
                Some(o) => stored_body(o)?,
                None => json!({}),
            };
            if let Err(e) = apply_patch(&mut doc, &patch) {
                return Ok(Err(e));
            }
            match stored {
                Some(_) => sandbox::update_body(c, ACCOUNT_FIELDS, id, &doc.to_string())?,
                None => sandbox::create(
                    c,
                    &Object {
                        id,
                        collection: ACCOUNT_FIELDS.into(),
                        owner: owner.clone(),
                        client_id: who.client_id.clone(),
                        member_id: who.member_id.clone(),
                        target: Some(account.clone()),
                        body: doc.to_string(),
                        created_at: now,
                    },
                )?,
            };
            Ok(Ok(()))
        })
        .await?;
    done.map(|()| Answer::Done)
}

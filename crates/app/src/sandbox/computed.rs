//! The sandbox's actions that answer from what scopegate holds (members, roles, resources)
//! rather than from stored sandbox objects.

use scopegate_core::catalog::ResourceType;
use scopegate_core::enforce::Target;
use scopegate_core::model::{urn, Member};
use scopegate_store::members;
use scopegate_store::sandbox::{self, Owner};
use serde_json::json;

use super::{key, paged, Access, Answer, Caller, Result, SandboxError};
use crate::enforce::Verdict;
use crate::signing::pairwise_sub;
use crate::state::Service;

/// The token's member: a member-only action with a 2-legged token, or a member since removed,
/// is an invalid token.
async fn member(state: &Service, v: &Verdict) -> Result<Member> {
    let id = v
        .token
        .as_ref()
        .and_then(|t| t.member_id.clone())
        .ok_or(SandboxError::InvalidToken)?;
    state
        .store
        .read(move |c| members::by_id(c, &id))
        .await?
        .ok_or(SandboxError::InvalidToken)
}

/// Actions that answer from what scopegate holds (members, roles, resources).
pub(super) async fn computed(
    state: &Service,
    v: &Verdict,
    caller: &Caller,
    action: &str,
    query: Option<&str>,
) -> Result<Answer> {
    match action {
        "userinfo" | "me" => {
            let m = member(state, v).await?;
            Ok(Answer::Body(json!({
                "id": pairwise_sub(state, &caller.client_id, &m.id),
                "localizedFirstName": m.first_name,
                "localizedLastName": m.last_name,
                "localizedHeadline": m.headline,
                "vanityName": m.first_name.to_lowercase(),
            })))
        }
        "email" => {
            let m = member(state, v).await?;
            Ok(Answer::Body(
                json!({"elements": [{"handle": "urn:li:emailAddress:1", "handle~": {"emailAddress": m.email}}]}),
            ))
        }
        "connections" => connections(state, v).await,
        "organizationAcls" => organization_acls(state, v, caller, query).await,
        "organization" => organization(state, v).await,
        "adAccountUsers" => ad_account_users(state, v, caller, query).await,
        "adAnalytics" => ad_analytics(state, v, caller, query).await,
        "targetingFacets" => paged(
            [
                "locations",
                "industries",
                "seniorities",
                "titles",
                "skills",
                "employers",
                "degrees",
                "interfaceLocales",
                "ageRanges",
                "genders",
            ]
            .iter()
            .map(|f| json!({"facetName": f, "adTargetingFacetUrn": format!("urn:li:adTargetingFacet:{f}"), "entityTypes": []}))
            .collect(),
        query,
        ),
        "salesNavigatorProfiles" => sales_navigator_profiles(state, caller, query).await,
        other => Err(SandboxError::NotFound(format!(
            "the sandbox has no action \"{other}\""
        ))),
    }
}

/// `urn:li:person:{sub}` of a member, as the calling app sees them.
fn person_of(state: &Service, caller: &Caller, member_id: &str) -> String {
    format!(
        "urn:li:person:{}",
        pairwise_sub(state, &caller.client_id, member_id)
    )
}

/// First-degree connections in the sandbox: the members sharing an organization or ad account.
async fn connections(state: &Service, v: &Verdict) -> Result<Answer> {
    let id = member(state, v).await?.id;
    let n = state
        .store
        .read(move |c| {
            let mut others = std::collections::BTreeSet::new();
            for r in members::roles_of(c, &id)? {
                for a in members::roles_on(c, r.resource_type, r.resource_id)? {
                    if a.member_id != id {
                        others.insert(a.member_id);
                    }
                }
            }
            Ok(others.len())
        })
        .await?;
    Ok(Answer::Body(json!({"firstDegreeSize": n})))
}

/// An organization's ACL (for those who hold a role on it), or the member's own organization
/// roles; `role=` narrows either.
async fn organization_acls(
    state: &Service,
    v: &Verdict,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Answer> {
    let id = member(state, v).await?.id;
    let only = match &v.target {
        Some(Target::Resource(ResourceType::Organization, id)) => Some(*id),
        _ => None,
    };
    let role_filter = super::query_once(query, "role")?;
    let who = caller.clone();
    let rows = state
        .store
        .read(move |c| match only {
            Some(org) => {
                let owner = Owner::Resource(urn(ResourceType::Organization, org));
                if !who.may_in(c, &owner, Access::Read)? {
                    return Ok(vec![]);
                }
                members::roles_on(c, ResourceType::Organization, org)
            }
            None => Ok(members::roles_of(c, &id)?
                .into_iter()
                .filter(|r| r.resource_type == ResourceType::Organization)
                .collect()),
        })
        .await?;
    paged(
        rows.iter()
            .filter(|r| role_filter.as_ref().is_none_or(|f| *f == r.role))
            .map(|r| {
                json!({
                    "roleAssignee": person_of(state, caller, &r.member_id),
                    "state": "APPROVED",
                    "role": r.role,
                    "organization": urn(ResourceType::Organization, r.resource_id),
                })
            })
            .collect(),
        query,
    )
}

/// An organization, keyed by the path.
async fn organization(state: &Service, v: &Verdict) -> Result<Answer> {
    let missing = || SandboxError::NotFound("no such organization".into());
    let id = key(v).map_err(|_| missing())?;
    let r = state
        .store
        .read(move |c| members::resource(c, ResourceType::Organization, id))
        .await?
        .ok_or_else(missing)?;
    Ok(Answer::Body(
        json!({"id": r.id, "localizedName": r.name, "$URN": r.urn()}),
    ))
}

/// The members holding a role on the ad account the route names.
async fn ad_account_users(
    state: &Service,
    v: &Verdict,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Answer> {
    let Some(Target::Resource(ResourceType::AdAccount, id)) = v.target else {
        return paged(vec![], query);
    };
    let rows = state
        .store
        .read(move |c| members::roles_on(c, ResourceType::AdAccount, id))
        .await?;
    paged(
        rows.iter()
            .map(|r| {
                json!({
                    "account": urn(ResourceType::AdAccount, id),
                    "user": person_of(state, caller, &r.member_id),
                    "role": r.role,
                })
            })
            .collect(),
        query,
    )
}

/// Counts only the campaigns of an account the member may read.
async fn ad_analytics(
    state: &Service,
    v: &Verdict,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Answer> {
    let owner = caller.owner_for(&v.target);
    let who = caller.clone();
    let n = state
        .store
        .read(move |c| match &owner {
            Owner::Resource(u) if who.may_in(c, &owner, Access::Read)? => {
                sandbox::count(c, "adCampaigns", u)
            }
            _ => Ok(0),
        })
        .await?;
    paged(
        vec![json!({"campaigns": n, "impressions": 0, "clicks": 0, "costInLocalCurrency": "0"})],
        query,
    )
}

/// Matched, publicly available member profile information (2-legged).
async fn sales_navigator_profiles(
    state: &Service,
    caller: &Caller,
    query: Option<&str>,
) -> Result<Answer> {
    let all = state.store.read(members::list).await?;
    paged(
        all.iter()
            .filter(|m| !m.platform_admin)
            .map(|m| {
                json!({
                    "member": person_of(state, caller, &m.id),
                    "firstName": m.first_name,
                    "lastName": m.last_name,
                    "headline": m.headline,
                })
            })
            .collect(),
        query,
    )
}

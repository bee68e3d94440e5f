//! Developer-portal rules: which programs an app may request, and what its approvals grant.

use std::collections::BTreeSet;

use serde::Serialize;

use crate::catalog::{Access, Catalog, PermissionKind, Program, ResourceType};
use crate::model::{AccessRequest, RequestStatus, RoleAssignment};

/// How a program appears on an app's Products tab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ProductStatus {
    Available,
    Requested,
    Approved,
    Denied,
    Closed,
}

impl ProductStatus {
    pub fn label(self) -> &'static str {
        match self {
            ProductStatus::Available => "Available",
            ProductStatus::Requested => "Requested (in review)",
            ProductStatus::Approved => "Approved",
            ProductStatus::Denied => "Denied",
            ProductStatus::Closed => "Closed",
        }
    }
}

/// The status of one program for an app, given the app's requests.
pub fn product_status(program: &Program, requests: &[AccessRequest]) -> ProductStatus {
    match requests.iter().find(|r| r.program_id == program.id) {
        Some(r) => match r.status {
            RequestStatus::Requested => ProductStatus::Requested,
            RequestStatus::Approved => ProductStatus::Approved,
            RequestStatus::Denied => ProductStatus::Denied,
        },
        None if program.access == Access::Closed => ProductStatus::Closed,
        None => ProductStatus::Available,
    }
}

/// What a product request turns into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// An open program: approved at once.
    Approved,
    /// An approval program: queued for a platform admin.
    Queued,
}

/// Why a program cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestRefusal {
    #[error("\"{0}\" is closed and cannot be requested")]
    Closed(String),
    #[error("\"{program}\" can be requested only by an app approved for {}", .needs.join(" or "))]
    MissingPrerequisite { program: String, needs: Vec<String> },
    #[error("\"{0}\" is already approved for this app")]
    AlreadyApproved(String),
    #[error("\"{0}\" is already in review for this app")]
    AlreadyRequested(String),
}

/// Decides a product request (a denied program may be requested again).
pub fn request_program(
    catalog: &Catalog,
    program: &Program,
    requests: &[AccessRequest],
) -> Result<RequestOutcome, RequestRefusal> {
    match product_status(program, requests) {
        ProductStatus::Approved => {
            return Err(RequestRefusal::AlreadyApproved(program.name.clone()))
        }
        ProductStatus::Requested => {
            return Err(RequestRefusal::AlreadyRequested(program.name.clone()))
        }
        _ => {}
    }
    if program.access == Access::Closed {
        return Err(RequestRefusal::Closed(program.name.clone()));
    }
    if !program.prerequisites.is_empty() {
        let approved = |id: &str| {
            requests
                .iter()
                .any(|r| r.program_id == id && r.status == RequestStatus::Approved)
        };
        if !program.prerequisites.iter().any(|p| approved(p)) {
            return Err(RequestRefusal::MissingPrerequisite {
                program: program.name.clone(),
                needs: program
                    .prerequisites
                    .iter()
                    .map(|id| catalog.program(id).map_or(id.clone(), |p| p.name.clone()))
                    .collect(),
            });
        }
    }
    Ok(match program.access {
        Access::Open => RequestOutcome::Approved,
        _ => RequestOutcome::Queued,
    })
}

/// An app's effective permissions, from its approved programs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EffectivePermissions {
    /// Member permissions the app may request in a 3-legged flow.
    pub member: BTreeSet<String>,
    /// Application permissions a 2-legged token carries.
    pub application: BTreeSet<String>,
    /// Held through a program, never requested (r_targeting, r_organization_lookup).
    pub auto_granted: BTreeSet<String>,
}

/// Collects the permissions of every approved program.
pub fn effective_permissions(catalog: &Catalog, approved: &[String]) -> EffectivePermissions {
    let mut e = EffectivePermissions::default();
    for id in approved {
        let Some(program) = catalog.program(id) else {
            continue;
        };
        for name in &program.permissions {
            let Some(p) = catalog.permission(name) else {
                continue;
            };
            let set = if p.auto_granted {
                &mut e.auto_granted
            } else if p.kind == PermissionKind::Application {
                &mut e.application
            } else {
                &mut e.member
            };
            set.insert(name.clone());
        }
    }
    e
}

/// The organization role that administers a company page: `ADMINISTRATOR` when the catalog has
/// it (LinkedIn's Page super admin, reference 9.1), otherwise the first organization role the
/// catalog lists (catalogs list roles from the most to the least powerful).
pub fn organization_administrator_role(catalog: &Catalog) -> Option<&str> {
    let roles = catalog.roles(ResourceType::Organization);
    roles
        .iter()
        .find(|r| r.as_str() == "ADMINISTRATOR")
        .or_else(|| roles.first())
        .map(String::as_str)
}

/// Why a member may not attach an app to a company page.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttachRefusal {
    #[error("you can attach an app only to a company page you administer: that needs the {role} role on urn:li:organization:{organization}")]
    NotAdministrator { organization: i64, role: String },
    #[error("the catalog defines no organization roles, so only a platform admin can attach an app to a company page")]
    NoAdministratorRole,
}

/// May a member holding `roles` attach an app to `organization`? LinkedIn has a super admin of the
/// Page verify an app's association with it; a developer without that role could otherwise
/// borrow any company's name and logo on the consent screen. Roles on other organizations, and
/// any other role on this one, do not count. The same answer for an organization that does not
/// exist, so the refusal says nothing about which ids exist.
pub fn may_attach_organization(
    catalog: &Catalog,
    roles: &[RoleAssignment],
    organization: i64,
) -> Result<(), AttachRefusal> {
    let role =
        organization_administrator_role(catalog).ok_or(AttachRefusal::NoAdministratorRole)?;
    let holds = roles.iter().any(|a| {
        a.resource_type == ResourceType::Organization
            && a.resource_id == organization
            && a.role == role
    });
    if holds {
        Ok(())
    } else {
        Err(AttachRefusal::NotAdministrator {
            organization,
            role: role.to_string(),
        })
    }
}

/// LinkedIn's public rejection reasons (reference section 8), offered to admins when denying.
pub const REJECTION_REASONS: &[&str] = &[
    "Incomplete Access Request Form",
    "Unapproved Use Case",
    "Fail Email Verification",
    "Fail Organization Verification",
    "Invalid Company Website",
    "Invalid Company Page",
    "Organization doesn't meet our access requirements.",
    "Invalid Privacy Policy",
    "Invalid Screencast",
    "Invalid App Name",
    "Not in Compliance with Data Restrictions",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn req(program: &str, status: RequestStatus) -> AccessRequest {
        AccessRequest {
            client_id: "app".into(),
            program_id: program.into(),
            status,
            reason: None,
            requested_by: "m".into(),
            requested_at: 0,
            decided_by: None,
            decided_at: None,
        }
    }

    #[test]
    fn open_is_approved_approval_is_queued_closed_is_refused() {
        let c = Catalog::linkedin();
        let open = c.program("share-on-linkedin").unwrap();
        let mdp = c.program("marketing-developer-platform").unwrap();
        let closed = c.program("compliance").unwrap();
        assert_eq!(request_program(&c, open, &[]), Ok(RequestOutcome::Approved));
        assert_eq!(request_program(&c, mdp, &[]), Ok(RequestOutcome::Queued));
        assert!(matches!(
            request_program(&c, closed, &[]),
            Err(RequestRefusal::Closed(_))
        ));
    }

    #[test]
    fn audiences_needs_an_approved_prerequisite() {
        let c = Catalog::linkedin();
        let aud = c.program("audiences").unwrap();
        assert!(matches!(
            request_program(&c, aud, &[]),
            Err(RequestRefusal::MissingPrerequisite { .. })
        ));
        let pending = [req("advertising-apis", RequestStatus::Requested)];
        assert!(request_program(&c, aud, &pending).is_err());
        let ok = [req("advertising-apis", RequestStatus::Approved)];
        assert_eq!(request_program(&c, aud, &ok), Ok(RequestOutcome::Queued));
    }

    #[test]
    fn denied_programs_may_be_requested_again_but_pending_ones_not() {
        let c = Catalog::linkedin();
        let mdp = c.program("marketing-developer-platform").unwrap();
        let denied = [req("marketing-developer-platform", RequestStatus::Denied)];
        assert_eq!(
            request_program(&c, mdp, &denied),
            Ok(RequestOutcome::Queued)
        );
        let pending = [req(
            "marketing-developer-platform",
            RequestStatus::Requested,
        )];
        assert!(matches!(
            request_program(&c, mdp, &pending),
            Err(RequestRefusal::AlreadyRequested(_))
        ));
    }

    fn role(org: i64, role: &str) -> RoleAssignment {
        RoleAssignment {
            resource_type: ResourceType::Organization,
            resource_id: org,
            member_id: "m".into(),
            role: role.into(),
            source: crate::model::MANUAL_ROLE_SOURCE.into(),
        }
    }

    #[test]
    fn only_the_top_organization_role_on_that_organization_attaches_an_app() {
        let c = Catalog::linkedin();
        assert_eq!(organization_administrator_role(&c), Some("ADMINISTRATOR"));
        assert_eq!(
            may_attach_organization(&c, &[role(7, "ADMINISTRATOR")], 7),
            Ok(())
        );
        for other in c.roles(ResourceType::Organization).iter().skip(1) {
            assert!(
                may_attach_organization(&c, &[role(7, other)], 7).is_err(),
                "{other}"
            );
        }
        assert!(may_attach_organization(&c, &[role(8, "ADMINISTRATOR")], 7).is_err());
        let mut ad = role(7, "ADMINISTRATOR");
        ad.resource_type = ResourceType::AdAccount;
        assert!(may_attach_organization(&c, &[ad], 7).is_err());
        assert!(may_attach_organization(&c, &[], 7).is_err());
    }

    #[test]
    fn effective_permissions_split_by_kind_and_auto_grant() {
        let c = Catalog::linkedin();
        let e = effective_permissions(
            &c,
            &[
                "advertising-apis".into(),
                "sales-navigator-application-platform".into(),
            ],
        );
        assert!(e.member.contains("rw_ads"));
        assert!(e.auto_granted.contains("r_targeting"));
        assert!(!e.member.contains("r_targeting"));
        assert!(e.application.contains("r_sales_nav_validation"));
        assert!(!e.member.contains("r_sales_nav_validation"));
    }
}

//! OAuth decisions: which scopes a request may have, whether consent is needed, what a
//! 2-legged token carries. Plain functions over plain data (DOMAIN.md decisions 1 to 3).

use time::Date;

use crate::catalog::{Access, Catalog, MigrationPolicy, PermissionKind};
use crate::portal::EffectivePermissions;
use crate::scope::ScopeSet;

/// Why a 3-legged scope request is refused. Each becomes LinkedIn's `unauthorized_scope_error`
/// with `Scope "X" is not authorized for your application` and the rule that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScopeRefusal {
    /// No scope was requested and default scopes are sunset (seed 002).
    NoScope,
    /// The scope is not in the catalog.
    Unknown(String),
    /// An application permission: 2-legged only.
    Application(String),
    /// Auto-granted: held through the program, never requested.
    AutoGranted(String),
    /// Only closed programs grant it.
    Closed(String),
    /// No approved product of the app grants it.
    NotGranted(String),
    /// Deprecated and past its cut-off: request the replacements instead.
    Deprecated {
        scope: String,
        replacements: Vec<String>,
    },
}

impl ScopeRefusal {
    /// The scope the refusal names (none for `NoScope`).
    pub fn scope(&self) -> Option<&str> {
        match self {
            ScopeRefusal::NoScope => None,
            ScopeRefusal::Unknown(s)
            | ScopeRefusal::Application(s)
            | ScopeRefusal::AutoGranted(s)
            | ScopeRefusal::Closed(s)
            | ScopeRefusal::NotGranted(s) => Some(s),
            ScopeRefusal::Deprecated { scope, .. } => Some(scope),
        }
    }

    /// Which rule failed, in words for the developer.
    pub fn rule(&self) -> String {
        match self {
            ScopeRefusal::NoScope => "no scope was requested; default scopes are sunset, so request scopes explicitly with the scope parameter".into(),
            ScopeRefusal::Unknown(_) => "it is not a permission of this platform".into(),
            ScopeRefusal::Application(_) => "it is an application permission, granted only through the 2-legged (client credentials) flow".into(),
            ScopeRefusal::AutoGranted(_) => "it is granted automatically to apps approved for its program and must not be requested in the OAuth flow".into(),
            ScopeRefusal::Closed(_) => "it belongs to a closed program that cannot be requested".into(),
            ScopeRefusal::NotGranted(_) => "no product approved for your application grants it; request the product on the Products tab".into(),
            ScopeRefusal::Deprecated { scope, replacements } => {
                if replacements.contains(scope) {
                    let others: Vec<&str> = replacements.iter().filter(|r| *r != scope).map(String::as_str).collect();
                    format!("its endpoints moved: request it together with {}", others.join(", "))
                } else {
                    format!("it is deprecated; request {} instead", replacements.join(", "))
                }
            }
        }
    }

    /// LinkedIn's error_description, followed by the failed rule.
    pub fn description(&self) -> String {
        match self.scope() {
            Some(s) => format!(
                "Scope \"{s}\" is not authorized for your application: {}",
                self.rule()
            ),
            None => format!("Scope is required: {}", self.rule()),
        }
    }
}

/// What an accepted scope request resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedScopes {
    /// The scopes the member is asked to grant (deprecated ones mapped).
    pub scopes: ScopeSet,
    /// Deprecated scopes that were mapped to their replacements.
    pub mapped: Vec<(String, Vec<String>)>,
}

/// Decision 1: may this app request these scopes in a 3-legged flow?
pub fn resolve_member_scopes(
    catalog: &Catalog,
    effective: &EffectivePermissions,
    requested: &ScopeSet,
    today: Date,
) -> Result<ResolvedScopes, ScopeRefusal> {
    if requested.is_empty() {
        return Err(ScopeRefusal::NoScope);
    }
    let mut scopes = ScopeSet::default();
    let mut mapped = Vec::new();
    for name in requested.iter() {
        let Some(p) = catalog.permission(name) else {
            return Err(ScopeRefusal::Unknown(name.into()));
        };
        if p.kind == PermissionKind::Application {
            return Err(ScopeRefusal::Application(name.into()));
        }
        if p.auto_granted {
            return Err(ScopeRefusal::AutoGranted(name.into()));
        }
        if let Some(d) = &p.deprecated {
            // A deprecation whose replacements include the permission itself (rw_dmp_segments,
            // r_ads_leadgen_automation) changed what it covers: it stays, but only together
            // with its other replacements. Auto-granted replacements are never requested.
            let kept = !p.retired();
            let companions = d.replacements.iter().filter(|r| {
                r.as_str() != name && !catalog.permission(r).is_some_and(|q| q.auto_granted)
            });
            match d.policy_on(today) {
                MigrationPolicy::Reject => {
                    let held = effective.member.contains(name);
                    if !kept || (held && companions.clone().any(|c| !requested.contains(c))) {
                        return Err(ScopeRefusal::Deprecated {
                            scope: name.into(),
                            replacements: d.replacements.clone(),
                        });
                    }
                }
                MigrationPolicy::Map => {
                    // Replaced by the replacements the app's products grant; auto-granted ones
                    // are held through the program and never put in the scope string.
                    let held: Vec<String> = d
                        .replacements
                        .iter()
                        .filter(|r| effective.member.contains(r.as_str()))
                        .cloned()
                        .collect();
                    if held.is_empty() {
                        return Err(ScopeRefusal::NotGranted(name.into()));
                    }
                    for r in &held {
                        scopes.insert(r.as_str());
                    }
                    if held.len() != 1 || held[0] != name {
                        mapped.push((name.to_string(), held));
                    }
                    continue;
                }
            }
        }
        if effective.member.contains(name) {
            scopes.insert(name);
            continue;
        }
        let only_closed = !p.programs.is_empty()
            && p.programs.iter().all(|id| {
                catalog
                    .program(id)
                    .is_some_and(|pr| pr.access == Access::Closed)
            });
        return Err(if only_closed {
            ScopeRefusal::Closed(name.into())
        } else {
            ScopeRefusal::NotGranted(name.into())
        });
    }
    Ok(ResolvedScopes { scopes, mapped })
}

/// Seed 002: before the platform's sunset date, or while the app holds an extension, a request
/// without `scope` uses the app's default scopes; afterwards it is refused.
pub fn default_scopes_allowed(
    sunset: Option<Date>,
    today: Date,
    extension_until: Option<Date>,
) -> bool {
    match sunset {
        None => true,
        Some(s) if today < s => true,
        Some(_) => extension_until.is_some_and(|e| today <= e),
    }
}

/// The scopes a token still authorizes on `today`: a retired deprecated permission stops
/// authorizing once its policy turns to `reject` (its cut-off), though the token keeps it in its
/// record (introspection shows the real scopes).
pub fn authorized_scopes(catalog: &Catalog, token_scopes: &ScopeSet, today: Date) -> ScopeSet {
    ScopeSet::from_names(
        token_scopes
            .iter()
            .filter(|s| match catalog.permission(s) {
                Some(p) if p.retired() => p
                    .deprecated
                    .as_ref()
                    .is_some_and(|d| d.policy_on(today) == MigrationPolicy::Map),
                _ => true,
            })
            .map(str::to_string),
    )
}

/// One old permission in a migration plan.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PlanLine {
    pub old: String,
    /// Replacements to request (auto-granted ones left out).
    pub request: Vec<String>,
    /// Replacements held through the program, never requested.
    pub auto_granted: Vec<String>,
    pub note: Option<String>,
}

/// `scopegate migrate plan`: the new scope string for an old one (decision 5).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Plan {
    /// The scopes to request, deduplicated, without auto-granted permissions.
    pub scopes: Vec<String>,
    pub changes: Vec<PlanLine>,
    /// Requested names the catalog does not know (kept, flagged).
    pub unknown: Vec<String>,
}

/// Maps old permissions to their replacements (seed 003).
pub fn migration_plan(catalog: &Catalog, requested: &ScopeSet) -> Plan {
    let mut scopes = ScopeSet::default();
    let mut changes = Vec::new();
    let mut unknown = Vec::new();
    for name in requested.iter() {
        match catalog.permission(name) {
            None => {
                unknown.push(name.to_string());
                scopes.insert(name);
            }
            Some(p) => match &p.deprecated {
                Some(d) => {
                    let (auto, request): (Vec<String>, Vec<String>) = d
                        .replacements
                        .iter()
                        .cloned()
                        .partition(|r| catalog.permission(r).is_some_and(|q| q.auto_granted));
                    for r in &request {
                        scopes.insert(r.as_str());
                    }
                    changes.push(PlanLine {
                        old: name.to_string(),
                        request,
                        auto_granted: auto,
                        note: d.note.clone(),
                    });
                }
                None if p.auto_granted => {}
                None => scopes.insert(name),
            },
        }
    }
    Plan {
        scopes: scopes.iter().map(str::to_string).collect(),
        changes,
        unknown,
    }
}

/// Decision 2: must the member see the consent screen?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    /// The member already granted every scope and a token of the grant is live (LinkedIn's rule).
    Skip,
    /// Show the consent screen; `reauthorize` adds "Permissions have changed…".
    Show { reauthorize: bool },
}

/// Decides whether to show the consent screen.
pub fn consent_needed(
    catalog: &Catalog,
    granted: Option<&ScopeSet>,
    grant_has_live_token: bool,
    requested: &ScopeSet,
) -> Consent {
    let Some(granted) = granted else {
        return Consent::Show { reauthorize: false };
    };
    let has_deprecated = granted
        .iter()
        .any(|s| catalog.permission(s).is_some_and(|p| p.retired()));
    if has_deprecated || !requested.is_subset(granted) {
        return Consent::Show { reauthorize: true };
    }
    if grant_has_live_token {
        Consent::Skip
    } else {
        Consent::Show { reauthorize: false }
    }
}

/// Why a client-credentials request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppScopeRefusal {
    /// The app holds no application permission at all.
    NoneHeld,
    /// A requested scope is not an application permission the app holds.
    NotHeld(String),
}

/// Decision 3: what a 2-legged token carries: the app's application permissions, narrowed by
/// `scope` when given. Member permissions are never granted here.
pub fn resolve_application_scopes(
    effective: &EffectivePermissions,
    requested: Option<&ScopeSet>,
) -> Result<ScopeSet, AppScopeRefusal> {
    match requested {
        Some(req) if !req.is_empty() => {
            for s in req.iter() {
                if !effective.application.contains(s) {
                    return Err(AppScopeRefusal::NotHeld(s.into()));
                }
            }
            Ok(req.clone())
        }
        _ => {
            if effective.application.is_empty() {
                return Err(AppScopeRefusal::NoneHeld);
            }
            Ok(ScopeSet::from_names(effective.application.iter().cloned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::portal::effective_permissions;
    use time::macros::date;

    fn app_with(programs: &[&str]) -> (Catalog, EffectivePermissions) {
        let c = Catalog::linkedin();
        let ids: Vec<String> = programs.iter().map(|s| s.to_string()).collect();
        let e = effective_permissions(&c, &ids);
        (c, e)
    }

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    const TODAY: Date = date!(2026 - 11 - 27);

    #[test]
    fn granted_member_scopes_are_accepted() {
        let (c, e) = app_with(&["openid-connect", "share-on-linkedin"]);
        let r = resolve_member_scopes(
            &c,
            &e,
            &scopes("openid profile,email w_member_social"),
            TODAY,
        )
        .unwrap();
        assert_eq!(r.scopes.len(), 4);
    }

    #[test]
    fn each_rule_refuses_the_whole_request() {
        let (c, e) = app_with(&[
            "openid-connect",
            "sales-navigator-application-platform",
            "advertising-apis",
        ]);
        let cases = [
            ("", ScopeRefusal::NoScope),
            ("openid nope", ScopeRefusal::Unknown("nope".into())),
            (
                "openid r_sales_nav_validation",
                ScopeRefusal::Application("r_sales_nav_validation".into()),
            ),
            (
                "openid r_targeting",
                ScopeRefusal::AutoGranted("r_targeting".into()),
            ),
            (
                "openid r_compliance",
                ScopeRefusal::Closed("r_compliance".into()),
            ),
            (
                "openid r_emailaddress",
                ScopeRefusal::Closed("r_emailaddress".into()),
            ),
            (
                "openid rw_dmp_segments",
                ScopeRefusal::NotGranted("rw_dmp_segments".into()),
            ),
        ];
        for (req, want) in cases {
            assert_eq!(
                resolve_member_scopes(&c, &e, &scopes(req), TODAY),
                Err(want),
                "{req}"
            );
        }
        let d = ScopeRefusal::NotGranted("w_member_social".into()).description();
        assert!(d.starts_with("Scope \"w_member_social\" is not authorized for your application"));
    }

    #[test]
    fn deprecated_scopes_map_before_the_cutoff_and_are_refused_after() {
        let (c, e) = app_with(&["advertising-apis"]);
        let before = date!(2020 - 01 - 01);
        let r = resolve_member_scopes(&c, &e, &scopes("rw_ad_campaigns"), before).unwrap();
        assert_eq!(r.scopes, scopes("rw_ads r_ads_reporting"));
        assert!(!r.scopes.contains("r_targeting"));
        let refused = resolve_member_scopes(&c, &e, &scopes("rw_ad_campaigns"), TODAY);
        assert!(matches!(refused, Err(ScopeRefusal::Deprecated { .. })));
    }

    #[test]
    fn consent_is_skipped_only_when_covered_and_live() {
        let c = Catalog::linkedin();
        let granted = scopes("openid profile email");
        assert_eq!(
            consent_needed(&c, None, false, &scopes("openid")),
            Consent::Show { reauthorize: false }
        );
        assert_eq!(
            consent_needed(&c, Some(&granted), true, &scopes("openid profile")),
            Consent::Skip
        );
        assert_eq!(
            consent_needed(&c, Some(&granted), false, &scopes("openid")),
            Consent::Show { reauthorize: false }
        );
        assert_eq!(
            consent_needed(&c, Some(&granted), true, &scopes("openid w_member_social")),
            Consent::Show { reauthorize: true }
        );
        assert_eq!(
            consent_needed(&c, Some(&scopes("w_share")), true, &scopes("w_share")),
            Consent::Show { reauthorize: true }
        );
    }

    #[test]
    fn client_credentials_carry_only_application_permissions() {
        let (_, e) = app_with(&["sales-navigator-application-platform", "openid-connect"]);
        let all = resolve_application_scopes(&e, None).unwrap();
        assert_eq!(all, scopes("r_sales_nav_profiles r_sales_nav_validation"));
        assert_eq!(
            resolve_application_scopes(&e, Some(&scopes("r_sales_nav_profiles"))).unwrap(),
            scopes("r_sales_nav_profiles")
        );
        assert_eq!(
            resolve_application_scopes(&e, Some(&scopes("openid"))),
            Err(AppScopeRefusal::NotHeld("openid".into()))
        );
        let (_, none) = app_with(&["openid-connect"]);
        assert_eq!(
            resolve_application_scopes(&none, None),
            Err(AppScopeRefusal::NoneHeld)
        );
    }
}

#[cfg(test)]
mod migration_tests {
    use super::*;
    use crate::portal::effective_permissions;
    use time::macros::date;

    const BEFORE: Date = date!(2020 - 01 - 01);
    const AFTER: Date = date!(2026 - 11 - 27);

    fn held(programs: &[&str]) -> EffectivePermissions {
        let ids: Vec<String> = programs.iter().map(|s| s.to_string()).collect();
        effective_permissions(&Catalog::linkedin(), &ids)
    }

    fn s(x: &str) -> ScopeSet {
        ScopeSet::parse(x).unwrap()
    }

    /// An app approved for everything that grants the replacements.
    fn marketing() -> EffectivePermissions {
        held(&[
            "advertising-apis",
            "marketing-developer-platform",
            "audiences",
            "share-on-linkedin",
        ])
    }

    #[test]
    fn every_old_permission_maps_before_the_cutoff() {
        let c = Catalog::linkedin();
        let e = marketing();
        let cases = [
            ("rw_ad_campaigns", "r_ads_reporting rw_ads"),
            ("r_ad_campaigns", "r_ads r_ads_reporting"),
            ("rw_organization", "r_member_social r_organization_social rw_organization_admin w_member_social w_organization_social"),
            ("r_organization", "r_member_social r_organization_social rw_organization_admin"),
            ("rw_dmp_segments", "r_ads rw_dmp_segments"),
            ("r_ads_leadgen_automation", "r_ads r_organization_social"),
            ("rw_company_admin", "r_organization_social rw_organization_admin w_organization_social"),
            ("w_share", "w_member_social w_organization_social"),
        ];
        for (old, want) in cases {
            let r = resolve_member_scopes(&c, &e, &s(old), BEFORE)
                .unwrap_or_else(|e| panic!("{old}: {e:?}"));
            assert_eq!(r.scopes, s(want), "{old}");
            assert!(
                !r.scopes.contains("r_targeting") && !r.scopes.contains("r_organization_lookup")
            );
            assert_eq!(r.mapped.len(), 1, "{old} is reported as mapped");
        }
    }

    #[test]
    fn every_old_permission_is_refused_after_the_cutoff_naming_its_replacements() {
        let c = Catalog::linkedin();
        let e = marketing();
        for old in [
            "rw_ad_campaigns",
            "r_ad_campaigns",
            "rw_organization",
            "r_organization",
            "rw_dmp_segments",
            "r_ads_leadgen_automation",
            "rw_company_admin",
            "w_share",
        ] {
            let err = resolve_member_scopes(&c, &e, &s(old), AFTER).unwrap_err();
            let ScopeRefusal::Deprecated { replacements, .. } = &err else {
                panic!("{old}: {err:?}")
            };
            let d = err.description();
            for r in replacements
                .iter()
                .filter(|r| r.as_str() != old && !c.permission(r).unwrap().auto_granted)
            {
                assert!(d.contains(r.as_str()), "{old}: {d}");
            }
        }
        // A kept permission with its companions is a normal permission again.
        assert!(resolve_member_scopes(&c, &e, &s("rw_dmp_segments r_ads"), AFTER).is_ok());
    }

    #[test]
    fn default_scopes_follow_the_sunset_and_extensions() {
        let sunset = Some(date!(2019 - 09 - 15));
        assert!(default_scopes_allowed(sunset, date!(2019 - 09 - 14), None));
        assert!(!default_scopes_allowed(sunset, date!(2019 - 09 - 15), None));
        assert!(default_scopes_allowed(
            sunset,
            AFTER,
            Some(date!(2027 - 01 - 01))
        ));
        assert!(!default_scopes_allowed(
            sunset,
            AFTER,
            Some(date!(2026 - 01 - 01))
        ));
        assert!(default_scopes_allowed(None, AFTER, None));
    }

    #[test]
    fn deprecated_scopes_stop_authorizing_at_the_cutoff() {
        let c = Catalog::linkedin();
        let t = s("w_share rw_dmp_segments openid");
        assert_eq!(authorized_scopes(&c, &t, BEFORE), t);
        assert_eq!(
            authorized_scopes(&c, &t, AFTER),
            s("openid rw_dmp_segments")
        );
    }

    #[test]
    fn the_plan_dedupes_and_leaves_out_auto_granted_replacements() {
        let c = Catalog::linkedin();
        let p = migration_plan(
            &c,
            &s("r_ad_campaigns rw_ad_campaigns w_share r_liteprofile"),
        );
        assert_eq!(
            p.scopes,
            [
                "r_ads",
                "r_ads_reporting",
                "r_liteprofile",
                "rw_ads",
                "w_member_social",
                "w_organization_social"
            ]
        );
        assert_eq!(p.changes.len(), 3);
        assert!(p
            .changes
            .iter()
            .all(|l| l.auto_granted == ["r_targeting"] || l.old == "w_share"));
        let leadgen = migration_plan(&c, &s("r_ads_leadgen_automation"));
        assert!(leadgen.changes[0]
            .note
            .as_deref()
            .unwrap()
            .contains("r_ads"));
        assert_eq!(migration_plan(&c, &s("made_up")).unknown, ["made_up"]);
    }
}

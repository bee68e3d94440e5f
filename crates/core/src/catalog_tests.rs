//! The catalog loader: the embedded LinkedIn catalog, and every mistake `catalog check` must catch.

use crate::catalog::*;

const MINIMAL: &str = r#"
[platform]
name = "Test"

[roles]
organization = ["ADMINISTRATOR", "ANALYST"]

[[program]]
id = "base"
name = "Base"
area = "Consumer"
access = "open"
permissions = ["a"]

[[permission]]
name = "a"
kind = "member"
consent = "Do a"
"#;

fn problems(text: &str) -> Vec<Problem> {
    match Catalog::from_toml(text) {
        Ok(_) => panic!("expected problems"),
        Err(e) => e.problems,
    }
}

fn has(problems: &[Problem], line: usize, needle: &str) -> bool {
    let found = problems
        .iter()
        .any(|p| p.line == line && p.reason.contains(needle));
    if !found {
        eprintln!("wanted line {line}: {needle}; got {problems:?}");
    }
    found
}

#[test]
fn minimal_catalog_loads() {
    let c = Catalog::from_toml(MINIMAL).unwrap();
    assert_eq!(
        c.permission("a").unwrap().programs,
        vec!["base".to_string()]
    );
    assert_eq!(c.program("Base").unwrap().id, "base");
}

#[test]
fn embedded_linkedin_catalog_holds_every_seed_permission() {
    let c = Catalog::linkedin();
    let seed_permissions = [
        // seed 000
        "profile",
        "email",
        "w_member_social",
        "rw_organization_admin",
        "r_organization_admin",
        "w_organization_social",
        "r_organization_social",
        "rw_ads",
        "r_ads",
        "r_ads_reporting",
        "r_1st_connections_size",
        "r_basicprofile",
        "r_marketing_leadgen_automation",
        "rw_dmp_segments",
        "r_sales_nav_analytics",
        "r_sales_nav_display",
        "r_sales_nav_validation",
        "r_sales_nav_profiles",
        "r_compliance",
        "w_compliance",
        // seed 002
        "r_ad_campaigns",
        "r_ads_leadgen_automation",
        "r_emailaddress",
        "r_liteprofile",
        "r_member_social",
        "rw_ad_campaigns",
        "rw_company_admin",
        "rw_organization",
        "w_share",
        // seed 003
        "r_organization",
        "r_targeting",
        "r_organization_lookup",
        // OIDC
        "openid",
    ];
    for p in seed_permissions {
        assert!(c.permission(p).is_some(), "{p} missing");
    }
    assert_eq!(c.permissions.len(), seed_permissions.len());
    for p in ["r_sales_nav_validation", "r_sales_nav_profiles"] {
        assert_eq!(c.permission(p).unwrap().kind, PermissionKind::Application);
    }
    for p in ["r_targeting", "r_organization_lookup"] {
        assert!(c.permission(p).unwrap().auto_granted);
    }
    let old = [
        "rw_ad_campaigns",
        "r_ad_campaigns",
        "rw_organization",
        "r_organization",
        "rw_dmp_segments",
        "r_ads_leadgen_automation",
        "rw_company_admin",
        "w_share",
    ];
    for p in old {
        assert!(
            c.permission(p).unwrap().deprecated.is_some(),
            "{p} not deprecated"
        );
    }
    let rw_ad = c
        .permission("rw_ad_campaigns")
        .unwrap()
        .deprecated
        .clone()
        .unwrap();
    assert_eq!(
        rw_ad.replacements,
        ["rw_ads", "r_ads_reporting", "r_targeting"]
    );
    let r_ads = c
        .permission("r_ads")
        .unwrap()
        .role_restriction
        .clone()
        .unwrap();
    assert_eq!(r_ads.resource, ResourceType::AdAccount);
    assert!(r_ads.roles.contains(&"VIEWER".to_string()));
    let rw_ads = c
        .permission("rw_ads")
        .unwrap()
        .role_restriction
        .clone()
        .unwrap();
    assert!(!rw_ads.roles.contains(&"VIEWER".to_string()));
    let wos = c
        .permission("w_organization_social")
        .unwrap()
        .role_restriction
        .clone()
        .unwrap();
    assert_eq!(
        wos.roles,
        [
            "ADMINISTRATOR",
            "DIRECT_SPONSORED_CONTENT_POSTER",
            "LEAD_GEN_FORMS_MANAGER"
        ]
    );
    assert_eq!(c.program("compliance").unwrap().access, Access::Closed);
    assert_eq!(
        c.program("audiences").unwrap().prerequisites,
        ["marketing-developer-platform", "advertising-apis"]
    );
    assert_eq!(
        c.permission("r_ads").unwrap().consent.as_deref(),
        Some("Retrieve your advertising accounts")
    );
    assert_eq!(
        c.platform.default_scope_sunset,
        Some(time::macros::date!(2019 - 09 - 15))
    );
}

#[test]
fn syntax_errors_report_their_line() {
    let p = problems("[platform]\nname = \"x\"\n\n[[program]\n");
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].line, 4);
}

#[test]
fn unknown_fields_are_refused_with_their_line() {
    let text = MINIMAL.replace("consent = \"Do a\"", "consent = \"Do a\"\nscopes = 1");
    let p = problems(&text);
    assert!(has(&p, 19, "unknown field"), "{p:?}");
}

#[test]
fn unknown_permission_in_program_is_reported() {
    let text = MINIMAL.replace("permissions = [\"a\"]", "permissions = [\"a\", \"nope\"]");
    assert!(has(&problems(&text), 13, "unknown permission \"nope\""));
}

#[test]
fn duplicate_permission_and_program_are_reported() {
    let text = format!(
        "{MINIMAL}\n[[permission]]\nname = \"a\"\nkind = \"member\"\nconsent = \"x\"\n\n[[program]]\nid = \"base\"\nname = \"Other\"\narea = \"Sales\"\naccess = \"open\"\n"
    );
    let p = problems(&text);
    assert!(has(&p, 21, "duplicate permission \"a\""), "{p:?}");
    assert!(has(&p, 26, "duplicate program id \"base\""), "{p:?}");
}

#[test]
fn prerequisite_cycles_are_reported() {
    let text = format!(
        "{MINIMAL}\n[[program]]\nid = \"x\"\nname = \"X\"\narea = \"Sales\"\naccess = \"approval\"\nprerequisites = [\"y\"]\n\n[[program]]\nid = \"y\"\nname = \"Y\"\narea = \"Sales\"\naccess = \"approval\"\nprerequisites = [\"x\"]\n"
    );
    let p = problems(&text);
    assert!(has(&p, 21, "prerequisite cycle: x -> y -> x"), "{p:?}");
    let self_loop = MINIMAL.replace(
        "access = \"open\"",
        "access = \"open\"\nprerequisites = [\"base\"]",
    );
    assert!(has(
        &problems(&self_loop),
        9,
        "prerequisite cycle: base -> base"
    ));
}

#[test]
fn unknown_prerequisite_is_reported() {
    let text = MINIMAL.replace(
        "access = \"open\"",
        "access = \"open\"\nprerequisites = [\"ghost\"]",
    );
    assert!(has(
        &problems(&text),
        13,
        "unknown prerequisite program \"ghost\""
    ));
}

#[test]
fn deprecated_permission_with_missing_replacement_is_reported() {
    let text = MINIMAL.replace(
        "consent = \"Do a\"",
        "consent = \"Do a\"\ndeprecated = { replacements = [\"a\", \"b_new\"], cutoff = 2020-06-30 }",
    );
    assert!(has(
        &problems(&text),
        19,
        "replacement \"b_new\", which does not exist"
    ));
}

#[test]
fn role_restriction_on_application_permission_is_reported() {
    let text = format!(
        "{MINIMAL}\n[[permission]]\nname = \"app_only\"\nkind = \"application\"\nrole_restriction = {{ resource = \"organization\", roles = [\"ADMINISTRATOR\"] }}\n"
    );
    let p = problems(&text);
    assert!(has(&p, 23, "cannot have a role restriction"), "{p:?}");
}

#[test]
fn unknown_role_is_reported() {
    let text = MINIMAL.replace(
        "consent = \"Do a\"",
        "consent = \"Do a\"\nrole_restriction = { resource = \"organization\", roles = [\"OWNER\"] }",
    );
    assert!(has(
        &problems(&text),
        19,
        "unknown organization role \"OWNER\""
    ));
}

#[test]
fn member_permission_without_consent_is_reported() {
    let text = MINIMAL.replace("consent = \"Do a\"\n", "");
    assert!(has(&problems(&text), 16, "needs a consent message"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let text = MINIMAL
        .replace("permissions = [\"a\"]", "permissions = [\"a\", \"nope\"]")
        .replace("consent = \"Do a\"\n", "");
    assert_eq!(problems(&text).len(), 2);
}

#[test]
fn deprecation_policy_follows_the_cutoff_unless_fixed() {
    let d = Deprecation {
        replacements: vec![],
        cutoff: time::macros::date!(2020 - 06 - 30),
        policy: None,
        note: None,
    };
    assert_eq!(
        d.policy_on(time::macros::date!(2020 - 06 - 29)),
        MigrationPolicy::Map
    );
    assert_eq!(
        d.policy_on(time::macros::date!(2020 - 06 - 30)),
        MigrationPolicy::Reject
    );
    let fixed = Deprecation {
        policy: Some(MigrationPolicy::Map),
        ..d
    };
    assert_eq!(
        fixed.policy_on(time::macros::date!(2030 - 01 - 01)),
        MigrationPolicy::Map
    );
}

//! Issue: permission migrations. Default-scope sunset and extensions, each old permission under
//! `map` and `reject`, re-authorization, the plan, the token audit and the report.

use scopegate_app::Compat;
use scopegate_core::Catalog;

use crate::browser::{param, Outcome};
use crate::support::*;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn auth(scope: Option<&str>) -> String {
    let mut p = format!(
        "/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=m",
        enc(DEMO_REDIRECT)
    );
    if let Some(s) = scope {
        p.push_str(&format!("&scope={}", enc(s)));
    }
    p
}

/// LinkedIn's catalog with the sunset and the cut-offs moved (to test both sides of each date).
fn catalog(sunset: &str, cutoff: &str) -> Catalog {
    let text = scopegate_core::catalog::LINKEDIN_TOML
        .replace(
            "default_scope_sunset = 2019-09-15",
            &format!("default_scope_sunset = {sunset}"),
        )
        .replace("cutoff = 2020-06-30", &format!("cutoff = {cutoff}"));
    Catalog::from_toml(&text).unwrap()
}

fn approve_everything(s: &InProc) {
    s.cli_json(&["app", "product", "request", DEMO_APP, "audiences"]);
    s.cli_json(&["review", "approve", DEMO_APP, "audiences"]);
}

#[tokio::test]
async fn a_request_without_scope_uses_defaults_only_before_the_sunset_or_under_an_extension() {
    // After the sunset (LinkedIn's 2019-09-15), without an extension: refused.
    let s = InProc::demo().await;
    s.cli_json(&["app", "defaults", DEMO_APP, "--set", "openid profile"]);
    let b = s.browser();
    let out = b
        .authorize(&auth(None), MEMBER, DEMO_PASSWORD)
        .await
        .redirect();
    assert_eq!(
        param(&out, "error").as_deref(),
        Some("unauthorized_scope_error")
    );
    assert!(param(&out, "error_description")
        .unwrap()
        .contains("request scopes explicitly"));
    assert_eq!(
        s.cli_json(&["app", "defaults", DEMO_APP])["in_force"],
        false
    );
    // With an extension: the defaults, and the consent screen shows their messages.
    s.cli_json(&[
        "app",
        "extension",
        "grant",
        DEMO_APP,
        "--until",
        "2099-12-31",
    ]);
    assert_eq!(s.cli_json(&["app", "defaults", DEMO_APP])["in_force"], true);
    let page = b
        .authorize(&auth(None), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    assert!(page.contains("Use your name and photo"));
    let url = b.consent(&page, "allow").await;
    let (_, t) = s.redeem(&param(&url, "code").unwrap(), &[]).await;
    assert_eq!(t["scope"], "openid profile");
    // The extension ends: refused again. A lapsed extension too.
    s.cli_json(&["app", "extension", "revoke", DEMO_APP]);
    assert_eq!(
        param(
            &b.get(&auth(None)).await.headers()["location"]
                .to_str()
                .unwrap()
                .parse::<url::Url>()
                .unwrap(),
            "error"
        )
        .as_deref(),
        Some("unauthorized_scope_error")
    );
    s.cli_json(&[
        "app",
        "extension",
        "grant",
        DEMO_APP,
        "--until",
        "2020-01-01",
    ]);
    assert_eq!(
        s.cli_json(&["app", "defaults", DEMO_APP])["in_force"],
        false
    );
}

#[tokio::test]
async fn before_the_sunset_defaults_apply_without_an_extension() {
    let s = InProc::with_catalog(Compat::Standard, catalog("2099-01-01", "2020-06-30")).await;
    s.cli_json(&["app", "defaults", DEMO_APP, "--set", "openid"]);
    let page = s
        .browser()
        .authorize(&auth(None), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    assert!(page.contains("Use your LinkedIn account to sign you in"));
}

const OLD: [(&str, &str); 8] = [
    ("rw_ad_campaigns", "r_ads_reporting rw_ads"),
    ("r_ad_campaigns", "r_ads r_ads_reporting"),
    ("rw_organization", "r_member_social r_organization_social rw_organization_admin w_member_social w_organization_social"),
    ("r_organization", "r_member_social r_organization_social rw_organization_admin"),
    ("rw_dmp_segments", "r_ads rw_dmp_segments"),
    ("r_ads_leadgen_automation", "r_ads r_organization_social"),
    ("rw_company_admin", "r_organization_social rw_organization_admin w_organization_social"),
    ("w_share", "w_member_social w_organization_social"),
];

#[tokio::test]
async fn each_old_permission_is_mapped_before_its_cutoff() {
    let s = InProc::with_catalog(Compat::Standard, catalog("2019-09-15", "2099-01-01")).await;
    approve_everything(&s);
    let b = s.browser();
    for (old, new) in OLD {
        // prompt=consent: an earlier mapping may already cover this one, which would skip the screen.
        let page = match b
            .authorize(
                &format!("{}&prompt=consent", auth(Some(old))),
                MEMBER,
                DEMO_PASSWORD,
            )
            .await
        {
            Outcome::Consent(p) => p,
            other => panic!("{old}: {other:?}"),
        };
        assert!(
            page.contains(&format!("<code>{old}</code> has been replaced by")),
            "{old}: the consent screen says what changed"
        );
        assert!(!page.contains("r_targeting") && !page.contains("r_organization_lookup"));
        let url = b.consent(&page, "allow").await;
        let (status, t) = s.redeem(&param(&url, "code").unwrap(), &[]).await;
        assert_eq!(status, 200, "{old}: {t}");
        assert_eq!(t["scope"], new, "{old}");
    }
}

#[tokio::test]
async fn each_old_permission_is_refused_after_its_cutoff_naming_the_replacements() {
    let s = InProc::demo().await;
    approve_everything(&s);
    let b = s.browser();
    for (old, new) in OLD {
        let res = b.get(&auth(Some(old))).await;
        let loc: url::Url = res.headers()["location"].to_str().unwrap().parse().unwrap();
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some("unauthorized_scope_error"),
            "{old}"
        );
        let d = param(&loc, "error_description").unwrap();
        for r in new.split(' ').filter(|r| *r != old) {
            assert!(d.contains(r), "{old}: {d} lacks {r}");
        }
    }
    // rw_dmp_segments with its companion r_ads is a current request.
    let page = b
        .authorize(&auth(Some("rw_dmp_segments r_ads")), MEMBER, DEMO_PASSWORD)
        .await;
    assert!(matches!(page, Outcome::Consent(_)), "{page:?}");
}

#[tokio::test]
async fn a_grant_holding_a_deprecated_permission_must_be_reauthorized_once() {
    let s = InProc::demo().await;
    let member = s
        .cli_json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == MEMBER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A grant made before the migration, with a token issued then.
    let m = member.clone();
    let grant = s
        .state
        .store_for_tests()
        .write(move |c| {
            scopegate_app::testing::store::tokens::consent(c, DEMO_APP, &m, &scopes("w_share"), 1)
        })
        .await
        .unwrap();
    let b = s.browser();
    let page = b
        .authorize(&auth(Some("w_member_social")), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    assert!(
        page.contains("Permissions have changed. Please re-authorize your account to continue.")
    );
    let url = b.consent(&page, "allow").await;
    let code = param(&url, "code").unwrap();
    s.redeem(&code, &[]).await;
    // Once re-authorized, the screen is skipped: no second re-authorization.
    let again = b
        .authorize(&auth(Some("w_member_social")), MEMBER, DEMO_PASSWORD)
        .await;
    assert!(matches!(again, Outcome::Redirect(_)), "{again:?}");
    let gid = grant.id;
    let g = s
        .state
        .store_for_tests()
        .read(move |c| scopegate_app::testing::store::tokens::grant_by_id(c, gid))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.scopes, scopes("w_member_social"));
}

#[tokio::test]
async fn the_token_audit_lists_and_revokes_pre_migration_tokens_and_the_report_names_apps() {
    let s = InProc::demo().await;
    let member = s
        .cli_json(&["member", "list"])
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == MEMBER)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let now = s.state.now();
    let m = member.clone();
    s.state
        .store_for_tests()
        .write(move |c| {
            let g = scopegate_app::testing::store::tokens::consent(
                c,
                DEMO_APP,
                &m,
                &scopes("w_share,openid"),
                now - 100,
            )?;
            let t = scopegate_core::model::TokenRecord {
                hash: scopegate_core::SecretHash::from_stored("old-token-hash".into()),
                kind: scopegate_core::model::TokenKind::Access,
                client_id: DEMO_APP.into(),
                grant_id: Some(g.id),
                member_id: Some(m.clone().into()),
                scopes: scopes("w_share,openid"),
                created_at: now - 100,
                authorized_at: now - 100,
                expires_at: now + 1000,
                revoked_at: None,
                refresh_hash: None,
                code_hash: None,
                rotated_at: None,
                nonce: None,
                public_client: false,
                auth_time: now - 100,
            };
            scopegate_app::testing::store::tokens::insert(c, &t)
        })
        .await
        .unwrap();
    let report = s.cli_json(&["migrate", "report"]);
    assert_eq!(report[0]["client_id"], DEMO_APP);
    assert_eq!(
        report[0]["deprecated_permissions"],
        serde_json::json!(["w_share"])
    );
    assert_eq!(report[0]["members_to_reauthorize"], 1);
    let key = s.cli_json(&["admin-key", "create", "--name", "m"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let api: serde_json::Value = s
        .client
        .get(s.url("/admin/v1/migrations/report"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(api, report);
    let b = s.browser();
    b.sign_in("admin@scopegate.local", DEMO_PASSWORD).await;
    let page = b
        .get("/developers/admin/migrations")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Demo App") && page.contains("w_share"));
    let before = (now - 50).to_string();
    let listed = s.cli_json(&["migrate", "tokens", "--issued-before", &before]);
    assert_eq!(listed["apps"][0]["tokens"], 1);
    assert_eq!(listed["apps"][0]["members"], serde_json::json!([member]));
    let none = s.cli_json(&[
        "migrate",
        "tokens",
        "--issued-before",
        &(now - 1000).to_string(),
    ]);
    assert_eq!(none["apps"], serde_json::json!([]));
    let revoked = s.cli_json(&[
        "migrate",
        "tokens",
        "--issued-before",
        &before,
        "--app",
        DEMO_APP,
        "--revoke",
    ]);
    assert_eq!(revoked["revoked"], 1);
    assert_eq!(
        s.cli_json(&["migrate", "tokens", "--issued-before", &before])["apps"],
        serde_json::json!([])
    );
}

#[test]
fn the_plan_dedupes_and_explains() {
    let out = std::process::Command::new(BIN)
        .args([
            "--json",
            "migrate",
            "plan",
            "r_ad_campaigns rw_ad_campaigns,w_share r_ads_leadgen_automation",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["scope"], "r_ads r_ads_leadgen_automation r_ads_reporting r_organization_social rw_ads w_member_social w_organization_social");
    let human = std::process::Command::new(BIN)
        .args(["migrate", "plan", "rw_ad_campaigns"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("rw_ad_campaigns -> rw_ads r_ads_reporting"),
        "{text}"
    );
    assert!(text.contains("do not request: r_targeting"), "{text}");
}

#[test]
fn migrate_scan_gates_a_ci_and_speaks_json_and_sarif() {
    let dir = crate::support::TempDir::new("scan");
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/login.js"),
        "const scope = 'r_liteprofile w_share';\nconst reporting = 'r_ads_reporting';\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "LINKEDIN_SCOPES=rw_organization,r_basicprofile\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(BIN)
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["migrate", "scan"]);
    assert_eq!(out.status.code(), Some(1), "findings fail the gate");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("login.js:1:30: old permission w_share"),
        "{text}"
    );
    assert!(
        text.contains(".env:1:17: old permission rw_organization"),
        "{text}"
    );
    assert!(!text.contains("r_ads_reporting"));
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["--json", "migrate", "scan"]).stdout).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 2, "{json}");
    let sarif: serde_json::Value =
        serde_json::from_slice(&run(&["migrate", "scan", "--sarif"]).stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 2);
    std::fs::write(
        dir.path().join("src/login.js"),
        "const scope = 'openid profile';\n",
    )
    .unwrap();
    std::fs::remove_file(dir.path().join(".env")).unwrap();
    assert_eq!(
        run(&["migrate", "scan"]).status.code(),
        Some(0),
        "a clean tree passes"
    );
}

fn scopes(s: &str) -> scopegate_core::ScopeSet {
    scopegate_core::ScopeSet::parse(s).unwrap()
}

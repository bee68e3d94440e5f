//! Issue: members, sign-in and the 3-legged flow. Every rule through real HTTPS requests.

use crate::browser::{param, Outcome};
use crate::support::*;

fn auth_path(scope: &str, extra: &str) -> String {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=st4te&scope={}{extra}",
        enc(DEMO_REDIRECT),
        enc(scope)
    )
}

/// Signs in, consents, and returns the code.
async fn code_for(s: &InProc, b: &crate::browser::Browser, scope: &str, extra: &str) -> String {
    let out = b
        .authorize(&auth_path(scope, extra), MEMBER, DEMO_PASSWORD)
        .await;
    let url = match out {
        Outcome::Consent(page) => b.consent(&page, "allow").await,
        Outcome::Redirect(u) => u,
        other => panic!("{other:?}"),
    };
    assert_eq!(param(&url, "state").as_deref(), Some("st4te"));
    assert_eq!(
        param(&url, "iss").as_deref(),
        Some(format!("{}/oauth", s.base).as_str())
    );
    param(&url, "code").expect("a code")
}

#[tokio::test]
async fn the_full_flow_issues_tokens_bound_to_the_consent() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = b
        .authorize(
            &auth_path("openid profile,w_member_social", ""),
            MEMBER,
            DEMO_PASSWORD,
        )
        .await
        .consent();
    for line in [
        "Use your LinkedIn account to sign you in",
        "Use your name and photo",
        "Post, comment and like posts on your behalf",
    ] {
        assert!(page.contains(line), "consent page lacks {line}");
    }
    let url = b.consent(&page, "allow").await;
    assert!(url.as_str().starts_with(DEMO_REDIRECT));
    let code = param(&url, "code").unwrap();
    assert!(code.starts_with("AQ") && code.len() >= 45);
    let (status, t) = s.redeem(&code, &[]).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["expires_in"], 5_184_000);
    assert_eq!(t["scope"], "openid profile w_member_social");
    assert_eq!(t["refresh_token_expires_in"], 31_536_000);
    let i = s
        .introspect_demo(t["access_token"].as_str().unwrap())
        .await
        .1;
    assert_eq!(i["active"], true);
    assert_eq!(i["auth_type"], "3L");
    assert_eq!(i["scope"], "openid,profile,w_member_social");
    assert!(i["sub"].as_str().is_some_and(|v| !v.is_empty()));
}

#[tokio::test]
async fn an_unknown_client_or_unregistered_redirect_gets_an_error_page_not_a_redirect() {
    let s = InProc::demo().await;
    let b = s.browser();
    for path in [
        "/oauth/v2/authorization?response_type=code&client_id=nope&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&scope=openid&state=x".to_string(),
        auth_path("openid", "").replace("8080%2Fcallback", "8080%2Fcallback%2F"),
        auth_path("openid", "").replace("127.0.0.1%3A8080", "127.0.0.1%3A8081"),
        auth_path("openid", "").replace("redirect_uri=", "redirect_uri=x"),
    ] {
        let res = b.get(&path).await;
        assert!(res.status() == 401 || res.status() == 400, "{path}: {}", res.status());
        assert!(res.headers().get("location").is_none(), "{path} redirected");
        let body = res.text().await.unwrap();
        assert!(body.contains("doesn't match") || body.contains("has no"), "{body}");
    }
}

#[tokio::test]
async fn a_scope_not_granted_refuses_the_whole_request_with_linkedins_error() {
    let s = InProc::demo().await;
    let b = s.browser();
    let cases = [
        (
            "openid rw_dmp_segments",
            "rw_dmp_segments",
            "no product approved",
        ),
        (
            "openid r_sales_nav_validation",
            "r_sales_nav_validation",
            "application permission",
        ),
        ("openid r_targeting", "r_targeting", "granted automatically"),
        ("r_compliance", "r_compliance", "closed program"),
        ("openid made_up", "made_up", "not a permission"),
    ];
    for (scope, named, rule) in cases {
        let url = b.get(&auth_path(scope, "")).await;
        assert_eq!(url.status(), 302, "{scope}");
        let loc = url::Url::parse(url.headers()["location"].to_str().unwrap()).unwrap();
        assert_eq!(
            param(&loc, "error").as_deref(),
            Some("unauthorized_scope_error"),
            "{scope}"
        );
        let d = param(&loc, "error_description").unwrap();
        assert!(
            d.starts_with(&format!(
                "Scope \"{named}\" is not authorized for your application"
            )),
            "{d}"
        );
        assert!(d.contains(rule), "{d}");
        assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
        assert!(param(&loc, "code").is_none());
    }
}

#[tokio::test]
async fn a_request_without_scope_is_refused() {
    let s = InProc::demo().await;
    let res = s.browser().get(&auth_path("", "")).await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        param(&loc, "error").as_deref(),
        Some("unauthorized_scope_error")
    );
    assert!(param(&loc, "error_description")
        .unwrap()
        .contains("default scopes are sunset"));
}

#[tokio::test]
async fn cancelling_sign_in_returns_access_denied_or_user_cancelled_login() {
    cancel_sign_in(scopegate_app::Compat::Standard, "access_denied").await;
    cancel_sign_in(scopegate_app::Compat::Linkedin, "user_cancelled_login").await;
}

async fn cancel_sign_in(compat: scopegate_app::Compat, expected: &str) {
    let s = InProc::start(compat).await;
    let b = s.browser();
    // The authorization endpoint sends the member to sign in, carrying the pending request.
    let res = b.get(&auth_path("openid", "")).await;
    assert_eq!(res.status(), 302);
    let login = res.headers()["location"].to_str().unwrap().to_string();
    let html = b.get(&login).await.text().await.unwrap();
    assert!(html.contains("Demo App"), "the sign-in page names the app");
    let csrf = crate::browser::hidden(&html, "csrf").unwrap();
    let next = crate::browser::hidden(&html, "next").unwrap();
    let res = b
        .post(
            "/login",
            &[("csrf", &csrf), ("next", &next), ("action", "cancel")],
        )
        .await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(DEMO_REDIRECT));
    assert_eq!(param(&loc, "error").as_deref(), Some(expected));
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
}

#[tokio::test]
async fn cancelling_consent_returns_access_denied_or_user_cancelled_authorize() {
    cancel_consent(scopegate_app::Compat::Standard, "access_denied").await;
    cancel_consent(scopegate_app::Compat::Linkedin, "user_cancelled_authorize").await;
}

async fn cancel_consent(compat: scopegate_app::Compat, expected: &str) {
    let s = InProc::start(compat).await;
    let b = s.browser();
    let page = b
        .authorize(&auth_path("openid", ""), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    let url = b.consent(&page, "cancel").await;
    assert_eq!(param(&url, "error").as_deref(), Some(expected));
    assert!(param(&url, "code").is_none());
}

#[tokio::test]
async fn a_code_cannot_be_redeemed_twice_and_replay_revokes_its_tokens() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid profile", "").await;
    let (status, t) = s.redeem(&code, &[]).await;
    assert_eq!(status, 200);
    let (status, e) = s.redeem(&code, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"], "invalid_grant");
    let i = s
        .introspect_demo(t["access_token"].as_str().unwrap())
        .await
        .1;
    assert_eq!(i["active"], false);
    assert_eq!(i["status"], "revoked");
    let r = s
        .introspect_demo(t["refresh_token"].as_str().unwrap())
        .await
        .1;
    assert_eq!(r["active"], false);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid", "").await;
    s.clock.advance(10 * 60 + 1);
    let (status, e) = s.redeem(&code, &[]).await;
    assert_eq!(status, 400);
    assert_eq!(e["error"], "invalid_grant");
}

#[tokio::test]
async fn pkce_binds_the_code_to_its_verifier() {
    let s = InProc::demo().await;
    let b = s.browser();
    let verifier = "dBjftJeZ4CVP-mJ0kXjD4VX4zyG6dbO6tFaq3nWXtKg";
    let challenge = scopegate_core::secret::sha256_b64url(verifier);
    let extra = format!("&code_challenge={challenge}&code_challenge_method=S256");
    let code = code_for(&s, &b, "openid", &extra).await;
    let wrong = "x".repeat(43);
    let (status, e) = s.redeem(&code, &[("code_verifier", &wrong)]).await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"], "invalid_grant");
    // A failed attempt consumed the code: the right verifier no longer works either.
    let (status, _) = s.redeem(&code, &[("code_verifier", verifier)]).await;
    assert_eq!(status, 400);
    let code = code_for(&s, &b, "openid", &extra).await;
    let (status, t) = s.redeem(&code, &[("code_verifier", verifier)]).await;
    assert_eq!(status, 200, "{t}");
    // A plain challenge is refused at the authorization endpoint.
    let res = b
        .get(&auth_path(
            "openid",
            "&code_challenge=abc&code_challenge_method=plain",
        ))
        .await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn refresh_never_extends_the_refresh_token() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid profile", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let day = 24 * 3600;
    s.clock.advance(59 * day);
    let refresh = |scope: Option<&'static str>| {
        let rt = rt.clone();
        let s = &s;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", DEMO_APP),
                ("client_secret", DEMO_SECRET),
            ];
            if let Some(sc) = scope {
                form.push(("scope", sc));
            }
            s.post_form("/oauth/v2/accessToken", &form).await
        }
    };
    let (status, r) = refresh(None).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["refresh_token_expires_in"],
        306 * day,
        "LinkedIn: day 59 leaves 306 days"
    );
    assert_eq!(r["expires_in"], 60 * day);
    assert_eq!(
        r["refresh_token"],
        rt.as_str(),
        "a confidential client keeps its refresh token"
    );
    s.clock.advance(301 * day);
    let (_, r) = refresh(None).await;
    assert_eq!(r["refresh_token_expires_in"], 5 * day);
    assert_eq!(
        r["expires_in"],
        5 * day,
        "the access token is capped at the refresh token"
    );
    // A narrower scope is allowed, a wider one is not.
    let (status, r) = refresh(Some("openid")).await;
    assert_eq!((status, r["scope"].as_str()), (200, Some("openid")));
    let (status, r) = refresh(Some("openid w_member_social")).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("invalid_scope")));
    s.clock.advance(6 * day);
    let (status, r) = refresh(None).await;
    assert_eq!((status, r["error"].as_str()), (400, Some("invalid_grant")));
}

#[tokio::test]
async fn consent_is_skipped_for_a_covered_grant_with_a_live_token_and_shown_again_after_revocation()
{
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid profile", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    // Covered and live: straight back with a code.
    let url = b
        .authorize(&auth_path("openid profile", ""), MEMBER, DEMO_PASSWORD)
        .await
        .redirect();
    assert!(param(&url, "code").is_some());
    // More permissions than granted: the consent screen, with the re-authorization message.
    let page = b
        .authorize(
            &auth_path("openid profile w_member_social", ""),
            MEMBER,
            DEMO_PASSWORD,
        )
        .await
        .consent();
    assert!(
        page.contains("Permissions have changed. Please re-authorize your account to continue.")
    );
    // Permitted services lists the app; revoking it kills the tokens and brings the screen back.
    let html = b
        .get("/psettings/permitted-services")
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Demo App") && html.contains("Use your name and photo"));
    let csrf = crate::browser::hidden(&html, "csrf").unwrap();
    let res = b
        .post(
            "/psettings/permitted-services/revoke",
            &[("csrf", &csrf), ("client_id", DEMO_APP)],
        )
        .await;
    assert_eq!(res.status(), 303, "post/redirect/get");
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(b
        .get(&loc)
        .await
        .text()
        .await
        .unwrap()
        .contains("Access removed"));
    assert_eq!(
        s.introspect_demo(t["access_token"].as_str().unwrap())
            .await
            .1["status"],
        "revoked"
    );
    let page = b
        .authorize(&auth_path("openid profile", ""), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    assert!(!page.contains("Permissions have changed"));
}

#[tokio::test]
async fn a_different_scope_set_invalidates_the_grants_earlier_tokens() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid profile", "").await;
    let (_, first) = s.redeem(&code, &[]).await;
    let code = code_for(&s, &b, "openid profile w_member_social", "").await;
    let (_, second) = s.redeem(&code, &[]).await;
    assert_eq!(
        s.introspect_demo(first["access_token"].as_str().unwrap())
            .await
            .1["active"],
        false
    );
    assert_eq!(
        s.introspect_demo(second["access_token"].as_str().unwrap())
            .await
            .1["active"],
        true
    );
    // The same scope set again keeps the earlier token (several devices, LinkedIn 1.6).
    let code = code_for(&s, &b, "openid profile w_member_social", "&prompt=consent").await;
    let (_, third) = s.redeem(&code, &[]).await;
    assert_eq!(
        s.introspect_demo(second["access_token"].as_str().unwrap())
            .await
            .1["active"],
        true
    );
    assert_eq!(
        s.introspect_demo(third["access_token"].as_str().unwrap())
            .await
            .1["active"],
        true
    );
}

#[tokio::test]
async fn repeated_failed_sign_ins_are_throttled() {
    let s = InProc::demo().await;
    let b = s.browser();
    for _ in 0..5 {
        assert_eq!(b.sign_in(MEMBER, "wrong-password").await.status(), 401);
    }
    let res = b.sign_in(MEMBER, DEMO_PASSWORD).await;
    assert_eq!(
        res.status(),
        429,
        "the right password is refused while throttled"
    );
    s.clock.advance(16 * 60);
    assert_eq!(b.sign_in(MEMBER, DEMO_PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn native_pkce_is_for_enabled_apps_on_loopback_with_rotating_refresh_tokens() {
    let s = InProc::demo().await;
    let b = s.browser();
    let verifier = "native-verifier-native-verifier-native-verifier";
    let challenge = scopegate_core::secret::sha256_b64url(verifier);
    let path = format!("/oauth/native-pkce/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri=http%3A%2F%2F127.0.0.1%3A5555%2Fcallback&state=n&scope=openid&code_challenge={challenge}&code_challenge_method=S256");
    let url = match b.authorize(&path, MEMBER, DEMO_PASSWORD).await {
        Outcome::Consent(p) => b.consent(&p, "allow").await,
        Outcome::Redirect(u) => u,
        other => panic!("{other:?}"),
    };
    assert!(
        url.as_str().starts_with("http://127.0.0.1:5555/callback"),
        "any loopback port: {url}"
    );
    let code = param(&url, "code").unwrap();
    let (status, t) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:5555/callback"),
                ("client_id", DEMO_APP),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{t}");
    let rt1 = t["refresh_token"].as_str().unwrap().to_string();
    let (status, r) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", DEMO_APP),
            ],
        )
        .await;
    assert_eq!(status, 200, "{r}");
    let rt2 = r["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(rt1, rt2, "public clients get rotating refresh tokens");
    // Replaying the rotated token after the grace window revokes the whole grant.
    s.clock.advance(31);
    let (status, e) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt1),
                ("client_id", DEMO_APP),
            ],
        )
        .await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt2),
                ("client_id", DEMO_APP),
            ],
        )
        .await;
    assert_eq!(status, 400, "the successor died with the grant");
    // Not on the native endpoint: a non-loopback URL, or an app without native PKCE.
    let res = b
        .get(&path.replace(
            "http%3A%2F%2F127.0.0.1%3A5555%2Fcallback",
            "https%3A%2F%2Foauth.pstmn.io%2Fv1%2Fcallback",
        ))
        .await;
    assert_eq!(res.status(), 401);
    s.cli_json(&["app", "disable", DEMO_APP, "native-pkce"]);
    let res = b.get(&path).await;
    assert_eq!(res.status(), 403);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Not enough permissions to access Native PKCE protocol"));
}

#[tokio::test]
async fn member_and_role_commands_work_with_json() {
    let s = InProc::demo().await;
    let out = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            s.data.path().to_str().unwrap(),
            "--database-url",
            &s.database_url,
            "--json",
            "member",
            "create",
            "--email",
            "new@example.com",
            "--first-name",
            "New",
            "--last-name",
            "Member",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"a-long-password\n")?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["email"], "new@example.com");
    let org = s.cli_json(&["org", "create", "--name", "Acme"]);
    let id = org["id"].as_i64().unwrap().to_string();
    let g = s.cli_json(&["org", "grant", &id, "new@example.com", "CURATOR"]);
    assert_eq!(g["changed"], true);
    let ad = s.cli_json(&["ad-account", "create", "--name", "Acme Ads"]);
    let ad_id = ad["id"].as_i64().unwrap().to_string();
    assert_eq!(
        s.cli_json(&["ad-account", "grant", &ad_id, "new@example.com", "VIEWER"])["changed"],
        true
    );
    assert_eq!(
        s.cli_json(&["ad-account", "revoke", &ad_id, "new@example.com", "VIEWER"])["changed"],
        true
    );
    // An unknown role is an error that changes nothing.
    let bad = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            s.data.path().to_str().unwrap(),
            "--database-url",
            &s.database_url,
            "org",
            "grant",
            &id,
            "new@example.com",
            "OWNER",
        ])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown organization role"));
    let members = s.cli_json(&["member", "list"]);
    assert!(members
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["email"] == "new@example.com"));
    // The password is stored as argon2id, never in the clear.
    assert!(!store_files_contain(s.data.path(), "a-long-password"));
}

#[tokio::test]
async fn concurrent_refreshes_of_one_refresh_token_all_succeed() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&s, &b, "openid", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let (client, url, rt) = (s.client.clone(), s.url("/oauth/v2/accessToken"), rt.clone());
        tasks.push(tokio::spawn(async move {
            let form = [
                ("grant_type", "refresh_token"),
                ("refresh_token", rt.as_str()),
                ("client_id", DEMO_APP),
                ("client_secret", DEMO_SECRET),
            ];
            client
                .post(url)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200, "a concurrent refresh failed");
    }
}

#[tokio::test]
async fn max_age_forces_a_fresh_sign_in_and_login_hint_prefills_the_form() {
    let s = InProc::demo().await;
    let b = s.browser();
    code_for(&s, &b, "openid", "").await;
    s.clock.advance(120);
    // Signed in two minutes ago: max_age=60 sends the member to sign in again.
    let res = b
        .get(&auth_path(
            "openid",
            "&max_age=60&login_hint=test-member%40scopegate.local",
        ))
        .await;
    assert_eq!(res.status(), 302);
    let loc = res.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/login?next="), "{loc}");
    let page = b.get(&loc).await.text().await.unwrap();
    assert!(
        page.contains("value=\"test-member@scopegate.local\""),
        "login_hint prefills the email"
    );
    // max_age=3600 is satisfied by the same session.
    let res = b.get(&auth_path("openid", "&max_age=3600")).await;
    let to_login = res
        .headers()
        .get("location")
        .is_some_and(|l| l.to_str().unwrap().starts_with("/login"));
    assert!(!to_login, "a recent enough sign-in is kept");
    // A bad max_age is refused.
    let res = b.get(&auth_path("openid", "&max_age=soon")).await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("invalid_request"));
    // After signing in again, the ID token's auth_time is the new sign-in.
    let code = code_for(&s, &b, "openid", "&max_age=60").await;
    let (_, t) = s.redeem(&code, &[]).await;
    let claims: serde_json::Value = {
        use base64::Engine;
        let part = t["id_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap()
            .to_string();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(claims["auth_time"], s.state.now());
}

#[tokio::test]
async fn prompt_none_answers_without_ui() {
    let s = InProc::demo().await;
    let b = s.browser();
    let res = b.get(&auth_path("openid", "&prompt=none")).await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("login_required"));
    b.sign_in(MEMBER, DEMO_PASSWORD).await;
    let res = b.get(&auth_path("openid", "&prompt=none")).await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("consent_required"));
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
}

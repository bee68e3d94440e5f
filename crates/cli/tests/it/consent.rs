//! Consent and grants: nothing that narrows or revokes a grant happens on a GET; tokens' scopes are read one way everywhere.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::browser::{hidden, param, Browser, Outcome};
use crate::support::*;

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn query(scope: &str, extra: &str) -> String {
    format!(
        "response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=st4te&scope={}{extra}",
        enc(DEMO_REDIRECT),
        enc(scope)
    )
}

fn auth_path(scope: &str, extra: &str) -> String {
    format!("/oauth/v2/authorization?{}", query(scope, extra))
}

/// Signs in, consents when asked, and returns the code.
async fn code_for(b: &Browser, scope: &str, extra: &str) -> String {
    let url = match b
        .authorize(&auth_path(scope, extra), MEMBER, DEMO_PASSWORD)
        .await
    {
        Outcome::Consent(page) => b.consent(&page, "allow").await,
        Outcome::Redirect(u) => u,
        other => panic!("{other:?}"),
    };
    param(&url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

fn scopes_of(v: &Value) -> BTreeSet<String> {
    v.as_str()
        .unwrap_or_else(|| panic!("no scope string: {v}"))
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn set(s: &str) -> BTreeSet<String> {
    s.split(' ').map(str::to_string).collect()
}

async fn introspect_status(s: &InProc, token: &Value) -> String {
    s.introspect_demo(token.as_str().unwrap()).await.1["status"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The consent lines Permitted services shows for the demo app's grant.
async fn granted_lines(b: &Browser) -> String {
    let res = b.get("/psettings/permitted-services").await;
    assert_eq!(res.status(), 200);
    res.text().await.unwrap()
}

const PROFILE_LINE: &str = "Use your name and photo";
const EMAIL_LINE: &str = "Use the primary email address associated with your LinkedIn account";

#[tokio::test]
async fn a_get_with_a_narrower_scope_set_changes_nothing_stored() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&b, "openid profile email", "").await;
    let (status, first) = s.redeem(&code, &[]).await;
    assert_eq!(status, 200, "{first}");
    // Requests a third-party page can make the member's browser send (a navigation, a form):
    // subsets of the grant with and without prompt=none, the same set, and by GET and POST.
    let cases = [
        ("openid", ""),
        ("openid", "&prompt=none"),
        ("profile email", "&prompt=none"),
        ("openid profile", ""),
        ("openid profile email", "&prompt=none"),
    ];
    for (scope, extra) in cases {
        for post in [false, true] {
            let res = if post {
                let form: Vec<(String, String)> =
                    url::form_urlencoded::parse(query(scope, extra).as_bytes())
                        .into_owned()
                        .collect();
                b.client
                    .post(s.url("/oauth/v2/authorization"))
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
            } else {
                b.get(&auth_path(scope, extra)).await
            };
            let case = format!("{scope:?}{extra} post={post}");
            assert_eq!(
                res.status(),
                302,
                "{case}: a covered request answers at once"
            );
            let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
            let code = param(&loc, "code").unwrap_or_else(|| panic!("{case}: {loc}"));
            assert_eq!(
                introspect_status(&s, &first["access_token"]).await,
                "active",
                "{case}: an earlier token of the grant was revoked"
            );
            let lines = granted_lines(&b).await;
            assert!(
                lines.contains(PROFILE_LINE) && lines.contains(EMAIL_LINE),
                "{case}: the grant was narrowed"
            );
            // The code carries the narrower set; redeeming it narrows nothing either.
            let (status, t) = s.redeem(&code, &[]).await;
            assert_eq!(status, 200, "{case}: {t}");
            assert_eq!(scopes_of(&t["scope"]), set(scope), "{case}");
            assert_eq!(
                introspect_status(&s, &first["access_token"]).await,
                "active",
                "{case}: redeeming revoked the grant's earlier token"
            );
        }
    }
    // A wider set never skips: prompt=none answers consent_required, a plain GET shows the
    // screen, and neither touches the grant.
    let wider = "openid profile email w_member_social";
    let res = b.get(&auth_path(wider, "&prompt=none")).await;
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("consent_required"));
    assert!(param(&loc, "code").is_none());
    b.authorize(&auth_path(wider, ""), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    assert_eq!(
        introspect_status(&s, &first["access_token"]).await,
        "active"
    );
    // Only the member's Allow, with its CSRF token, changes the grant (LinkedIn 1.6).
    let page = b
        .authorize(
            &auth_path("openid", "&prompt=consent"),
            MEMBER,
            DEMO_PASSWORD,
        )
        .await
        .consent();
    let url = b.consent(&page, "allow").await;
    assert!(param(&url, "code").is_some());
    assert_eq!(
        introspect_status(&s, &first["access_token"]).await,
        "revoked"
    );
    assert!(!granted_lines(&b).await.contains(PROFILE_LINE));
}

#[tokio::test]
async fn userinfo_follows_product_removal() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&b, "openid profile email", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    let at = t["access_token"].as_str().unwrap().to_string();
    let rt = t["refresh_token"].as_str().unwrap().to_string();
    // A code issued before the removal and redeemed after it (the same scope set: consenting
    // again changes nothing).
    let pending = code_for(&b, "openid profile email", "&prompt=consent").await;
    let userinfo = || async {
        let res = s
            .client
            .get(s.url("/v2/userinfo"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json::<Value>().await.unwrap())
    };
    let (status, u) = userinfo().await;
    assert_eq!(status, 200, "{u}");
    assert!(u["email"].is_string());
    s.cli_json(&["app", "product", "remove", DEMO_APP, "openid-connect"]);
    let (status, u) = userinfo().await;
    assert_eq!(
        status, 403,
        "userinfo still answered after the removal: {u}"
    );
    assert!(u.get("email").is_none() && u.get("name").is_none());
    let (_, i) = s.introspect_demo(&at).await;
    assert_eq!(i["scope"], "");
    let (status, r) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &rt),
                ("client_id", DEMO_APP),
                ("client_secret", DEMO_SECRET),
            ],
        )
        .await;
    assert!(
        r.get("id_token").is_none(),
        "a refresh after the removal made an ID token: {status} {r}"
    );
    let (status, r) = s.redeem(&pending, &[]).await;
    assert!(
        r.get("id_token").is_none(),
        "a code redeemed after the removal made an ID token: {status} {r}"
    );
    if status == 200 {
        assert!(!scopes_of(&r["scope"]).contains("openid"), "{r}");
    }
}

#[tokio::test]
async fn allow_after_remove_access_gives_a_new_working_code() {
    let s = InProc::demo().await;
    let b = s.browser();
    let path = auth_path("openid profile", "");
    let page = b.authorize(&path, MEMBER, DEMO_PASSWORD).await.consent();
    let first = param(&b.consent(&page, "allow").await, "code").unwrap();
    // Allow pressed twice for one request still gives one code.
    let again = param(&b.consent(&page, "allow").await, "code").unwrap();
    assert_eq!(first, again);
    let html = granted_lines(&b).await;
    let res = b
        .post(
            "/psettings/permitted-services/revoke",
            &[
                ("csrf", &hidden(&html, "csrf").unwrap()),
                ("client_id", DEMO_APP),
            ],
        )
        .await;
    assert_eq!(res.status(), 303);
    let page = b.authorize(&path, MEMBER, DEMO_PASSWORD).await.consent();
    let second = param(&b.consent(&page, "allow").await, "code").unwrap();
    assert_ne!(first, second, "the dead code was handed back");
    let (status, t) = s.redeem(&second, &[]).await;
    assert_eq!(status, 200, "{t}");
    // The code of the removed grant stays dead.
    let (status, _) = s.redeem(&first, &[]).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_web_flow_code_needs_the_client_secret_even_with_native_pkce() {
    let s = InProc::demo().await;
    let b = s.browser();
    let verifier = "web-verifier-web-verifier-web-verifier-web-verifier";
    let challenge = scopegate_core::secret::sha256_b64url(verifier);
    let pkce = format!("&code_challenge={challenge}&code_challenge_method=S256");
    let no_secret = |code: String| {
        let s = &s;
        async move {
            s.post_form(
                "/oauth/v2/accessToken",
                &[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", DEMO_REDIRECT),
                    ("client_id", DEMO_APP),
                    ("code_verifier", verifier),
                ],
            )
            .await
        }
    };
    for scope in ["openid", "openid profile", "profile"] {
        let code = code_for(&b, scope, &pkce).await;
        let (status, e) = no_secret(code.clone()).await;
        assert_eq!(
            (status, e["error"].as_str()),
            (401, Some("invalid_client")),
            "a web-flow code was redeemed by PKCE alone: {e}"
        );
        assert!(e.get("access_token").is_none());
        // Whoever tried was likely not the app: the code is spent.
        let (status, _) = s.redeem(&code, &[("code_verifier", verifier)]).await;
        assert_eq!(status, 400, "{scope}: the refused code still redeemed");
    }
    // With its secret, the confidential client redeems its web-flow code (PKCE too).
    let code = code_for(&b, "openid", &pkce).await;
    let (status, t) = s.redeem(&code, &[("code_verifier", verifier)]).await;
    assert_eq!(status, 200, "{t}");
    // A code from the native endpoint is still redeemed by PKCE alone.
    let native = format!("/oauth/native-pkce/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=n&scope=openid{pkce}", enc("http://127.0.0.1:5555/callback"));
    let url = match b.authorize(&native, MEMBER, DEMO_PASSWORD).await {
        Outcome::Consent(p) => b.consent(&p, "allow").await,
        Outcome::Redirect(u) => u,
        other => panic!("{other:?}"),
    };
    let (status, t) = s
        .post_form(
            "/oauth/v2/accessToken",
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&url, "code").unwrap()),
                ("redirect_uri", "http://127.0.0.1:5555/callback"),
                ("client_id", DEMO_APP),
                ("code_verifier", verifier),
            ],
        )
        .await;
    assert_eq!(status, 200, "{t}");
}

#[tokio::test]
async fn jwks_is_503_and_uncacheable_when_the_store_fails() {
    let s = InProc::demo().await;
    let res = s
        .client
        .get(s.url("/oauth/openid/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    s.break_table("signing_keys");
    let res = s
        .client
        .get(s.url("/oauth/openid/jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "a relying party must not cache the failure"
    );
    let body: Value = res.json().await.unwrap_or(Value::Null);
    assert!(body.get("keys").is_none(), "{body}");
}

#[tokio::test]
async fn userinfo_is_503_when_the_store_fails() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&b, "openid profile", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    for table in ["tokens", "members"] {
        s.break_table(table);
        let res = s
            .client
            .get(s.url("/v2/userinfo"))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            503,
            "{table}: a store outage is not a bad token"
        );
        assert!(res.headers().get("www-authenticate").is_none());
        s.mend_table(table);
    }
}

#[tokio::test]
async fn a_token_response_fails_when_its_id_token_cannot_be_made() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&b, "openid profile", "").await;
    s.break_table("members");
    let (status, e) = s.redeem(&code, &[]).await;
    assert_eq!(status, 503, "an ID token was dropped silently: {e}");
    assert_eq!(e["error"], "temporarily_unavailable");
    assert!(e.get("access_token").is_none());
    // The tokens stored before the failure were never handed out and authorize nothing.
    s.mend_table("members");
    let (status, _) = s.redeem(&code, &[]).await;
    assert_eq!(status, 400, "the code was consumed");
}

#[tokio::test]
async fn a_failed_remove_access_says_it_failed() {
    let s = InProc::demo().await;
    let b = s.browser();
    let code = code_for(&b, "openid profile", "").await;
    let (_, t) = s.redeem(&code, &[]).await;
    let html = granted_lines(&b).await;
    let csrf = hidden(&html, "csrf").unwrap();
    s.break_table("grants");
    let res = b.get("/psettings/permitted-services").await;
    assert_eq!(res.status(), 503, "an outage is not 'no apps'");
    assert!(!res
        .text()
        .await
        .unwrap()
        .contains("You have not allowed any app"));
    let res = b
        .post(
            "/psettings/permitted-services/revoke",
            &[("csrf", &csrf), ("client_id", DEMO_APP)],
        )
        .await;
    assert_eq!(res.status(), 503);
    let page = res.text().await.unwrap();
    assert!(!page.contains("had no access"), "{page}");
    assert!(page.contains("could not be removed"), "{page}");
    s.mend_table("grants");
    assert_eq!(introspect_status(&s, &t["access_token"]).await, "active");
}

#[tokio::test]
async fn a_session_that_cannot_be_read_is_an_outage_not_a_sign_out() {
    // With the sessions table unreadable, a signed-in member's pages must say the service is
    // unavailable: sending them to the sign-in page would hide the outage (and invite a fresh
    // sign-in that cannot be stored either).
    let s = InProc::demo().await;
    let b = s.browser();
    let res = b.sign_in(MEMBER, DEMO_PASSWORD).await;
    assert!(res.status().is_redirection(), "{}", res.status());
    s.break_table("sessions");
    let authorize = format!(
        "/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope=openid&state=s",
        enc(DEMO_REDIRECT)
    );
    for path in ["/psettings/permitted-services", authorize.as_str()] {
        let res = b.get(path).await;
        assert_eq!(res.status(), 503, "{path}");
        assert!(res.headers().get("location").is_none(), "{path}");
    }
    let res = b
        .post(
            "/psettings/permitted-services/revoke",
            &[("csrf", "x"), ("client_id", DEMO_APP)],
        )
        .await;
    assert_eq!(res.status(), 503);
    s.mend_table("sessions");
    assert_eq!(b.get("/psettings/permitted-services").await.status(), 200);
}

//! Issue: the developer portal. Apps, secrets, redirect URLs, capabilities, products, reviews,
//! audit, through the CLI, the admin API and the pages.

use serde_json::json;

use crate::browser::hidden;
use crate::support::*;

const DEV: &str = "developer@scopegate.local";

fn cli_fails(s: &InProc, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            s.data.path().to_str().unwrap(),
            "--database-url",
            &s.database_url,
        ])
        .args(args)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?} should fail");
    assert!(
        out.stdout.is_empty(),
        "a failed command prints nothing on stdout"
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn new_app(s: &InProc) -> (String, String) {
    let made = s.cli_json(&[
        "app",
        "create",
        "--name",
        "Portal App",
        "--owner",
        DEV,
        "--redirect-uri",
        "https://portal.example/cb?ignored=1",
    ]);
    (
        made["client_id"].as_str().unwrap().to_string(),
        made["client_secret"].as_str().unwrap().to_string(),
    )
}

async fn cc(s: &InProc, id: &str, secret: &str) -> u16 {
    let (status, body) = s.client_credentials(id, secret).await;
    if status != 200 {
        eprintln!("client credentials for {id}: {status} {body}");
    }
    status
}

#[tokio::test]
async fn apps_get_a_hashed_secret_and_rotation_keeps_at_most_two() {
    let s = InProc::demo().await;
    let (id, first) = new_app(&s);
    let shown = s.cli_json(&["app", "show", &id]);
    assert_eq!(
        shown["redirect_uris"],
        json!(["https://portal.example/cb"]),
        "query strings are dropped"
    );
    assert_eq!(shown["secrets"].as_array().unwrap().len(), 1);
    assert!(
        !shown.to_string().contains(&first),
        "the secret is never shown again"
    );
    assert!(
        !store_files_contain(s.data.path(), &first),
        "the secret is stored only as a hash"
    );
    s.cli_json(&["app", "enable", &id, "client-credentials"]);
    s.cli_json(&[
        "app",
        "product",
        "request",
        &id,
        "sales-navigator-application-platform",
    ]);
    s.cli_json(&[
        "review",
        "approve",
        &id,
        "sales-navigator-application-platform",
    ]);
    assert_eq!(cc(&s, &id, &first).await, 200);
    let second = s.cli_json(&["app", "secret", "rotate", &id]);
    let second_secret = second["client_secret"].as_str().unwrap().to_string();
    assert_eq!(cc(&s, &id, &first).await, 200, "the old secret stays valid");
    assert_eq!(cc(&s, &id, &second_secret).await, 200);
    assert!(cli_fails(&s, &["app", "secret", "rotate", &id]).contains("two client secrets"));
    let old_id = s.cli_json(&["app", "show", &id])["secrets"][0]["id"]
        .as_i64()
        .unwrap()
        .to_string();
    s.cli_json(&["app", "secret", "delete", &id, &old_id]);
    assert_eq!(
        cc(&s, &id, &first).await,
        401,
        "a deleted secret stops working at once"
    );
    assert_eq!(cc(&s, &id, &second_secret).await, 200);
}

#[tokio::test]
async fn redirect_urls_are_validated() {
    let s = InProc::demo().await;
    let (id, _) = new_app(&s);
    for (bad, why) in [
        ("/relative/cb", "absolute"),
        ("http://example.com/cb", "https"),
        ("https://example.com/cb#frag", "fragment"),
        ("not a url", "spaces"),
    ] {
        assert!(
            cli_fails(&s, &["app", "redirect-uri", "add", &id, bad]).contains(why),
            "{bad}"
        );
    }
    s.cli_json(&[
        "app",
        "redirect-uri",
        "add",
        &id,
        "http://localhost:3000/cb",
    ]);
    s.cli_json(&["app", "redirect-uri", "add", &id, "http://[::1]:3000/cb"]);
    let shown = s.cli_json(&["app", "show", &id]);
    assert_eq!(shown["redirect_uris"].as_array().unwrap().len(), 3);
    s.cli_json(&[
        "app",
        "redirect-uri",
        "remove",
        &id,
        "http://localhost:3000/cb",
    ]);
    assert!(cli_fails(
        &s,
        &[
            "app",
            "redirect-uri",
            "remove",
            &id,
            "http://localhost:3000/cb"
        ]
    )
    .contains("not registered"));
    for i in 0..30 {
        s.cli_json(&[
            "app",
            "redirect-uri",
            "add",
            &id,
            &format!("https://many.example/cb{i}"),
        ]);
    }
    assert!(cli_fails(
        &s,
        &[
            "app",
            "redirect-uri",
            "add",
            &id,
            "https://many.example/one-too-many"
        ]
    )
    .contains("at most 32"));
}

#[tokio::test]
async fn products_follow_their_access_rules_and_prerequisites() {
    let s = InProc::demo().await;
    let (id, _) = new_app(&s);
    assert_eq!(
        s.cli_json(&["app", "product", "request", &id, "share-on-linkedin"])["status"],
        "approved"
    );
    assert_eq!(
        s.cli_json(&[
            "app",
            "product",
            "request",
            &id,
            "Marketing Developer Platform (MDP)"
        ])["status"],
        "requested"
    );
    assert!(cli_fails(&s, &["app", "product", "request", &id, "compliance"]).contains("closed"));
    assert!(
        cli_fails(&s, &["app", "product", "request", &id, "audiences"])
            .contains("can be requested only by an app approved for")
    );
    assert!(
        cli_fails(&s, &["app", "product", "request", &id, "no-such-program"])
            .contains("no program")
    );
    assert!(cli_fails(
        &s,
        &[
            "app",
            "product",
            "request",
            "no-such-app",
            "share-on-linkedin"
        ]
    )
    .contains("no app"));
    let queue = s.cli_json(&["review", "list"]);
    assert!(queue.as_array().unwrap().iter().any(
        |r| r["client_id"] == id.as_str() && r["program_id"] == "marketing-developer-platform"
    ));
    assert!(cli_fails(
        &s,
        &[
            "review",
            "deny",
            &id,
            "marketing-developer-platform",
            "--reason",
            ""
        ]
    )
    .contains("needs a reason"));
    s.cli_json(&[
        "review",
        "deny",
        &id,
        "marketing-developer-platform",
        "--reason",
        "Unapproved Use Case",
    ]);
    let shown = s.cli_json(&["app", "show", &id]);
    let mdp = shown["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_id"] == "marketing-developer-platform")
        .unwrap()
        .clone();
    assert_eq!(mdp["status"], "Denied");
    assert_eq!(mdp["reason"], "Unapproved Use Case");
    // Denied may be requested again, then approved; then Audiences opens up.
    s.cli_json(&[
        "app",
        "product",
        "request",
        &id,
        "marketing-developer-platform",
    ]);
    s.cli_json(&["review", "approve", &id, "marketing-developer-platform"]);
    assert_eq!(
        s.cli_json(&["app", "product", "request", &id, "audiences"])["status"],
        "requested"
    );
    let shown = s.cli_json(&["app", "show", &id]);
    let auto: Vec<&str> = shown["permissions"]["auto_granted"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(auto, ["r_organization_lookup", "r_targeting"]);
    let closed = shown["products"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["program_id"] == "compliance")
        .unwrap()
        .clone();
    assert_eq!(closed["status"], "Closed");
}

#[tokio::test]
async fn removing_a_product_narrows_tokens_already_issued() {
    let s = InProc::demo().await;
    let (status, t) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    assert_eq!(status, 200);
    let token = t["access_token"].as_str().unwrap();
    s.cli_json(&[
        "app",
        "product",
        "remove",
        DEMO_APP,
        "sales-navigator-application-platform",
    ]);
    let (_, i) = s.introspect_demo(token).await;
    assert_eq!(i["active"], true, "the token is narrowed, not revoked");
    assert_eq!(i["scope"], "", "its permissions are gone at once");
    let (status, e) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    assert_eq!((status, e["error"].as_str()), (400, Some("invalid_scope")));
}

#[tokio::test]
async fn capabilities_are_for_platform_admins_and_gate_their_flows() {
    let s = InProc::demo().await;
    let (id, secret) = new_app(&s);
    s.cli_json(&[
        "app",
        "product",
        "request",
        &id,
        "sales-navigator-application-platform",
    ]);
    s.cli_json(&[
        "review",
        "approve",
        &id,
        "sales-navigator-application-platform",
    ]);
    let (status, e) = s.client_credentials(&id, &secret).await;
    // Standard mode: RFC 6749's code with LinkedIn's description (LinkedIn says 401 access_denied).
    assert_eq!(
        (status, e["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
    assert_eq!(
        e["error_description"],
        "This application is not allowed to create application tokens"
    );
    // The owner cannot switch it on from the pages; an admin can.
    let b = s.browser();
    b.sign_in(DEV, DEMO_PASSWORD).await;
    let page = b
        .get(&format!("/developers/apps/{id}/settings"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !page.contains("value=\"enable\""),
        "no Enable button for a developer"
    );
    let csrf = hidden(&page, "csrf").unwrap();
    let res = b
        .post(
            &format!("/developers/apps/{id}/action"),
            &[
                ("csrf", &csrf),
                ("action", "enable"),
                ("capability", "client-credentials"),
            ],
        )
        .await;
    assert!(res.headers()["location"]
        .to_str()
        .unwrap()
        .contains("error="));
    assert_eq!(
        s.cli_json(&["app", "show", &id])["client_credentials"],
        false
    );
    s.cli_json(&["app", "enable", &id, "client-credentials"]);
    assert_eq!(cc(&s, &id, &secret).await, 200);
}

#[tokio::test]
async fn deleting_an_app_revokes_its_tokens_and_grants() {
    let s = InProc::demo().await;
    let (_, t) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let hash = s.state.keys.token_hash.hash_str(&token);
    let h = hash.clone();
    assert!(s
        .state
        .store_for_tests()
        .read(move |c| scopegate_app::testing::store::tokens::get(c, &h))
        .await
        .unwrap()
        .is_some());
    s.cli_json(&["app", "delete", DEMO_APP]);
    assert!(s
        .state
        .store_for_tests()
        .read(move |c| scopegate_app::testing::store::tokens::get(c, &hash))
        .await
        .unwrap()
        .is_none());
    let (status, _) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    assert_eq!(status, 401);
    let audit = s.cli_json(&["audit", "--target", DEMO_APP]);
    assert_eq!(audit[0]["action"], "app.delete");
    assert_eq!(audit[0]["actor"], "cli");
}

#[tokio::test]
async fn the_admin_api_needs_a_key_and_follows_the_same_rules() {
    let s = InProc::demo().await;
    let api = |path: &str| s.url(path);
    let res = s.client.get(api("/admin/v1/apps")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"]["status"],
        401
    );
    let key = s.cli_json(&["admin-key", "create", "--name", "automation"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let auth = format!("Bearer {key}");
    let created = s
        .client
        .post(api("/admin/v1/apps"))
        .header("authorization", &auth)
        .json(
            &json!({"name": "API App", "owner": DEV, "redirect_uris": ["https://api.example/cb"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.unwrap();
    let id = created["client_id"].as_str().unwrap().to_string();
    assert!(created["client_secret"]
        .as_str()
        .is_some_and(|v| v.len() >= 43));
    let r = s
        .client
        .post(api(&format!("/admin/v1/apps/{id}/products/compliance")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert!(
        r.json::<serde_json::Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("closed")
    );
    let r = s
        .client
        .post(api(&format!(
            "/admin/v1/apps/{id}/products/advertising-apis"
        )))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<serde_json::Value>().await.unwrap()["status"],
        "requested"
    );
    let q: serde_json::Value = s
        .client
        .get(api("/admin/v1/reviews"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(q.as_array().unwrap().len(), 1);
    let r = s
        .client
        .post(api(&format!("/admin/v1/reviews/{id}/advertising-apis")))
        .header("authorization", &auth)
        .json(&json!({"decision": "approve"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .put(api(&format!(
            "/admin/v1/apps/{id}/capabilities/refresh-tokens"
        )))
        .header("authorization", &auth)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s
        .client
        .post(api("/admin/v1/apps"))
        .header("authorization", &auth)
        .body("{not json")
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = s
        .client
        .get(api("/admin/v1/apps/nope"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let audit: serde_json::Value = s
        .client
        .get(api(&format!("/admin/v1/audit?target={id}")))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "review.approve" && e["actor"] == "api-key:automation"));
    s.cli_json(&["admin-key", "revoke", "--name", "automation"]);
    assert_eq!(
        s.client
            .get(api("/admin/v1/apps"))
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_admin_route() {
    let s = InProc::demo().await;
    let doc: serde_json::Value = s
        .client
        .get(s.url("/admin/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let src = include_str!("../../../http/src/admin.rs");
    let routes: Vec<String> = src
        .split('"')
        .filter(|t| t.starts_with("/admin/v1/"))
        .map(str::to_string)
        .collect();
    assert!(routes.len() >= 10);
    for r in routes {
        assert!(
            doc["paths"].get(&r).is_some(),
            "{r} is served but not documented"
        );
    }
}

#[tokio::test]
async fn pages_refuse_forms_without_the_csrf_token() {
    let s = InProc::demo().await;
    let b = s.browser();
    b.sign_in(DEV, DEMO_PASSWORD).await;
    let res = b
        .post(
            "/developers/apps",
            &[("name", "No CSRF"), ("csrf", "forged")],
        )
        .await;
    assert_eq!(res.status(), 403);
    assert_eq!(s.cli_json(&["app", "list"]).as_array().unwrap().len(), 1);
    // The sign-in form is protected too (double-submit cookie).
    let other = s.browser();
    let res = other
        .post(
            "/login",
            &[
                ("csrf", "forged"),
                ("email", DEV),
                ("password", DEMO_PASSWORD),
                ("action", "signin"),
            ],
        )
        .await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn a_developer_sees_only_their_own_apps() {
    let s = InProc::demo().await;
    let b = s.browser();
    b.sign_in(MEMBER, DEMO_PASSWORD).await;
    let res = b.get(&format!("/developers/apps/{DEMO_APP}/auth")).await;
    assert_eq!(res.status(), 404);
    let list = b.get("/developers/apps").await.text().await.unwrap();
    assert!(!list.contains(DEMO_APP));
}

#[tokio::test]
async fn introspection_reports_expiry_and_expired_rows_are_purged_later() {
    let s = InProc::demo().await;
    let (_, t) = s.client_credentials(DEMO_APP, DEMO_SECRET).await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let check = |s: &InProc| {
        let token = token.clone();
        let (client, url) = (s.client.clone(), s.url("/oauth/v2/introspectToken"));
        async move {
            client
                .post(url)
                .form(&[
                    ("client_id", DEMO_APP),
                    ("client_secret", DEMO_SECRET),
                    ("token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    s.clock.advance(30 * 60);
    let i = check(&s).await;
    assert_eq!(
        (i["active"].as_bool(), i["status"].as_str()),
        (Some(false), Some("expired"))
    );
    assert_eq!(
        scopegate_app::maintenance::purge_once(&s.state).await,
        0,
        "kept for a while after expiry"
    );
    s.clock
        .advance(scopegate_app::maintenance::KEEP_EXPIRED + 1);
    assert!(scopegate_app::maintenance::purge_once(&s.state).await >= 1);
    assert_eq!(check(&s).await, serde_json::json!({"active": false}));
}

#[tokio::test]
async fn repeated_client_authentication_failures_are_throttled_without_locking_out_the_client() {
    let s = InProc::demo().await;
    // The attacker guesses from 127.0.0.2; the real client calls from 127.0.0.1.
    let cert = reqwest::Certificate::from_pem(&s.cert_pem).unwrap();
    let attacker = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(cert)
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .unwrap();
    let guess = [
        ("grant_type", "client_credentials"),
        ("client_id", DEMO_APP),
        ("client_secret", "wrong"),
    ];
    for _ in 0..scopegate_app::throttle::PER_PAIR {
        let r = attacker
            .post(s.url("/oauth/v2/accessToken"))
            .form(&guess)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    let r = attacker
        .post(s.url("/oauth/v2/accessToken"))
        .form(&guess)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Even the right secret waits, from the attacker's address: guessing stops there.
    let right = [
        ("grant_type", "client_credentials"),
        ("client_id", DEMO_APP),
        ("client_secret", DEMO_SECRET),
    ];
    assert_eq!(
        attacker
            .post(s.url("/oauth/v2/accessToken"))
            .form(&right)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    let probe = [
        ("client_id", DEMO_APP),
        ("client_secret", "wrong"),
        ("token", "AQx"),
    ];
    assert_eq!(
        attacker
            .post(s.url("/oauth/v2/introspectToken"))
            .form(&probe)
            .send()
            .await
            .unwrap()
            .status(),
        429
    );
    // The legitimate client, elsewhere, is not locked out.
    assert_eq!(cc(&s, DEMO_APP, DEMO_SECRET).await, 200);
    // The window passes.
    s.clock.advance(scopegate_app::throttle::WINDOW);
    assert_eq!(
        attacker
            .post(s.url("/oauth/v2/accessToken"))
            .form(&right)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

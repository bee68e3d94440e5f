//! Enforcement through every gateway style: the route a request names cannot be chosen by the client.

use reqwest::Method;
use scopegate_core::Catalog;
use serde_json::{json, Value};

use crate::support::*;

/// LinkedIn's catalog with the deprecation cut-offs in the future (as enforce.rs uses it).
fn catalog() -> Catalog {
    Catalog::from_toml(
        &scopegate_core::catalog::LINKEDIN_TOML
            .replace("cutoff = 2020-06-30", "cutoff = 2099-01-01"),
    )
    .unwrap()
}

async fn server() -> InProc {
    let s = InProc::with_catalog(scopegate_server::Compat::Standard, catalog()).await;
    for p in ["audiences", "lead-sync"] {
        s.cli_json(&["app", "product", "request", DEMO_APP, p]);
        s.cli_json(&["review", "approve", DEMO_APP, p]);
    }
    s
}

fn person_of(s: &InProc, member: &str) -> String {
    format!(
        "urn:li:person:{}",
        scopegate_server::oidc::pairwise_sub(&s.state, DEMO_APP, member)
    )
}

async fn send(
    s: &InProc,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> (u16, Value) {
    let mut r = s.client.request(method, s.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r
            .header("content-type", "application/json")
            .body(b.to_vec());
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn rs_key(s: &InProc) -> String {
    s.cli_json(&["rs-key", "create", "--name", "gateway-tests"])["key"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn check(s: &InProc, key: &str, body: Value) -> (u16, Value) {
    let res = s
        .client
        .post(s.url("/authz/v1/check"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_member_permission_never_acts_as_an_organization() {
    let s = server().await;
    let key = rs_key(&s).await;
    // The demo member is ADMINISTRATOR of organization 1, but w_member_social is not the
    // permission that posts as an organization.
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "w_member_social").await;
    let body = json!({"author": "urn:li:organization:1", "commentary": "x"}).to_string();
    for path in ["/v2/ugcPosts", "/rest/posts"] {
        let (status, out) = send(&s, &t, Method::POST, path, Some(body.as_bytes())).await;
        assert!(
            !(200..300).contains(&status),
            "{path} as an organization: {status} {out}"
        );
        let (_, v) = check(
            &s,
            &key,
            json!({"token": t, "method": "POST", "path": path, "body": {"author": "urn:li:organization:1"}}),
        )
        .await;
        assert_eq!(v["allowed"], false, "{path}: {v}");
    }
    let (_, v) = check(
        &s,
        &key,
        json!({"token": t, "permission": "w_member_social", "resource": "urn:li:organization:1"}),
    )
    .await;
    assert_eq!(v["allowed"], false, "{v}");
    // On the member's own person URN the permission holds.
    let (_, v) = check(
        &s,
        &key,
        json!({"token": t, "permission": "w_member_social", "resource": person_of(&s, &member)}),
    )
    .await;
    assert_eq!(v["allowed"], true, "{v}");
}

#[tokio::test]
async fn an_author_that_cannot_be_read_is_refused_not_taken_for_the_member() {
    let s = server().await;
    // A member without any role on organization 1 and a token for posting as themself.
    let member = s.member_id("developer@scopegate.local");
    let me = person_of(&s, &member);
    let t = s
        .mint(DEMO_APP, Some(&member), "w_member_social w_organization_social")
        .await;
    let bodies: Vec<String> = vec![
        json!({"author": "urn:li:Organization:1"}).to_string(),
        json!({"author": "urn:li:company:1"}).to_string(),
        json!({"author": "urn:li:organization: 1"}).to_string(),
        json!({"author": "urn:li:organization:01"}).to_string(),
        json!({"author": "urn:li:organizationBrand:1"}).to_string(),
        json!({"author": ["urn:li:organization:1", me]}).to_string(),
        json!({"author": 1}).to_string(),
        json!({"commentary": "no author"}).to_string(),
        format!(r#"{{"author": "urn:li:organization:1", "author": "{me}"}}"#),
        format!(r#"{{"author": "{me}", "author": "urn:li:organization:1"}}"#),
        format!(r#"{{"auth\u006fr": "urn:li:organization:1", "author": "{me}"}}"#),
        "not json".to_string(),
    ];
    for b in &bodies {
        for path in ["/rest/posts", "/v2/ugcPosts"] {
            let (status, out) = send(&s, &t, Method::POST, path, Some(b.as_bytes())).await;
            assert!(
                !(200..300).contains(&status),
                "{path} with {b}: {status} {out}"
            );
        }
    }
    // The canonical own URN still posts.
    let ok = json!({"author": me, "commentary": "x"}).to_string();
    let (status, out) = send(&s, &t, Method::POST, "/rest/posts", Some(ok.as_bytes())).await;
    assert_eq!(status, 201, "{out}");
}

#[tokio::test]
async fn repeated_parameters_that_enforcement_reads_are_refused() {
    let s = server().await;
    let key = rs_key(&s).await;
    // The demo member holds a role on ad account 1, not on 2.
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "r_ads rw_ads").await;
    for q in [
        "account=urn%3Ali%3AsponsoredAccount%3A1&account=urn%3Ali%3AsponsoredAccount%3A2",
        "account=urn%3Ali%3AsponsoredAccount%3A2&account=urn%3Ali%3AsponsoredAccount%3A1",
        "q=search&account=urn%3Ali%3AsponsoredAccount%3A1&acc%6Funt=urn%3Ali%3AsponsoredAccount%3A2",
    ] {
        let path = format!("/rest/adCampaigns?{q}");
        let (status, out) = send(&s, &t, Method::GET, &path, None).await;
        assert!(!(200..300).contains(&status), "{path}: {status} {out}");
        let (_, v) = check(&s, &key, json!({"token": t, "method": "GET", "path": path})).await;
        assert_eq!(v["allowed"], false, "{path}: {v}");
    }
    let path = "/rest/adAccountUsers?q=accounts&accounts=List(urn%3Ali%3AsponsoredAccount%3A1,urn%3Ali%3AsponsoredAccount%3A2)";
    let (status, out) = send(&s, &t, Method::GET, path, None).await;
    assert!(!(200..300).contains(&status), "{path}: {status} {out}");
    let (status, _) = send(
        &s,
        &t,
        Method::GET,
        "/rest/adCampaigns?account=urn%3Ali%3AsponsoredAccount%3A1",
        None,
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn an_unreadable_organization_never_falls_back_to_the_untargeted_route() {
    let s = server().await;
    let member = s.member_id("developer@scopegate.local");
    let t = s.mint(DEMO_APP, Some(&member), "r_organization_admin").await;
    for org in ["urn%3Ali%3Acompany%3A1", "urn%3Ali%3AOrganization%3A1", "1"] {
        let path = format!("/rest/organizationAcls?q=organization&organization={org}");
        let (status, out) = send(&s, &t, Method::GET, &path, None).await;
        assert!(!(200..300).contains(&status), "{path}: {status} {out}");
    }
}

#[tokio::test]
async fn a_quota_store_outage_is_a_503_not_a_throttle() {
    let s = server().await;
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "w_member_social").await;
    s.state
        .store
        .write(|c| c.execute("DROP TABLE quota_counters", &[]))
        .await
        .unwrap();
    let body = json!({"author": person_of(&s, &member), "commentary": "x"}).to_string();
    let (status, out) = send(&s, &t, Method::POST, "/rest/posts", Some(body.as_bytes())).await;
    assert_eq!(status, 503, "{out}");
    let key = rs_key(&s).await;
    let (status, out) = check(
        &s,
        &key,
        json!({"token": t, "method": "POST", "path": "/rest/posts", "body": {"author": person_of(&s, &member)}}),
    )
    .await;
    assert_eq!(status, 503, "{out}");
}

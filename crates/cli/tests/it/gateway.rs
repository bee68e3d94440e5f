//! Enforcement through every gateway style: the route a request names cannot be chosen by the client.

use std::sync::Arc;

use reqwest::Method;
use scopegate_app::Gateway;
use scopegate_core::catalog::ResourceType;
use scopegate_core::enforce::Target;
use scopegate_core::model::RoleAssignment;
use scopegate_core::routes::{
    Route, RouteTable, TargetKind, TargetSource, TokenKindRule, SANDBOX_TOML,
};
use scopegate_core::{Catalog, ScopeSet};
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
    server_behind(None).await
}

/// The demo data set (with Audiences and Lead Sync approved) behind a gateway of this style.
async fn server_behind(gateway: Option<Gateway>) -> InProc {
    let s = InProc::with_config(catalog(), move |c| c.forward_auth_gateway = gateway).await;
    for p in ["audiences", "lead-sync"] {
        s.cli_json(&["app", "product", "request", DEMO_APP, p]);
        s.cli_json(&["review", "approve", DEMO_APP, p]);
    }
    s
}

fn person_of(s: &InProc, member: &str) -> String {
    format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&s.state, DEMO_APP, member)
    )
}

async fn send(
    s: &InProc,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&[u8]>,
) -> (u16, Value) {
    let mut r = s.api(method, path).bearer_auth(token);
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
        .mint(
            DEMO_APP,
            Some(&member),
            "w_member_social w_organization_social",
        )
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
    let t = s
        .mint(DEMO_APP, Some(&member), "r_organization_admin")
        .await;
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
        .store_for_tests()
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

/// How a gateway asks forward-auth: exactly the headers (or path) each sends, plus what a client
/// adds on its own: route-naming headers of the other styles, naming `decoy`.
fn forward_auth_request(
    s: &InProc,
    gateway: Gateway,
    token: &str,
    method: &str,
    uri: &str,
    body: Option<&[u8]>,
    decoy: &str,
) -> reqwest::RequestBuilder {
    let r = match gateway {
        // nginx sets X-Original-* in the auth location (a client's headers of those names are
        // dropped) and passes every other client header on; auth_request sends no body.
        Gateway::Nginx => s
            .client
            .get(s.url("/authz/v1/forward-auth"))
            .header("X-Original-Method", method)
            .header("X-Original-URI", uri)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", decoy),
        // Traefik writes X-Forwarded-Method/Uri itself; with authRequestHeaders unrestricted, a
        // client's X-Original-* would still arrive.
        Gateway::Traefik => s
            .client
            .get(s.url("/authz/v1/forward-auth"))
            .header("X-Forwarded-Method", method)
            .header("X-Forwarded-Uri", uri)
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", decoy),
        // Envoy: the original method and path after the prefix.
        Gateway::Envoy => s
            .client
            .request(
                Method::from_bytes(method.as_bytes()).unwrap(),
                s.url(&format!("/authz/v1/forward-auth{uri}")),
            )
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", decoy)
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", decoy),
    };
    let r = r.bearer_auth(token);
    match body {
        Some(b) if gateway != Gateway::Nginx => r
            .header("content-type", "application/json")
            .body(b.to_vec()),
        _ => r,
    }
}

async fn status_of(r: reqwest::RequestBuilder) -> u16 {
    r.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn forward_auth_refuses_without_a_configured_gateway() {
    let s = server().await;
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "profile").await;
    for r in [
        s.client
            .get(s.url("/authz/v1/forward-auth"))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/v2/me"),
        s.client
            .get(s.url("/authz/v1/forward-auth"))
            .header("X-Forwarded-Method", "GET")
            .header("X-Forwarded-Uri", "/v2/me"),
        s.client.get(s.url("/authz/v1/forward-auth/v2/me")),
    ] {
        let res = r.bearer_auth(&t).send().await.unwrap();
        assert_eq!(res.status(), 404);
        let body: Value = res.json().await.unwrap();
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("--forward-auth-gateway"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn client_added_route_headers_cannot_change_the_verdict() {
    for gateway in [Gateway::Nginx, Gateway::Traefik, Gateway::Envoy] {
        let s = server_behind(Some(gateway)).await;
        let member = s.member_id("developer@scopegate.local");
        let t = s.mint(DEMO_APP, Some(&member), "profile").await;
        // A forbidden call dressed up as /v2/me, and an allowed one dressed up as a forbidden one.
        for (method, uri, decoy, want) in [
            ("POST", "/rest/organizations/1", "/v2/me", 403),
            ("GET", "/rest/adAccounts/1", "/v2/me", 403),
            ("GET", "/v2/me", "/rest/adAccounts/1", 200),
        ] {
            let r = forward_auth_request(&s, gateway, &t, method, uri, None, decoy);
            assert_eq!(status_of(r).await, want, "{gateway:?} {method} {uri}");
        }
        let me = s.url("/authz/v1/forward-auth");
        let refused = match gateway {
            Gateway::Nginx | Gateway::Traefik => {
                let (m, u) = if gateway == Gateway::Nginx {
                    ("X-Original-Method", "X-Original-URI")
                } else {
                    ("X-Forwarded-Method", "X-Forwarded-Uri")
                };
                vec![
                    // The route named twice in the trusted header.
                    s.client
                        .get(&me)
                        .header(m, "GET")
                        .header(u, "/v2/me")
                        .header(u, "/rest/adAccounts/1"),
                    s.client
                        .get(&me)
                        .header(m, "GET")
                        .header(m, "POST")
                        .header(u, "/v2/me"),
                    // In the header and in the path.
                    s.client
                        .get(s.url("/authz/v1/forward-auth/rest/adAccounts/1"))
                        .header(m, "GET")
                        .header(u, "/v2/me"),
                    // Not at all from the trusted source.
                    s.client.get(&me).header(m, "GET"),
                    s.client.get(s.url("/authz/v1/forward-auth/v2/me")),
                    // Not an origin-form URI.
                    s.client
                        .get(&me)
                        .header(m, "GET")
                        .header(u, "https://elsewhere.example/v2/me"),
                ]
            }
            Gateway::Envoy => vec![s
                .client
                .get(s.url("/authz/v1/forward-auth/v2/me"))
                .header("Authorization", "Bearer AQsomeoneelse")],
        };
        for r in refused {
            let status = status_of(r.bearer_auth(&t)).await;
            assert_eq!(status, 400, "{gateway:?}");
        }
    }
}

/// A tiny HTTP upstream that answers 200 and counts the requests that reached it.
async fn upstream() -> (std::net::SocketAddr, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let Ok(n) = sock.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let req = String::from_utf8_lossy(&got).to_lowercase();
                let header = |name: &str| {
                    req.lines()
                        .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_string))
                        .unwrap_or_default()
                };
                let body = json!({"upstream": "ok", "member": header("x-scopegate-member"), "app": header("x-scopegate-app"), "scopes": header("x-scopegate-scopes")}).to_string();
                let res = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                let _ = sock.write_all(res.as_bytes()).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn nginx_as_documented_guards_an_upstream_against_added_headers() {
    let s = server_behind(Some(Gateway::Nginx)).await;
    let (up, hits) = upstream().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = TempDir::new("nginx");
    for sub in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    let conf = include_str!("../../../../docs/gateways/nginx.conf")
        .replace("@SCOPEGATE@", s.base.trim_start_matches("https://"))
        .replace(
            "@CERT@",
            s.data.path().join("tls-cert.pem").to_str().unwrap(),
        )
        .replace("@LISTEN@", &format!("127.0.0.1:{port}"))
        .replace("@UPSTREAM@", &up.to_string())
        .replace("@PREFIX@", dir.path().to_str().unwrap());
    let conf_path = dir.path().join("nginx.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let prefix = dir.path().to_str().unwrap().to_string();
    let mut nginx = std::process::Command::new("nginx")
        .args([
            "-p",
            &prefix,
            "-c",
            conf_path.to_str().unwrap(),
            "-e",
            &format!("{prefix}/error.log"),
            "-g",
            &format!("daemon off; pid {prefix}/nginx.pid;"),
        ])
        // nginx's workers inherit these: they must not hold the test runner's pipes open.
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx from Debian (scripts/test-deps installs nginx-light)");
    // Stops the master with SIGQUIT (it then stops its workers) even if an assertion fails.
    struct Nginx(u32);
    impl Drop for Nginx {
        fn drop(&mut self) {
            let _ = std::process::Command::new("kill")
                .args(["-QUIT", &self.0.to_string()])
                .status();
        }
    }
    let guard = Nginx(nginx.id());
    let base = format!("http://127.0.0.1:{port}");
    let plain = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(20))
        .build()
        .unwrap();
    let mut ready = false;
    for _ in 0..200 {
        if plain.get(format!("{base}/v2/me")).send().await.is_ok() {
            ready = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        ready,
        "nginx did not start: {}",
        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
    );
    let member = s.member_id(MEMBER);
    let me = person_of(&s, &member);
    let t = s
        .mint(DEMO_APP, Some(&member), "profile w_member_social")
        .await;
    let ok = plain
        .get(format!("{base}/v2/me"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["app"], DEMO_APP.to_lowercase());
    assert_eq!(body["member"], me.to_lowercase());
    assert!(body["scopes"].as_str().unwrap().contains("profile"));
    let before = hits.load(std::sync::atomic::Ordering::SeqCst);
    // A forbidden call with every route-naming header a client can add, pointing at /v2/me.
    let res = plain
        .get(format!("{base}/rest/adAccounts/1"))
        .bearer_auth(&t)
        .header("X-Original-URI", "/v2/me")
        .header("X-Original-Method", "GET")
        .header("X-Forwarded-Uri", "/v2/me")
        .header("X-Forwarded-Method", "GET")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "client-added headers change nothing");
    // auth_request sends no body: a route that reads its target from the body is refused
    // (scopegate's 400 becomes nginx's 500), even for an author the member may post as.
    let res = plain
        .post(format!("{base}/rest/posts"))
        .bearer_auth(&t)
        .json(&json!({"author": me, "commentary": "x"}))
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_success(), "{}", res.status());
    assert_eq!(
        hits.load(std::sync::atomic::Ordering::SeqCst),
        before,
        "no refused call reached the upstream"
    );
    drop(guard);
    let _ = nginx.wait();
}

/// One server's view of the demo data: persons as the demo app sees them, roles, approved programs.
struct World {
    s: InProc,
    /// (email, member id, person URN, roles)
    members: Vec<(String, String, String, Vec<RoleAssignment>)>,
    approved: Vec<String>,
    /// One lane per member (and one for application tokens): minting a token re-consents the
    /// member's grant, which revokes the tokens of the grant's earlier scopes, so a member's
    /// token is minted and used before the next is minted.
    lanes: Vec<tokio::sync::Mutex<()>>,
}

async fn world(gateway: Gateway) -> World {
    let s = server_behind(Some(gateway)).await;
    let mut members = Vec::new();
    // The demo member (ADMINISTRATOR, billing admin), a VIEWER/ANALYST, and one without roles.
    for email in [
        MEMBER,
        "viewer@scopegate.local",
        "developer@scopegate.local",
    ] {
        let id = s.member_id(email);
        let m = id.clone();
        let roles = s
            .state
            .store_for_tests()
            .read(move |c| scopegate_app::testing::store::members::roles_of(c, &m))
            .await
            .unwrap();
        members.push((email.to_string(), id.clone(), person_of(&s, &id), roles));
    }
    let approved = s
        .state
        .store_for_tests()
        .read(|c| scopegate_app::testing::store::apps::approved_programs(c, DEMO_APP))
        .await
        .unwrap();
    let lanes = (0..=members.len()).map(|_| Default::default()).collect();
    World {
        s,
        members,
        approved,
        lanes,
    }
}

/// A request for a route: a target value, or a raw body/query for the shapes a value cannot say.
#[derive(Clone)]
enum Value2 {
    /// The route's target, written as this string.
    One(String),
    /// The whole body.
    Body(Vec<u8>),
    /// The whole query.
    Query(String),
    /// No target at all.
    Nothing,
}

#[derive(Clone)]
struct Case {
    label: String,
    route: Route,
    /// Index into World::members, or None for an application token.
    member: Option<usize>,
    scopes: String,
    value: Value2,
    /// The verdict the rules give (None: only the interfaces' agreement is checked).
    expect: Option<bool>,
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The concrete request (method, URI, body) for a case.
fn request(c: &Case) -> (String, String, Option<Vec<u8>>) {
    let r = &c.route;
    let mut path = r.path.clone();
    let mut query = None;
    let mut body = None;
    match (&r.target, &c.value) {
        (Some(TargetSource::Path(n)), Value2::One(v)) => {
            path = path.replace(&format!("{{{n}}}"), &enc(v));
        }
        (Some(TargetSource::Query(n)), Value2::One(v)) => query = Some(format!("{n}={}", enc(v))),
        (Some(TargetSource::Body(n)), Value2::One(v)) => {
            body = Some(
                json!({ n.as_str(): v, "commentary": "table" })
                    .to_string()
                    .into_bytes(),
            )
        }
        (_, Value2::Body(b)) => body = Some(b.clone()),
        (_, Value2::Query(q)) => query = Some(q.clone()),
        _ => {}
    }
    path = path.replace("{id}", "1");
    if r.action.as_deref().is_some_and(|a| a.starts_with("patch:")) {
        // A Rest.li partial update.
        body = Some(br#"{"patch": {"$set": {"note": "table"}}}"#.to_vec());
    }
    if r.method == "POST" && body.is_none() && !matches!(r.target, Some(TargetSource::Body(_))) {
        body = Some(br#"{"note": "table"}"#.to_vec());
    }
    let uri = match query {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    (r.method.clone(), uri, body)
}

/// The rules, written out independently of the implementation: the token's kind, then one of
/// the route's permissions that the token authorizes today, and for a role-restricted one a role
/// on the (canonical) target. `target` is the canonical target the case names.
fn rules_allow(cat: &Catalog, w: &World, c: &Case, target: Option<&Target>) -> bool {
    let member = c.member.map(|i| &w.members[i]);
    match (c.route.tokens, member) {
        (TokenKindRule::Member, None) | (TokenKindRule::Application, Some(_)) => return false,
        _ => {}
    }
    if let Some(Target::Person(p)) = target {
        if member.is_none_or(|m| m.2 != format!("urn:li:person:{p}")) {
            return false;
        }
    }
    let record = scopegate_core::model::TokenRecord {
        hash: scopegate_core::SecretHash::from_stored(String::new()),
        kind: scopegate_core::model::TokenKind::Access,
        client_id: DEMO_APP.into(),
        grant_id: None,
        member_id: member.map(|m| m.1.clone().into()),
        scopes: ScopeSet::parse(&c.scopes).unwrap(),
        created_at: 0,
        authorized_at: 0,
        expires_at: i64::MAX,
        revoked_at: None,
        refresh_hash: None,
        code_hash: None,
        rotated_at: None,
        nonce: None,
        public_client: false,
        auth_time: 0,
    };
    let today = scopegate_app::clock::date_of(w.s.state.now());
    let held = scopegate_core::enforce::effective_token_scopes(cat, &record, &w.approved, today);
    c.route.permissions.iter().any(|p| {
        held.contains(p)
            && match &cat.permission(p).unwrap().role_restriction {
                // Writing for an organization or ad account needs a role on it.
                None => {
                    c.route.method == "GET"
                        || !matches!(
                            c.route.kind,
                            TargetKind::Organization | TargetKind::AdAccount
                        )
                }
                // A finder, batch get or create of the resource: the scope allows the call and
                // the action shows or makes only what a role allows.
                Some(_)
                    if target.is_none()
                        && c.route.reach != scopegate_core::routes::Reach::Target =>
                {
                    true
                }
                Some(rr) => match (target, member) {
                    (Some(Target::Resource(rt, id)), Some(m)) if *rt == rr.resource => {
                        m.3.iter().any(|a| {
                            a.resource_type == *rt
                                && a.resource_id == *id
                                && rr.roles.contains(&a.role)
                                && c.route.roles.as_ref().is_none_or(|n| n.contains(&a.role))
                        })
                    }
                    _ => false,
                },
            }
    })
}

/// The canonical target of a kind for a member, as a string and as what it names.
fn canonical(kind: TargetKind, me: &str) -> Option<(String, Target)> {
    match kind {
        TargetKind::Person => Some((
            me.to_string(),
            Target::Person(me.trim_start_matches("urn:li:person:").to_string()),
        )),
        TargetKind::Organization => Some((
            "urn:li:organization:1".into(),
            Target::Resource(ResourceType::Organization, 1),
        )),
        TargetKind::AdAccount => Some((
            "urn:li:sponsoredAccount:1".into(),
            Target::Resource(ResourceType::AdAccount, 1),
        )),
        TargetKind::None => None,
    }
}

/// Every case for one server: each route with each of its permissions (and none of them) for
/// three members on its canonical target, then, with a token holding all of them, every way of
/// naming the target that is not one canonical target of the route's kind.
fn cases(cat: &Catalog, table: &RouteTable, w: &World) -> Vec<Case> {
    let mut out = Vec::new();
    for r in &table.routes {
        let application = r.tokens == TokenKindRule::Application;
        let holders: Vec<Option<usize>> = if application {
            vec![None]
        } else {
            (0..w.members.len()).map(Some).collect()
        };
        // Every member token also holds `profile`, so a decoy /v2/me header would flip a refusal.
        let extra = if application { "" } else { " profile" };
        let other = if r.permissions.iter().any(|p| p == "profile") {
            "email"
        } else if application {
            "r_sales_nav_profiles"
        } else {
            "openid"
        };
        let mut token_sets: Vec<String> = r
            .permissions
            .iter()
            .map(|p| format!("{p}{extra}"))
            .collect();
        if !r.permissions.iter().any(|p| p == other) {
            token_sets.push(format!("{other}{extra}"));
        }
        for &m in &holders {
            let me = m.map(|i| w.members[i].2.clone()).unwrap_or_default();
            let target = canonical(r.kind, &me);
            for scopes in &token_sets {
                let value = match (&target, &r.target) {
                    (Some((v, _)), Some(TargetSource::Path(_))) if r.kind != TargetKind::Person => {
                        Value2::One(v.rsplit(':').next().unwrap().to_string())
                    }
                    (Some((v, _)), _) => Value2::One(v.clone()),
                    (None, _) => Value2::Nothing,
                };
                let mut c = Case {
                    label: format!(
                        "{} for {:?} with {scopes}",
                        r.id,
                        m.map(|i| &w.members[i].0)
                    ),
                    route: r.clone(),
                    member: m,
                    scopes: scopes.clone(),
                    value,
                    expect: None,
                };
                c.expect = Some(rules_allow(cat, w, &c, target.as_ref().map(|t| &t.1)));
                out.push(c);
            }
        }
        // The attacker's variants, with everything the route could allow, as the demo member.
        let Some(src) = &r.target else { continue };
        let m = if application { None } else { Some(0) };
        let me = m.map(|i| w.members[i].2.clone()).unwrap_or_default();
        let Some((good, _)) = canonical(r.kind, &me) else {
            continue;
        };
        let siblings: Vec<TargetKind> = table
            .routes
            .iter()
            .filter(|x| x.method == r.method && x.path == r.path)
            .map(|x| x.kind)
            .collect();
        let other_person = w.members[1].2.clone();
        // A target the member may not act on, for the duplicates.
        let b = match r.kind {
            TargetKind::Person => other_person.clone(),
            TargetKind::Organization => "urn:li:organization:2".into(),
            _ => "urn:li:sponsoredAccount:2".into(),
        };
        let mut values: Vec<(String, Value2)> = Vec::new();
        let (kind_word, id) = good
            .strip_prefix("urn:li:")
            .and_then(|x| x.split_once(':'))
            .map(|(k, i)| (k.to_string(), i.to_string()))
            .unwrap();
        let mut cap = kind_word.clone();
        cap[..1].make_ascii_uppercase();
        for v in [
            format!("urn:li:{cap}:{id}"),
            format!("URN:LI:{kind_word}:{id}"),
            format!("urn:li:{}:{id}", kind_word.to_lowercase()),
            format!("urn:li:company:{id}"),
            format!("urn:li:organizationBrand:{id}"),
            format!("urn:li:member:{id}"),
            format!("urn:li:{kind_word}: {id}"),
            format!(" urn:li:{kind_word}:{id}"),
            format!("urn:li:{kind_word}:{id} "),
            format!("urn:li:{kind_word}:0{id}"),
            format!("urn:li:{kind_word}:+{id}"),
            format!("urn:li:{kind_word}:{id}:1"),
        ] {
            if v != good {
                values.push((format!("{v:?}"), Value2::One(v)));
            }
        }
        if r.kind == TargetKind::Person {
            values.push(("another member".into(), Value2::One(other_person.clone())));
        }
        // Targets of another kind, where no sibling route acts on that kind.
        for (k, v) in [
            (TargetKind::Person, me.clone()),
            (
                TargetKind::Organization,
                "urn:li:organization:1".to_string(),
            ),
            (
                TargetKind::AdAccount,
                "urn:li:sponsoredAccount:1".to_string(),
            ),
        ] {
            if k != r.kind && !siblings.contains(&k) && !v.is_empty() {
                values.push((format!("a {} target", k.as_str()), Value2::One(v)));
            }
        }
        match src {
            TargetSource::Body(n) => {
                let n = n.as_str();
                for (label, raw) in [
                    ("an array", json!({ n: [good, b] }).to_string()),
                    ("a number", json!({ n: 1 }).to_string()),
                    ("an object", json!({ n: {"id": good} }).to_string()),
                    ("no field", json!({"commentary": "x"}).to_string()),
                    (
                        "duplicate, bad first",
                        format!(r#"{{"{n}": "{b}", "{n}": "{good}"}}"#),
                    ),
                    (
                        "duplicate, good first",
                        format!(r#"{{"{n}": "{good}", "{n}": "{b}"}}"#),
                    ),
                    (
                        "duplicate, escaped key",
                        format!(
                            r#"{{"\u{:04x}{}": "{b}", "{n}": "{good}"}}"#,
                            n.as_bytes()[0],
                            &n[1..]
                        ),
                    ),
                    ("a top-level array", json!([{ n: good }]).to_string()),
                    ("not JSON", format!("{n}={good}")),
                ] {
                    values.push((label.into(), Value2::Body(raw.into_bytes())));
                }
            }
            TargetSource::Query(n) => {
                let (g, bb) = (enc(&good), enc(&b));
                for (label, q) in [
                    ("repeated, good first", format!("{n}={g}&{n}={bb}")),
                    ("repeated, bad first", format!("{n}={bb}&{n}={g}")),
                    (
                        "repeated, encoded name",
                        format!(
                            "{n}={g}&{}={bb}",
                            enc(n).replacen(&n[..1], &format!("%{:02X}", n.as_bytes()[0]), 1)
                        ),
                    ),
                    ("a list of two", format!("{n}=List({g},{bb})")),
                ] {
                    values.push((label.into(), Value2::Query(q)));
                }
                if !siblings.contains(&TargetKind::None) {
                    values.push(("no parameter".into(), Value2::Nothing));
                }
            }
            TargetSource::Path(_) => {
                if r.kind != TargetKind::Person {
                    for v in [
                        format!("0{id}"),
                        format!("+{id}"),
                        format!(" {id}"),
                        format!("{id}.0"),
                    ] {
                        values.push((format!("bare {v:?}"), Value2::One(v)));
                    }
                }
            }
        }
        let all: Vec<&str> = r.permissions.iter().map(String::as_str).collect();
        let scopes = format!("{}{extra}", all.join(" "));
        for (label, value) in values {
            out.push(Case {
                label: format!(
                    "{} for {:?} naming {label}",
                    r.id,
                    m.map(|i| &w.members[i].0)
                ),
                route: r.clone(),
                member: m,
                scopes: scopes.clone(),
                value,
                expect: Some(false),
            });
        }
    }
    out
}

/// The verdicts of one case on one server: (interface, allowed, status).
async fn verdicts(
    w: Arc<World>,
    gateway: Gateway,
    key: String,
    c: Case,
) -> Vec<(String, bool, u16)> {
    let s = &w.s;
    let _lane = w.lanes[c.member.unwrap_or(w.members.len())].lock().await;
    let member = c.member.map(|i| w.members[i].1.clone());
    let token = s.mint(DEMO_APP, member.as_deref(), &c.scopes).await;
    let (method, uri, body) = request(&c);
    let decoy = if c.route.path == "/v2/me" {
        "/rest/adAccounts/1"
    } else {
        "/v2/me"
    };
    let mut out = Vec::new();
    let reads_body = matches!(c.route.target, Some(TargetSource::Body(_)));
    let fa = forward_auth_request(s, gateway, &token, &method, &uri, body.as_deref(), decoy);
    let status = status_of(fa).await;
    // nginx never forwards the body: a body route is refused behind it.
    let no_body = gateway == Gateway::Nginx;
    out.push((
        format!("{gateway:?}{}", if no_body { " (no body)" } else { "" }),
        status == 200,
        status,
    ));
    if gateway != Gateway::Nginx && reads_body {
        let fa = forward_auth_request(s, gateway, &token, &method, &uri, None, decoy);
        let status = status_of(fa).await;
        out.push((format!("{gateway:?} (no body)"), status == 200, status));
    }
    if gateway == Gateway::Nginx {
        // The decision API, with the body as the backend received it (raw).
        let mut req = json!({"token": token, "method": method, "path": uri});
        if let Some(b) = &body {
            req["body"] = json!(String::from_utf8_lossy(b));
        }
        let (status, v) = check(s, &key, req).await;
        assert!(
            status == 200 || status == 404,
            "{}: decision API {status} {v}",
            c.label
        );
        out.push(("decision API".into(), v["allowed"] == true, 0));
        if c.route.path != "/v2/userinfo" {
            let (status, _) = send(
                s,
                &token,
                Method::from_bytes(method.as_bytes()).unwrap(),
                &uri,
                body.as_deref(),
            )
            .await;
            let allowed = !matches!(status, 400 | 401 | 403 | 429);
            out.push(("sandbox".into(), allowed, status));
        }
    }
    out
}

#[tokio::test]
async fn every_route_gets_one_verdict_through_every_interface() {
    let cat = catalog();
    let table = RouteTable::from_toml(SANDBOX_TOML, &cat).unwrap();
    let gateways = [Gateway::Nginx, Gateway::Traefik, Gateway::Envoy];
    let mut worlds = Vec::new();
    for g in gateways {
        worlds.push(Arc::new(world(g).await));
    }
    let key = rs_key(&worlds[0].s).await;
    // The same cases on every server (persons differ per server, so each builds its own).
    let per_server: Vec<Vec<Case>> = worlds.iter().map(|w| cases(&cat, &table, w)).collect();
    let n = per_server[0].len();
    assert!(per_server.iter().all(|c| c.len() == n));
    assert!(n > 300, "the table yields {n} cases");
    let limit = Arc::new(tokio::sync::Semaphore::new(8));
    let mut set = tokio::task::JoinSet::new();
    for ((g, w), server_cases) in gateways.iter().zip(&worlds).zip(&per_server) {
        for (i, c) in server_cases.iter().enumerate() {
            let (w, key, limit, g, c) = (w.clone(), key.clone(), limit.clone(), *g, c.clone());
            set.spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                (i, g, verdicts(w, g, key, c).await)
            });
        }
    }
    let mut by_case: Vec<Vec<(String, bool, u16)>> = vec![Vec::new(); n];
    while let Some(r) = set.join_next().await {
        let (i, _, v) = r.unwrap();
        by_case[i].extend(v);
    }
    let mut allowed_seen = 0;
    let mut failures = Vec::new();
    for (i, vs) in by_case.iter().enumerate() {
        let c = &per_server[0][i];
        let reads_body = matches!(c.route.target, Some(TargetSource::Body(_)));
        let with_body: Vec<&(String, bool, u16)> =
            vs.iter().filter(|v| !v.0.ends_with("(no body)")).collect();
        let first = with_body[0].1;
        if with_body.iter().any(|v| v.1 != first) {
            failures.push(format!(
                "{}: the interfaces disagree: {with_body:?}",
                c.label
            ));
            continue;
        }
        if let Some(e) = c.expect {
            if e != first {
                failures.push(format!(
                    "{}: expected allowed={e}, got {with_body:?}",
                    c.label
                ));
            }
        }
        // A refusal is the same refusal everywhere it has a status.
        let statuses: std::collections::BTreeSet<u16> = with_body
            .iter()
            .map(|v| v.2)
            .filter(|s| *s != 0 && !first)
            .collect();
        if statuses.len() > 1 {
            failures.push(format!("{}: refused differently: {with_body:?}", c.label));
        }
        for v in vs.iter().filter(|v| v.0.ends_with("(no body)")) {
            if reads_body && v.1 {
                failures.push(format!(
                    "{}: allowed without the body it reads: {v:?}",
                    c.label
                ));
            }
            if !reads_body && v.1 != first {
                failures.push(format!("{}: {} disagrees: {vs:?}", c.label, v.0));
            }
        }
        if first {
            allowed_seen += 1;
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        allowed_seen > 50,
        "only {allowed_seen} allowed cases: the table checks too little"
    );
}

#[tokio::test]
async fn a_permission_check_acts_only_as_the_member_or_with_the_role() {
    let cat = catalog();
    let w = world(Gateway::Envoy).await;
    let key = rs_key(&w.s).await;
    let mut failures = Vec::new();
    let mut allowed_seen = 0;
    for p in &cat.permissions {
        for (i, m) in w.members.iter().enumerate().take(3) {
            let application = p.kind == scopegate_core::catalog::PermissionKind::Application;
            let token =
                w.s.mint(
                    DEMO_APP,
                    if application { None } else { Some(&m.1) },
                    &p.name,
                )
                .await;
            for resource in [
                m.2.clone(),
                w.members[(i + 1) % 3].2.clone(),
                "urn:li:organization:1".into(),
                "urn:li:sponsoredAccount:1".into(),
                "urn:li:company:1".into(),
                "urn:li:Organization:1".into(),
            ] {
                let (_, v) = check(
                    &w.s,
                    &key,
                    json!({"token": token, "permission": p.name, "resource": resource}),
                )
                .await;
                let allowed = v["allowed"] == true;
                let may = match &p.role_restriction {
                    Some(rr) => {
                        scopegate_core::routes::parse_urn(&resource).is_some_and(|(rt, id)| {
                            rt == rr.resource
                                && m.3.iter().any(|a| {
                                    a.resource_type == rt
                                        && a.resource_id == id
                                        && rr.roles.contains(&a.role)
                                })
                        })
                    }
                    None => !application && resource == m.2,
                };
                // Allowed only where the rules allow (whether the app's products grant it is
                // another matter: an allowed answer must still be one the rules permit).
                if allowed && !may {
                    failures.push(format!("{} on {resource} for {}: {v}", p.name, m.0));
                }
                allowed_seen += usize::from(allowed);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The allowed side is reached too (own person, roles of the demo member and the viewer).
    assert!(allowed_seen > 20, "only {allowed_seen} allowed answers");
}

#[test]
fn routes_check_refuses_tables_that_would_guess_a_target() {
    let dir = TempDir::new("routes-kinds");
    let f = dir.path().join("kinds.toml");
    std::fs::write(
        &f,
        "[api]\nname = \"x\"\n\n\
         [[route]]\nmethod = \"POST\"\npath = \"/shares\"\nresource = \"shares\"\npermissions = [\"w_member_social\"]\ntarget = { from = \"body\", name = \"owner\" }\n\n\
         [[route]]\nmethod = \"GET\"\npath = \"/pages/{id}\"\nwhen = \"organization\"\nresource = \"pages\"\npermissions = [\"r_ads\"]\ntarget = { from = \"path\", name = \"id\" }\n\n\
         [[route]]\nmethod = \"POST\"\npath = \"/pages/{id}\"\nwhen = \"organization\"\nresource = \"pages\"\npermissions = [\"r_organization_social\"]\ntarget = { from = \"path\", name = \"id\" }\n",
    )
    .unwrap();
    let out = std::process::Command::new(BIN)
        .args(["routes", "check", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("POST /shares names a target: say which kind"),
        "{err}"
    );
    assert!(
        err.contains("\"r_ads\" is restricted to ad_account roles, but GET /pages/{id} acts on organization targets"),
        "{err}"
    );
    assert!(
        err.contains(
            "\"r_organization_social\" is not role-restricted, so it cannot allow POST /pages/{id}"
        ),
        "{err}"
    );
}

#[tokio::test]
async fn only_a_role_lets_a_member_write_for_an_organization_or_ad_account() {
    let s = server().await;
    let key = rs_key(&s).await;
    // No roles at all; old permissions without a role restriction, still before their cut-off.
    let member = s.member_id("developer@scopegate.local");
    let t = s
        .mint(
            DEMO_APP,
            Some(&member),
            "rw_company_admin rw_organization rw_ad_campaigns rw_dmp_segments r_marketing_leadgen_automation r_ads_leadgen_automation",
        )
        .await;
    for (path, body) in [
        ("/rest/posts", json!({"author": "urn:li:organization:1"})),
        ("/rest/organizations/1", json!({"description": "x"})),
        (
            "/v2/adCampaignsV2",
            json!({"account": "urn:li:sponsoredAccount:1"}),
        ),
        (
            "/rest/dmpSegments",
            json!({"account": "urn:li:sponsoredAccount:1"}),
        ),
        (
            "/rest/leadFormResponses",
            json!({"owner": "urn:li:organization:1"}),
        ),
    ] {
        let raw = body.to_string();
        let (status, out) = send(&s, &t, Method::POST, path, Some(raw.as_bytes())).await;
        assert_eq!(status, 403, "POST {path}: {out}");
        let (_, v) = check(
            &s,
            &key,
            json!({"token": t, "method": "POST", "path": path, "body": body}),
        )
        .await;
        assert_eq!(v["allowed"], false, "POST {path}: {v}");
    }
}

#[tokio::test]
async fn a_store_outage_at_the_decision_api_is_a_503_not_a_missing_key() {
    let s = server().await;
    let key = rs_key(&s).await;
    s.state
        .store_for_tests()
        .write(|c| c.execute("DROP TABLE admin_api_keys", &[]))
        .await
        .unwrap();
    let (status, out) = check(&s, &key, json!({"permission": "openid"})).await;
    assert_eq!(status, 503, "{out}");
}

#[tokio::test]
async fn a_dot_segment_matches_no_route() {
    let s = server_behind(Some(Gateway::Traefik)).await;
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "r_member_social").await;
    // (Headers, not Envoy's path: the HTTP client would normalize a path itself.)
    // A backend normalizes `/rest/posts/..` to `/rest`: it must not pass as GET /rest/posts/{id}.
    for path in [
        "/rest/posts/..",
        "/rest/posts/%2e%2e",
        "/rest/posts/%2E",
        "/rest/posts/a%2Fb",
    ] {
        let r = forward_auth_request(&s, Gateway::Traefik, &t, "GET", path, None, "/v2/me");
        assert_eq!(status_of(r).await, 404, "{path}");
    }
    let r = forward_auth_request(
        &s,
        Gateway::Traefik,
        &t,
        "GET",
        "/rest/posts/1",
        None,
        "/v2/me",
    );
    assert_eq!(status_of(r).await, 200);
}

#[tokio::test]
async fn a_store_outage_at_the_admin_api_is_an_error_not_a_wrong_key() {
    let s = server().await;
    let key = s.cli_json(&["admin-key", "create", "--name", "outage-tests"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let apps = |s: &InProc, key: &str| {
        s.client
            .get(s.url("/admin/v1/apps"))
            .bearer_auth(key.to_string())
            .send()
    };
    assert_eq!(apps(&s, &key).await.unwrap().status(), 200);
    s.state
        .store_for_tests()
        .write(|c| c.execute("DROP TABLE admin_api_keys", &[]))
        .await
        .unwrap();
    let res = apps(&s, &key).await.unwrap();
    assert!(res.status().is_server_error(), "{}", res.status());
    assert!(res.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn method_headers_cannot_name_another_operation_than_the_one_checked() {
    // A Rest.li backend routes a POST by X-RestLi-Method (BATCH_CREATE acts on `elements`), and
    // frameworks honour X-HTTP-Method-Override: both must agree with what was checked.
    let s = server_behind(Some(Gateway::Traefik)).await;
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "w_member_social").await;
    let body = json!({"author": person_of(&s, &member), "commentary": "x",
        "elements": [{"author": "urn:li:organization:1"}]})
    .to_string();
    let refused: [(&str, &str); 6] = [
        ("X-RestLi-Method", "BATCH_CREATE"),
        ("X-RestLi-Method", "ACTION"),
        ("X-RestLi-Method", "PARTIAL_UPDATE"),
        ("X-RestLi-Method", "BATCH_PARTIAL_UPDATE"),
        ("X-HTTP-Method-Override", "DELETE"),
        ("X-Method-Override", "PUT"),
    ];
    for (name, value) in refused {
        let via_gateway = forward_auth_request(
            &s,
            Gateway::Traefik,
            &t,
            "POST",
            "/rest/posts",
            Some(body.as_bytes()),
            "/v2/me",
        )
        .header(name, value)
        .send()
        .await
        .unwrap()
        .status();
        assert_eq!(via_gateway, 400, "forward-auth with {name}: {value}");
        let direct = s
            .api(Method::POST, "/rest/posts")
            .bearer_auth(&t)
            .header("content-type", "application/json")
            .header(name, value)
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(direct, 400, "sandbox with {name}: {value}");
    }
    // What LinkedIn's client sends for a create still passes.
    let ok = forward_auth_request(
        &s,
        Gateway::Traefik,
        &t,
        "POST",
        "/rest/posts",
        Some(body.as_bytes()),
        "/v2/me",
    )
    .header("X-RestLi-Method", "CREATE")
    .send()
    .await
    .unwrap()
    .status();
    assert_eq!(ok, 200);
}

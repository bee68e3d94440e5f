//! Issue: enforcement. The matrix generated from the catalog and the route table, the role
//! matrix, the decision API, forward-auth, quotas, and the sandbox storing what it is given.

use reqwest::Method;
use scopegate_core::catalog::{Access, PermissionKind, ResourceType};
use scopegate_core::routes::{RouteTable, TargetKind, TargetSource, SANDBOX_TOML};
use scopegate_core::Catalog;
use serde_json::{json, Value};

use crate::support::*;

/// LinkedIn's catalog with the deprecation cut-offs in the future, so old permissions still
/// authorize (their tokens keep working until the cut-off).
fn catalog() -> Catalog {
    Catalog::from_toml(
        &scopegate_core::catalog::LINKEDIN_TOML
            .replace("cutoff = 2020-06-30", "cutoff = 2099-01-01"),
    )
    .unwrap()
}

async fn server() -> InProc {
    let s = InProc::with_catalog(scopegate_app::Compat::Standard, catalog()).await;
    for p in ["audiences", "lead-sync"] {
        s.cli_json(&["app", "product", "request", DEMO_APP, p]);
        s.cli_json(&["review", "approve", DEMO_APP, p]);
    }
    s
}

struct Ctx {
    person: String,
    org: String,
    ad: String,
}

/// The request that exercises a route for the demo member on the demo organization and ad account.
fn request_for(
    route: &scopegate_core::routes::Route,
    ctx: &Ctx,
    post_id: i64,
) -> (Method, String, Option<Value>) {
    let target = match route.when {
        Some(TargetKind::Organization) => Some(ctx.org.clone()),
        Some(TargetKind::AdAccount) => Some(ctx.ad.clone()),
        Some(TargetKind::None) => None,
        Some(TargetKind::Person) => Some(ctx.person.clone()),
        None => match &route.target {
            Some(TargetSource::Body(n) | TargetSource::Query(n) | TargetSource::Path(n)) => {
                Some(match n.as_str() {
                    "author" | "person" => ctx.person.clone(),
                    "account" | "accounts" => ctx.ad.clone(),
                    "organization" | "owner" => ctx.org.clone(),
                    "id" if route.path.contains("adAccounts") => ctx.ad.clone(),
                    "id" => ctx.org.clone(),
                    _ => ctx.org.clone(),
                })
            }
            None => None,
        },
    };
    let mut path = route.path.clone();
    let mut body = None;
    let mut query = Vec::new();
    match (&route.target, &target) {
        (Some(TargetSource::Path(n)), Some(t)) => {
            let v = if n == "id" {
                t.rsplit(':').next().unwrap().to_string()
            } else {
                t.clone()
            };
            path = path.replace(
                &format!("{{{n}}}"),
                &url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>(),
            );
        }
        (Some(TargetSource::Query(n)), Some(t)) => query.push(format!(
            "{n}={}",
            url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
        )),
        (Some(TargetSource::Body(n)), Some(t)) => {
            body = Some(json!({ n.as_str(): t, "commentary": "from the matrix" }))
        }
        _ => {}
    }
    path = path.replace("{id}", &post_id.to_string());
    if route
        .action
        .as_deref()
        .is_some_and(|a| a.starts_with("patch:"))
    {
        // A Rest.li partial update.
        body = Some(json!({"patch": {"$set": {"commentary": "from the matrix"}}}));
    }
    if route.method == "POST" && body.is_none() {
        body = Some(json!({"note": "from the matrix"}));
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    (
        Method::from_bytes(route.method.as_bytes()).unwrap(),
        path,
        body,
    )
}

async fn call(
    s: &InProc,
    token: &str,
    method: &Method,
    path: &str,
    body: &Option<Value>,
) -> (u16, Value) {
    let mut r = s.api(method.clone(), path).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(b);
    }
    let res = r.send().await.unwrap();
    let status = res.status().as_u16();
    // A create answers with an empty body and the new entity's id in x-restli-id (as LinkedIn
    // does): the helper hands that id back as {"id": ...} so callers read ids one way.
    let created = res
        .headers()
        .get("x-restli-id")
        .map(|v| json!({"id": v.to_str().unwrap()}));
    let body = res.json().await.unwrap_or(Value::Null);
    (
        status,
        if body.is_null() {
            created.unwrap_or(body)
        } else {
            body
        },
    )
}

#[tokio::test]
async fn every_enforceable_permission_allows_its_routes_and_nothing_else_does() {
    let s = server().await;
    let cat = catalog();
    let table = RouteTable::from_toml(SANDBOX_TOML, &cat).unwrap();
    let member = s.member_id(MEMBER);
    let ctx = Ctx {
        person: format!(
            "urn:li:person:{}",
            scopegate_app::signing::pairwise_sub(&s.state, DEMO_APP, &member)
        ),
        org: "urn:li:organization:1".into(),
        ad: "urn:li:sponsoredAccount:1".into(),
    };
    // Objects for the routes that read by id.
    let app_token = s.mint(DEMO_APP, None, "r_sales_nav_validation").await;
    let (status, job) = call(
        &s,
        &app_token,
        &Method::POST,
        "/rest/crmDataValidationExportJobs",
        &Some(json!({"x": 1})),
    )
    .await;
    assert_eq!(status, 201, "{job}");
    let poster = s.mint(DEMO_APP, Some(&member), "w_member_social").await;
    let (status, post) = call(
        &s,
        &poster,
        &Method::POST,
        "/rest/posts",
        &Some(json!({"author": ctx.person, "commentary": "hello"})),
    )
    .await;
    assert_eq!(status, 201, "{post}");
    let post_id: i64 = post["id"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let job_id: i64 = job["id"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();

    // An ad account's campaign group and campaign (DRAFTs, which LinkedIn lets be deleted), by a
    // fresh token each (minting another consent revokes the tokens of the one before).
    let ad_object = |collection: &'static str| {
        let (s, member) = (&s, member.clone());
        async move {
            let ads = s.mint(DEMO_APP, Some(&member), "rw_ads").await;
            let (status, made) = call(
                s,
                &ads,
                &Method::POST,
                &format!("/rest/adAccounts/1/{collection}"),
                &Some(json!({"name": "from the matrix"})),
            )
            .await;
            assert_eq!(status, 201, "{made}");
            made["id"]
                .as_str()
                .unwrap()
                .rsplit(':')
                .next()
                .unwrap()
                .parse::<i64>()
                .unwrap()
        }
    };
    let group_id = ad_object("adCampaignGroups").await;
    let campaign_id = ad_object("adCampaigns").await;

    let mut checked = std::collections::BTreeSet::new();
    for route in &table.routes {
        if route.path == "/v2/userinfo" {
            continue; // served by the OIDC userinfo endpoint, tested there
        }
        let ad_collection = ["adCampaignGroups", "adCampaigns"]
            .into_iter()
            .find(|c| route.path.contains(&format!("/{c}/")));
        let id = if route.path.contains("crmDataValidation") {
            job_id
        } else if ad_collection == Some("adCampaignGroups") {
            group_id
        } else if ad_collection == Some("adCampaigns") {
            campaign_id
        } else {
            post_id
        };
        let (method, mut path, body) = request_for(route, &ctx, id);
        let deletes = route
            .action
            .as_deref()
            .is_some_and(|a| a.starts_with("delete:"));
        for p in &route.permissions {
            if let (true, Some(c)) = (deletes, ad_collection) {
                // Each allowed delete removes an object: each permission gets a fresh one.
                path = request_for(route, &ctx, ad_object(c).await).1;
            } else if deletes {
                // Each allowed delete removes a post: each permission gets a fresh one (by a
                // fresh token: minting another consent revoked the first poster's).
                let poster = s.mint(DEMO_APP, Some(&member), "w_member_social").await;
                let (status, fresh) = call(
                    &s,
                    &poster,
                    &Method::POST,
                    "/rest/posts",
                    &Some(json!({"author": ctx.person, "commentary": "to delete"})),
                )
                .await;
                assert_eq!(status, 201, "{fresh}");
                let n: i64 = fresh["id"]
                    .as_str()
                    .unwrap()
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                path = request_for(route, &ctx, n).1;
            }
            let perm = cat.permission(p).unwrap();
            if perm
                .programs
                .iter()
                .all(|pr| cat.program(pr).unwrap().access == Access::Closed)
                && perm.deprecated.is_none()
            {
                continue; // closed programs' permissions are never granted
            }
            let application = perm.kind == PermissionKind::Application;
            let holder = if application {
                None
            } else {
                Some(member.as_str())
            };
            let with = if perm.auto_granted {
                s.mint(DEMO_APP, holder, "openid").await
            } else {
                s.mint(DEMO_APP, holder, p).await
            };
            let (status, body_out) = call(&s, &with, &method, &path, &body).await;
            assert!(
                (200..300).contains(&status),
                "{} {path} with {p}: {status} {body_out}",
                route.method
            );
            // The same call with a permission the route does not name.
            let other = if application {
                "r_sales_nav_profiles"
            } else {
                "r_basicprofile"
            };
            let other = if route.permissions.iter().any(|x| x == other) {
                if application {
                    "r_sales_nav_validation"
                } else {
                    "email"
                }
            } else {
                other
            };
            let route_has_auto = route
                .permissions
                .iter()
                .any(|x| cat.permission(x).is_some_and(|q| q.auto_granted));
            let without = if route_has_auto {
                // Auto-granted permissions come with the program: an app without it lacks them.
                let other_app = s.cli_json(&[
                    "app",
                    "create",
                    "--name",
                    &format!("No program {p}"),
                    "--owner",
                    "developer@scopegate.local",
                ])["client_id"]
                    .as_str()
                    .unwrap()
                    .to_string();
                s.cli_json(&["app", "product", "request", &other_app, "share-on-linkedin"]);
                s.mint(&other_app, holder, "w_member_social").await
            } else {
                s.mint(DEMO_APP, holder, other).await
            };
            let (status, denied) = call(&s, &without, &method, &path, &body).await;
            assert_eq!(status, 403, "{} {path} without {p}: {denied}", route.method);
            assert_eq!(denied["serviceErrorCode"], 100);
            let restli = match (
                route.method.as_str(),
                // Keyed: the last segment is the entity key (an account's campaigns are not).
                route.path.ends_with('}'),
                path.contains("q="),
            ) {
                ("GET", _, true) => "FINDER-",
                ("GET", _, false) => "GET.",
                ("POST", false, _) => "CREATE.",
                ("POST", true, _) => "PARTIAL_UPDATE.",
                _ => "",
            };
            let want = format!(
                "Not enough permissions to access: {}.{restli}",
                route.resource
            );
            assert!(
                denied["message"].as_str().unwrap().starts_with(&want),
                "{denied}"
            );
            checked.insert(p.clone());
        }
    }
    // Every permission that is not closed has at least one endpoint.
    for p in &cat.permissions {
        let closed = !p.programs.is_empty()
            && p.programs
                .iter()
                .all(|pr| cat.program(pr).unwrap().access == Access::Closed);
        if !closed && p.name != "openid" {
            assert!(
                checked.contains(&p.name),
                "{} has no enforced endpoint",
                p.name
            );
        }
    }
}

#[tokio::test]
async fn role_restricted_permissions_allow_exactly_their_roles() {
    let s = server().await;
    let cat = catalog();
    let cases = [
        (
            "w_organization_social",
            Method::POST,
            "/rest/posts",
            ResourceType::Organization,
        ),
        (
            "rw_organization_admin",
            Method::POST,
            "/rest/organizations/1",
            ResourceType::Organization,
        ),
        (
            "rw_ads",
            Method::POST,
            "/rest/adCampaigns",
            ResourceType::AdAccount,
        ),
        (
            "r_ads",
            Method::GET,
            "/rest/adAccounts/1",
            ResourceType::AdAccount,
        ),
    ];
    for (permission, method, path, rt) in cases {
        let allowed = cat
            .permission(permission)
            .unwrap()
            .role_restriction
            .clone()
            .unwrap()
            .roles;
        for role in cat.roles(rt) {
            let email = format!("{}-{}@example.com", permission, role.to_lowercase());
            let out = std::process::Command::new(BIN)
                .args([
                    "--data-dir",
                    s.data.path().to_str().unwrap(),
                    "--database-url",
                    &s.database_url,
                    "member",
                    "create",
                    "--email",
                    &email,
                    "--first-name",
                    "R",
                    "--password-stdin",
                ])
                .stdin(std::process::Stdio::piped())
                .spawn()
                .and_then(|mut c| {
                    use std::io::Write;
                    c.stdin.take().unwrap().write_all(b"a-long-password")?;
                    c.wait_with_output()
                })
                .unwrap();
            assert!(out.status.success());
            let kind = if rt == ResourceType::Organization {
                "org"
            } else {
                "ad-account"
            };
            s.cli_json(&[kind, "grant", "1", &email, role]);
            let member = s.member_id(&email);
            let token = s.mint(DEMO_APP, Some(&member), permission).await;
            let body = match (rt, method.as_str()) {
                (ResourceType::Organization, "POST") if path == "/rest/posts" => {
                    Some(json!({"author": "urn:li:organization:1", "commentary": "x"}))
                }
                (_, "POST") if path.contains("organizations") => Some(json!({"description": "x"})),
                (ResourceType::AdAccount, "POST") => {
                    Some(json!({"account": "urn:li:sponsoredAccount:1", "name": "c"}))
                }
                _ => None,
            };
            let (status, out) = call(&s, &token, &method, path, &body).await;
            let expect_ok = allowed.contains(role);
            assert_eq!(
                (200..300).contains(&status),
                expect_ok,
                "{permission} with {role}: {status} {out}"
            );
            if !expect_ok {
                assert_eq!(status, 403);
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_reads_ad_accounts_but_cannot_write_even_with_rw_ads() {
    let s = server().await;
    let viewer = s.member_id("viewer@scopegate.local");
    let t = s.mint(DEMO_APP, Some(&viewer), "r_ads rw_ads").await;
    assert_eq!(
        call(&s, &t, &Method::GET, "/rest/adAccounts/1", &None)
            .await
            .0,
        200
    );
    let (status, _) = call(
        &s,
        &t,
        &Method::POST,
        "/rest/adCampaigns",
        &Some(json!({"account": "urn:li:sponsoredAccount:1", "name": "c"})),
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn the_sandbox_stores_what_it_is_given() {
    let s = server().await;
    let member = s.member_id(MEMBER);
    let person = format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&s.state, DEMO_APP, &member)
    );
    let t = s
        .mint(DEMO_APP, Some(&member), "w_member_social r_member_social")
        .await;
    let res = s.client.post(s.url("/rest/posts")).bearer_auth(&t).header("X-Restli-Protocol-Version", "2.0.0").header("LinkedIn-Version", s.linkedin_version()).json(&json!({"author": person, "commentary": "Hello from the sandbox", "visibility": "PUBLIC"})).send().await.unwrap();
    assert_eq!(res.status(), 201);
    let id = res.headers()["x-restli-id"].to_str().unwrap().to_string();
    assert_eq!(
        res.text().await.unwrap(),
        "",
        "LinkedIn's create answers with an empty body"
    );
    assert!(id.starts_with("urn:li:share:"));
    let n = id.rsplit(':').next().unwrap();
    let (status, got) = call(&s, &t, &Method::GET, &format!("/rest/posts/{n}"), &None).await;
    assert_eq!(status, 200);
    assert_eq!(got["commentary"], "Hello from the sandbox");
    let (_, list) = call(
        &s,
        &t,
        &Method::GET,
        &format!(
            "/rest/posts?q=author&author={}",
            url::form_urlencoded::byte_serialize(person.as_bytes()).collect::<String>()
        ),
        &None,
    )
    .await;
    assert_eq!(list["elements"][0]["commentary"], "Hello from the sandbox");
    // Posting as somebody else is refused: w_member_social acts only as the member.
    let (status, denied) = call(
        &s,
        &t,
        &Method::POST,
        "/rest/posts",
        &Some(json!({"author": "urn:li:person:someone-else", "commentary": "x"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        denied["message"],
        format!(
            "Not enough permissions to access: posts.CREATE.{}",
            s.linkedin_version()
        )
    );
    // The ACLs come from the member's real roles.
    let acl_token = s
        .mint(DEMO_APP, Some(&member), "r_organization_admin")
        .await;
    let (_, acls) = call(
        &s,
        &acl_token,
        &Method::GET,
        "/rest/organizationAcls?q=roleAssignee",
        &None,
    )
    .await;
    assert_eq!(acls["elements"][0]["role"], "ADMINISTRATOR");
    assert_eq!(acls["elements"][0]["organization"], "urn:li:organization:1");
    // An unknown LinkedIn-Version is refused as LinkedIn does.
    let res = s
        .client
        .get(s.url("/rest/adAccounts/1"))
        .bearer_auth(&t)
        .header("LinkedIn-Version", "nope")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 426);
}

#[tokio::test]
async fn the_decision_api_explains_every_answer() {
    let s = server().await;
    let key = s.cli_json(&["rs-key", "create", "--name", "ads-api"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let check = |body: Value| {
        let (client, url, key) = (s.client.clone(), s.url("/authz/v1/check"), key.clone());
        async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // Without a resource-server key: 401.
    let res = s
        .client
        .post(s.url("/authz/v1/check"))
        .json(&json!({"permission": "r_ads"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let admin_key = s.cli_json(&["admin-key", "create", "--name", "not-rs"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.client
            .post(s.url("/authz/v1/check"))
            .bearer_auth(admin_key)
            .json(&json!({"permission": "r_ads"}))
            .send()
            .await
            .unwrap()
            .status(),
        401,
        "an admin key is not a resource-server key"
    );
    let member = s.member_id(MEMBER);
    let viewer = s.member_id("viewer@scopegate.local");
    let t = s.mint(DEMO_APP, Some(&member), "rw_ads").await;
    let v = check(json!({"token": t, "method": "POST", "path": "/rest/adCampaigns", "body": {"account": "urn:li:sponsoredAccount:1"}})).await;
    assert_eq!(v["allowed"], true, "{v}");
    assert_eq!(v["permission"], "rw_ads");
    assert_eq!(v["app"], DEMO_APP);
    assert!(v["member"].as_str().unwrap().starts_with("urn:li:person:"));
    assert_eq!(
        check(json!({"token": t, "permission": "rw_ads", "resource": "urn:li:sponsoredAccount:1"}))
            .await["allowed"],
        true
    );
    let vt = s.mint(DEMO_APP, Some(&viewer), "rw_ads").await;
    let v = check(
        json!({"token": vt, "permission": "rw_ads", "resource": "urn:li:sponsoredAccount:1"}),
    )
    .await;
    assert_eq!(
        (v["allowed"].as_bool(), v["reason"].as_str()),
        (Some(false), Some("role_missing")),
        "{v}"
    );
    assert_eq!(
        check(json!({"token": t, "permission": "r_ads_reporting"})).await["reason"],
        "scope_missing"
    );
    assert_eq!(
        check(json!({"permission": "r_ads"})).await["reason"],
        "no_token"
    );
    assert_eq!(
        check(json!({"token": "AQunknown", "permission": "r_ads"})).await["reason"],
        "invalid_token"
    );
    s.post_form(
        "/oauth/v2/revoke",
        &[
            ("client_id", DEMO_APP),
            ("client_secret", DEMO_SECRET),
            ("token", &t),
        ],
    )
    .await;
    assert_eq!(
        check(json!({"token": t, "permission": "rw_ads", "resource": "urn:li:sponsoredAccount:1"}))
            .await["reason"],
        "revoked"
    );
    let fresh = s.mint(DEMO_APP, Some(&member), "r_ads").await;
    s.clock.advance(3601);
    assert_eq!(
        check(
            json!({"token": fresh, "permission": "r_ads", "resource": "urn:li:sponsoredAccount:1"})
        )
        .await["reason"],
        "expired"
    );
}

// Forward-auth through each gateway (and the nginx of docs/gateways/nginx.conf): gateway.rs.

#[tokio::test]
async fn daily_quotas_hold_under_concurrency_and_reset_at_midnight_utc() {
    let dir = TempDir::new("routes");
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "[api]\nname = \"quota\"\n\n[[route]]\nmethod = \"GET\"\npath = \"/v2/me\"\nresource = \"me\"\npermissions = [\"profile\"]\nquota = { app_daily = 20 }\naction = \"me\"\n").unwrap();
    let s = InProc::with_config(catalog(), |c| {
        c.routes_path = Some(routes.clone());
        c.sandbox = Some(true);
    })
    .await;
    let member = s.member_id(MEMBER);
    let t = s.mint(DEMO_APP, Some(&member), "profile").await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, t) = (s.client.clone(), s.url("/v2/me"), t.clone());
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    let mut throttled = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => ok += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!((ok, throttled), (20, 30), "exactly the quota is served");
    let res = s
        .client
        .get(s.url("/v2/me"))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"serviceErrorCode": 101, "message": "Resource level throttle limit for calls to this resource is reached.", "status": 429})
    );
    // The next UTC day the count starts again.
    let now = s.state.now();
    s.clock.advance(86_400 - now.rem_euclid(86_400));
    let t = s.mint(DEMO_APP, Some(&member), "profile").await;
    assert_eq!(
        s.client
            .get(s.url("/v2/me"))
            .bearer_auth(&t)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn routes_check_validates_a_table_against_the_catalog() {
    let dir = TempDir::new("routes-check");
    let f = dir.path().join("bad.toml");
    std::fs::write(&f, "[api]\nname = \"x\"\n\n[[route]]\nmethod = \"GET\"\npath = \"/a\"\nresource = \"a\"\npermissions = [\"nope\"]\n\n[[route]]\nmethod = \"POST\"\npath = \"/ads\"\nresource = \"ads\"\npermissions = [\"rw_ads\"]\n").unwrap();
    let out = std::process::Command::new(BIN)
        .args(["routes", "check", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(":8: unknown permission \"nope\""), "{err}");
    assert!(
        err.contains(":14: \"rw_ads\" is restricted to ad_account roles"),
        "{err}"
    );
    let ok = std::process::Command::new(BIN)
        .args([
            "routes",
            "check",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../catalogs/linkedin-routes.toml"
            ),
        ])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
}

#[tokio::test]
async fn a_deprecated_permission_stops_authorizing_at_its_cutoff() {
    // LinkedIn's catalog as shipped: the old permissions' cut-off (2020-06-30) has passed.
    let s = InProc::demo().await;
    let member = s.member_id(MEMBER);
    let person = format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&s.state, DEMO_APP, &member)
    );
    let t = s.mint(DEMO_APP, Some(&member), "w_share").await;
    let (status, _) = call(
        &s,
        &t,
        &Method::POST,
        "/v2/ugcPosts",
        &Some(json!({"author": person, "commentary": "x"})),
    )
    .await;
    assert_eq!(
        status, 403,
        "w_share no longer authorizes after its cut-off"
    );
    // Introspection still shows the token's real scopes.
    let (_, i) = s.introspect_demo(&t).await;
    assert_eq!(i["scope"], "w_share");
    // Before the cut-off (a catalog with it in the future) the same call is allowed.
    let before = server().await;
    let member = before.member_id(MEMBER);
    let person = format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&before.state, DEMO_APP, &member)
    );
    let t = before.mint(DEMO_APP, Some(&member), "w_share").await;
    let (status, _) = call(
        &before,
        &t,
        &Method::POST,
        "/v2/ugcPosts",
        &Some(json!({"author": person, "commentary": "x"})),
    )
    .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn quota_counters_are_shared_by_nodes_over_postgresql() {
    let db = postgres_url();
    let dir = TempDir::new("pg-quota");
    let routes = dir.path().join("routes.toml");
    std::fs::write(&routes, "[api]\nname = \"quota\"\n\n[[route]]\nmethod = \"GET\"\npath = \"/rest/salesNavigatorProfiles\"\nresource = \"salesNavigatorProfiles\"\npermissions = [\"r_sales_nav_profiles\"]\ntokens = \"application\"\nquota = { app_daily = 20 }\naction = \"salesNavigatorProfiles\"\n").unwrap();
    let env = [(
        "SCOPEGATE_SECRET_KEY",
        "c2NvcGVnYXRlLXRlc3Qtc2hhcmVkLW1hc3Rlci1zZWNyZXQtMzJi",
    )];
    let flags = ["--routes", routes.to_str().unwrap(), "--sandbox", "true"];
    let mut demo_flags = vec!["--demo"];
    demo_flags.extend_from_slice(&flags);
    let a = Server::start_with(TempDir::new("quota-a"), db.clone(), &demo_flags, &env).await;
    let b = Server::start_with(TempDir::new("quota-b"), db.clone(), &flags, &env).await;
    let (_, t) = a.client_credentials(DEMO_APP, DEMO_SECRET).await;
    let token = t["access_token"].as_str().unwrap().to_string();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, url, token) = if i % 2 == 0 {
            (
                a.client.clone(),
                a.url("/rest/salesNavigatorProfiles"),
                token.clone(),
            )
        } else {
            (
                b.client.clone(),
                b.url("/rest/salesNavigatorProfiles"),
                token.clone(),
            )
        };
        tasks.push(tokio::spawn(async move {
            client
                .get(url)
                .bearer_auth(token)
                .header("LinkedIn-Version", wall_clock_linkedin_version())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    let mut ok = 0;
    for task in tasks {
        if task.await.unwrap() == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 20, "two nodes together serve exactly the daily quota");
}

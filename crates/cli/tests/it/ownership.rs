//! Sandbox ownership: nobody reads or changes what they do not own.
//!
//! Generated from the sandbox's route table: every `create:` route makes an object as the first
//! member (or the first app, 2-legged); every route of that collection keyed by `{id}` (get,
//! partial update, delete) and every finder is then called by a second member holding the same
//! scopes and the same kinds of roles on their own organization and ad account, by the first
//! member through a second app, and by a second app's 2-legged token. None of them sees or
//! changes anything of the first's; the first still can. A new collection or keyed route in the
//! table is covered without a new test.

use std::collections::BTreeSet;
use std::io::Write;

use reqwest::Method;
use scopegate_core::catalog::{Access, PermissionKind};
use scopegate_core::routes::{
    Route, RouteTable, TargetKind, TargetSource, TokenKindRule, SANDBOX_TOML,
};
use scopegate_core::Catalog;
use serde_json::{json, Value};

use crate::support::*;

/// LinkedIn's catalog with the deprecation cut-offs in the future, so every permission the
/// route table names still authorizes.
fn catalog() -> Catalog {
    Catalog::from_toml(
        &scopegate_core::catalog::LINKEDIN_TOML
            .replace("cutoff = 2020-06-30", "cutoff = 2099-01-01"),
    )
    .unwrap()
}

fn table() -> RouteTable {
    RouteTable::from_toml(SANDBOX_TOML, &catalog()).unwrap()
}

/// The route's sandbox verb and collection (`get:posts` -> ("get", "posts")).
fn verb_of(route: &Route) -> Option<(&str, &str)> {
    let a = route.action.as_deref()?;
    let mut parts = a.splitn(3, ':');
    Some((parts.next()?, parts.next()?))
}

fn create_member(s: &InProc, email: &str) -> String {
    let mut child = std::process::Command::new(BIN)
        .args([
            "--data-dir",
            s.data.path().to_str().unwrap(),
            "--database-url",
            &s.database_url,
        ])
        .args([
            "member",
            "create",
            "--email",
            email,
            "--first-name",
            "Second",
            "--password-stdin",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password")
        .unwrap();
    assert!(child.wait().unwrap().success());
    s.member_id(email)
}

/// One caller: a token, and the targets that are its own.
struct Principal {
    name: &'static str,
    client_id: String,
    member_id: Option<String>,
    person: String,
    org: String,
    ad: String,
}

impl Principal {
    fn target(&self, kind: TargetKind) -> Option<String> {
        match kind {
            TargetKind::Person => Some(self.person.clone()),
            TargetKind::Organization => Some(self.org.clone()),
            TargetKind::AdAccount => Some(self.ad.clone()),
            TargetKind::None => None,
        }
    }
}

/// The kind of target a route reads, from `when` or the target's name.
fn target_kind(route: &Route) -> TargetKind {
    if let Some(k) = route.when {
        return k;
    }
    match &route.target {
        Some(TargetSource::Body(n) | TargetSource::Query(n) | TargetSource::Path(n)) => {
            match n.as_str() {
                "author" | "person" => TargetKind::Person,
                "account" | "accounts" => TargetKind::AdAccount,
                _ => TargetKind::Organization,
            }
        }
        None => TargetKind::None,
    }
}

/// Every permission the table names for routes of this token kind (a broad token: the same
/// for the owner and the intruders, so only ownership tells them apart).
fn scopes(kind: PermissionKind) -> String {
    let cat = catalog();
    let mut all = BTreeSet::new();
    for r in &table().routes {
        for p in &r.permissions {
            let perm = cat.permission(p).unwrap();
            let closed = !perm.programs.is_empty()
                && perm
                    .programs
                    .iter()
                    .all(|pr| cat.program(pr).unwrap().access == Access::Closed);
            if perm.kind == kind && !perm.auto_granted && !closed {
                all.insert(p.clone());
            }
        }
    }
    all.into_iter().collect::<Vec<_>>().join(" ")
}

struct World {
    s: InProc,
    owner_member: Principal,
    owner_app: Principal,
    intruders_member: Vec<Principal>,
    intruder_app: Principal,
}

/// The demo server, a second member with the same kinds of roles on their own organization and
/// ad account, and a second app approved for the same programs.
async fn world() -> World {
    let s = InProc::with_catalog(scopegate_app::Compat::Standard, catalog()).await;
    let programs = [
        "openid-connect",
        "share-on-linkedin",
        "advertising-apis",
        "marketing-developer-platform",
        "sales-navigator-application-platform",
        "audiences",
        "lead-sync",
    ];
    for p in ["audiences", "lead-sync"] {
        s.cli_json(&["app", "product", "request", DEMO_APP, p]);
        s.cli_json(&["review", "approve", DEMO_APP, p]);
    }
    let other_app = s.cli_json(&[
        "app",
        "create",
        "--name",
        "Second app",
        "--owner",
        "developer@scopegate.local",
    ])["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    for p in programs {
        let r = s.cli_json(&["app", "product", "request", &other_app, p]);
        if r.to_string().contains("requested") {
            s.cli_json(&["review", "approve", &other_app, p]);
        }
    }
    let a = s.member_id(MEMBER);
    let b = create_member(&s, "second-member@example.com");
    let org = s.cli_json(&["org", "create", "--name", "Second Corp"])["id"]
        .as_i64()
        .unwrap()
        .to_string();
    let ad = s.cli_json(&["ad-account", "create", "--name", "Second Ads"])["id"]
        .as_i64()
        .unwrap()
        .to_string();
    // The same roles the first member holds on the demo organization and ad account.
    s.cli_json(&[
        "org",
        "grant",
        &org,
        "second-member@example.com",
        "ADMINISTRATOR",
    ]);
    for role in ["ACCOUNT_BILLING_ADMIN", "ACCOUNT_MANAGER"] {
        s.cli_json(&[
            "ad-account",
            "grant",
            &ad,
            "second-member@example.com",
            role,
        ]);
    }
    let person = |app: &str, m: &str| {
        format!(
            "urn:li:person:{}",
            scopegate_app::signing::pairwise_sub(&s.state, app, m)
        )
    };
    let owner_member = Principal {
        name: "the first member",
        client_id: DEMO_APP.into(),
        member_id: Some(a.clone()),
        person: person(DEMO_APP, &a),
        org: "urn:li:organization:1".into(),
        ad: "urn:li:sponsoredAccount:1".into(),
    };
    let second = Principal {
        name: "a second member",
        client_id: DEMO_APP.into(),
        member_id: Some(b.clone()),
        person: person(DEMO_APP, &b),
        org: format!("urn:li:organization:{org}"),
        ad: format!("urn:li:sponsoredAccount:{ad}"),
    };
    // The first member through another app: their person objects belong to the app that made
    // them (person URNs are pairwise per app). Organization and ad-account objects are the
    // resource's, so this caller is an intruder only for person objects (see `owned_by_member`).
    let same_member_other_app = Principal {
        name: "the first member through a second app",
        client_id: other_app.clone(),
        member_id: Some(a.clone()),
        person: person(&other_app, &a),
        org: format!("urn:li:organization:{org}"),
        ad: format!("urn:li:sponsoredAccount:{ad}"),
    };
    let app = |name, client_id: &str| Principal {
        name,
        client_id: client_id.into(),
        member_id: None,
        person: String::new(),
        org: String::new(),
        ad: String::new(),
    };
    World {
        owner_app: app("the first app", DEMO_APP),
        intruder_app: app("a second app", &other_app),
        owner_member,
        intruders_member: vec![second, same_member_other_app],
        s,
    }
}

impl World {
    async fn token(&self, p: &Principal) -> String {
        match &p.member_id {
            Some(m) => {
                self.s
                    .mint(&p.client_id, Some(m), &scopes(PermissionKind::Member))
                    .await
            }
            None => {
                self.s
                    .mint(&p.client_id, None, &scopes(PermissionKind::Application))
                    .await
            }
        }
    }

    async fn call(
        &self,
        token: &str,
        method: &Method,
        path: &str,
        body: Option<&Value>,
        restli: Option<&str>,
    ) -> (u16, String, Option<String>) {
        let mut r = self.s.api(method.clone(), path).bearer_auth(token);
        if let Some(b) = body {
            r = r.json(b);
        }
        if let Some(h) = restli {
            r = r.header("X-RestLi-Method", h);
        }
        let res = r.send().await.unwrap();
        let status = res.status().as_u16();
        let id = res
            .headers()
            .get("x-restli-id")
            .map(|v| v.to_str().unwrap().to_string());
        (status, res.text().await.unwrap(), id)
    }
}

/// An object the owner made.
struct Made {
    route: String,
    collection: String,
    kind: TargetKind,
    target: Option<String>,
    id: String,
    secret: String,
    app_token: bool,
}

fn enc(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// The route's path with a path target (an ad account's campaigns) filled in: the target's id.
fn at(route: &Route, target: Option<&str>) -> String {
    match (&route.target, target) {
        (Some(TargetSource::Path(n)), Some(t)) => route
            .path
            .replace(&format!("{{{n}}}"), t.rsplit(':').next().unwrap()),
        _ => route.path.clone(),
    }
}

/// A finder request for a target.
fn finder(route: &Route, target: Option<&str>) -> String {
    match (&route.target, target) {
        (Some(TargetSource::Query(n)), Some(t)) => format!("{}?q={n}&{n}={}", route.path, enc(t)),
        _ => at(route, target),
    }
}

/// A keyed request: the route's path with `{id}` filled in, and its body.
fn keyed(route: &Route, id: &str) -> (Method, String, Option<Value>, Option<&'static str>) {
    let path = route.path.replace("{id}", &enc(id));
    let method = Method::from_bytes(route.method.as_bytes()).unwrap();
    match verb_of(route).map(|v| v.0) {
        Some("patch") => (
            method,
            path,
            Some(json!({"patch": {"$set": {"commentary": "changed"}}})),
            Some("PARTIAL_UPDATE"),
        ),
        Some("delete") => (method, path, None, Some("DELETE")),
        _ => (method, path, None, None),
    }
}

#[tokio::test]
async fn nobody_reads_lists_updates_or_deletes_another_owners_sandbox_objects() {
    let w = world().await;
    let table = table();
    let owner_member_token = w.token(&w.owner_member).await;
    let owner_app_token = w.token(&w.owner_app).await;

    // 1. The owners make one object through every create route.
    let mut made = Vec::new();
    for (n, route) in table.routes.iter().enumerate() {
        let Some(("create", collection)) = verb_of(route) else {
            continue;
        };
        let app_token = route.tokens == TokenKindRule::Application;
        let owner = if app_token {
            &w.owner_app
        } else {
            &w.owner_member
        };
        let token = if app_token {
            &owner_app_token
        } else {
            &owner_member_token
        };
        let kind = target_kind(route);
        let target = owner.target(kind);
        let secret = format!("secret-{n}-of-{}", owner.name.replace(' ', "-"));
        let mut body = json!({"commentary": secret, "email": MEMBER});
        if let (Some(TargetSource::Body(name)), Some(t)) = (&route.target, &target) {
            body[name.as_str()] = json!(t);
        }
        let path = at(route, target.as_deref());
        let (status, text, id) = w.call(token, &Method::POST, &path, Some(&body), None).await;
        assert_eq!(status, 201, "{} as {}: {text}", route.id, owner.name);
        made.push(Made {
            route: route.id.clone(),
            collection: collection.to_string(),
            kind,
            target,
            id: id.unwrap(),
            secret,
            app_token,
        });
    }
    assert!(made.len() >= 8, "the table's create routes: {}", made.len());

    // Every keyed route acts on a collection something was made in (else it would go untested).
    let keyed_routes: Vec<&Route> = table
        .routes
        .iter()
        .filter(|r| {
            r.path.contains("{id}")
                && r.target.is_none()
                && verb_of(r).is_some_and(|v| ["get", "patch", "delete"].contains(&v.0))
        })
        .collect();
    for r in &keyed_routes {
        let c = verb_of(r).unwrap().1;
        assert!(
            made.iter().any(|m| m.collection == c),
            "{} acts on {c}, which no create route makes",
            r.id
        );
    }

    // The answer for an id that does not exist: a refused one must look the same.
    let missing = |tok: &str, route: &Route| {
        let (method, path, body, restli) = keyed(route, "1234567890123456789");
        let w = &w;
        let tok = tok.to_string();
        async move { w.call(&tok, &method, &path, body.as_ref(), restli).await }
    };

    // 2. The intruders: nothing of the owners' through any keyed route or finder.
    let mut intruders: Vec<(&Principal, String)> = Vec::new();
    for p in w.intruders_member.iter().chain([&w.intruder_app]) {
        intruders.push((p, w.token(p).await));
    }
    let (mut keyed_checks, mut finder_checks) = (0, 0);
    for m in &made {
        for (p, token) in &intruders {
            if p.member_id.is_none() != m.app_token {
                continue; // the routes refuse the other kind of token outright
            }
            // The first member through another app still reaches what an organization or ad
            // account owns (it is the resource's, not the app's): only person objects are out.
            let owned_by_member = matches!(m.kind, TargetKind::Person | TargetKind::None);
            if p.member_id == w.owner_member.member_id && !owned_by_member {
                continue;
            }
            for r in keyed_routes
                .iter()
                .filter(|r| verb_of(r).unwrap().1 == m.collection)
            {
                let (method, path, body, restli) = keyed(r, &m.id);
                let got = w.call(token, &method, &path, body.as_ref(), restli).await;
                let none = missing(token, r).await;
                assert_eq!(
                    got.0, 404,
                    "{} {} by {} on {}'s {}: {}",
                    r.method, path, p.name, w.owner_member.name, m.route, got.1
                );
                assert_eq!(
                    got.1, none.1,
                    "{} {path}: a refused id must answer as a missing one",
                    r.method
                );
                let body: Value = serde_json::from_str(&got.1).unwrap();
                assert_eq!(body["serviceErrorCode"], 404);
                assert_eq!(body["status"], 404);
                keyed_checks += 1;
            }
            for r in table
                .routes
                .iter()
                .filter(|r| verb_of(r).is_some_and(|v| v.0 == "list" && v.1 == m.collection))
            {
                let kind = target_kind(r);
                // The intruder's own target and the owner's.
                for t in [p.target(kind), m.target.clone()] {
                    let path = finder(r, t.as_deref());
                    let (status, text, _) = w.call(token, &Method::GET, &path, None, None).await;
                    let num = m.id.rsplit(':').next().unwrap();
                    assert!(
                        !text.contains(&m.secret) && !text.contains(num),
                        "{path} by {} ({status}) shows {}'s object: {text}",
                        p.name,
                        m.route
                    );
                    finder_checks += 1;
                }
            }
        }
    }

    // Reads, updates and deletes of posts and export jobs by three intruders; finders of
    // every listed collection.
    assert!(
        keyed_checks >= 10 && finder_checks >= 20,
        "{keyed_checks} keyed, {finder_checks} finder calls"
    );

    // 3. The owners still read, find, change and delete their own.
    for m in &made {
        let token = if m.app_token {
            &owner_app_token
        } else {
            &owner_member_token
        };
        let listed_by = table.routes.iter().filter(|r| {
            verb_of(r).is_some_and(|v| v.0 == "list" && v.1 == m.collection)
                && (r.when.is_none() || r.when == Some(m.kind))
        });
        for r in listed_by {
            let path = finder(r, m.target.as_deref());
            let (status, text, _) = w.call(token, &Method::GET, &path, None, None).await;
            assert_eq!(status, 200, "{path}: {text}");
            assert!(
                text.contains(&m.secret),
                "{path} does not list the owner's {}: {text}",
                m.route
            );
        }
        let mut routes: Vec<&&Route> = keyed_routes
            .iter()
            .filter(|r| verb_of(r).unwrap().1 == m.collection)
            .collect();
        // Deletes last.
        routes.sort_by_key(|r| verb_of(r).unwrap().0 == "delete");
        for r in routes {
            let (method, path, body, restli) = keyed(r, &m.id);
            let (status, text, _) = w.call(token, &method, &path, body.as_ref(), restli).await;
            match verb_of(r).unwrap().0 {
                "get" => {
                    assert_eq!(status, 200, "{path}: {text}");
                    assert!(
                        text.contains(&m.secret) || text.contains("changed"),
                        "{path}: {text}"
                    );
                }
                _ => assert_eq!(status, 204, "{} {path}: {text}", r.method),
            }
        }
    }
}

#[tokio::test]
async fn a_member_without_a_role_cannot_make_objects_for_another_organization_or_ad_account() {
    let w = world().await;
    let intruder = &w.intruders_member[0];
    let token = w.token(intruder).await;
    // The table's creates that name an organization or an ad account, aimed at the first's.
    let mut tried = 0;
    for route in &w_table_creates() {
        let kind = target_kind(route);
        let target = w.owner_member.target(kind);
        let (
            Some(TargetSource::Body(name)),
            Some(t),
            TargetKind::Organization | TargetKind::AdAccount,
        ) = (&route.target, &target, kind)
        else {
            continue;
        };
        let body = json!({name.as_str(): t, "commentary": "planted"});
        let (status, text, _) = w
            .call(&token, &Method::POST, &route.path, Some(&body), None)
            .await;
        assert_eq!(
            status, 403,
            "{} for {t} by {}: {text}",
            route.id, intruder.name
        );
        tried += 1;
    }
    assert!(tried >= 4, "{tried}");
}

fn w_table_creates() -> Vec<Route> {
    table()
        .routes
        .into_iter()
        .filter(|r| verb_of(r).is_some_and(|v| v.0 == "create"))
        .collect()
}

#[tokio::test]
async fn sandbox_ids_are_random_and_share_no_sequence_across_collections() {
    let w = world().await;
    let member = w.token(&w.owner_member).await;
    let app = w.token(&w.owner_app).await;
    let mut ids: Vec<(String, u64)> = Vec::new();
    for route in w_table_creates() {
        let app_token = route.tokens == TokenKindRule::Application;
        let owner = if app_token {
            &w.owner_app
        } else {
            &w.owner_member
        };
        let target = owner.target(target_kind(&route));
        // Two in a row through each create route.
        for _ in 0..2 {
            let mut body = json!({"commentary": "x"});
            if let (Some(TargetSource::Body(name)), Some(t)) = (&route.target, &target) {
                body[name.as_str()] = json!(t);
            }
            let (status, text, id) = w
                .call(
                    if app_token { &app } else { &member },
                    &Method::POST,
                    &at(&route, target.as_deref()),
                    Some(&body),
                    None,
                )
                .await;
            assert_eq!(status, 201, "{}: {text}", route.id);
            let id = id.unwrap();
            let n = id.rsplit(':').next().unwrap();
            assert_eq!(n.len(), 19, "{id}: LinkedIn's ids are 19-digit numbers");
            ids.push((id.clone(), n.parse().unwrap()));
        }
    }
    // Any two ids, in one collection or across collections, are far apart: no counter.
    for (i, (a, x)) in ids.iter().enumerate() {
        for (b, y) in &ids[i + 1..] {
            assert!(
                x.abs_diff(*y) > 1 << 32,
                "{a} and {b} are {} apart",
                x.abs_diff(*y)
            );
        }
    }
}

#[tokio::test]
async fn answers_computed_from_an_organization_or_ad_account_are_for_members_with_a_role_there() {
    let w = world().await;
    let owner = w.token(&w.owner_member).await;
    let (status, text, _) = w
        .call(
            &owner,
            &Method::POST,
            "/rest/adCampaigns",
            Some(&json!({"account": w.owner_member.ad, "name": "c"})),
            None,
        )
        .await;
    assert_eq!(status, 201, "{text}");
    let acl = format!(
        "/rest/organizationAcls?q=organization&organization={}",
        enc(&w.owner_member.org)
    );
    let analytics = format!(
        "/rest/adAnalytics?q=analytics&accounts=List({})",
        enc(&w.owner_member.ad)
    );
    // The owner sees the organization's administrators and the account's campaigns…
    let (_, text, _) = w.call(&owner, &Method::GET, &acl, None, None).await;
    let acls: Value = serde_json::from_str(&text).unwrap();
    assert!(!acls["elements"].as_array().unwrap().is_empty(), "{text}");
    let (_, text, _) = w.call(&owner, &Method::GET, &analytics, None, None).await;
    let counts: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(counts["elements"][0]["campaigns"], 1, "{text}");
    // …a member with the same scopes and no role there sees neither.
    let intruder = w.token(&w.intruders_member[0]).await;
    let (status, text, _) = w.call(&intruder, &Method::GET, &acl, None, None).await;
    if status == 200 {
        let acls: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(acls["elements"], json!([]), "{text}");
    } else {
        assert_eq!(status, 403, "{text}");
    }
    let (status, text, _) = w
        .call(&intruder, &Method::GET, &analytics, None, None)
        .await;
    if status == 200 {
        let counts: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(counts["elements"][0]["campaigns"], 0, "{text}");
    } else {
        assert_eq!(status, 403, "{text}");
    }
}

/// A stored object whose body is not JSON is a broken record: reading it is refused (503), and a
/// partial update neither answers from `{}` nor writes a patched `{}` over what was stored.
#[tokio::test]
async fn a_stored_object_that_is_not_json_is_refused_not_shown_or_patched_as_empty() {
    let w = world().await;
    let table = table();
    let token = w.token(&w.owner_member).await;
    let keyed_route = |verb: &str, collection: &str| {
        table
            .routes
            .iter()
            .find(|r| {
                r.path.contains("{id}")
                    && r.target.is_none()
                    && r.tokens != TokenKindRule::Application
                    && verb_of(r) == Some((verb, collection))
            })
            .cloned()
    };
    let (create, get, patch) = table
        .routes
        .iter()
        .filter(|r| r.tokens != TokenKindRule::Application)
        .find_map(|r| {
            let ("create", c) = verb_of(r)? else {
                return None;
            };
            Some((r.clone(), keyed_route("get", c)?, keyed_route("patch", c)?))
        })
        .expect("a member collection with create, get and patch routes");
    let mut body = json!({"commentary": "kept"});
    if let (Some(TargetSource::Body(name)), Some(t)) =
        (&create.target, &w.owner_member.target(target_kind(&create)))
    {
        body[name.as_str()] = json!(t);
    }
    let (status, text, id) = w
        .call(&token, &Method::POST, &create.path, Some(&body), None)
        .await;
    assert_eq!(status, 201, "{}: {text}", create.id);
    let id = id.unwrap();
    let n = id.rsplit(':').next().unwrap().to_string();
    w.s.sql(&format!(
        "UPDATE sandbox_objects SET body = 'not json' WHERE id = {n}"
    ));

    let (method, path, b, restli) = keyed(&get, &id);
    let (status, text, _) = w.call(&token, &method, &path, b.as_ref(), restli).await;
    assert_eq!(
        status, 503,
        "{}: a broken record is not shown: {text}",
        get.id
    );
    assert!(!text.contains("\"id\""), "{text}");

    let (method, path, b, restli) = keyed(&patch, &id);
    let (status, text, _) = w.call(&token, &method, &path, b.as_ref(), restli).await;
    assert_eq!(
        status, 503,
        "{}: a broken record is not patched: {text}",
        patch.id
    );
    let stored =
        w.s.sql(&format!("SELECT body FROM sandbox_objects WHERE id = {n}"));
    assert_eq!(stored.trim(), "not json", "the stored body was overwritten");
}

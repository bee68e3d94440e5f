//! Generated from the route table the server enforces (the one it loaded, `state.routes`): every
//! route is reachable (never 404 "no route") and enforced: no token is LinkedIn's 401, a token
//! without one of the route's permissions is its 403. The refused token is of an app with no
//! products, so no permission reaches it by a program's automatic grants. A route added to the
//! table is walked without a new test.

use reqwest::Method;
use scopegate_core::routes::{Route, TargetKind, TargetSource, TokenKindRule};
use serde_json::{json, Value};

use crate::support::*;

/// The canonical target of a route's kind for the demo member (their person, the demo
/// organization and ad account).
fn target(route: &Route, person: &str) -> Option<String> {
    match route.kind {
        TargetKind::Person => Some(person.to_string()),
        TargetKind::Organization => Some("urn:li:organization:1".into()),
        TargetKind::AdAccount => Some("urn:li:sponsoredAccount:1".into()),
        TargetKind::None => None,
    }
}

/// The request that reaches a route: its path parameters filled (the target as a bare id, any
/// other key a well-formed id), its target where the route reads it, a JSON body for a POST.
fn request(route: &Route, person: &str) -> (Method, String, Option<Value>) {
    let t = target(route, person);
    let mut path = route.path.clone();
    let mut query = None;
    let mut body = None;
    match (&route.target, &t) {
        (Some(TargetSource::Path(n)), Some(t)) => {
            // A resource by its bare id (LinkedIn's paths); a person by the encoded URN.
            let key = match route.kind {
                TargetKind::Person => {
                    url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
                }
                _ => t.rsplit(':').next().unwrap().to_string(),
            };
            path = path.replace(&format!("{{{n}}}"), &key);
        }
        (Some(TargetSource::Query(n)), Some(t)) => {
            query = Some(format!(
                "{n}={}",
                url::form_urlencoded::byte_serialize(t.as_bytes()).collect::<String>()
            ))
        }
        (Some(TargetSource::Body(n)), Some(t)) => body = Some(json!({ n.as_str(): t })),
        _ => {}
    }
    path = path.replace("{id}", "1234567890123456789");
    assert!(
        !path.contains('{'),
        "{}: an unfilled parameter in {path}",
        route.id
    );
    if route.method == "POST" && body.is_none() {
        body = Some(json!({"name": "route walk"}));
    }
    if let Some(q) = query {
        path = format!("{path}?{q}");
    }
    (
        Method::from_bytes(route.method.as_bytes()).unwrap(),
        path,
        body,
    )
}

/// A permission of the right kind that the route does not name.
fn other_permission(route: &Route) -> &'static str {
    let candidates: &[&'static str] = match route.tokens {
        TokenKindRule::Application => &["r_sales_nav_profiles", "r_sales_nav_validation"],
        _ => &["r_ads_reporting", "r_1st_connections_size", "openid"],
    };
    candidates
        .iter()
        .copied()
        .find(|p| !route.permissions.iter().any(|x| x == p))
        .unwrap()
}

#[tokio::test]
async fn every_route_of_the_table_is_reachable_and_enforced() {
    let s = InProc::demo().await;
    let member = s.member_id(MEMBER);
    let bare_app = s.cli_json(&[
        "app",
        "create",
        "--name",
        "No products",
        "--owner",
        "developer@scopegate.local",
    ])["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    // The member as the bare app sees them (person URNs are pairwise per app).
    let person = format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&s.state, &bare_app, &member)
    );
    let routes = s.state.routes.routes.clone();
    assert!(routes.len() >= 40, "the table has {} routes", routes.len());
    for route in &routes {
        let (method, path, body) = request(route, &person);
        let send = |token: Option<String>| {
            let mut r = s.api(method.clone(), &path);
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if let Some(b) = &body {
                r = r.json(b);
            }
            async move {
                let res = r.send().await.unwrap();
                let status = res.status().as_u16();
                (status, res.json::<Value>().await.unwrap_or(Value::Null))
            }
        };
        let (status, out) = send(None).await;
        assert!(
            !out.to_string().contains("no route"),
            "{}: unreachable at {method} {path}: {out}",
            route.id
        );
        assert_eq!(status, 401, "{} without a token: {out}", route.id);
        let other = other_permission(route);
        let holder = match route.tokens {
            TokenKindRule::Application => None,
            _ => Some(member.as_str()),
        };
        let token = s.mint(&bare_app, holder, other).await;
        let (status, out) = send(Some(token)).await;
        assert_eq!(
            status, 403,
            "{} with only {other} (it needs one of {:?}): {out}",
            route.id, route.permissions
        );
    }
}

/// The `X-RestLi-Method` a route's shape means for its HTTP method, and one it cannot mean.
fn restli_methods(route: &Route) -> (&'static str, &'static str) {
    match (route.method.as_str(), route.keyed()) {
        ("GET", true) => ("GET", "GET_ALL"),
        ("GET", false) => ("GET_ALL", "PARTIAL_UPDATE"),
        ("POST", true) => ("PARTIAL_UPDATE", "CREATE"),
        ("POST", false) => ("CREATE", "PARTIAL_UPDATE"),
        ("PUT", _) => ("UPDATE", "CREATE"),
        (_, _) => ("DELETE", "CREATE"),
    }
}

#[tokio::test]
async fn the_sandbox_and_forward_auth_read_every_routes_method_header_alike() {
    // Both places decide from the route which Rest.li methods a call can be: the one its shape
    // means passes the header check in both, another is refused in both (a collection under a
    // keyed parent, `/rest/adAccounts/{account}/adCampaigns`, is still a collection).
    let s = InProc::with_config(scopegate_core::Catalog::linkedin(), |c| {
        c.forward_auth_gateway = Some(scopegate_app::Gateway::Nginx)
    })
    .await;
    let member = s.member_id(MEMBER);
    let person = format!(
        "urn:li:person:{}",
        scopegate_app::signing::pairwise_sub(&s.state, DEMO_APP, &member)
    );
    let routes = s.state.routes.routes.clone();
    for route in &routes {
        let (method, path, body) = request(route, &person);
        let holder = match route.tokens {
            TokenKindRule::Application => None,
            _ => Some(member.as_str()),
        };
        let token = s.mint(DEMO_APP, holder, other_permission(route)).await;
        let (meant, other) = restli_methods(route);
        for (header, refused) in [(meant, false), (other, true)] {
            let mut direct = s
                .api(method.clone(), &path)
                .bearer_auth(&token)
                .header("X-RestLi-Method", header);
            if let Some(b) = &body {
                direct = direct.json(b);
            }
            let direct = direct.send().await.unwrap().text().await.unwrap();
            // /v2/userinfo is answered by the OpenID Connect handler, not the sandbox.
            let places: &[(&str, &String)] = if route.path == "/v2/userinfo" {
                &[]
            } else {
                &[("sandbox", &direct)]
            };
            let gateway = s
                .client
                .get(s.url("/authz/v1/forward-auth"))
                .header("X-Original-Method", method.as_str())
                .header("X-Original-URI", &path)
                .bearer_auth(&token)
                .header("X-RestLi-Method", header)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            for (place, out) in places.iter().copied().chain([("forward-auth", &gateway)]) {
                assert_eq!(
                    out.contains("does not match"),
                    refused,
                    "{} via {place} with X-RestLi-Method {header}: {out}",
                    route.id
                );
            }
        }
    }
}

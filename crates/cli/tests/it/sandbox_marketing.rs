//! The sandbox's versioned API as LinkedIn serves it today: the `LinkedIn-Version` rules on
//! /rest, and the Marketing API's ad accounts with their campaign groups and campaigns as
//! sub-resources (docs/routes.md "Versions" and "Marketing"). The demo data: the test member is
//! ACCOUNT_BILLING_ADMIN and ACCOUNT_MANAGER of ad account 1, the poster its CAMPAIGN_MANAGER and
//! CREATIVE_MANAGER, the viewer its VIEWER; the developer holds no role on it.

use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

const POSTER: &str = "poster@scopegate.local";
const VIEWER: &str = "viewer@scopegate.local";
const DEVELOPER: &str = "developer@scopegate.local";

/// One call: (status, JSON body or null, headers).
async fn send(
    s: &InProc,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
    restli: Option<&str>,
) -> (u16, Value, HeaderMap) {
    let mut r = s.api(method, path).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(m) = restli {
        r = r.header("X-RestLi-Method", m);
    }
    let res = r.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.json().await.unwrap_or(Value::Null), headers)
}

/// A token for a demo member with these scopes (minting other scopes for the same member
/// revokes the member's earlier tokens, as LinkedIn does).
async fn token(s: &InProc, email: &str, scopes: &str) -> String {
    s.mint(DEMO_APP, Some(&s.member_id(email)), scopes).await
}

fn id_of(headers: &HeaderMap) -> String {
    let urn = headers["x-restli-id"].to_str().unwrap();
    urn.rsplit(':').next().unwrap().to_string()
}

/// `YYYYMM` of the month `back` months before the service clock's.
fn months_back(s: &InProc, back: i64) -> String {
    let d = scopegate_app::clock::date_of(s.state.now());
    let i = i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1 - back;
    format!("{:04}{:02}", i.div_euclid(12), i.rem_euclid(12) + 1)
}

async fn with_version(s: &InProc, token: &str, path: &str, version: Option<&str>) -> (u16, Value) {
    let mut r = s.client.get(s.url(path)).bearer_auth(token);
    if let Some(v) = version {
        r = r.header("LinkedIn-Version", v);
    }
    let res = r.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn sandbox_rest_calls_need_an_active_linkedin_version() {
    let s = InProc::demo().await;
    let t = token(&s, MEMBER, "r_ads profile").await;
    // Missing: LinkedIn's 400, before anything else is looked at (even the token).
    let (status, body) = with_version(&s, &t, "/rest/adAccounts/1", None).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "VERSION_MISSING");
    assert_eq!(body["status"], 400);
    let (status, _) = with_version(&s, "not-a-token", "/rest/adAccounts/1", None).await;
    assert_eq!(status, 400);
    // /v2 is unversioned.
    let (status, _) = with_version(&s, &t, "/v2/me", None).await;
    assert_eq!(status, 200);
    // The current month and a year back are active; 13 months back is sunset, next month does
    // not exist yet, and neither does a malformed version.
    for (v, ok) in [
        (months_back(&s, 0), true),
        (months_back(&s, 11), true),
        (format!("{}.01", months_back(&s, 1)), true),
        (months_back(&s, 13), false),
        (months_back(&s, -1), false),
        ("202311".to_string(), false),
        ("2024-05".to_string(), false),
    ] {
        let (status, body) = with_version(&s, &t, "/rest/adAccounts/1", Some(&v)).await;
        if ok {
            assert_eq!(status, 200, "{v}: {body}");
        } else {
            assert_eq!(status, 426, "{v}: {body}");
            assert_eq!(body["code"], "NONEXISTENT_VERSION", "{v}");
        }
    }
    let (_, body) = with_version(&s, &t, "/rest/adAccounts/1", Some("202311")).await;
    assert_eq!(
        body["message"], "Requested version 20231101 is not active",
        "LinkedIn names the version as YYYYMM01"
    );
    // The window moves with the service clock: today's version is sunset 13 months on.
    let today = months_back(&s, 0);
    s.clock.advance(400 * 86_400);
    let (status, _) = with_version(&s, &t, "/rest/adAccounts/1", Some(&today)).await;
    assert_eq!(status, 426, "{today} a year and a month later");
}

#[tokio::test]
async fn sandbox_version_table_is_configurable() {
    let s = InProc::with_config(scopegate_core::Catalog::linkedin(), |c| {
        c.api_versions = scopegate_app::sandbox::ApiVersions::Listed(vec!["202301".into()]);
    })
    .await;
    let t = token(&s, MEMBER, "r_ads").await;
    let (status, body) = with_version(&s, &t, "/rest/adAccounts/1", Some("202301")).await;
    assert_eq!(status, 200, "{body}");
    let now = months_back(&s, 0);
    let (status, _) = with_version(&s, &t, "/rest/adAccounts/1", Some(&now)).await;
    assert_eq!(status, 426, "{now} is not in the table");
}

#[tokio::test]
async fn sandbox_ad_accounts_are_found_only_where_the_member_holds_a_role() {
    let s = InProc::demo().await;
    // The developer creates an account and becomes its billing admin.
    let dev = token(&s, DEVELOPER, "r_ads rw_ads").await;
    let (status, _, h) = send(
        &s,
        &dev,
        Method::POST,
        "/rest/adAccounts",
        Some(json!({"name": "Dev Ads", "currency": "EUR", "type": "BUSINESS", "reference": "urn:li:organization:1"})),
        None,
    )
    .await;
    assert_eq!(status, 201);
    let other = id_of(&h);
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("/rest/adAccounts/{other}")
    );
    let (status, acct, _) = send(
        &s,
        &dev,
        Method::GET,
        &format!("/rest/adAccounts/{other}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{acct}");
    assert_eq!(acct["name"], "Dev Ads");
    assert_eq!(acct["currency"], "EUR");
    // Recorded as the CLI's creation and grant are.
    let audit = s.cli_json(&[
        "audit",
        "--target",
        &format!("urn:li:sponsoredAccount:{other}"),
    ]);
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    let created = format!(
        "{}.create",
        scopegate_core::catalog::ResourceType::AdAccount.as_str()
    );
    assert!(actions.contains(&created.as_str()), "{audit}");
    assert!(actions.contains(&"role.grant"), "{audit}");

    let t = token(&s, MEMBER, "r_ads").await;
    let search = "/rest/adAccounts?q=search&search=(status:(values:List(ACTIVE)))";
    let (status, found, _) = send(&s, &t, Method::GET, search, None, None).await;
    assert_eq!(status, 200, "{found}");
    let ids: Vec<i64> = found["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![1],
        "only the account the member holds a role on: {found}"
    );
    assert_eq!(found["paging"]["start"], 0);
    assert_eq!(found["paging"]["total"], 1);
    let (_, dev_found, _) = send(&s, &dev, Method::GET, search, None, None).await;
    assert_eq!(dev_found["elements"][0]["id"].to_string(), other);
    assert_eq!(dev_found["elements"].as_array().unwrap().len(), 1);
    // Criteria narrow it.
    let (_, none, _) = send(
        &s,
        &t,
        Method::GET,
        "/rest/adAccounts?q=search&search=(name:(values:List(Nobody%27s)))",
        None,
        None,
    )
    .await;
    assert_eq!(none["elements"], json!([]));
    let (status, bad, _) = send(
        &s,
        &t,
        Method::GET,
        "/rest/adAccounts?q=search&search=(status:(values:List(ACTIVE)",
        None,
        None,
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    // Batch get: results, statuses and errors; another member's account is not shown.
    let path = format!("/rest/adAccounts?ids=List(1,urn%3Ali%3AsponsoredAccount%3A{other},424242)");
    let (status, batch, _) = send(&s, &t, Method::GET, &path, None, Some("BATCH_GET")).await;
    assert_eq!(status, 200, "{batch}");
    assert_eq!(batch["results"]["1"]["name"], "Demo Corp Ads");
    assert_eq!(batch["statuses"]["1"], 200);
    let theirs = format!("urn:li:sponsoredAccount:{other}");
    assert!(batch["results"].get(&theirs).is_none(), "{batch}");
    assert_eq!(batch["statuses"][&theirs], 404);
    assert_eq!(batch["errors"][&theirs]["status"], 404);
    assert_eq!(batch["errors"]["424242"]["status"], 404);
    // Reading another member's account by its key: LinkedIn's 403.
    let (status, denied, _) = send(
        &s,
        &t,
        Method::GET,
        &format!("/rest/adAccounts/{other}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 403, "{denied}");
    assert_eq!(denied["code"], "ACCESS_DENIED");
}

#[tokio::test]
async fn sandbox_ad_account_data_is_changed_by_its_managers_only() {
    let s = InProc::demo().await;
    let patch = json!({"patch": {"$set": {"name": "Renamed Ads", "status": "ON_HOLD"}}});
    // A CAMPAIGN_MANAGER holds rw_ads's roles but does not edit account data.
    let poster = token(&s, POSTER, "r_ads rw_ads").await;
    let (status, body, _) = send(
        &s,
        &poster,
        Method::POST,
        "/rest/adAccounts/1",
        Some(patch.clone()),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    let viewer = token(&s, VIEWER, "r_ads rw_ads").await;
    let (status, _, _) = send(
        &s,
        &viewer,
        Method::POST,
        "/rest/adAccounts/1",
        Some(patch.clone()),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 403, "VIEWER is read-only even with rw_ads");
    let read_only = token(&s, MEMBER, "r_ads").await;
    let (status, _, _) = send(
        &s,
        &read_only,
        Method::POST,
        "/rest/adAccounts/1",
        Some(patch.clone()),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 403, "r_ads does not write");
    let manager = token(&s, MEMBER, "r_ads rw_ads").await;
    let (status, body, _) = send(
        &s,
        &manager,
        Method::POST,
        "/rest/adAccounts/1",
        Some(patch),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, acct, _) = send(&s, &manager, Method::GET, "/rest/adAccounts/1", None, None).await;
    assert_eq!(acct["name"], "Renamed Ads");
    assert_eq!(acct["status"], "ON_HOLD");
    assert_eq!(acct["id"], 1, "the id is not patched");
    let (status, _, _) = send(
        &s,
        &manager,
        Method::POST,
        "/rest/adAccounts/1",
        Some(json!({"patch": {"$set": {"id": 7}}})),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn sandbox_campaign_groups_and_campaigns_live_under_their_ad_account() {
    let s = InProc::demo().await;
    let t = token(&s, POSTER, "r_ads rw_ads").await;
    let groups = "/rest/adAccounts/1/adCampaignGroups";
    let (status, body, h) = send(
        &s,
        &t,
        Method::POST,
        groups,
        Some(json!({"name": "Spring", "status": "DRAFT"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(h["x-restli-id"]
        .to_str()
        .unwrap()
        .starts_with("urn:li:sponsoredCampaignGroup:"));
    let group = id_of(&h);
    assert_eq!(h["location"].to_str().unwrap(), format!("{groups}/{group}"));
    let group_urn = format!("urn:li:sponsoredCampaignGroup:{group}");
    let campaigns = "/rest/adAccounts/1/adCampaigns";
    let (status, body, h) = send(
        &s,
        &t,
        Method::POST,
        campaigns,
        Some(json!({"name": "Tulips", "campaignGroup": group_urn, "type": "TEXT_AD"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let campaign = id_of(&h);
    let (status, got, _) = send(
        &s,
        &t,
        Method::GET,
        &format!("{campaigns}/{campaign}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["account"], "urn:li:sponsoredAccount:1",
        "it belongs to its path's account"
    );
    assert_eq!(got["status"], "DRAFT", "a new campaign is a DRAFT");
    assert_eq!(got["campaignGroup"], group_urn);
    // A body naming another account is refused.
    let (status, _, _) = send(
        &s,
        &t,
        Method::POST,
        campaigns,
        Some(json!({"account": "urn:li:sponsoredAccount:2"})),
        None,
    )
    .await;
    assert_eq!(status, 400);

    // The search finder, with Rest.li 2.0 criteria.
    let find = |q: &str| format!("{campaigns}?q=search&search={q}");
    let (_, drafts, _) = send(
        &s,
        &t,
        Method::GET,
        &find("(status:(values:List(DRAFT,ACTIVE)))"),
        None,
        Some("FINDER"),
    )
    .await;
    assert_eq!(drafts["elements"][0]["name"], "Tulips", "{drafts}");
    let (_, by_group, _) = send(
        &s,
        &t,
        Method::GET,
        &find(&format!(
            "(campaignGroup:(values:List(urn%3Ali%3AsponsoredCampaignGroup%3A{group})))"
        )),
        None,
        None,
    )
    .await;
    assert_eq!(
        by_group["elements"].as_array().unwrap().len(),
        1,
        "{by_group}"
    );
    let (_, active, _) = send(
        &s,
        &t,
        Method::GET,
        &find("(status:(values:List(ACTIVE)))"),
        None,
        None,
    )
    .await;
    assert_eq!(active["elements"], json!([]));

    // Partial update, then LinkedIn's DRAFT-only delete.
    let set = |status: &str| json!({"patch": {"$set": {"status": status}}});
    let one = format!("{campaigns}/{campaign}");
    let (status, _, _) = send(
        &s,
        &t,
        Method::POST,
        &one,
        Some(set("ACTIVE")),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 204);
    let (status, refused, _) = send(&s, &t, Method::DELETE, &one, None, Some("DELETE")).await;
    assert_eq!(status, 400, "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("DRAFT"),
        "{refused}"
    );
    let (status, still, _) = send(&s, &t, Method::GET, &one, None, None).await;
    assert_eq!((status, &still["status"]), (200, &json!("ACTIVE")));
    send(
        &s,
        &t,
        Method::POST,
        &one,
        Some(set("DRAFT")),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    let (status, _, _) = send(&s, &t, Method::DELETE, &one, None, Some("DELETE")).await;
    assert_eq!(status, 204);
    let (status, _, _) = send(&s, &t, Method::GET, &one, None, None).await;
    assert_eq!(status, 404);
    let g = format!("{groups}/{group}");
    send(
        &s,
        &t,
        Method::POST,
        &g,
        Some(set("ACTIVE")),
        Some("PARTIAL_UPDATE"),
    )
    .await;
    let (status, _, _) = send(&s, &t, Method::DELETE, &g, None, Some("DELETE")).await;
    assert_eq!(status, 400, "an ACTIVE campaign group is not deleted");
}

#[tokio::test]
async fn sandbox_collections_page_with_start_and_count() {
    let s = InProc::demo().await;
    let t = token(&s, MEMBER, "r_ads rw_ads").await;
    let groups = "/rest/adAccounts/1/adCampaignGroups";
    for n in 0..3 {
        let (status, _, _) = send(
            &s,
            &t,
            Method::POST,
            groups,
            Some(json!({"name": format!("g{n}")})),
            None,
        )
        .await;
        assert_eq!(status, 201);
    }
    let page = |q: &str| format!("{groups}?q=search&{q}");
    let (_, p, _) = send(&s, &t, Method::GET, &page("count=2"), None, None).await;
    assert_eq!(p["elements"].as_array().unwrap().len(), 2, "{p}");
    assert_eq!(
        p["paging"],
        json!({"start": 0, "count": 2, "total": 3, "links": []})
    );
    let (_, p, _) = send(&s, &t, Method::GET, &page("start=2&count=2"), None, None).await;
    assert_eq!(p["elements"].as_array().unwrap().len(), 1, "{p}");
    let (status, err, _) = send(&s, &t, Method::GET, &page("count=1001"), None, None).await;
    assert_eq!(status, 400);
    assert_eq!(err["message"], "Specified count is larger than 1000");
    let (status, _, _) = send(&s, &t, Method::GET, &page("count=ten"), None, None).await;
    assert_eq!(status, 400);
}

/// Every new endpoint refuses: a token without its scope (403), a member without the role
/// (403), another member's object (403 by its account, 404 through one's own), a sunset version
/// (426).
#[tokio::test]
async fn sandbox_marketing_endpoints_refuse_what_linkedin_refuses() {
    let s = InProc::demo().await;
    let owner = token(&s, POSTER, "r_ads rw_ads").await;
    let (_, _, h) = send(
        &s,
        &owner,
        Method::POST,
        "/rest/adAccounts/1/adCampaignGroups",
        Some(json!({"name": "g"})),
        None,
    )
    .await;
    let group = id_of(&h);
    let (_, _, h) = send(
        &s,
        &owner,
        Method::POST,
        "/rest/adAccounts/1/adCampaigns",
        Some(json!({"name": "c"})),
        None,
    )
    .await;
    let campaign = id_of(&h);
    // The developer owns another account.
    let dev = token(&s, DEVELOPER, "r_ads rw_ads").await;
    let (_, _, h) = send(
        &s,
        &dev,
        Method::POST,
        "/rest/adAccounts",
        Some(json!({"name": "Dev"})),
        None,
    )
    .await;
    let dev_account = id_of(&h);
    let patch = Some(json!({"patch": {"$set": {"name": "x"}}}));
    let endpoints: Vec<(Method, String, Option<Value>, &str)> = vec![
        (Method::GET, "/rest/adAccounts/1".into(), None, "r_ads"),
        (
            Method::GET,
            "/rest/adAccounts?q=search".into(),
            None,
            "r_ads",
        ),
        (
            Method::GET,
            "/rest/adAccounts?ids=List(1)".into(),
            None,
            "r_ads",
        ),
        (
            Method::POST,
            "/rest/adAccounts".into(),
            Some(json!({"name": "n"})),
            "rw_ads",
        ),
        (
            Method::POST,
            "/rest/adAccounts/1".into(),
            patch.clone(),
            "rw_ads",
        ),
        (
            Method::POST,
            "/rest/adAccounts/1/adCampaignGroups".into(),
            Some(json!({"name": "n"})),
            "rw_ads",
        ),
        (
            Method::GET,
            "/rest/adAccounts/1/adCampaignGroups?q=search".into(),
            None,
            "r_ads",
        ),
        (
            Method::GET,
            format!("/rest/adAccounts/1/adCampaignGroups/{group}"),
            None,
            "r_ads",
        ),
        (
            Method::POST,
            format!("/rest/adAccounts/1/adCampaignGroups/{group}"),
            patch.clone(),
            "rw_ads",
        ),
        (
            Method::DELETE,
            format!("/rest/adAccounts/1/adCampaignGroups/{group}"),
            None,
            "rw_ads",
        ),
        (
            Method::POST,
            "/rest/adAccounts/1/adCampaigns".into(),
            Some(json!({"name": "n"})),
            "rw_ads",
        ),
        (
            Method::GET,
            "/rest/adAccounts/1/adCampaigns?q=search".into(),
            None,
            "r_ads",
        ),
        (
            Method::GET,
            format!("/rest/adAccounts/1/adCampaigns/{campaign}"),
            None,
            "r_ads",
        ),
        (
            Method::POST,
            format!("/rest/adAccounts/1/adCampaigns/{campaign}"),
            patch.clone(),
            "rw_ads",
        ),
        (
            Method::DELETE,
            format!("/rest/adAccounts/1/adCampaigns/{campaign}"),
            None,
            "rw_ads",
        ),
    ];
    // Missing scope: the member holds every role, the token only another permission.
    let unscoped = token(&s, MEMBER, "profile").await;
    for (m, path, body, _) in &endpoints {
        let (status, out, _) = send(&s, &unscoped, m.clone(), path, body.clone(), None).await;
        assert_eq!(status, 403, "{m} {path} without its scope: {out}");
        assert_eq!(out["code"], "ACCESS_DENIED");
    }
    // Sunset version.
    for (m, path, body, _) in &endpoints {
        let mut r = s
            .client
            .request(m.clone(), s.url(path))
            .bearer_auth(&owner)
            .header("LinkedIn-Version", "202301");
        if let Some(b) = body {
            r = r.json(b);
        }
        let status = r.send().await.unwrap().status().as_u16();
        assert_eq!(status, 426, "{m} {path} with a sunset version");
    }
    // Missing role: the viewer writes nothing, even with rw_ads.
    let viewer = token(&s, VIEWER, "rw_ads").await;
    for (m, path, body, scope) in &endpoints {
        if *scope != "rw_ads" || path == "/rest/adAccounts" {
            continue; // a new account needs no role on another
        }
        let (status, out, _) = send(&s, &viewer, m.clone(), path, body.clone(), None).await;
        assert_eq!(status, 403, "{m} {path} by a VIEWER: {out}");
    }
    // Another member's objects: refused by their account, missing through one's own.
    for (m, path, body, _) in &endpoints {
        if !path.starts_with("/rest/adAccounts/1") {
            continue;
        }
        let (status, out, _) = send(&s, &dev, m.clone(), path, body.clone(), None).await;
        assert_eq!(
            status, 403,
            "{m} {path} by a member without a role there: {out}"
        );
        if path.contains(&group) || path.contains(&campaign) {
            let own = path.replace(
                "/rest/adAccounts/1/",
                &format!("/rest/adAccounts/{dev_account}/"),
            );
            let (status, out, _) = send(&s, &dev, m.clone(), &own, body.clone(), None).await;
            assert_eq!(status, 404, "{m} {own}: another account's object: {out}");
        }
    }
    // The owner still has them all.
    let (status, _, _) = send(
        &s,
        &owner,
        Method::GET,
        &format!("/rest/adAccounts/1/adCampaigns/{campaign}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, 200);
}

/// The route table narrows `rw_ads` on campaign writes: "CAMPAIGN_MANAGER … create and edit
/// campaigns and ads", a CREATIVE_MANAGER ads only. Reads stay open to every role.
#[tokio::test]
async fn sandbox_a_creative_manager_reads_campaigns_but_does_not_make_or_change_them() {
    let s = InProc::demo().await;
    let manager = token(&s, POSTER, "r_ads rw_ads").await;
    let campaigns = "/rest/adAccounts/1/adCampaigns";
    let (status, _, h) = send(
        &s,
        &manager,
        Method::POST,
        campaigns,
        Some(json!({"name": "c"})),
        None,
    )
    .await;
    assert_eq!(status, 201, "a CAMPAIGN_MANAGER creates campaigns");
    let one = format!("{campaigns}/{}", id_of(&h));
    // The poster keeps CREATIVE_MANAGER only.
    s.cli_json(&["ad-account", "revoke", "1", POSTER, "CAMPAIGN_MANAGER"]);
    let (status, out, _) = send(
        &s,
        &manager,
        Method::POST,
        campaigns,
        Some(json!({"name": "c"})),
        None,
    )
    .await;
    assert_eq!(status, 403, "{out}");
    assert_eq!(out["code"], "ACCESS_DENIED");
    let patch = Some(json!({"patch": {"$set": {"name": "x"}}}));
    let (status, _, _) = send(
        &s,
        &manager,
        Method::POST,
        &one,
        patch,
        Some("PARTIAL_UPDATE"),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _, _) = send(&s, &manager, Method::DELETE, &one, None, Some("DELETE")).await;
    assert_eq!(status, 403);
    let (status, got, _) = send(&s, &manager, Method::GET, &one, None, None).await;
    assert_eq!(status, 200, "{got}");
}

#[tokio::test]
async fn the_version_table_is_set_by_flag_and_a_bad_one_stops_the_start() {
    // `--api-versions 202301`: only that version is active, whatever the clock says. The
    // version is checked before the token, so an unauthenticated call shows which is which.
    let s = Server::start(&["--demo", "--api-versions", "202301"], None).await;
    let get = |v: &'static str| {
        s.client
            .get(s.url("/rest/adAccounts/1"))
            .header("LinkedIn-Version", v)
            .send()
    };
    assert_eq!(get("202301").await.unwrap().status(), 401);
    assert_eq!(get("202302").await.unwrap().status(), 426);
    // A value that names no version refuses to start, never falls back to the default window.
    for bad in ["2023-01", "window:0", "window:x", ","] {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--api-versions", bad])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{bad} was accepted");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("api-versions")
                || String::from_utf8_lossy(&out.stderr).contains("version"),
            "{bad}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_repeated_finder_parameter_is_refused_not_read_as_one_or_none() {
    // `q` twice is neither finder, and `role` twice neither filter: a 400, never a bare
    // finder's answer or the first occurrence's.
    let s = InProc::demo().await;
    let t = token(&s, MEMBER, "r_ads r_organization_admin").await;
    for path in [
        "/rest/adAccounts?q=search&q=search",
        "/rest/adAccounts?q=search&start=0&start=10",
        "/rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR&role=ANALYST",
    ] {
        let (status, body, _) = send(&s, &t, Method::GET, path, None, None).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("repeated"),
            "{path}: {body}"
        );
    }
    // Sent once, each is read.
    let (status, body, _) = send(
        &s,
        &t,
        Method::GET,
        "/rest/organizationAcls?q=roleAssignee&role=ADMINISTRATOR",
        None,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

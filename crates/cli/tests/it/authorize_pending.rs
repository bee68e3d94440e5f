//! Issue #14: an authorization request is validated once and carried through sign-in and
//! consent by its pending id; nothing else the browser sends back is read as the request.

use reqwest::StatusCode;

use crate::browser::{hidden, param, Browser, Outcome};
use crate::support::*;

const CONSENT: &str = "/oauth/v2/authorization/consent";

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn auth_path(scope: &str, extra: &str) -> String {
    format!(
        "/oauth/v2/authorization?response_type=code&client_id={DEMO_APP}&redirect_uri={}&state=st4te&scope={}{extra}",
        enc(DEMO_REDIRECT),
        enc(scope)
    )
}

/// The consent page for a fresh request, signed in on the way.
async fn consent_page(b: &Browser) -> String {
    b.authorize(&auth_path("openid profile", ""), MEMBER, DEMO_PASSWORD)
        .await
        .consent()
}

/// Posts the consent form with these fields (the page's CSRF token added).
async fn answer(b: &Browser, page: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    let csrf = hidden(page, "csrf").unwrap();
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post(CONSENT, &form).await
}

fn codes(s: &InProc) -> String {
    s.sql("SELECT COUNT(*) FROM auth_codes").trim().to_string()
}

async fn assert_expired_page(res: reqwest::Response) {
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    let body = res.text().await.unwrap();
    assert!(
        body.contains("This sign-in request expired. Start again from the app."),
        "{body}"
    );
}

fn code_of(res: &reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert!(loc.as_str().starts_with(DEMO_REDIRECT), "{loc}");
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
    param(&loc, "code").unwrap_or_else(|| panic!("no code in {loc}"))
}

#[tokio::test]
async fn sign_in_and_consent_carry_only_the_pending_id() {
    let s = InProc::demo().await;
    let b = s.browser();
    let res = b
        .get(&auth_path(
            "openid",
            "&login_hint=test-member%40scopegate.local",
        ))
        .await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let login = res.headers()["location"].to_str().unwrap().to_string();
    assert!(!login.contains("client_id"), "{login}");
    assert!(!login.contains("redirect_uri"), "{login}");
    let html = b.get(&login).await.text().await.unwrap();
    let next = hidden(&html, "next").unwrap();
    let id = next
        .strip_prefix("/oauth/v2/authorization/continue?request=")
        .unwrap_or_else(|| panic!("{next}"));
    assert!(id.starts_with("PR") && id.len() == 45, "{id}");
    assert!(
        html.contains("Demo App"),
        "the stored request names its app"
    );
    assert!(
        html.contains("value=\"test-member@scopegate.local\""),
        "the stored login_hint prefills the email"
    );
    // Only the id's keyed hash is stored.
    assert_eq!(
        s.sql(&format!(
            "SELECT COUNT(*) FROM pending_requests WHERE hash = '{id}' OR request LIKE '%{id}%'"
        ))
        .trim(),
        "0"
    );
    let page = b
        .authorize(&auth_path("openid", ""), MEMBER, DEMO_PASSWORD)
        .await
        .consent();
    let form = &page[page.find(&format!("action=\"{CONSENT}\"")).unwrap()..];
    let form = &form[..form.find("</form>").unwrap()];
    let fields: Vec<&str> = form
        .match_indices("name=\"")
        .map(|(i, _)| {
            let rest = &form[i + 6..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(fields, vec!["csrf", "request", "action", "action"]);
    assert!(hidden(&page, "request").unwrap().starts_with("PR"));
}

#[tokio::test]
async fn a_tampered_unknown_or_missing_request_id_is_refused_and_issues_nothing() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    let mut tampered = id.clone();
    let last = if tampered.ends_with('A') { "B" } else { "A" };
    tampered.replace_range(tampered.len() - 1.., last);
    let unknown = format!("PR{}", "x".repeat(43));
    let old_style = auth_path("openid profile", "")
        .split_once('?')
        .unwrap()
        .1
        .to_string();
    for bad in [tampered.as_str(), &unknown, "", "PR", &old_style] {
        assert_expired_page(answer(&b, &page, &[("request", bad), ("action", "allow")]).await)
            .await;
    }
    assert_expired_page(answer(&b, &page, &[("action", "allow")]).await).await;
    assert_eq!(codes(&s), "0", "no code was issued");
    // The genuine id still works.
    let res = answer(&b, &page, &[("request", &id), ("action", "allow")]).await;
    code_of(&res);
    assert_eq!(codes(&s), "1");
}

#[tokio::test]
async fn an_expired_request_id_is_refused_and_issues_nothing() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    s.clock.advance(scopegate_app::authorize::PENDING_TTL + 1);
    assert_expired_page(answer(&b, &page, &[("request", &id), ("action", "allow")]).await).await;
    assert_expired_page(
        b.get(&format!("/oauth/v2/authorization/continue?request={id}"))
            .await,
    )
    .await;
    assert_expired_page(
        b.get(&format!(
            "/login?next={}",
            enc(&format!("/oauth/v2/authorization/continue?request={id}"))
        ))
        .await,
    )
    .await;
    assert_eq!(codes(&s), "0");
    // The maintenance purge deletes it at once: an expired request is of no use.
    assert_eq!(s.sql("SELECT COUNT(*) FROM pending_requests").trim(), "1");
    assert!(scopegate_app::maintenance::purge_once(&s.state).await >= 1);
    assert_eq!(s.sql("SELECT COUNT(*) FROM pending_requests").trim(), "0");
}

#[tokio::test]
async fn one_address_cannot_make_the_store_hold_pending_requests_without_bound() {
    // Each signed-out authorization GET stores a request for sign-in: any site can make a
    // browser send them, so one address gets PENDING_PER_ADDRESS per window, then a 429.
    let s = InProc::demo().await;
    let b = s.browser();
    let limit = scopegate_app::throttle::PENDING_PER_ADDRESS;
    for i in 0..limit {
        let res = b.get(&auth_path("openid", "")).await;
        assert_eq!(res.status(), StatusCode::FOUND, "request {i}");
    }
    let res = b.get(&auth_path("openid", "")).await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert_eq!(
        s.sql("SELECT COUNT(*) FROM pending_requests").trim(),
        limit.to_string()
    );
    // The window passes: requests are stored again.
    s.clock.advance(scopegate_app::throttle::WINDOW);
    assert_eq!(
        b.get(&auth_path("openid", "")).await.status(),
        StatusCode::FOUND
    );
}

#[tokio::test]
async fn a_request_resumed_after_its_redirect_url_was_removed_sends_nothing_there() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    s.sql(&format!(
        "DELETE FROM redirect_uris WHERE client_id = '{DEMO_APP}' AND uri = '{DEMO_REDIRECT}'"
    ));
    assert_expired_page(answer(&b, &page, &[("request", &id), ("action", "allow")]).await).await;
    assert_eq!(codes(&s), "0");
}

#[tokio::test]
async fn a_request_id_answered_twice_gets_one_code_and_none_after_it_was_used() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    let allow = [("request", id.as_str()), ("action", "allow")];
    // A double-clicked Allow: the same code, not a second one.
    let first = code_of(&answer(&b, &page, &allow).await);
    let second = code_of(&answer(&b, &page, &allow).await);
    assert_eq!(first, second);
    assert_eq!(codes(&s), "1");
    let (status, _) = s.redeem(&first, &[]).await;
    assert_eq!(status, 200);
    // Once its code was used, the id answers nothing more.
    let res = answer(&b, &page, &allow).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("This sign-in request was answered already"));
    assert_eq!(codes(&s), "1");
}

#[tokio::test]
async fn hidden_fields_other_than_the_id_change_nothing() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    let res = answer(
        &b,
        &page,
        &[
            ("request", &id),
            ("native", "1"),
            ("client_id", "someone-else"),
            ("redirect_uri", "https://attacker.example/cb"),
            ("state", "forged"),
            ("scope", "openid profile email w_member_social"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("action", "allow"),
        ],
    )
    .await;
    let code = code_of(&res);
    assert_eq!(
        s.sql("SELECT client_id, redirect_uri, scopes, native, code_challenge IS NULL FROM auth_codes")
            .trim(),
        format!("{DEMO_APP}|{DEMO_REDIRECT}|openid,profile|0|1")
    );
    // Redeemed as the web flow's code, without a verifier: the request as validated.
    let (status, t) = s.redeem(&code, &[]).await;
    assert_eq!(status, 200, "{t}");
}

#[tokio::test]
async fn cancelling_ends_the_request() {
    let s = InProc::demo().await;
    let b = s.browser();
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    let res = answer(&b, &page, &[("request", &id), ("action", "cancel")]).await;
    assert_eq!(res.status(), StatusCode::FOUND);
    let loc = url::Url::parse(res.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(param(&loc, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&loc, "state").as_deref(), Some("st4te"));
    assert_expired_page(answer(&b, &page, &[("request", &id), ("action", "allow")]).await).await;
    // An answer that is neither Allow nor Cancel is refused, and does not end the request.
    let page = consent_page(&b).await;
    let id = hidden(&page, "request").unwrap();
    let res = answer(&b, &page, &[("request", &id)]).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(codes(&s), "0");
    code_of(&answer(&b, &page, &[("request", &id), ("action", "allow")]).await);
}

#[tokio::test]
async fn a_resumed_request_is_answered_for_the_member_who_signed_in() {
    let s = InProc::demo().await;
    let b = s.browser();
    // Through sign-in: the continue URL resumes the stored request, then consent.
    match b
        .authorize(
            &auth_path("openid", "&prompt=login&max_age=0"),
            MEMBER,
            DEMO_PASSWORD,
        )
        .await
    {
        Outcome::Consent(page) => {
            let id = hidden(&page, "request").unwrap();
            code_of(&answer(&b, &page, &[("request", &id), ("action", "allow")]).await);
        }
        other => panic!("{other:?}"),
    }
}

//! Invariants over every route: a GET changes nothing stored; portal actions need the right role;
//! a portal page whose read fails says so; an app is attached only to a company page its
//! developer administers.
//!
//! Routes and forms are found, not listed: GET routes are parsed out of the server's router
//! source, portal actions are the forms the portal's own pages render. A new route or button is
//! covered without editing this file. The database is compared through `sqlite3 .dump` in a child
//! process: never open the SQLite file in this process, which holds the server's connections
//! (docs/architecture.md, "How To Corrupt An SQLite Database" 2.2).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use scopegate_app::ops::{self, Actor};
use scopegate_core::catalog::ResourceType;

use crate::browser::{hidden, unescape, Browser};
use crate::support::*;

const DEV: &str = "developer@scopegate.local";
const POSTER: &str = "poster@scopegate.local";
const VIEWER: &str = "viewer@scopegate.local";
const ADMIN: &str = "admin@scopegate.local";

// ---------------------------------------------------------------------------------------------
// The store, seen from outside the process.

/// Every row of every table, one `INSERT` line each.
fn dump(s: &InProc) -> Vec<String> {
    s.sql(".dump").lines().map(str::to_string).collect()
}

/// The tables of the store.
fn tables(s: &InProc) -> Vec<String> {
    s.sql("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

/// The table a dump line belongs to (`INSERT INTO members VALUES(…)`).
fn table_of(line: &str) -> String {
    line.strip_prefix("INSERT INTO ")
        .map(|rest| {
            rest.split([' ', '('])
                .next()
                .unwrap_or("")
                .trim_matches('"')
                .to_string()
        })
        .unwrap_or_else(|| "(schema)".to_string())
}

/// Lines that appear in one dump and not in the other: (added, removed).
fn diff(before: &[String], after: &[String]) -> (Vec<String>, Vec<String>) {
    let mut count: BTreeMap<&str, i64> = BTreeMap::new();
    for l in before {
        *count.entry(l).or_default() -= 1;
    }
    for l in after {
        *count.entry(l).or_default() += 1;
    }
    let mut added = Vec::new();
    let mut removed = Vec::new();
    for (l, n) in count {
        for _ in 0..n.abs() {
            if n > 0 {
                added.push(l.to_string());
            } else {
                removed.push(l.to_string());
            }
        }
    }
    (added, removed)
}

fn short(l: &str) -> String {
    l.chars().take(220).collect()
}

// ---------------------------------------------------------------------------------------------
// The router, read from its source.

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The text of a call's arguments: `s` starts just after an opening parenthesis.
fn call_args(s: &str) -> &str {
    let mut depth = 1;
    let mut in_str = false;
    let mut prev = ' ';
    for (i, c) in s.char_indices() {
        match c {
            '"' if prev != '\\' => in_str = !in_str,
            '(' if !in_str => depth += 1,
            ')' if !in_str => {
                depth -= 1;
                if depth == 0 {
                    return &s[..i];
                }
            }
            _ => {}
        }
        prev = c;
    }
    s
}

/// True when a method router expression names `method(` as a call (`get(h)`, `.get(h)`,
/// `axum::routing::get(h)`), not as the tail of another name.
fn names_method(expr: &str, method: &str) -> bool {
    let needle = format!("{method}(");
    expr.match_indices(&needle).any(|(i, _)| {
        expr[..i]
            .chars()
            .last()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// Every route of the server as (path, serves GET, serves POST), parsed from `.route(…)` calls
/// in the server crate's source.
fn routes() -> Vec<(String, bool, bool)> {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/src"),
        &mut files,
    );
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            !text.contains(".nest(") && !text.contains(".route_service("),
            "{} nests routers: teach invariants::routes() to prefix their paths",
            f.display()
        );
        let mut rest = text.as_str();
        while let Some(i) = rest.find(".route(") {
            let args = call_args(&rest[i + ".route(".len()..]);
            rest = &rest[i + ".route(".len() + args.len()..];
            let Some(open) = args.find('"') else { continue };
            let Some(len) = args[open + 1..].find('"') else {
                continue;
            };
            let path = &args[open + 1..open + 1 + len];
            let methods = &args[open + 1 + len..];
            let any = names_method(methods, "any");
            found.push((
                path.to_string(),
                any || names_method(methods, "get"),
                any || names_method(methods, "post"),
            ));
        }
    }
    let paths: BTreeSet<&str> = found.iter().map(|r| r.0.as_str()).collect();
    for must in [
        "/healthz",
        "/oauth/v2/authorization",
        "/developers/apps",
        "/admin/v1/apps",
    ] {
        assert!(
            paths.contains(must),
            "the route parser missed {must}; it found {paths:?}"
        );
    }
    found
}

/// Plausible values for the demo data set's path parameters.
struct Ids {
    secret_id: String,
    organization: i64,
    ad_account: i64,
}

/// The concrete paths for a route pattern; panics on a parameter it has no value for, so a new
/// parameter gets a value here rather than being skipped.
fn fill(pattern: &str, ids: &Ids) -> Vec<String> {
    let mut paths = vec![String::new()];
    for seg in pattern.split('/').skip(1) {
        let values: Vec<String> = match seg {
            "{id}" | "{client_id}" => vec![DEMO_APP.into()],
            "{secret_id}" => vec![ids.secret_id.clone()],
            "{capability}" => vec!["client-credentials".into()],
            "{program}" => vec!["openid-connect".into()],
            "{*rest}" => vec![
                "me".into(),
                "userinfo".into(),
                "organizationAcls?q=roleAssignee".into(),
                format!("organizations/{}", ids.organization),
                format!("adAccounts/{}", ids.ad_account),
                "v2/me".into(),
            ],
            s if s.starts_with('{') => {
                panic!("no test value for the path parameter {s} of {pattern}: add one to fill()")
            }
            s => vec![s.to_string()],
        };
        paths = paths
            .iter()
            .flat_map(|p| values.iter().map(move |v| format!("{p}/{v}")))
            .collect();
    }
    paths
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn signed_in(s: &InProc, email: &str) -> Browser {
    let b = s.browser();
    let r = b.sign_in(email, DEMO_PASSWORD).await;
    assert_eq!(r.status(), 303, "{email} signs in");
    b
}

/// Changes to stored state that a GET may make, each with the reason. Keep this short: a GET
/// that writes is a bug unless the protocol says otherwise.
const WRITES_ON_GET: &[(&str, &str, &str)] = &[(
    "/oauth/v2/authorization",
    "auth_codes",
    "RFC 6749 3.1: the authorization endpoint MUST support GET, and a request whose consent can \
     be skipped (an existing grant covers it) is answered with a new code",
), (
    "/oauth/native-pkce/authorization",
    "auth_codes",
    "the native PKCE endpoint is the same authorization endpoint (RFC 8252 7)",
), (
    "/oauth/v2/authorization",
    "pending_requests",
    "a request that needs sign-in or the consent screen is validated once and kept for ten \
     minutes under a random id, which the browser carries instead of the request (issue #14)",
), (
    "/oauth/native-pkce/authorization",
    "pending_requests",
    "the native PKCE endpoint is the same authorization endpoint (RFC 8252 7)",
)];

#[tokio::test]
async fn a_get_never_changes_stored_state() {
    let s = InProc::demo().await;
    // `scopegate serve` creates the signing keys at start-up; InProc does not. Without this the
    // first JWKS GET creates them (oidc::ensure_keys' lazy path), which this test reports.
    scopegate_app::signing::ensure_keys(&s.state).await.unwrap();
    let member_id = s.member_id(MEMBER);
    // An existing grant and a live token: the authorization GET meets a member it may skip
    // consent for, the API and userinfo GETs meet a real bearer.
    let token = s
        .mint(
            DEMO_APP,
            Some(&member_id),
            "openid profile email w_member_social",
        )
        .await;
    let admin_key = s.cli_json(&["admin-key", "create", "--name", "invariants"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = s.cli_json(&["app", "show", DEMO_APP]);
    let orgs = ops::members::resources(&s.state, ResourceType::Organization)
        .await
        .unwrap();
    let ads = ops::members::resources(&s.state, ResourceType::AdAccount)
        .await
        .unwrap();
    let ids = Ids {
        secret_id: shown["secrets"][0]["id"].to_string(),
        organization: orgs[0].id,
        ad_account: ads[0].id,
    };

    let anonymous = || crate::support::client(&s.cert_pem, false);
    let mut callers: Vec<(&str, reqwest::Client, Option<String>)> = vec![
        ("signed out", anonymous(), None),
        ("member session", signed_in(&s, MEMBER).await.client, None),
        ("developer session", signed_in(&s, DEV).await.client, None),
        ("admin session", signed_in(&s, ADMIN).await.client, None),
        ("member bearer token", anonymous(), Some(token.clone())),
        ("admin API key", anonymous(), Some(admin_key)),
    ];
    // A session and a bearer together, as a browser extension or proxy might send them.
    let both = signed_in(&s, MEMBER).await.client;
    callers.push(("member session and bearer", both, Some(token.clone())));

    let queries = [
        String::new(),
        format!(
            "response_type=code&client_id={DEMO_APP}&redirect_uri={}&scope={}&state=inv&nonce=n1",
            enc(DEMO_REDIRECT),
            enc("openid profile"),
        ),
        format!(
            "grant_type=client_credentials&client_id={DEMO_APP}&client_secret={}&token={}&uri={}&redirect_uri={}&program=openid-connect",
            enc(DEMO_SECRET),
            enc(&token),
            enc("https://get.example/cb"),
            enc("https://get.example/cb"),
        ),
    ];

    let mut violations = Vec::new();
    let mut tried = 0;
    // Successful answers per caller: proof that each caller's credentials were accepted somewhere.
    let mut answered: BTreeMap<&str, usize> = BTreeMap::new();
    for (pattern, get, _) in routes() {
        if !get {
            continue;
        }
        for path in fill(&pattern, &ids) {
            for q in &queries {
                let url = match (q.is_empty(), path.contains('?')) {
                    (true, _) => path.clone(),
                    (false, true) => format!("{path}&{q}"),
                    (false, false) => format!("{path}?{q}"),
                };
                for (who, client, bearer) in &callers {
                    let before = dump(&s);
                    let mut req = client.get(s.url(&url));
                    if let Some(b) = bearer {
                        req = req.bearer_auth(b);
                    }
                    let status = req.send().await.unwrap().status();
                    tried += 1;
                    if status.is_success() {
                        *answered.entry(*who).or_default() += 1;
                    }
                    let after = dump(&s);
                    let (added, removed) = diff(&before, &after);
                    let unexplained: Vec<String> = added
                        .iter()
                        .map(|l| format!("+ {}", short(l)))
                        .chain(removed.iter().map(|l| format!("- {}", short(l))))
                        .filter(|l| {
                            let table = table_of(&l[2..]);
                            !WRITES_ON_GET
                                .iter()
                                .any(|(p, t, _)| *p == pattern && *t == table)
                        })
                        .collect();
                    if !unexplained.is_empty() {
                        violations.push(format!(
                            "GET {url} as {who} ({status}) changed the store:\n    {}",
                            unexplained.join("\n    ")
                        ));
                    }
                }
            }
        }
    }
    assert!(tried > 100, "only {tried} GETs were tried");
    for (who, _, _) in &callers {
        assert!(
            answered.get(who).copied().unwrap_or(0) > 5,
            "{who} was hardly ever answered with success: {answered:?}"
        );
    }
    // The private areas answered the sessions and keys as themselves, not as a visitor.
    assert!(answered["admin API key"] > answered["signed out"]);
    assert!(answered["developer session"] > answered["signed out"]);
    assert!(
        violations.is_empty(),
        "{} of {tried} GETs changed stored state:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Portal forms, as the portal renders them.

/// One submission of a form: where it goes and every field it sends.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Submission {
    action: String,
    fields: Vec<(String, String)>,
}

impl Submission {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    /// What kind of action this is: the URL pattern, the `action` field and the button.
    fn kind(&self) -> String {
        format!(
            "{} action={} decision={}",
            self.action.replace(DEMO_APP, "{id}"),
            self.get("action").unwrap_or("-"),
            self.get("decision").unwrap_or("-"),
        )
    }
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// A value a person would type into a visible field.
fn typed_value(name: &str, kind: &str) -> String {
    match (name, kind) {
        (_, "url") | ("redirect_uri", _) => "https://roles.example/callback".into(),
        ("name", _) => "Renamed by the roles test".into(),
        ("reason_text", _) => String::new(),
        _ => "x".into(),
    }
}

/// Every submission of every POST form of a page: one per submit button and select option.
fn submissions(html: &str) -> Vec<Submission> {
    let mut out = Vec::new();
    for chunk in html.split("<form").skip(1) {
        let Some(end) = chunk.find("</form>") else {
            continue;
        };
        let form = &chunk[..end];
        let head = &form[..form.find('>').unwrap_or(0)];
        if attr(head, "method").as_deref() != Some("post") {
            continue;
        }
        let Some(action) = attr(head, "action") else {
            continue;
        };
        let mut fixed = Vec::new();
        for tag in form.split("<input").skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let Some(name) = attr(tag, "name") else {
                continue;
            };
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            let value = match kind.as_str() {
                "hidden" => attr(tag, "value").unwrap_or_default(),
                _ => typed_value(&name, &kind),
            };
            fixed.push((name, value));
        }
        let mut variants = vec![fixed];
        for sel in form.split("<select").skip(1) {
            let head = &sel[..sel.find('>').unwrap_or(0)];
            let Some(name) = attr(head, "name") else {
                continue;
            };
            let body = &sel[..sel.find("</select>").unwrap_or(sel.len())];
            let options: Vec<String> = body
                .split("<option")
                .skip(1)
                .filter_map(|o| attr(&o[..o.find('>').unwrap_or(0)], "value"))
                .collect();
            variants = variants
                .iter()
                .flat_map(|v| {
                    options.iter().map(|o| {
                        let mut v = v.clone();
                        v.push((name.clone(), o.clone()));
                        v
                    })
                })
                .collect();
        }
        let buttons: Vec<Option<(String, String)>> = {
            let named: Vec<_> = form
                .split("<button")
                .skip(1)
                .filter_map(|b| {
                    let head = &b[..b.find('>').unwrap_or(0)];
                    Some((attr(head, "name")?, attr(head, "value")?))
                })
                .collect();
            if named.is_empty() {
                vec![None]
            } else {
                named.into_iter().map(Some).collect()
            }
        };
        for v in &variants {
            for b in &buttons {
                let mut fields = v.clone();
                fields.extend(b.clone());
                out.push(Submission {
                    action: action.clone(),
                    fields,
                });
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Persona {
    /// The developer who owns the demo app.
    Owner,
    /// A developer with an app of their own.
    OtherDeveloper,
    /// A member with no app and no developer role.
    Member,
    /// The ADMINISTRATOR of the demo organization (no app of their own).
    OrganizationAdministrator,
    /// A platform admin.
    PlatformAdmin,
    SignedOut,
}

/// Whether `who` may make `sub`; panics for a form it has no rule for, so a new portal action
/// gets its rule here.
fn permitted(sub: &Submission, who: Persona, organization: i64) -> bool {
    use Persona::*;
    match who {
        SignedOut => return false,
        PlatformAdmin => return true,
        _ => {}
    }
    let app_page = format!("/developers/apps/{DEMO_APP}/");
    if sub.action == "/developers/apps" {
        // Anyone signed in creates apps for themselves; attaching a company page needs its top
        // role (finding 12).
        return match sub.get("organization").unwrap_or("") {
            "" => true,
            o => who == OrganizationAdministrator && o == organization.to_string(),
        };
    }
    if sub.action == "/developers/admin/review" {
        return false;
    }
    if sub.action.starts_with(&app_page) {
        return match sub.get("action") {
            // Platform capabilities are never self-service.
            Some("enable" | "disable") => false,
            _ => who == Owner,
        };
    }
    panic!("no rule for the portal form {sub:?}: add one to invariants::permitted()")
}

/// The signed-in member's CSRF token, from the sign-out form every page carries.
async fn csrf_of(b: &Browser) -> String {
    let html = b.get("/developers/apps").await.text().await.unwrap();
    hidden(&html, "csrf").expect("a signed-in page has a CSRF token")
}

#[tokio::test]
async fn portal_actions_change_state_only_for_the_roles_that_may_take_them() {
    use Persona::*;
    let s = InProc::demo().await;
    s.cli_json(&[
        "app",
        "create",
        "--name",
        "Poster's App",
        "--owner",
        POSTER,
        "--redirect-uri",
        "https://poster.example/cb",
    ]);
    let organization = ops::members::resources(&s.state, ResourceType::Organization)
        .await
        .unwrap()[0]
        .id;
    let owner = signed_in(&s, DEV).await;
    let admin = signed_in(&s, ADMIN).await;
    let mut personas = vec![
        (OtherDeveloper, signed_in(&s, POSTER).await),
        (Member, signed_in(&s, VIEWER).await),
        (OrganizationAdministrator, signed_in(&s, MEMBER).await),
        (SignedOut, s.browser()),
    ];
    let owner_csrf = csrf_of(&owner).await;
    let mut csrf = BTreeMap::new();
    for (who, b) in &personas {
        if *who != SignedOut {
            csrf.insert(format!("{who:?}"), csrf_of(b).await);
        }
    }
    csrf.insert(format!("{Owner:?}"), owner_csrf.clone());
    csrf.insert(format!("{PlatformAdmin:?}"), csrf_of(&admin).await);
    personas.push((Owner, owner));
    personas.push((PlatformAdmin, admin));

    // Every page of the portal the owner and the platform admin can see, re-read after each
    // change (a second secret brings its Delete button, a request brings the review forms).
    let pages = [
        "/developers/apps/new".to_string(),
        format!("/developers/apps/{DEMO_APP}/settings"),
        format!("/developers/apps/{DEMO_APP}/auth"),
        format!("/developers/apps/{DEMO_APP}/products"),
        "/developers/admin/review".to_string(),
    ];
    let mut tried: BTreeSet<Submission> = BTreeSet::new();
    let mut changed_kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut seen_kinds: BTreeSet<String> = BTreeSet::new();
    let mut violations = Vec::new();
    for _round in 0..400 {
        let mut offered = Vec::new();
        for (who, b) in &personas {
            if !matches!(who, Owner | PlatformAdmin) {
                continue;
            }
            for p in &pages {
                let res = b.get(p).await;
                if res.status() != 200 {
                    continue;
                }
                offered.extend(submissions(&res.text().await.unwrap()));
            }
        }
        // The same form on the owner's and the admin's page differs only by its CSRF token.
        for f in &mut offered {
            for (k, v) in &mut f.fields {
                if k == "csrf" {
                    v.clear();
                }
            }
        }
        // Signing out is not a portal action (it would end the persona's session).
        offered.retain(|f| f.action != "/logout" && !tried.contains(f));
        seen_kinds.extend(offered.iter().map(Submission::kind));
        // The kind that has changed state least often first, deleting the app last.
        offered.sort_by_key(|f| {
            (
                f.get("action") == Some("delete"),
                changed_kinds.get(&f.kind()).copied().unwrap_or(0),
            )
        });
        let Some(form) = offered.first().cloned() else {
            break;
        };
        tried.insert(form.clone());
        // Refused personas first: the permitted one's change would hide theirs.
        let mut order: Vec<&(Persona, Browser)> = personas.iter().collect();
        order.sort_by_key(|(who, _)| permitted(&form, *who, organization));
        for (who, b) in order {
            let token = csrf
                .get(&format!("{who:?}"))
                .cloned()
                .unwrap_or_else(|| owner_csrf.clone());
            let fields: Vec<(&str, &str)> = form
                .fields
                .iter()
                .map(|(k, v)| {
                    if k == "csrf" {
                        (k.as_str(), token.as_str())
                    } else {
                        (k.as_str(), v.as_str())
                    }
                })
                .collect();
            let before = dump(&s);
            let res = b.post(&form.action, &fields).await;
            let status = res.status();
            let after = dump(&s);
            let (added, removed) = diff(&before, &after);
            let changed = !(added.is_empty() && removed.is_empty());
            let allowed = permitted(&form, *who, organization);
            if changed && !allowed {
                violations.push(format!(
                    "{who:?} changed the store with {form:?} ({status}):\n    {}",
                    added
                        .iter()
                        .chain(&removed)
                        .map(|l| short(l))
                        .collect::<Vec<_>>()
                        .join("\n    ")
                ));
            }
            if changed && allowed {
                *changed_kinds.entry(form.kind()).or_default() += 1;
            }
        }
    }
    assert!(
        violations.is_empty(),
        "{} refused portal actions changed state:\n{}",
        violations.len(),
        violations.join("\n")
    );
    // Each kind of action was taken at least once by someone allowed to: the refusals above
    // were refusals of working actions, not of malformed forms.
    let never: Vec<&String> = seen_kinds
        .iter()
        .filter(|k| !changed_kinds.contains_key(*k))
        .collect();
    assert!(
        never.is_empty(),
        "these portal actions never changed anything, even for a permitted role: {never:?} (tried {})",
        tried.len()
    );
    assert!(seen_kinds.len() >= 10, "only {seen_kinds:?} were found");
}

// ---------------------------------------------------------------------------------------------
// Fail closed.

/// The portal's pages as (path, who may see it).
fn portal_pages() -> Vec<String> {
    let ids = Ids {
        secret_id: "1".into(),
        organization: 1,
        ad_account: 1,
    };
    routes()
        .into_iter()
        .filter(|(p, get, _)| *get && p.starts_with("/developers"))
        .flat_map(|(p, _, _)| fill(&p, &ids))
        .collect()
}

#[tokio::test]
async fn every_portal_page_shows_an_error_when_a_read_fails_never_an_empty_state() {
    let s = InProc::demo().await;
    // A pending review so the queue has something to read.
    s.cli_json(&["app", "product", "request", DEMO_APP, "lead-sync"]);
    let viewers = [
        ("developer", signed_in(&s, DEV).await),
        ("platform admin", signed_in(&s, ADMIN).await),
        ("member without apps", signed_in(&s, VIEWER).await),
    ];
    let pages = portal_pages();
    assert!(pages.len() >= 6, "portal pages: {pages:?}");
    let mut healthy = BTreeMap::new();
    for (who, b) in &viewers {
        for p in &pages {
            let r = b.get(p).await;
            let status = r.status().as_u16();
            healthy.insert((*who, p.clone()), (status, r.text().await.unwrap()));
        }
    }
    let mut violations = Vec::new();
    for table in tables(&s) {
        // Renamed in another process: every read of it now fails inside the server.
        s.sql(&format!(
            "ALTER TABLE \"{table}\" RENAME TO \"{table}_unreadable\""
        ));
        for (who, b) in &viewers {
            for p in &pages {
                let r = b.get(p).await;
                let status = r.status().as_u16();
                let body = r.text().await.unwrap();
                let same = healthy.get(&(*who, p.clone())) == Some(&(status, body.clone()));
                if !(same || status == 503) {
                    violations.push(format!(
                        "{p} as {who} with {table} unreadable: {status} {}",
                        short(body.split("<main").nth(1).unwrap_or(&body))
                    ));
                }
            }
        }
        s.sql(&format!(
            "ALTER TABLE \"{table}_unreadable\" RENAME TO \"{table}\""
        ));
    }
    assert!(
        violations.is_empty(),
        "{} portal pages answered a failed read with something other than 503 or the page itself:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Finding 12: attaching an app to an organization.

async fn create_in_portal(s: &InProc, b: &Browser, organization: &str) -> (u16, String) {
    let token = csrf_of(b).await;
    let r = b
        .post(
            "/developers/apps",
            &[
                ("csrf", &token),
                ("name", "Attached App"),
                ("organization", organization),
                ("redirect_uri", "https://attach.example/cb"),
            ],
        )
        .await;
    let _ = s;
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn only_an_administrator_of_an_organization_attaches_an_app_to_it() {
    let s = InProc::demo().await;
    let org = ops::members::resources(&s.state, ResourceType::Organization)
        .await
        .unwrap()[0]
        .id;
    let roles = s.state.catalog.roles(ResourceType::Organization).to_vec();
    assert!(roles.len() > 2);
    let dev = ops::members::find(&s.state, DEV).await.unwrap();
    let b = signed_in(&s, DEV).await;

    // The developer's new-app form offers no company page they do not administer.
    let form = b.get("/developers/apps/new").await.text().await.unwrap();
    assert!(
        !form.contains(&format!("value=\"{org}\"")),
        "the form offers Demo Corp to a developer with no role on it"
    );

    // No role, or a forged id, or any role but the top one: refused, nothing stored.
    let forged = [
        org.to_string(),
        format!("{}", org + 1000),
        "-1".into(),
        format!("0{org}"),
    ];
    for o in &forged {
        let before = dump(&s);
        let (status, body) = create_in_portal(&s, &b, o).await;
        assert_eq!(status, 403, "organization {o}: {body}");
        assert!(
            body.contains("ADMINISTRATOR"),
            "the refusal names the role needed: {body}"
        );
        assert_eq!(dump(&s), before, "a refused attachment stores nothing");
    }
    for role in &roles {
        ops::members::set_role(
            &s.state,
            &Actor::Cli,
            ResourceType::Organization,
            org,
            &dev.id,
            role,
            true,
        )
        .await
        .unwrap();
        let before = dump(&s);
        let (status, body) = create_in_portal(&s, &b, &org.to_string()).await;
        if role == &roles[0] {
            assert_eq!(status, 201, "{role} attaches: {body}");
            let form = b.get("/developers/apps/new").await.text().await.unwrap();
            assert!(
                form.contains(&format!("value=\"{org}\"")),
                "{role} is offered the page"
            );
        } else {
            assert_eq!(status, 403, "{role} may not attach: {body}");
            assert_eq!(dump(&s), before, "a refused attachment stores nothing");
        }
        ops::members::set_role(
            &s.state,
            &Actor::Cli,
            ResourceType::Organization,
            org,
            &dev.id,
            role,
            false,
        )
        .await
        .unwrap();
    }

    // The admin API takes only admin API keys: a developer's session is not one.
    let before = dump(&s);
    let r = b
        .client
        .post(s.url("/admin/v1/apps"))
        .json(&serde_json::json!({"name": "Via API", "owner": DEV, "organization_id": org}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(dump(&s), before);

    // The operator (CLI) and an admin API key may attach any app, and the attachment is audited.
    let by_cli = s.cli_json(&[
        "app",
        "create",
        "--name",
        "Operator App",
        "--owner",
        DEV,
        "--organization",
        &org.to_string(),
    ]);
    let key = s.cli_json(&["admin-key", "create", "--name", "attach"])["key"]
        .as_str()
        .unwrap()
        .to_string();
    let r = s
        .client
        .post(s.url("/admin/v1/apps"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"name": "Key App", "owner": DEV, "organization_id": org}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let by_key: serde_json::Value = r.json().await.unwrap();
    for (made, actor) in [(&by_cli, "cli"), (&by_key, "api-key:attach")] {
        let id = made["client_id"].as_str().unwrap();
        let audit = s.cli_json(&["audit", "--target", id]);
        let events = audit.as_array().unwrap();
        assert!(
            events
                .iter()
                .any(|e| e["action"] == "app.organization.attach"
                    && e["actor"] == actor
                    && e["detail"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("urn:li:organization:{org}"))),
            "the attachment by {actor} is audited: {audit}"
        );
    }
}

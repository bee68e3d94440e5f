"""Security checks of scopegate's pages: clickjacking (CJ), leakage through Referer and URLs
(REF) and the consent screen (CON), sections 1.8, 1.9 and 6 of the security-check reference.

Black-box: HTTPS requests to a real `scopegate serve --demo`, apps made with the CLI, and for
CJ-02 Debian's Chromium driven by playwright-core (tests/browser/node_modules) from a page on
another loopback origin. Helpers are shared with test_authorize_surface.py.
"""

from __future__ import annotations

import secrets

import pytest
import requests

from scopegate import ADMIN, DEMO_CLIENT_ID, DEMO_REDIRECT, DEVELOPER, HTTP_TIMEOUT, REPO_ROOT
from test_authorize_surface import (
    ERROR_PARAMS,
    assert_error_redirect,
    assert_not_frameable,
    authorization_url,
    browser_sign_in_and_consent,
    client_redirect,
    consent_form,
    csp,
    foreign_refs,
    full_flow,
    get,
    location,
    new_app,
    new_session,
    open_consent_page,
    page_refs,
    post,
    query_of,
    redeem,
    run_node,
    sign_in,
)


def catalog_consent_messages(server) -> dict[str, str]:
    return {p["name"]: p.get("consent") or "" for p in server.cli("catalog", "show")["permissions"]}


def auth_pages(server) -> dict[str, requests.Response]:
    """The pages of the authorization flow: sign-in, consent, and an error page."""
    s = new_session(server)
    pages = {"sign-in": get(s, server.base + "/login?next=" + requests.utils.quote(
        authorization_url(server).replace(server.base, ""), safe=""))}
    pages["error (unknown client)"] = get(s, authorization_url(server, client_id="no-such-client"))
    pages["error (unregistered redirect)"] = get(s, authorization_url(server, redirect_uri="https://evil.example/cb"))
    sign_in(s, server)
    pages["consent"] = open_consent_page(s, server, authorization_url(server, prompt="consent"))
    return pages


# 1.8 Clickjacking -------------------------------------------------------------------------------


@pytest.mark.check("CJ-01")
def test_every_page_refuses_to_be_framed(server):
    pages = auth_pages(server)
    s = new_session(server)
    pages["authorization redirect"] = get(s, authorization_url(server))
    sign_in(s, server, DEVELOPER)
    app = new_app(server, "Framing target", owner=DEVELOPER)
    for path in ["/developers/apps", "/developers/apps/new", "/psettings/permitted-services"] + [
            f"/developers/apps/{app['client_id']}/{tab}" for tab in ("settings", "auth", "products")]:
        pages["portal " + path] = get(s, server.base + path)
    admin = new_session(server)
    sign_in(admin, server, ADMIN)
    for path in ["/developers/admin/review", "/developers/admin/migrations"]:
        pages["admin " + path] = get(admin, server.base + path)
    for what, resp in pages.items():
        assert resp.status_code in (200, 302, 303, 400, 401), (what, resp.status_code)
        assert_not_frameable(resp, what)


FRAME_PROBE = r"""
import http from 'node:http';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
const [target, chromiumPath] = process.argv.slice(1);
const html = `<!doctype html><title>probe</title><iframe id="f" src="${target.replace(/&/g, '&amp;')}" width="800" height="500"></iframe>`;
const attacker = http.createServer((req, res) => { res.writeHead(200, {'Content-Type': 'text/html'}); res.end(html); });
await new Promise((r) => attacker.listen(0, '127.0.0.2', r));
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-cj02-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: chromiumPath, headless: true, ignoreHTTPSErrors: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
});
const out = { framed: [], failed: [], console: [] };
try {
  const page = context.pages()[0] || await context.newPage();
  page.on('response', (r) => { if (r.frame() !== page.mainFrame()) out.framed.push({ url: r.url(), status: r.status() }); });
  page.on('requestfailed', (r) => { if (r.frame() !== page.mainFrame()) out.failed.push(r.failure()?.errorText || ''); });
  page.on('console', (m) => out.console.push(m.text()));
  await page.goto(`http://127.0.0.2:${attacker.address().port}/`, { waitUntil: 'load' });
  await page.waitForTimeout(500);
  const child = page.frames().find((f) => f !== page.mainFrame());
  out.forms = child ? await child.locator('form').count().catch(() => 0) : 0;
  out.text = await page.evaluate(() => { const d = document.getElementById('f').contentDocument; return d && d.body ? d.body.innerText : null; });
} finally {
  await context.close();
  attacker.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
"""


@pytest.mark.check("CJ-02")
def test_chromium_does_not_render_the_authorization_pages_in_a_foreign_frame(server):
    # The attacker's page on another loopback origin frames the authorization URL: scopegate
    # answers with its sign-in page (the cross-site frame carries no SameSite=Lax cookie).
    out = run_node(REPO_ROOT / "tests" / "browser", FRAME_PROBE, authorization_url(server, prompt="consent"),
                   "/usr/bin/chromium")
    assert any(f["url"].startswith(server.base) for f in out["framed"]), out
    assert any("ERR_BLOCKED_BY_RESPONSE" in e for e in out["failed"]), out
    assert out["forms"] == 0, out
    assert out["text"] is None or ("Sign in" not in out["text"] and "Allow" not in out["text"]), out


@pytest.mark.check("CJ-03")
def test_auth_pages_allow_no_inline_script(server):
    for what, resp in auth_pages(server).items():
        directives = csp(resp)
        scripts = directives.get("script-src", directives.get("default-src"))
        assert scripts is not None, f"{what}: no script-src or default-src"
        assert set(scripts) <= {"'self'", "'none'"}, f"{what}: script sources {scripts}"
        refs = page_refs(resp.text)
        assert refs.inline_scripts == 0, f"{what}: inline script in the page"


# 1.9 Referer and URL leakage --------------------------------------------------------------------


@pytest.mark.check("REF-01")
def test_auth_pages_send_no_referrer_and_restrict_sources(server):
    for what, resp in auth_pages(server).items():
        assert resp.headers.get("Referrer-Policy") in ("no-referrer", "same-origin"), what
        assert csp(resp).get("default-src") in (["'self'"], ["'none'"]), f"{what}: {resp.headers.get('Content-Security-Policy')}"


@pytest.mark.check("REF-01")
def test_auth_pages_load_and_link_nothing_from_other_origins(server):
    # RFC 9700 4.2.4: the authorization endpoint's pages "SHOULD NOT include third-party
    # resources or links to external sites". The demo app has a privacy-policy URL; this app
    # also has a logo on its own host, as LinkedIn-style apps do.
    app = new_app(server, "Logo app", logo_url="https://logo.example/logo.png",
                  privacy_policy_url="https://logo.example/privacy")
    pages = auth_pages(server)
    s = new_session(server)
    sign_in(s, server)
    pages["consent (app with logo)"] = open_consent_page(
        s, server, authorization_url(server, client_id=app["client_id"], redirect_uri="https://client.example/cb",
                                     scope="openid"))
    found = {what: foreign_refs(resp.text, resp.url) for what, resp in pages.items()}
    assert not any(found.values()), {w: f for w, f in found.items() if f}


@pytest.mark.check("REF-02")
def test_access_token_in_the_query_is_not_accepted(server, browser):
    _, tokens = full_flow(server, browser)
    token = tokens["access_token"]
    # The same token works in the header, so the refusals below are about where it was put.
    ok = requests.get(server.base + "/v2/userinfo", headers={"Authorization": "Bearer " + token},
                      verify=server.cert, timeout=HTTP_TIMEOUT)
    assert ok.status_code == 200
    for path in ["/v2/userinfo?access_token=", "/v2/userinfo?oauth2_access_token=", "/v2/me?oauth2_access_token=",
                 "/v2/me?access_token="]:
        r = requests.get(server.base + path + token, verify=server.cert, timeout=HTTP_TIMEOUT)
        assert r.status_code == 401, f"{path}: HTTP {r.status_code}"
        assert "sub" not in r.text


@pytest.mark.check("REF-03")
def test_the_redirect_carries_only_code_state_and_iss(server, browser):
    callback, _ = full_flow(server, browser, redeem_code=False)
    assert set(query_of(callback)) == {"code", "state", "iss"}
    for params in ({"response_type": "token"}, {"scope": "openid r_nope"}, {"prompt": "none"}):
        target = client_redirect(new_session(server), authorization_url(server, **params))
        assert set(query_of(target)) <= ERROR_PARAMS and "code" not in query_of(target), target


# 6. The consent screen --------------------------------------------------------------------------


@pytest.mark.check("CON-01")
def test_prompt_none_without_consent_is_consent_required(server):
    app = new_app(server, "Never consented")
    s = new_session(server)
    sign_in(s, server)
    url = authorization_url(server, client_id=app["client_id"], redirect_uri="https://client.example/cb",
                            scope="openid", prompt="none")
    target = location(get(s, url))
    assert target.startswith("https://client.example/cb?")
    q = query_of(target)
    assert (q["error"], q["state"], q["iss"]) == ("consent_required", query_of(url)["state"], server.issuer)
    assert "code" not in q


@pytest.mark.check("CON-02")
def test_prompt_none_without_a_session_is_login_required(server):
    url = authorization_url(server, prompt="none")
    target = location(get(new_session(server), url))
    assert_error_redirect(target, server, "login_required", query_of(url)["state"])


@pytest.mark.check("CON-03")
def test_more_scopes_than_granted_shows_the_consent_screen_again(server):
    app = new_app(server, "Growing scopes", products=("openid-connect", "share-on-linkedin"))
    s = new_session(server)
    sign_in(s, server)
    req = dict(client_id=app["client_id"], redirect_uri="https://client.example/cb")
    callback = browser_sign_in_and_consent(s, authorization_url(server, scope="openid", **req))
    redeem(server, callback, redirect_uri="https://client.example/cb", auth=(app["client_id"], app["client_secret"]))
    # The grant covers openid and a token is live: no screen for openid alone...
    trace = []
    browser_sign_in_and_consent(s, authorization_url(server, scope="openid", **req), trace=trace)
    assert trace == ["redirect"]
    # ...but w_member_social was never granted: the screen again, naming it.
    page = open_consent_page(s, server, authorization_url(server, scope="openid w_member_social", **req))
    assert catalog_consent_messages(server)["w_member_social"] in page.text


@pytest.mark.check("CON-04")
def test_a_script_in_the_app_name_is_shown_as_text(server):
    name = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    app = new_app(server, name)
    s = new_session(server)
    sign_in(s, server)
    page = open_consent_page(s, server, authorization_url(server, client_id=app["client_id"],
                                                          redirect_uri="https://client.example/cb", scope="openid"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    refs = page_refs(page.text)
    assert "script" not in refs.tags and refs.inline_scripts == 0
    assert not any(v == "x" for _, _, v in refs.refs)


@pytest.mark.check("CON-04")
@pytest.mark.parametrize("field", ["logo_url", "privacy_policy_url"])
@pytest.mark.parametrize("value", ["javascript:alert(1)", "data:text/html,<script>alert(1)</script>",
                                   "vbscript:msgbox(1)"])
def test_script_urls_are_refused_at_registration(server, field, value):
    p = server.cli("app", "create", "--name", "Bad URL", "--owner", DEVELOPER, "--redirect-uri",
                   "https://client.example/cb", "--" + field.replace("_", "-"), value, check=False)
    assert p is None or "client_id" not in p, f"{field}={value} was accepted"


@pytest.mark.check("CON-04")
def test_a_plain_http_privacy_policy_is_refused_or_not_rendered(server):
    args = ["app", "create", "--name", "Plain policy", "--owner", DEVELOPER, "--redirect-uri",
            "https://client.example/cb", "--privacy-policy-url", "http://policy.example/privacy"]
    made = server.cli(*args, check=False)
    if not (isinstance(made, dict) and "client_id" in made):
        return  # refused at registration: what the check asks
    server.cli("app", "product", "request", made["client_id"], "openid-connect")
    s = new_session(server)
    sign_in(s, server)
    page = open_consent_page(s, server, authorization_url(server, client_id=made["client_id"],
                                                          redirect_uri="https://client.example/cb", scope="openid"))
    assert "http://policy.example/privacy" not in page.text, "the http privacy-policy URL is rendered as a link"


@pytest.mark.check("CON-05")
def test_the_consent_screen_names_the_app_the_redirect_host_and_every_scope(server):
    scopes = ["openid", "profile", "email", "w_member_social"]
    s = new_session(server)
    sign_in(s, server)
    page = open_consent_page(s, server, authorization_url(server, scope=" ".join(scopes), prompt="consent"))
    messages = catalog_consent_messages(server)
    assert "Demo App" in page.text
    for scope in scopes:
        assert messages[scope] and messages[scope] in page.text, scope
    # Where the member will be sent: the redirect URL's host (OIDC Core 3.1.2.4 lets the user see
    # who asks; RFC 9700 4.11.2 warns about trusting the redirect target blindly).
    # Shown as text, not only in the consent form's hidden fields.
    visible = page.text.split('action="/oauth/v2/authorization/consent"', 1)[0]
    assert "127.0.0.1:8080" in visible, "the redirect host is not shown on the consent screen"


@pytest.mark.check("CON-06")
def test_a_denied_consent_stores_no_grant(server):
    app = new_app(server, "Denied app " + secrets.token_hex(3))
    req = dict(client_id=app["client_id"], redirect_uri="https://client.example/cb", scope="openid")
    s = new_session(server)
    sign_in(s, server)
    target = browser_sign_in_and_consent(s, authorization_url(server, **req), consent="cancel")
    assert "code" not in query_of(target) and "error" in query_of(target)
    # No grant: a silent request still needs consent, and Permitted services does not list the app.
    target = location(get(s, authorization_url(server, prompt="none", **req)))
    assert query_of(target)["error"] == "consent_required"
    assert app["app"]["name"] not in get(s, server.base + "/psettings/permitted-services").text


@pytest.mark.check("CON-07")
def test_the_consent_page_carries_the_hardening_headers(server):
    s = new_session(server)
    sign_in(s, server)
    page = open_consent_page(s, server, authorization_url(server, prompt="consent"))
    assert_not_frameable(page, "consent")
    assert page.headers.get("Referrer-Policy") == "no-referrer"
    assert "no-store" in page.headers.get("Cache-Control", "")
    form = consent_form(page.text)
    assert form["method"] == "post" and form["hidden"].get("csrf")
    # A POST without the token changes nothing (CSRF-05); Allow answers 302/303 (OR-05).
    bad = post(s, server.base + "/oauth/v2/authorization/consent",
               data={k: v for k, v in dict(form["hidden"], action="allow").items() if k != "csrf"})
    assert bad.status_code == 403
    ok = post(s, server.base + "/oauth/v2/authorization/consent", data=dict(form["hidden"], action="allow"))
    assert ok.status_code in (302, 303) and location(ok).startswith(DEMO_REDIRECT + "?code=")

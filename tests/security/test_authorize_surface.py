"""Security checks of the authorization endpoint's surface, black-box over HTTPS.

Sections 1.5 to 1.11 of the security-check reference: no implicit grant or password grant
(GRANT), issuer identification in every authorization response (ISS, RFC 9207), CSRF defences
(CSRF), open redirectors (OR) and the other RFC 9700 items (OTH).

This module also holds the helpers the other page and portal check modules share
(test_pages.py, test_portal_admin.py import them from here): authorization URLs, the member's
sign-in, redirect parsing, token redemption, CLI-made apps and admin keys, page headers and HTML.
"""

from __future__ import annotations

import base64
import json
import secrets
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import pytest
import requests

from scopegate import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT,
    DEVELOPER,
    HTTP_TIMEOUT,
    MEMBER,
    REPO_ROOT,
    browser_sign_in_and_consent,
    parse_forms,
)

# Shared helpers ---------------------------------------------------------------------------------

SCOPE = "openid profile"
REDIRECTS = (301, 302, 303, 307, 308)


def new_session(server) -> requests.Session:
    """A fresh browser: no cookies, TLS verified against the server's own certificate
    (trust_env=False: REQUESTS_CA_BUNDLE must not override verify=)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = server.cert
    return s


def authorization_url(server, *, endpoint: str | None = None, drop=(), **params) -> str:
    """The demo app's authorization URL; keyword arguments add or replace parameters, `drop`
    names parameters to leave out, a value of None leaves that parameter out too."""
    base = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": DEMO_REDIRECT,
        "scope": SCOPE,
        "state": "st-" + secrets.token_urlsafe(12),
    }
    base.update(params)
    query = {k: v for k, v in base.items() if v is not None and k not in drop}
    return (endpoint or server.authorization_endpoint) + "?" + urlencode(query)


def get(session: requests.Session, url: str, **kw) -> requests.Response:
    """A GET that does not follow redirects (the tests look at each hop)."""
    return session.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kw)


def post(session: requests.Session, url: str, **kw) -> requests.Response:
    return session.post(url, allow_redirects=False, timeout=HTTP_TIMEOUT, **kw)


def location(resp: requests.Response) -> str:
    """The absolute redirect target of a 3xx response."""
    assert resp.status_code in REDIRECTS, f"HTTP {resp.status_code}, not a redirect: {resp.text[:500]}"
    loc = resp.headers.get("Location")
    assert loc, "redirect without Location"
    return urljoin(resp.url, loc)


def query_pairs(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def query_of(url: str) -> dict[str, str]:
    """The query parameters of a URL; a parameter given twice is an error (a client must not
    have to guess which value counts)."""
    pairs = query_pairs(url)
    names = [k for k, _ in pairs]
    assert len(names) == len(set(names)), f"duplicate parameters in {url}"
    return dict(pairs)


def origin(url: str) -> tuple[str, str]:
    u = urlsplit(url)
    return u.scheme, u.netloc


def client_redirect(session: requests.Session, url: str) -> str:
    """Follows scopegate's own redirects from `url` without signing in or consenting and returns
    the first target on another origin (the client's redirect URL)."""
    here = origin(url)
    resp = get(session, url)
    for _ in range(5):
        target = location(resp)
        if origin(target) != here:
            return target
        resp = get(session, target)
    raise AssertionError("no redirect to the client")


def sign_in(session: requests.Session, server, email: str = MEMBER, next_path: str | None = None):
    """Signs `session` in on /login as `email`; returns the POST's response (303 to `next`)."""
    page = get(session, server.base + "/login" + (f"?{urlencode({'next': next_path})}" if next_path else ""))
    assert page.status_code == 200, page.text[:500]
    form = next(f for f in parse_forms(page.text) if f["action"] == "/login")
    data = dict(form["hidden"], action="signin", email=email, password=DEMO_PASSWORD)
    resp = post(session, server.base + "/login", data=data)
    assert resp.status_code == 303, f"sign-in failed: HTTP {resp.status_code}: {resp.text[:500]}"
    return resp


def session_cookie_header(resp: requests.Response, name: str) -> str:
    """The raw Set-Cookie value that sets `name`."""
    for value in resp.raw.headers.getlist("Set-Cookie"):
        if value.split("=", 1)[0].strip() == name:
            return value
    raise AssertionError(f"no Set-Cookie for {name}: {resp.headers.get('Set-Cookie')}")


def consent_form(html: str) -> dict | None:
    return next((f for f in parse_forms(html) if f["action"] == "/oauth/v2/authorization/consent"), None)


def open_consent_page(session: requests.Session, server, url: str) -> requests.Response:
    """Follows `url` (already signed in) to the consent page; fails if scopegate redirects to the
    client instead."""
    resp = get(session, url)
    for _ in range(5):
        if resp.status_code not in REDIRECTS:
            break
        target = location(resp)
        assert origin(target) == origin(server.base), f"left for {target} instead of consent"
        resp = get(session, target)
    assert resp.status_code == 200 and consent_form(resp.text), f"no consent page: {resp.status_code}"
    return resp


def token_request(server, data: dict, auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)) -> requests.Response:
    """POST to the token endpoint with client_secret_post (auth=None: no credentials)."""
    body = dict(data)
    if auth:
        body.update(client_id=auth[0], client_secret=auth[1])
    return requests.post(server.token_endpoint, data=body, verify=server.cert, timeout=HTTP_TIMEOUT)


def redeem(server, callback: str, verifier: str | None = None, redirect_uri: str = DEMO_REDIRECT,
           auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)) -> dict:
    data = {"grant_type": "authorization_code", "code": query_of(callback)["code"], "redirect_uri": redirect_uri}
    if verifier:
        data["code_verifier"] = verifier
    resp = token_request(server, data, auth=auth)
    assert resp.status_code == 200, resp.text
    return resp.json()


def pkce_pair() -> tuple[str, str]:
    import hashlib

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def full_flow(server, session: requests.Session, *, email: str = MEMBER, redeem_code: bool = True, **params):
    """Sign-in and consent for the demo app with PKCE; returns (callback URL, token response or
    None). `params` change the authorization request."""
    verifier, challenge = pkce_pair()
    url = authorization_url(server, code_challenge=challenge, code_challenge_method="S256", **params)
    callback = browser_sign_in_and_consent(session, url, email=email)
    tokens = redeem(server, callback, verifier) if redeem_code else None
    return callback, tokens


def jwt_part(token: str, index: int) -> dict:
    """The decoded header (0) or payload (1) of a compact JWS (the signature is checked where a
    check is about it, with joserfc and the published JWKS)."""
    part = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def discovery(server) -> dict:
    resp = requests.get(server.issuer + "/.well-known/openid-configuration", verify=server.cert,
                        timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()


def new_app(server, name: str, *, redirect_uri: str = "https://client.example/cb", owner: str = DEVELOPER,
            products=("openid-connect",), capabilities=(), **extra) -> dict:
    """An app made with the CLI on the server's store, approved for `products`; returns the
    CLI's JSON (client_id, client_secret, app)."""
    args = ["app", "create", "--name", name, "--owner", owner, "--redirect-uri", redirect_uri]
    for flag, value in extra.items():
        args += ["--" + flag.replace("_", "-"), value]
    made = server.cli(*args)
    for program in products:
        server.cli("app", "product", "request", made["client_id"], program)
    for cap in capabilities:
        server.cli("app", "enable", made["client_id"], cap)
    return made


def admin_key(server, name: str | None = None) -> str:
    return server.cli("admin-key", "create", "--name", name or "key-" + secrets.token_hex(4))["key"]


def csp(resp: requests.Response) -> dict[str, list[str]]:
    """The Content-Security-Policy as {directive: [sources]}."""
    header = resp.headers.get("Content-Security-Policy", "")
    directives = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives[words[0].lower()] = words[1:]
    return directives


def assert_not_frameable(resp: requests.Response, what: str) -> None:
    """CJ-01: CSP frame-ancestors 'none' and X-Frame-Options DENY."""
    assert csp(resp).get("frame-ancestors") == ["'none'"], f"{what}: CSP {resp.headers.get('Content-Security-Policy')!r}"
    assert resp.headers.get("X-Frame-Options", "").upper() == "DENY", f"{what}: X-Frame-Options"


def assert_no_cors(resp: requests.Response, what: str) -> None:
    allowed = {k.lower() for k in resp.headers if k.lower().startswith("access-control-")}
    assert not allowed, f"{what}: CORS headers {allowed}"


class _Refs(HTMLParser):
    """Every URL a page loads or links to: (tag, attribute, value), plus inline scripts."""

    URL_ATTRS = {"src", "href", "action", "formaction", "poster", "srcset", "data"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []
        self.inline_scripts = 0
        self.tags: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for name, value in attrs:
            if name in self.URL_ATTRS and value:
                self.refs.append((tag, name, value))
            if name.startswith("on"):
                self.inline_scripts += 1  # an event-handler attribute is inline script
        if tag == "script" and not dict(attrs).get("src"):
            self._in_script = True

    def handle_data(self, data):
        if self._in_script and data.strip():
            self.inline_scripts += 1

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False


def page_refs(html: str) -> _Refs:
    p = _Refs()
    p.feed(html)
    p.close()
    return p


def foreign_refs(html: str, page_url: str) -> list[tuple[str, str, str]]:
    """The references of a page that point at another origin (or a non-http scheme)."""
    here = origin(page_url)
    out = []
    for tag, attr, value in page_refs(html).refs:
        target = urljoin(page_url, value)
        if origin(target) != here:
            out.append((tag, attr, value))
    return out


def run_node(package_dir: Path, script: str, *args: str, timeout: int = 90) -> dict:
    """Runs an ES-module `script` with node in `package_dir` (so its node_modules resolve; `npm ci`
    when they are missing, never downloading a browser); the script prints one JSON object."""
    if not (package_dir / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=package_dir, check=True,
                       capture_output=True, timeout=300, env={**__import__("os").environ,
                                                              "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"})
    p = subprocess.run(["node", "--input-type=module", "-e", script, "--", *args], cwd=package_dir,
                       capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, f"node failed ({p.returncode}):\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])


ERROR_PARAMS = {"error", "error_description", "error_uri", "state", "iss"}


def assert_error_redirect(target: str, server, error: str | tuple[str, ...], state: str | None) -> dict:
    """An error sent to the demo app's redirect URL: the error, the state, `iss`, no code and
    nothing else (RFC 6749 4.1.2.1, RFC 9207)."""
    assert target.startswith(DEMO_REDIRECT + "?"), target
    q = query_of(target)
    errors = (error,) if isinstance(error, str) else error
    assert q.get("error") in errors, q
    assert q.get("iss") == server.issuer, q
    assert q.get("state") == state, q
    assert set(q) <= ERROR_PARAMS, f"unexpected parameters: {set(q) - ERROR_PARAMS}"
    return q


# 1.5 No implicit grant, no ROPC -----------------------------------------------------------------


@pytest.mark.check("GRANT-01", "GRANT-02")
@pytest.mark.parametrize("response_type", ["token", "id_token token", "code token", "code id_token token",
                                           "id_token", "code id_token"])
def test_response_types_other_than_code_are_refused(server, browser, response_type):
    url = authorization_url(server, response_type=response_type, nonce="n-1")
    state = query_of(url)["state"]
    resp = get(browser, url)
    target = location(resp)
    q = assert_error_redirect(target, server, "unsupported_response_type", state)
    # No token anywhere: not in the query, not in a fragment.
    assert "access_token" not in target and "id_token" not in q and not urlsplit(target).fragment


@pytest.mark.check("GRANT-03")
def test_password_grant_is_unsupported(server):
    resp = token_request(server, {"grant_type": "password", "username": MEMBER, "password": DEMO_PASSWORD})
    assert resp.status_code == 400
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"] == "unsupported_grant_type"
    assert "access_token" not in resp.json()


@pytest.mark.check("GRANT-04")
def test_discovery_lists_only_the_code_flow(server):
    d = discovery(server)
    assert d["response_types_supported"] == ["code"]
    assert "password" not in d["grant_types_supported"]
    assert "implicit" not in d["grant_types_supported"]
    assert "authorization_code" in d["grant_types_supported"]


@pytest.mark.check("GRANT-05")
def test_grant_type_the_client_may_not_use_is_unauthorized_client(server):
    # A fresh app without the client-credentials capability asks for an application token.
    app = new_app(server, "No client credentials")
    resp = token_request(server, {"grant_type": "client_credentials"},
                         auth=(app["client_id"], app["client_secret"]))
    # RFC 6749 5.2: "The authenticated client is not authorized to use this authorization grant type."
    assert (resp.status_code, resp.json().get("error")) == (400, "unauthorized_client"), resp.text


@pytest.mark.check("GRANT-06")
def test_missing_response_type_is_an_error_redirect(server, browser):
    url = authorization_url(server, drop=("response_type",))
    target = location(get(browser, url))
    assert_error_redirect(target, server, ("invalid_request", "unsupported_response_type"), query_of(url)["state"])


# 1.6 Issuer identification ----------------------------------------------------------------------


@pytest.mark.check("ISS-01")
def test_successful_response_carries_the_discovered_issuer(server, browser):
    callback, _ = full_flow(server, browser, redeem_code=False)
    raw = dict(p.split("=", 1) for p in urlsplit(callback).query.split("&"))
    q = query_of(callback)
    assert q["iss"] == discovery(server)["issuer"]
    # Byte-identical after the one level of URL encoding a query value has.
    assert raw["iss"] == urlencode({"": discovery(server)["issuer"]})[1:]


@pytest.mark.check("ISS-02")
def test_every_error_response_carries_iss(server, browser):
    # unsupported_response_type and the invalid-scope error, before sign-in.
    for params, error in [({"response_type": "token"}, "unsupported_response_type"),
                          ({"scope": "openid rw_dmp_segments"}, "unauthorized_scope_error"),
                          ({"prompt": "none"}, "login_required")]:
        url = authorization_url(server, **params)
        assert_error_redirect(location(get(browser, url)), server, error, query_of(url)["state"])
    # The member refuses (scopegate's code for access_denied is user_cancelled_authorize; ISS-02
    # is about iss, OR-04 about the code) and cancels the sign-in.
    sign_in(browser, server)  # first: the sign-in page does not carry prompt=consent on
    url = authorization_url(server, prompt="consent")
    target = browser_sign_in_and_consent(browser, url, consent="cancel")
    assert query_of(target)["iss"] == server.issuer
    fresh = new_session(server)
    url = authorization_url(server)
    target = browser_sign_in_and_consent(fresh, url, login_action="cancel")
    assert query_of(target)["iss"] == server.issuer


@pytest.mark.check("ISS-04")
def test_discovery_advertises_the_iss_parameter(server):
    assert discovery(server)["authorization_response_iss_parameter_supported"] is True


@pytest.mark.check("ISS-05")
def test_issuer_equals_the_url_the_metadata_was_fetched_from_and_the_id_token_iss(server, browser):
    issuer = server.issuer
    # OIDC Discovery 4: issuer + /.well-known/openid-configuration; RFC 8414 3: the well-known
    # segment between the host and the issuer's path.
    host = server.base
    path = urlsplit(issuer).path
    for url in [issuer + "/.well-known/openid-configuration",
                host + "/.well-known/oauth-authorization-server" + path]:
        resp = requests.get(url, verify=server.cert, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200, url
        assert resp.json()["issuer"] == issuer, url
    assert urlsplit(issuer).scheme == "https" and not urlsplit(issuer).query and not urlsplit(issuer).fragment
    _, tokens = full_flow(server, browser)
    assert jwt_part(tokens["id_token"], 1)["iss"] == issuer


OAUTH4WEBAPI_VALIDATE = r"""
import * as oauth from 'oauth4webapi';
const [issuer, clientId, callback, state] = process.argv.slice(1);
const as = { issuer, authorization_response_iss_parameter_supported: true };
const client = { client_id: clientId };
const out = {};
const attempt = (name, url) => {
  try { oauth.validateAuthResponse(as, client, new URL(url), state); out[name] = 'ok'; }
  catch (e) { out[name] = String(e.message || e); }
};
attempt('real', callback);
const noIss = new URL(callback); noIss.searchParams.delete('iss');
attempt('without_iss', noIss.href);
const otherIss = new URL(callback); otherIss.searchParams.set('iss', issuer + '/other');
attempt('other_iss', otherIss.href);
console.log(JSON.stringify(out));
"""


@pytest.mark.check("ISS-07")
def test_oauth4webapi_accepts_the_response_and_refuses_it_without_iss(server, browser):
    # The strict client library itself (openid-client's engine, in tests/oidc/node_modules).
    url = authorization_url(server)
    callback = browser_sign_in_and_consent(browser, url)
    out = run_node(REPO_ROOT / "tests" / "oidc", OAUTH4WEBAPI_VALIDATE, server.issuer, DEMO_CLIENT_ID,
                   callback, query_of(url)["state"])
    assert out["real"] == "ok", out
    assert "iss" in out["without_iss"], out
    assert "iss" in out["other_iss"], out


# 1.7 CSRF ---------------------------------------------------------------------------------------

# 128 characters: unreserved characters and characters that must be percent-encoded.
STATE_128 = ("AZaz09-._~" + " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}" + "é✓") * 3
STATE_128 = (STATE_128 + "x" * 128)[:128]


@pytest.mark.check("CSRF-01")
def test_state_with_special_characters_comes_back_byte_identical(server, browser):
    assert len(STATE_128) == 128
    # The OIDF way (prompt=none, not signed in) and a successful code flow.
    target = location(get(browser, authorization_url(server, prompt="none", state=STATE_128)))
    assert query_of(target)["state"] == STATE_128
    callback, _ = full_flow(server, browser, redeem_code=False, state=STATE_128)
    assert query_of(callback)["state"] == STATE_128 and "code" in query_of(callback)


@pytest.mark.check("CSRF-02")
def test_a_4_kib_state_is_echoed_whole_or_refused(server, browser):
    state = secrets.token_urlsafe(3072)[:4096]
    for flow in ("prompt=none", "full"):
        if flow == "prompt=none":
            resp = get(browser, authorization_url(server, prompt="none", state=state))
            target = location(resp)
        else:
            target, _ = full_flow(server, new_session(server), redeem_code=False, state=state)
        q = query_of(target)
        if q.get("error") == "invalid_request":
            assert "state" not in q or q["state"] == state
        else:
            assert q["state"] == state, f"{flow}: state of {len(q.get('state', ''))} characters came back"


@pytest.mark.check("CSRF-03")
def test_no_state_succeeds_without_state(server, browser):
    callback, tokens = full_flow(server, browser, state=None)
    q = query_of(callback)
    assert "code" in q and "state" not in q
    assert tokens["access_token"]


@pytest.mark.check("CSRF-04")
@pytest.mark.parametrize("length", [64, 384])
def test_nonce_is_echoed_exactly_in_the_id_token(server, browser, length):
    nonce = (secrets.token_urlsafe(length) + "-._~")[-length:]
    _, tokens = full_flow(server, browser, nonce=nonce)
    assert jwt_part(tokens["id_token"], 1)["nonce"] == nonce


def _signed_in_consent(server, session, email=MEMBER):
    """A signed-in session on the consent page of a fresh demo-app request (prompt=consent);
    returns (authorization URL, consent form)."""
    sign_in(session, server, email)
    url = authorization_url(server, prompt="consent")
    page = open_consent_page(session, server, url)
    return url, consent_form(page.text)


def assert_refused_form_post(resp: requests.Response, what: str) -> None:
    assert resp.status_code == 403, f"{what}: HTTP {resp.status_code}"
    assert "code=" not in resp.headers.get("Location", ""), what


@pytest.mark.check("CSRF-05", "CON-07")
def test_consent_post_without_token_or_with_another_sessions_token_is_403(server):
    a, b = new_session(server), new_session(server)
    _, form_a = _signed_in_consent(server, a)
    _, form_b = _signed_in_consent(server, b)
    consent = server.base + "/oauth/v2/authorization/consent"
    without = {k: v for k, v in form_a["hidden"].items() if k != "csrf"}
    assert_refused_form_post(post(a, consent, data=dict(without, action="allow")), "no CSRF token")
    stolen = dict(form_a["hidden"], csrf=form_b["hidden"]["csrf"], action="allow")
    assert_refused_form_post(post(a, consent, data=stolen), "another session's token")


@pytest.mark.check("CSRF-05", "CON-07")
def test_consent_post_from_another_origin_is_403(server):
    a = new_session(server)
    _, form = _signed_in_consent(server, a)
    resp = post(a, server.base + "/oauth/v2/authorization/consent", data=dict(form["hidden"], action="allow"),
                headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert_refused_form_post(resp, "Origin: https://evil.example")


@pytest.mark.check("CSRF-05")
def test_sign_in_post_without_token_with_a_foreign_token_or_from_another_origin_is_403(server):
    a, b = new_session(server), new_session(server)
    forms = {}
    for s in (a, b):
        page = get(s, server.base + "/login")
        forms[s] = next(f for f in parse_forms(page.text) if f["action"] == "/login")
    creds = {"action": "signin", "email": MEMBER, "password": DEMO_PASSWORD, "next": "/developers/apps"}
    login = server.base + "/login"

    def signed_in(resp):
        return any(c.startswith("__Host-sg_session=") and "Max-Age=0" not in c
                   for c in resp.raw.headers.getlist("Set-Cookie"))

    r = post(a, login, data=creds)
    assert r.status_code == 403 and not signed_in(r), "no CSRF token"
    r = post(a, login, data=dict(creds, csrf=forms[b]["hidden"]["csrf"]))
    assert r.status_code == 403 and not signed_in(r), "another browser's token"
    r = post(a, login, data=dict(creds, csrf=forms[a]["hidden"]["csrf"]),
             headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"})
    assert r.status_code == 403 and not signed_in(r), "Origin: https://evil.example"


@pytest.mark.check("CSRF-06", "CON-07")
def test_session_and_csrf_cookies_are_host_only_secure_httponly_samesite(server):
    s = new_session(server)
    page = get(s, server.base + "/login")
    resp = sign_in(s, server)
    for name, r in [("__Host-sg_session", resp), ("__Host-sg_csrf", page)]:
        attrs = [a.strip() for a in session_cookie_header(r, name).split(";")]
        lower = [a.lower() for a in attrs]
        assert "secure" in lower and "httponly" in lower, (name, attrs)
        assert any(a in ("samesite=lax", "samesite=strict") for a in lower), (name, attrs)
        assert "path=/" in lower and not any(a.startswith("domain=") for a in lower), (name, attrs)


@pytest.mark.check("CSRF-07")
def test_state_changing_endpoints_refuse_get(server):
    s = new_session(server)
    _, form = _signed_in_consent(server, s)
    consent_get = server.base + "/oauth/v2/authorization/consent?" + urlencode(dict(form["hidden"], action="allow"))
    for url in [consent_get, server.base + "/logout?csrf=" + form["hidden"]["csrf"],
                server.base + "/psettings/permitted-services/revoke?client_id=" + DEMO_CLIENT_ID,
                server.base + "/developers/apps/" + DEMO_CLIENT_ID + "/action?action=delete"]:
        resp = get(s, url)
        assert resp.status_code == 405, f"GET {url}: HTTP {resp.status_code}"
    # An approval smuggled into the authorization request itself shows the page, issues nothing.
    url = authorization_url(server, prompt="consent") + "&action=allow&csrf=" + form["hidden"]["csrf"]
    resp = get(s, url)
    assert resp.status_code == 200 and consent_form(resp.text)
    # The session still works: GET /logout did not sign it out.
    assert get(s, server.base + "/developers/apps").status_code == 200


@pytest.mark.check("CSRF-08")
def test_pkce_support_is_discoverable(server):
    # RFC 9700 4.7.1: clients must be able to detect PKCE support (the PKCE-10 metadata).
    assert discovery(server)["code_challenge_methods_supported"] == ["S256"]


# 1.10 Open redirectors --------------------------------------------------------------------------

EVIL_TARGETS = ["https://evil.example", "https://evil.example/cb"]
EVIL_TRICKS = ["//evil.example", "/\\evil.example", "https:evil.example", "%2F%2Fevil.example",
               "/%2F/evil.example", "\\\\evil.example", " //evil.example", "/\t/evil.example",
               "https://evil.example@" + "127.0.0.1/", "javascript:alert(1)"]
REDIRECT_PARAMS = ["next", "return_to", "redirect", "redirect_to", "post_logout_redirect_uri", "continue", "url"]


def _assert_stays_home(server, resp, what):
    if resp.status_code in REDIRECTS:
        target = location(resp)
        assert origin(target) == origin(server.base), f"{what}: redirected to {target}"


@pytest.mark.check("OR-01", "OR-02")
@pytest.mark.parametrize("value", EVIL_TARGETS + EVIL_TRICKS)
def test_no_endpoint_forwards_to_a_url_from_a_parameter(server, value):
    s = new_session(server)
    # Unauthenticated pages and the sign-in itself, with every usual name of a return parameter.
    for param in REDIRECT_PARAMS:
        for path in ["/login", "/developers/apps", "/psettings/permitted-services", "/logout"]:
            resp = get(s, f"{server.base}{path}?{urlencode({param: value})}")
            _assert_stays_home(server, resp, f"GET {path}?{param}=")
            if resp.status_code == 200:
                # The sign-in form carries `next` on: it must have been replaced by a local path.
                for f in parse_forms(resp.text):
                    nxt = f["hidden"].get("next")
                    assert nxt is None or (nxt.startswith("/") and not nxt.startswith("//")
                                           and "\\" not in nxt), (path, param, nxt)
    # A successful sign-in POSTed with the evil `next`.
    page = get(s, server.base + "/login")
    form = next(f for f in parse_forms(page.text) if f["action"] == "/login")
    resp = post(s, server.base + "/login",
                data=dict(form["hidden"], next=value, action="signin", email=MEMBER, password=DEMO_PASSWORD))
    assert resp.status_code == 303
    _assert_stays_home(server, resp, "POST /login")
    # Signed out with it.
    resp = post(s, server.base + "/logout", data={"csrf": "", "next": value, "post_logout_redirect_uri": value})
    _assert_stays_home(server, resp, "POST /logout")


@pytest.mark.check("OR-03")
def test_invalid_scope_for_a_self_registered_app_redirects_to_its_registered_url(server):
    # POLICY (scopegate, docs/oauth.md): once the client and its exactly-matched registered
    # redirect URL are verified, a refused scope goes back to the client as LinkedIn does
    # (RFC 6749 4.1.2.1), before sign-in; an unregistered URL gets a page, never a redirect.
    app = new_app(server, "Self-registered", redirect_uri="https://self-registered.example/cb")
    s = new_session(server)
    url = authorization_url(server, client_id=app["client_id"], redirect_uri="https://self-registered.example/cb",
                            scope="openid r_not_a_permission")
    target = location(get(s, url))
    assert target.startswith("https://self-registered.example/cb?")
    q = query_of(target)
    assert q["error"] == "unauthorized_scope_error" and q["iss"] == server.issuer
    assert q["state"] == query_of(url)["state"] and "code" not in q
    # The same request with a redirect URL the app did not register: a page on scopegate.
    bad = get(s, url.replace("self-registered.example", "evil.example"))
    assert bad.status_code in (400, 401) and "Location" not in bad.headers


@pytest.mark.check("OR-04", "CON-06")
def test_denied_consent_redirects_with_access_denied(server, browser):
    sign_in(browser, server)  # first: the sign-in page does not carry prompt=consent on
    url = authorization_url(server, prompt="consent")
    target = browser_sign_in_and_consent(browser, url, consent="cancel")
    assert target.startswith(DEMO_REDIRECT + "?")
    q = query_of(target)
    assert "code" not in q and q["state"] == query_of(url)["state"] and q["iss"] == server.issuer
    # RFC 6749 4.1.2.1: "access_denied: The resource owner or authorization server denied the request."
    assert q["error"] == "access_denied", q


@pytest.mark.check("OR-05", "CON-07")
def test_form_posts_answer_303_or_302_never_307_or_308(server):
    s = new_session(server)
    resp = sign_in(s, server)  # asserts 303
    assert resp.status_code == 303
    url = authorization_url(server, prompt="consent")
    form = consent_form(open_consent_page(s, server, url).text)
    for action in ("allow", "cancel"):
        resp = post(s, server.base + "/oauth/v2/authorization/consent", data=dict(form["hidden"], action=action))
        assert resp.status_code in (302, 303), f"{action}: HTTP {resp.status_code}"
        assert location(resp).startswith(DEMO_REDIRECT + "?")


# 1.11 Other -------------------------------------------------------------------------------------


@pytest.mark.check("OTH-01")
def test_no_cors_at_the_authorization_endpoint(server, browser):
    hdrs = {"Origin": "https://evil.example"}
    for endpoint in (server.authorization_endpoint, server.native_authorization_endpoint):
        assert_no_cors(get(browser, authorization_url(server, endpoint=endpoint), headers=hdrs), "GET")
        assert_no_cors(post(browser, endpoint, data={"client_id": DEMO_CLIENT_ID}, headers=hdrs), "POST")
        pre = browser.options(endpoint, headers=dict(hdrs, **{"Access-Control-Request-Method": "POST"}),
                              timeout=HTTP_TIMEOUT, allow_redirects=False)
        assert_no_cors(pre, "preflight")
        assert pre.status_code not in (200, 204), f"preflight answered {pre.status_code}"
    assert_no_cors(post(browser, server.base + "/oauth/v2/authorization/consent", data={}, headers=hdrs), "consent")


@pytest.mark.check("OTH-02")
def test_discovery_metadata_is_published(server):
    docs = []
    for path in ["/oauth/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/oauth",
                 "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]:
        resp = requests.get(server.base + path, verify=server.cert, timeout=HTTP_TIMEOUT)
        assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json"), path
        docs.append(resp.json())
    assert all(d == docs[0] for d in docs)
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "response_types_supported"):
        assert docs[0][field], field


@pytest.mark.check("OTH-03")
def test_forwarding_headers_from_a_client_are_ignored(server):
    spoof = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example",
             "Forwarded": "for=203.0.113.7;proto=http;host=evil.example", "X-Real-IP": "203.0.113.7",
             "X-Scopegate-Peer-Address": "203.0.113.7", "X-Client-Cert": "forged"}
    # Nothing the server prints is built from them.
    d = requests.get(server.issuer + "/.well-known/openid-configuration", headers=spoof, verify=server.cert,
                     timeout=HTTP_TIMEOUT).json()
    assert d["issuer"] == server.issuer and d["token_endpoint"].startswith(server.base)
    resp = get(new_session(server), authorization_url(server), headers=spoof)
    assert location(resp).startswith(server.base + "/login")
    # The client-authentication throttle keys on the socket address: a new forged address on
    # every attempt does not buy more guesses. A fresh app, so the demo app is not throttled.
    app = new_app(server, "Throttle probe", products=())
    statuses = []
    for i in range(11):
        headers = {"X-Forwarded-For": f"198.51.100.{i}", "X-Real-IP": f"198.51.100.{i}",
                   "X-Scopegate-Peer-Address": f"198.51.100.{i}", "Forwarded": f"for=198.51.100.{i}"}
        r = requests.post(server.introspection_endpoint, headers=headers, verify=server.cert,
                          timeout=HTTP_TIMEOUT,
                          data={"client_id": app["client_id"], "client_secret": "wrong-" + str(i), "token": "x"})
        statuses.append(r.status_code)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429, statuses


@pytest.mark.check("OTH-04")
def test_self_service_registration_cannot_choose_the_client_id(server, browser):
    # The member's subject at the demo app: what an attacker would like to become a client_id.
    _, tokens = full_flow(server, browser)
    wanted = jwt_part(tokens["id_token"], 1)["sub"]
    s = new_session(server)
    sign_in(s, server, DEVELOPER)
    form = next(f for f in parse_forms(get(s, server.base + "/developers/apps/new").text)
                if f["action"] == "/developers/apps")
    resp = post(s, server.base + "/developers/apps",
                data=dict(form["hidden"], name="Chosen id", client_id=wanted, redirect_uri="https://c.example/cb"))
    assert resp.status_code == 201, resp.text[:500]
    made = resp.text.split('id="client-id">', 1)[1].split("<", 1)[0]
    assert made and made != wanted
    assert not any(a["client_id"] == wanted for a in server.cli("app", "list"))
    # The admin API refuses the field outright (unknown fields are an error).
    key = admin_key(server)
    r = requests.post(server.base + "/admin/v1/apps", verify=server.cert, timeout=HTTP_TIMEOUT,
                      headers={"Authorization": "Bearer " + key},
                      json={"name": "Chosen", "owner": DEVELOPER, "client_id": wanted,
                            "redirect_uris": ["https://c.example/cb"]})
    assert r.status_code == 400, r.text


@pytest.mark.check("OTH-06")
def test_an_application_token_gets_no_userinfo(server):
    resp = token_request(server, {"grant_type": "client_credentials"})
    assert resp.status_code == 200, resp.text
    r = requests.get(server.base + "/v2/userinfo", headers={"Authorization": "Bearer " + resp.json()["access_token"]},
                     verify=server.cert, timeout=HTTP_TIMEOUT)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "ACCESS_DENIED" and "sub" not in r.json()

"""Redirect URI checks (catalogue section 1.1): RDR-01..RDR-19 at the authorization and token
endpoints, REG-01..REG-07 at registration (admin API and CLI).

The rule (RFC 9700 2.1, 4.1.3): exact string matching, except the port of a native app's loopback
URL; a bad client_id or redirect_uri gets an error page on the AS, never a redirect (RFC 6749
4.1.2.1). The member's browser is signed in and has consented before the bad requests are sent,
so an AS that wrongly accepted a variant would answer at once with a code in the Location.

scopegate's error pages: 401 "Redirect_uri doesn't match" / "Client_id doesn't match" (LinkedIn's
pages) for an unregistered URL or unknown client; 400 for a request it cannot parse (a repeated
parameter, a control character) or one without redirect_uri.
"""

from __future__ import annotations

import pytest
import requests

from flows import (
    SCOPE,
    Code,
    assert_error_page,
    assert_token_error,
    assert_tokens,
    authorization_url,
    create_app,
    get_authorization,
    new_verifier,
    obtain_code,
    sign_in_with_live_token,
    query_params,
    redeem,
    session_for,
)
from scopegate import HTTP_TIMEOUT, CliError, browser_sign_in_and_consent

R = "https://client.example/cb"
# The status of scopegate's error page for a redirect URL that is not registered.
NOT_REGISTERED = 401
# ... and for a request it refuses to parse (RFC 6749 3.1: parameters MUST NOT repeat).
MALFORMED = 400


@pytest.fixture(scope="module")
def client_app(server):
    """A web app registered with exactly R."""
    return create_app(server, "Redirect Checks", [R])


@pytest.fixture(scope="module")
def member(server, client_app):
    """The member's browser, signed in and having consented to client_app: a request the AS
    accepts is answered with a code right away, with no page in between."""
    with session_for(server) as browser:
        sign_in_with_live_token(server, browser, client_id=client_app["client_id"],
                                client_secret=client_app["client_secret"], redirect_uri=R)
        yield browser


def request_with(server, app, redirect_uri, **kw) -> str:
    return authorization_url(
        server, client_id=app["client_id"], redirect_uri=redirect_uri, verifier=new_verifier(), **kw
    )


# The exact registered URL works: the refusals below are about the variant, nothing else. ----------


@pytest.mark.check("RDR-01", "RDR-02", "RDR-03", "RDR-04", "RDR-05", "RDR-06", "RDR-08", "RDR-09",
                   "RDR-10", "RDR-11", "RDR-12", "RDR-14")
def test_the_registered_url_itself_gets_a_code(server, client_app, member):
    resp = get_authorization(member, request_with(server, client_app, R, state="ok"))
    assert resp.status_code == 302, resp.text[:500]
    assert resp.headers["Location"].startswith(R + "?")
    p = query_params(resp.headers["Location"])
    assert p["code"] and p["state"] == "ok" and p["iss"] == server.issuer


# RDR-01..RDR-12, RDR-14: variants of R ---------------------------------------------------------------

VARIANTS = [
    ("RDR-01", "https://client.example/cb/", NOT_REGISTERED),
    ("RDR-02", "https://CLIENT.example/cb", NOT_REGISTERED),
    ("RDR-02", "HTTPS://client.example/cb", NOT_REGISTERED),
    ("RDR-03", "https://client.example/CB", NOT_REGISTERED),
    ("RDR-04", "https://client.example:443/cb", NOT_REGISTERED),
    ("RDR-05", "http://client.example/cb", NOT_REGISTERED),
    ("RDR-06", "https://client.example/cb?x=1", NOT_REGISTERED),
    ("RDR-06", "https://client.example/cb?", NOT_REGISTERED),
    ("RDR-08", "https://client.example/cb#frag", NOT_REGISTERED),
    ("RDR-08", "https://client.example/cb#", NOT_REGISTERED),
    ("RDR-09", "https://client.example/cb/../evil", NOT_REGISTERED),
    ("RDR-09", "https://client.example/cb/%2e%2e/evil", NOT_REGISTERED),
    ("RDR-09", "https://client.example/cb%2F..%2Fevil", NOT_REGISTERED),
    ("RDR-09", "https://client.example/evil/../cb", NOT_REGISTERED),  # normalises to R
    ("RDR-09", "https://client.example/./cb", NOT_REGISTERED),  # normalises to R
    ("RDR-09", "https://client.example/%63b", NOT_REGISTERED),  # %63 is "c": normalises to R
    ("RDR-10", "https://client.example.evil.com/cb", NOT_REGISTERED),
    ("RDR-10", "https://evil.com/client.example/cb", NOT_REGISTERED),
    ("RDR-10", "https://client.example/cbx", NOT_REGISTERED),
    ("RDR-10", "https://client.example/cb/evil", NOT_REGISTERED),
    ("RDR-10", "https://evil.com/?https://client.example/cb", NOT_REGISTERED),
    ("RDR-11", "https://client.example@evil.com/cb", NOT_REGISTERED),
    ("RDR-11", "https://evil.com@client.example/cb", NOT_REGISTERED),
    ("RDR-11", "https://client.example%40evil.com/cb", NOT_REGISTERED),
    ("RDR-11", "https://client.example\\@evil.com/cb", NOT_REGISTERED),
    ("RDR-12", "https://evil.com/cb", NOT_REGISTERED),
    ("RDR-14", "https://cl\u0456ent.example/cb", NOT_REGISTERED),  # Cyrillic "i" look-alike
    ("RDR-14", "https://xn--clent-o2e.example/cb", NOT_REGISTERED),  # ... and its punycode
    ("RDR-14", "https://client.example/cb%00", NOT_REGISTERED),  # a literal "%00"
    ("RDR-14", "https://client.example/cb%0d%0aLocation:%20https://evil.com", NOT_REGISTERED),
    # Real control characters after decoding the query: the request itself is refused.
    ("RDR-14", "https://client.example/cb\x00", MALFORMED),
    ("RDR-14", "https://client.example/cb\r\nLocation: https://evil.com/", MALFORMED),
    ("RDR-14", "https://evil.com/cb\x00https://client.example/cb", MALFORMED),
]


def _variant_params():
    return [
        pytest.param(v, status, id=f"{check}:{v!r}", marks=pytest.mark.check(check))
        for check, v, status in VARIANTS
    ]


@pytest.mark.parametrize("variant, status", _variant_params())
def test_a_variant_of_the_registered_url_gets_an_error_page(server, client_app, member, variant,
                                                            status):
    resp = get_authorization(member, request_with(server, client_app, variant))
    assert_error_page(resp, status)
    if status == NOT_REGISTERED:
        assert "Redirect_uri doesn&#39;t match" in resp.text or "Redirect_uri doesn't match" in resp.text


@pytest.mark.check("RDR-07")
def test_registered_query_is_not_a_pattern(server, member):
    """RDR-07: registered …/cb?a=1, sent …/cb?a=2. scopegate drops the query of a registered URL
    (docs/portal.md, LinkedIn's rule), so the registered URL is …/cb and any query is refused."""
    created = create_app(server, "Registered Query", ["https://client.example/q?a=1"])
    shown = server.cli("app", "show", created["client_id"])
    assert shown["redirect_uris"] == ["https://client.example/q"]
    for sent in ("https://client.example/q?a=2", "https://client.example/q?a=1&a=2",
                 "https://client.example/q?a=1"):
        resp = get_authorization(member, request_with(server, created, sent))
        assert_error_page(resp, NOT_REGISTERED)


@pytest.mark.check("RDR-13")
@pytest.mark.parametrize("second", ["https://evil.com/cb", R])
def test_redirect_uri_given_twice_gets_an_error_page(server, client_app, member, second):
    url = request_with(server, client_app, R) + "&" + requests.compat.urlencode({"redirect_uri": second})
    resp = get_authorization(member, url)
    assert_error_page(resp, MALFORMED)
    assert "more than once" in resp.text


@pytest.mark.check("RDR-13")
def test_redirect_uri_twice_in_a_post_body_gets_an_error_page(server, client_app, member):
    """The authorization endpoint also takes POST (OIDC): the same rule applies to the body."""
    url = request_with(server, client_app, R)
    body = url.split("?", 1)[1] + "&redirect_uri=" + requests.compat.quote("https://evil.com/cb", safe="")
    resp = member.post(server.authorization_endpoint, data=body, allow_redirects=False,
                       headers={"Content-Type": "application/x-www-form-urlencoded"},
                       timeout=HTTP_TIMEOUT)
    assert_error_page(resp, MALFORMED)


@pytest.mark.check("RDR-15")
def test_missing_redirect_uri_with_two_registered_gets_an_error_page(server, member):
    created = create_app(server, "Two Redirects", [R, "https://client.example/other"])
    with session_for(server) as browser:
        sign_in_with_live_token(server, browser, client_id=created["client_id"],
                                client_secret=created["client_secret"], redirect_uri=R)
        resp = get_authorization(browser, request_with(server, created, None))
    assert_error_page(resp, MALFORMED)
    assert "no redirect_uri" in resp.text


@pytest.mark.check("RDR-15")
def test_missing_redirect_uri_with_one_registered_gets_an_error_page(server, client_app, member):
    """POLICY: scopegate requires redirect_uri in every request (OIDC Core 3.1.2.1), even when
    only one URL is registered; it never falls back to a default."""
    resp = get_authorization(member, request_with(server, client_app, None))
    assert_error_page(resp, MALFORMED)


@pytest.mark.check("RDR-16")
@pytest.mark.parametrize("client_id", ["unknown-client-0001", "demoapp0000001x", "DEMOAPP0000001"])
def test_unknown_client_id_gets_an_error_page(server, member, client_id):
    url = authorization_url(server, client_id=client_id, redirect_uri=R, verifier=new_verifier())
    resp = get_authorization(member, url)
    assert_error_page(resp, NOT_REGISTERED)
    assert "Client_id doesn" in resp.text


@pytest.mark.check("RDR-16")
def test_missing_client_id_gets_an_error_page(server, member):
    resp = get_authorization(member, authorization_url(server, client_id=None, redirect_uri=R))
    assert_error_page(resp, MALFORMED)


# RDR-17: native apps, loopback redirect on any port ----------------------------------------------------


@pytest.fixture(scope="module")
def native_app(server):
    """A native app registered with http://127.0.0.1/cb (no port), native PKCE enabled."""
    return create_app(server, "Native Loopback", ["http://127.0.0.1/cb"], capabilities=("native-pkce",))


@pytest.mark.check("RDR-17")
@pytest.mark.parametrize("port", [51234, 80, 1])
def test_native_loopback_redirect_on_any_port_succeeds(server, browser, native_app, port):
    redirect = f"http://127.0.0.1:{port}/cb" if port != 80 else "http://127.0.0.1/cb"
    url = authorization_url(server, client_id=native_app["client_id"], redirect_uri=redirect,
                            verifier=new_verifier(), native=True, state="n")
    callback = browser_sign_in_and_consent(browser, url)
    assert callback.startswith(redirect + "?"), callback
    p = query_params(callback)
    assert p["code"] and p["state"] == "n" and p["iss"] == server.issuer


@pytest.mark.check("RDR-17")
@pytest.mark.parametrize(
    "redirect",
    [
        "http://127.0.0.1:51234/cb2",
        "http://127.0.0.1:51234/cb/",
        "http://127.0.0.1.evil.com:51234/cb",
        "http://localhost.evil.com/cb",
        "http://localhost.evil.com:51234/cb",
        "http://127.0.0.2:51234/cb",
        "https://127.0.0.1:51234/cb",
        "http://evil.com:51234/cb",
        "http://127.0.0.1:51234@evil.com/cb",
    ],
)
def test_native_loopback_lookalikes_get_an_error_page(server, native_app, redirect):
    with session_for(server) as signed_in:
        # Signed in and consented first, so an accepted URL would get a code at once.
        sign_in_with_live_token(server, signed_in, client_id=native_app["client_id"],
                                client_secret=None, redirect_uri="http://127.0.0.1:4000/cb",
                                native=True)
        url = authorization_url(server, client_id=native_app["client_id"], redirect_uri=redirect,
                                verifier=new_verifier(), native=True)
        assert_error_page(get_authorization(signed_in, url), NOT_REGISTERED)


# RDR-18, RDR-19: the token request's redirect_uri ---------------------------------------------------------


@pytest.mark.check("RDR-18")
@pytest.mark.parametrize("other", ["https://oauth.pstmn.io/v1/callback", "http://127.0.0.1:8080/callback/",
                                   "http://127.0.0.1:8081/callback"])
def test_token_request_with_another_redirect_uri_is_invalid_grant(server, browser, other):
    # The demo app has both URLs registered: the redirect_uri is valid for the app, only not the
    # one this code was issued for.
    code = obtain_code(server, browser)
    assert_token_error(redeem(server, code, redirect_uri=other), 400, "invalid_grant")
    # The attempt consumed the code (a stolen code gets no second try, docs/oauth.md).
    assert_token_error(redeem(server, code), 400, "invalid_grant")


@pytest.mark.check("RDR-18", "RDR-19")
def test_token_request_with_the_same_redirect_uri_succeeds(server, browser):
    assert_tokens(redeem(server, obtain_code(server, browser)))


@pytest.mark.check("RDR-19")
def test_token_request_without_redirect_uri_is_refused(server, browser):
    """RFC 6749 4.1.3: redirect_uri must be present and identical when the authorization request
    had one (scopegate requires it in every authorization request). The catalogue expects
    invalid_grant (node-oidc-provider); RFC 6749 5.2 defines invalid_request for "missing a
    required parameter", which is what scopegate answers for every missing token parameter
    (ERR-01): 400 either way, and no token."""
    code = obtain_code(server, browser)
    assert_token_error(redeem(server, code, redirect_uri=None), 400, "invalid_request")


# REG-01..REG-07: what may be registered --------------------------------------------------------------------


@pytest.fixture(scope="module")
def admin(server):
    """An admin API session (Bearer key made with the CLI) and an app to register URLs on."""
    key = server.cli("admin-key", "create", "--name", "security-redirect-checks")["key"]
    app = create_app(server, "Registration Checks", [R])
    s = session_for(server)
    s.headers["Authorization"] = "Bearer " + key
    yield s, app["client_id"]
    s.close()


def add_redirect(server, admin, uri) -> requests.Response:
    session, client_id = admin
    return session.post(f"{server.base}/admin/v1/apps/{client_id}/redirect-uris", json={"uri": uri},
                        timeout=HTTP_TIMEOUT)


def registered(server, admin) -> list[str]:
    return server.cli("app", "show", admin[1])["redirect_uris"]


def assert_registration_refused(server, admin, uri):
    before = registered(server, admin)
    resp = add_redirect(server, admin, uri)
    assert resp.status_code == 400, (uri, resp.status_code, resp.text)
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"]["status"] == 400
    # The CLI shares the rule.
    with pytest.raises(CliError):
        server.cli("app", "redirect-uri", "add", admin[1], uri)
    # And a new app cannot be created with it either.
    with pytest.raises(CliError):
        create_app(server, "Refused Redirect", [uri], products=())
    assert registered(server, admin) == before


@pytest.mark.check("REG-01")
@pytest.mark.parametrize("uri", ["http://client.example/cb", "http://127.0.0.1.evil.com/cb",
                                 "http://localhost.evil.com/cb", "http://10.0.0.1/cb"])
def test_http_redirect_for_a_web_client_is_refused(server, admin, uri):
    assert_registration_refused(server, admin, uri)


@pytest.mark.check("REG-02")
@pytest.mark.parametrize("uri", ["https://client.example/cb#x", "https://client.example/cb#"])
def test_redirect_with_a_fragment_is_refused(server, admin, uri):
    assert_registration_refused(server, admin, uri)


@pytest.mark.check("REG-03")
@pytest.mark.parametrize("uri", ["https://*.client.example/cb", "https://client.example/*",
                                 "https://client.example/cb*"])
def test_wildcard_redirect_is_refused(server, admin, uri):
    assert_registration_refused(server, admin, uri)


@pytest.mark.check("REG-04")
@pytest.mark.parametrize("uri", ["javascript:alert(1)", "javascript://client.example/%0aalert(1)",
                                 "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
                                 "file:///etc/passwd", "file://client.example/cb"])
def test_dangerous_scheme_is_refused(server, admin, uri):
    assert_registration_refused(server, admin, uri)


@pytest.mark.check("REG-05")
@pytest.mark.parametrize("query", ["code=x", "state=x", "code=x&state=y"])
def test_redirect_with_code_or_state_in_the_query_is_not_kept(server, admin, member, query):
    """REG-05 (parameter pollution): scopegate's documented rule (docs/portal.md, LinkedIn's) is to
    drop the query of a registered URL rather than refuse it. Either way no registered URL
    carries code= or state=, and a request that sends the polluted URL is refused."""
    path = "https://client.example/reg05-" + query.replace("=", "-").replace("&", "-")
    resp = add_redirect(server, admin, f"{path}?{query}")
    assert resp.status_code in (201, 400), resp.text
    if resp.status_code == 201:
        assert resp.json()["uri"] == path
    assert all("?" not in u for u in registered(server, admin)), registered(server, admin)
    url = authorization_url(server, client_id=admin[1], redirect_uri=f"{path}?{query}",
                            verifier=new_verifier())
    assert_error_page(get_authorization(member, url), NOT_REGISTERED)


@pytest.mark.check("REG-06")
@pytest.mark.parametrize("uri", ["https://user:pw@client.example/cb", "https://user@client.example/cb",
                                 "https://:pw@client.example/cb"])
def test_redirect_with_credentials_is_refused(server, admin, uri):
    assert_registration_refused(server, admin, uri)


@pytest.mark.check("REG-07")
@pytest.mark.parametrize("uri", ["http://127.0.0.1/cb", "http://[::1]/cb", "http://127.0.0.1:8123/cb"])
def test_native_loopback_redirect_is_accepted(server, admin, uri):
    resp = add_redirect(server, admin, uri)
    assert resp.status_code == 201, resp.text
    assert resp.json()["uri"] == uri
    assert uri in registered(server, admin)

"""The OpenID Foundation's Basic OP plan (oidcc-basic-certification-test-plan), module by module,
as black-box checks against a real scopegate (reference: security-checks.md 2.2 and 2.4).

Each test is marked with the catalogue id of its module (``OIDCC-<module>``). Where the OIDF
module only warns and scopegate deliberately differs, the test pins what scopegate does and says
why; where a module does not apply (no ``alg: none``, no request objects), the negative is tested.
ID tokens are verified with joserfc against the published JWKS, with the ``ValidateIdToken``
rules of the suite (``check_id_token``).
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from scopegate import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    HTTP_TIMEOUT,
    MEMBER,
    browser_sign_in_and_consent,
    parse_forms,
)

OTHER_MEMBER = "poster@scopegate.local"
SCOPE = "openid profile email"
# RFC 6749 4.1.2.1 / 5.2: the characters allowed in error and error_description.
ERROR_CHARS = re.compile(r"^[\x20-\x21\x23-\x5B\x5D-\x7E]+$")
# RFC 6749 A.12 / A.17: access and refresh token characters (VSCHAR).
VSCHAR = re.compile(r"^[\x20-\x7E]+$")


# check_id_token: a refreshed ID token may leave the nonce out (OIDC Core 12.2).
ANY_NONCE = object()


# Helpers -------------------------------------------------------------------------------------


def new_browser(server) -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    s.verify = server.cert
    return s


def discovery(server) -> dict:
    r = requests.get(server.issuer + "/.well-known/openid-configuration", verify=server.cert, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    return r.json()


def jwks(server) -> dict:
    r = requests.get(discovery(server)["jwks_uri"], verify=server.cert, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


def auth_params(**extra) -> dict:
    p = {
        "response_type": "code",
        "client_id": DEMO_CLIENT_ID,
        "redirect_uri": DEMO_REDIRECT,
        "scope": SCOPE,
        "state": secrets.token_urlsafe(16),
        "nonce": secrets.token_urlsafe(16),
    }
    p.update(extra)
    return {k: v for k, v in p.items() if v is not None}


def auth_url(server, params: dict) -> str:
    return server.authorization_endpoint + "?" + urlencode(params)


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize(server, browser, trace=None, email=MEMBER, **extra) -> tuple[dict, dict]:
    """The member's round trip; returns (request params, callback params), checking the
    authorization response as oidcc-server does (state echoed, iss = issuer, a code)."""
    params = auth_params(**extra)
    callback = browser_sign_in_and_consent(browser, auth_url(server, params), trace=trace, email=email)
    assert callback.startswith(DEMO_REDIRECT + "?"), callback
    cb = query(callback)
    assert "error" not in cb, cb
    assert cb.get("state") == params.get("state")
    assert cb["iss"] == server.issuer  # RFC 9207
    assert cb["code"]
    return params, cb


def silent(server, browser, **extra) -> tuple[dict, requests.Response]:
    """An authorization request answered without any page: one redirect straight to the client."""
    params = auth_params(**extra)
    r = browser.get(auth_url(server, params), allow_redirects=False, timeout=HTTP_TIMEOUT)
    return params, r


def redirect_params(r: requests.Response) -> dict:
    assert r.status_code == 302, (r.status_code, r.text[:500])
    loc = r.headers["Location"]
    assert loc.startswith(DEMO_REDIRECT + "?"), loc
    return query(loc)


def check_error_redirect(server, cb: dict, state: str | None, errors: set[str]) -> None:
    """The generic error-response checks of the suite: a listed error, state echoed intact, no
    code, a valid iss, and RFC 6749 character sets."""
    assert cb.get("error") in errors, cb
    assert "code" not in cb
    assert cb.get("state") == state
    assert cb["iss"] == server.issuer
    assert ERROR_CHARS.match(cb["error"])
    if "error_description" in cb:
        assert ERROR_CHARS.match(cb["error_description"]), cb["error_description"]


def redeem(server, code: str, auth: str = "basic", client_id=DEMO_CLIENT_ID, secret=DEMO_CLIENT_SECRET, **extra):
    data = {"grant_type": "authorization_code", "code": code, "redirect_uri": DEMO_REDIRECT, **extra}
    kw = {}
    if auth == "basic":
        kw["auth"] = (client_id, secret)
    else:
        data.update(client_id=client_id, client_secret=secret)
    return requests.post(server.token_endpoint, data=data, verify=server.cert, timeout=HTTP_TIMEOUT, **kw)


def tokens(server, cb: dict, **kw) -> dict:
    r = redeem(server, cb["code"], **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "")
    t = r.json()
    assert t["access_token"] and VSCHAR.match(t["access_token"])
    assert t["token_type"].lower() == "bearer"
    assert isinstance(t["expires_in"], int) and t["expires_in"] > 0
    return t


def check_id_token(server, id_token: str, nonce: str | None = None, client_id: str = DEMO_CLIENT_ID) -> dict:
    """ValidateIdToken, ValidateIdTokenSignature, ValidateIdTokenNonce, CheckForSubjectInIdToken,
    ValidateIdTokenStandardClaims, EnsureIdTokenUpdatedAtValid (OIDF conformance suite)."""
    keys = KeySet.import_key_set(jwks(server))
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] in ("RS256", "ES256") and header["alg"] != "none"
    assert header.get("kid") in {k["kid"] for k in jwks(server)["keys"]}
    tok = jwt.decode(id_token, keys, algorithms=[header["alg"]])
    c = tok.claims
    now = time.time()
    assert c["iss"] == server.issuer
    aud = c["aud"] if isinstance(c["aud"], list) else [c["aud"]]
    assert client_id in aud
    if len(aud) > 1:
        assert c["azp"] == client_id
    if "azp" in c:
        assert c["azp"] == client_id
    assert isinstance(c["exp"], int) and c["exp"] > now and c["exp"] < now + 50 * 365 * 86400
    assert isinstance(c["iat"], int) and now - 300 <= c["iat"] <= now + 5
    assert isinstance(c["auth_time"], int) and now - 365 * 86400 < c["auth_time"] <= now + 5
    if "nbf" in c:
        assert c["nbf"] <= now + 5
    if "acr" in c:
        assert isinstance(c["acr"], str) and c["acr"] != ""
    assert isinstance(c["sub"], str) and 0 < len(c["sub"]) <= 255
    if nonce is ANY_NONCE:
        pass
    elif nonce is None:
        assert "nonce" not in c
    else:
        assert c["nonce"] == nonce
    check_standard_claims(c)
    return c


def check_standard_claims(c: dict) -> None:
    for name in ("name", "given_name", "family_name", "picture", "email", "locale"):
        if name in c:
            assert isinstance(c[name], str), (name, c[name])
    if "email_verified" in c:
        assert isinstance(c["email_verified"], bool)
    if "updated_at" in c:
        assert isinstance(c["updated_at"], (int, float))


def userinfo(server, access_token: str, how: str = "get") -> requests.Response:
    url = discovery(server)["userinfo_endpoint"]
    kw = dict(verify=server.cert, timeout=HTTP_TIMEOUT)
    if how == "get":
        return requests.get(url, headers={"Authorization": f"Bearer {access_token}"}, **kw)
    if how == "post-header":
        return requests.post(url, headers={"Authorization": f"Bearer {access_token}"}, **kw)
    return requests.post(url, data={"access_token": access_token}, **kw)


def signed_in(server, browser, email=MEMBER) -> tuple[dict, dict]:
    """A member signed in whose grant covers SCOPE with a live token (so consent is skipped);
    returns the token response and the ID token's claims."""
    params, cb = authorize(server, browser, email=email)
    t = tokens(server, cb)
    return t, check_id_token(server, t["id_token"], params["nonce"])


@pytest.fixture(scope="module")
def other_app(server):
    """A second app approved for OpenID Connect (to test audiences and client binding)."""
    made = server.cli(
        "app", "create", "--name", "OIDCC Second", "--owner", "developer@scopegate.local",
        "--redirect-uri", "https://second.example/cb",
    )
    server.cli("app", "product", "request", made["client_id"], "openid-connect")
    server.cli("app", "product", "approve", made["client_id"], "openid-connect", check=False)
    return made


# oidcc-server and the ID token ---------------------------------------------------------------


@pytest.mark.check("OIDCC-server")
def test_server_happy_path(server, browser):
    d = discovery(server)
    for field in ("issuer", "authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert d[field].startswith("https://"), field
    assert d["issuer"] == server.issuer
    assert "openid" in d["scopes_supported"]
    keys = jwks(server)["keys"]
    assert keys
    kids = [k["kid"] for k in keys]
    assert len(kids) == len(set(kids))
    for k in keys:
        # EnsureJwksHasNoPrivateOrSymmetricKeyMaterial
        assert k["kty"] in ("RSA", "EC")
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(k), k
    params, cb = authorize(server, browser)
    t = tokens(server, cb)
    c = check_id_token(server, t["id_token"], params["nonce"])
    u = userinfo(server, t["access_token"])
    assert u.status_code == 200
    assert u.json()["sub"] == c["sub"]


@pytest.mark.check("OIDCC-idtoken-signature")
def test_id_token_defaults_to_rs256_and_verifies(server, browser):
    assert "RS256" in discovery(server)["id_token_signing_alg_values_supported"]
    params, cb = authorize(server, browser)
    id_token = tokens(server, cb)["id_token"]
    header = json.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    assert header["alg"] == "RS256"
    check_id_token(server, id_token, params["nonce"])
    # A flipped signature byte does not verify.
    head, body, sig = id_token.split(".")
    raw = bytearray(base64.urlsafe_b64decode(sig + "=="))
    raw[0] ^= 1
    forged = f"{head}.{body}." + base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")
    with pytest.raises(Exception):
        jwt.decode(forged, KeySet.import_key_set(jwks(server)), algorithms=["RS256"])


@pytest.mark.check("OIDCC-idtoken-unsigned")
def test_alg_none_is_neither_advertised_nor_used_nor_accepted(server, browser):
    # The OIDF module is SKIPPED when `none` is not advertised; the negative is tested instead.
    algs = discovery(server)["id_token_signing_alg_values_supported"]
    assert "none" not in [a.lower() for a in algs]
    params, cb = authorize(server, browser)
    id_token = tokens(server, cb)["id_token"]
    head, body, sig = id_token.split(".")
    assert sig, "an ID token must be signed"
    assert json.loads(base64.urlsafe_b64decode(head + "=="))["alg"] != "none"
    # Nor does scopegate take an unsigned token as an id_token_hint.
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=") + "." + body + "."
    p, r = silent(server, browser, prompt="none", id_token_hint=unsigned)
    check_error_redirect(server, redirect_params(r), p["state"], {"invalid_request"})


@pytest.mark.check("OIDCC-ensure-request-without-nonce-succeeds-for-code-flow")
def test_no_nonce_succeeds_and_no_nonce_is_returned(server, browser):
    params, cb = authorize(server, browser, nonce=None)
    assert "nonce" not in params
    check_id_token(server, tokens(server, cb)["id_token"], None)


# userinfo --------------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-userinfo-get")
def test_userinfo_get(server, browser):
    t, c = signed_in(server, browser)
    r = userinfo(server, t["access_token"], "get")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    u = r.json()
    assert u["sub"] == c["sub"]
    check_standard_claims(u)


@pytest.mark.check("OIDCC-userinfo-post-header")
def test_userinfo_post_with_bearer_header(server, browser):
    t, c = signed_in(server, browser)
    r = userinfo(server, t["access_token"], "post-header")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json()["sub"] == c["sub"]
    check_standard_claims(r.json())


@pytest.mark.check("OIDCC-userinfo-post-body")
def test_userinfo_token_in_body_is_refused_cleanly(server, browser):
    # OIDF: optional (WARNING if refused). scopegate takes bearer tokens in the Authorization
    # header only (RFC 6750 2.1; 2.2's form body is a MAY that keeps tokens out of form logs), so
    # the body form gets the same 401 challenge as no token at all.
    t, _ = signed_in(server, browser)
    r = userinfo(server, t["access_token"], "post-body")
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert "sub" not in r.json()


@pytest.mark.check("OIDCC-scope-profile")
def test_scope_profile_releases_profile_claims(server, browser):
    params, cb = authorize(server, browser, scope="openid profile")
    t = tokens(server, cb)
    c = check_id_token(server, t["id_token"], params["nonce"])
    u = userinfo(server, t["access_token"]).json()
    for claims in (c, u):
        assert claims["name"] == "Test Member"
        assert claims["given_name"] == "Test" and claims["family_name"] == "Member"
        assert "email" not in claims  # the email scope was not asked for
    check_standard_claims(u)


@pytest.mark.check("OIDCC-alternate-happy-flow")
def test_reversed_scope_order_and_parameter_order_succeed(server, browser):
    params = auth_params(scope="email profile openid")
    reordered = dict(reversed(list(params.items())))
    callback = browser_sign_in_and_consent(browser, auth_url(server, reordered))
    cb = query(callback)
    assert cb["state"] == params["state"] and cb["code"]
    t = tokens(server, cb)
    assert set(t["scope"].split()) == {"openid", "profile", "email"}
    check_id_token(server, t["id_token"], params["nonce"])


# Request parameters that must simply be accepted ----------------------------------------------


@pytest.mark.check("OIDCC-display-page")
@pytest.mark.parametrize("display", ["page", "popup", "touch", "wap", "something-else"])
def test_display_is_accepted(server, browser, display):
    assert "page" in discovery(server)["display_values_supported"]
    params, cb = authorize(server, browser, display=display)
    check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])


@pytest.mark.check("OIDCC-ensure-request-with-unknown-parameter-succeeds")
def test_unknown_parameter_is_ignored(server, browser):
    params, cb = authorize(server, browser, extra="foobar")
    check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])


@pytest.mark.check("OIDCC-login-hint")
def test_login_hint_is_accepted_and_prefills_sign_in(server):
    b = new_browser(server)
    params = auth_params(login_hint=MEMBER)
    r = b.get(auth_url(server, params), allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"
    page = b.get(urljoin(r.url, r.headers["Location"]), timeout=HTTP_TIMEOUT)
    assert f'value="{MEMBER}"' in page.text
    cb = query(browser_sign_in_and_consent(b, auth_url(server, params)))
    check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])


@pytest.mark.check("OIDCC-ui-locales")
@pytest.mark.parametrize("locales", ["se", "fr-CA fr en", "en-GB", "not a locale!"])
def test_ui_locales_is_accepted(server, locales):
    # Pages exist in English only: every request is served in English, lang="en" (OIDC Core
    # 3.1.2.1: unsupported locales SHOULD NOT cause an error).
    assert discovery(server)["ui_locales_supported"] == ["en"]
    b = new_browser(server)
    params = auth_params(ui_locales=locales)
    r = b.get(auth_url(server, params), allow_redirects=True, timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and '<html lang="en">' in r.text
    cb = query(browser_sign_in_and_consent(b, auth_url(server, params)))
    check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])


@pytest.mark.check("OIDCC-claims-locales")
def test_claims_locales_is_accepted(server, browser):
    params, cb = authorize(server, browser, claims_locales="se fr")
    t = tokens(server, cb)
    check_id_token(server, t["id_token"], params["nonce"])
    # Claims are what the member entered, in no particular language: unchanged.
    assert userinfo(server, t["access_token"]).json()["name"] == "Test Member"


@pytest.mark.check("OIDCC-ensure-request-with-acr-values-succeeds")
def test_acr_values_are_accepted(server, browser):
    # OIDF warns when no acr comes back. scopegate has one way to sign in and no acr vocabulary,
    # so it asserts none rather than a meaningless value (acr_values is voluntary, OIDC Core
    # 3.1.2.1); an *essential* acr request cannot be met and fails (5.5.1.1).
    params, cb = authorize(server, browser, acr_values="1 2")
    c = check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])
    assert "acr" not in c
    essential = json.dumps({"id_token": {"acr": {"essential": True, "values": ["urn:mace:incommon:iap:silver"]}}})
    p, r = silent(server, browser, claims=essential)
    check_error_redirect(server, redirect_params(r), p["state"], {"unmet_authentication_requirements"})


# prompt and max_age --------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-prompt-login")
def test_prompt_login_signs_in_again(server):
    b = new_browser(server)
    _, first = signed_in(server, b)
    time.sleep(1.1)
    trace: list[str] = []
    params, cb = authorize(server, b, trace=trace, prompt="login")
    assert trace[0] == "sign-in", trace
    c = check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])
    assert c["auth_time"] > first["auth_time"]
    assert c["sub"] == first["sub"]


@pytest.mark.check("OIDCC-prompt-login")
def test_prompt_login_consent_still_shows_consent_after_sign_in(server):
    b = new_browser(server)
    signed_in(server, b)
    trace: list[str] = []
    authorize(server, b, trace=trace, prompt="login consent")
    assert trace == ["sign-in", "consent", "redirect"], trace


@pytest.mark.check("OIDCC-prompt-none-not-logged-in")
def test_prompt_none_without_session(server):
    b = new_browser(server)
    state = secrets.token_urlsafe(96)[:128]
    assert len(state) == 128
    p, r = silent(server, b, prompt="none", state=state)
    check_error_redirect(
        server, redirect_params(r), state,
        {"login_required", "interaction_required", "account_selection_required", "consent_required"},
    )
    # OIDC Core 3.1.2.1: none together with another value is an error.
    p, r = silent(server, b, prompt="none login")
    check_error_redirect(server, redirect_params(r), p["state"], {"invalid_request"})


@pytest.mark.check("OIDCC-prompt-none-logged-in")
def test_prompt_none_with_session(server):
    b = new_browser(server)
    _, first = signed_in(server, b)
    p, r = silent(server, b, prompt="none")
    cb = redirect_params(r)  # straight back: no page
    assert cb["state"] == p["state"] and cb["code"]
    c = check_id_token(server, tokens(server, cb)["id_token"], p["nonce"])
    assert c["sub"] == first["sub"] and c["auth_time"] == first["auth_time"]
    # Asking for more than was consented cannot be answered silently.
    p, r = silent(server, b, prompt="none", scope=SCOPE + " w_member_social")
    check_error_redirect(server, redirect_params(r), p["state"], {"consent_required", "interaction_required"})


@pytest.mark.check("OIDCC-max-age-1")
def test_max_age_1_signs_in_again(server):
    b = new_browser(server)
    _, first = signed_in(server, b)
    time.sleep(1.5)
    trace: list[str] = []
    params, cb = authorize(server, b, trace=trace, max_age="1")
    assert trace[0] == "sign-in", trace
    c = check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])
    assert c["auth_time"] > first["auth_time"] and c["sub"] == first["sub"]
    # max_age=0 works like prompt=login and never loops back to the sign-in page.
    trace = []
    authorize(server, b, trace=trace, max_age="0")
    assert trace.count("sign-in") == 1, trace
    p, r = silent(server, b, max_age="-1")
    check_error_redirect(server, redirect_params(r), p["state"], {"invalid_request"})


@pytest.mark.check("OIDCC-max-age-10000")
def test_max_age_10000_keeps_the_session(server):
    b = new_browser(server)
    _, first = signed_in(server, b)
    trace: list[str] = []
    params, cb = authorize(server, b, trace=trace, max_age="10000")
    assert "sign-in" not in trace, trace
    c = check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])
    assert c["auth_time"] == first["auth_time"] and c["sub"] == first["sub"]


# id_token_hint -----------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-id-token-hint")
def test_id_token_hint_with_prompt_none_answers_silently(server):
    b = new_browser(server)
    t, first = signed_in(server, b)
    p, r = silent(server, b, prompt="none", id_token_hint=t["id_token"])
    cb = redirect_params(r)
    assert cb["code"] and cb["state"] == p["state"]
    c = check_id_token(server, tokens(server, cb)["id_token"], p["nonce"])
    assert c["sub"] == first["sub"]


@pytest.mark.check("OIDCC-id-token-hint")
def test_id_token_hint_for_another_member_needs_that_member(server):
    b = new_browser(server)
    t, member = signed_in(server, b)  # test-member's ID token
    other = new_browser(server)
    _, poster = signed_in(server, other, email=OTHER_MEMBER)
    assert poster["sub"] != member["sub"]
    # The poster is signed in, the hint names test-member: no silent answer...
    p, r = silent(server, other, prompt="none", id_token_hint=t["id_token"])
    check_error_redirect(server, redirect_params(r), p["state"], {"login_required", "interaction_required"})
    # ...and with UI the poster is sent to sign in, as test-member this time.
    p, r = silent(server, other, id_token_hint=t["id_token"])
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"
    page = other.get(urljoin(r.url, r.headers["Location"]), timeout=HTTP_TIMEOUT)
    assert "account you used with it before" in page.text
    cb = query(browser_sign_in_and_consent(other, auth_url(server, p), email=MEMBER))
    c = check_id_token(server, tokens(server, cb)["id_token"], p["nonce"])
    assert c["sub"] == member["sub"]


@pytest.mark.check("OIDCC-id-token-hint")
def test_invalid_id_token_hints_are_invalid_request(server, other_app):
    b = new_browser(server)
    t, claims = signed_in(server, b)
    head, body, sig = t["id_token"].split(".")
    # Same header and signature, another sub: the signature no longer matches.
    forged_body = base64.urlsafe_b64encode(
        json.dumps(dict(claims, sub="someone-else")).encode()
    ).decode().rstrip("=")
    # Signed with a key that is not ours, under our kid.
    foreign_key = RSAKey.generate_key(2048)
    kid = json.loads(base64.urlsafe_b64decode(head + "=="))["kid"]
    foreign = jwt.encode({"alg": "RS256", "kid": kid}, dict(claims), foreign_key)
    cases = {
        "garbage": "not-a-jwt",
        "tampered": f"{head}.{forged_body}.{sig}",
        "foreign key": foreign,
        "no signature": f"{head}.{body}.",
        # Our kid under another algorithm: a key is only ever used for its own algorithm.
        "hs256": jwt.encode({"alg": "HS256", "kid": kid}, dict(claims), OctKey.import_key("k" * 32)),
    }
    for name, hint in cases.items():
        p, r = silent(server, b, prompt="none", id_token_hint=hint)
        check_error_redirect(server, redirect_params(r), p["state"], {"invalid_request"})
    # A genuine ID token of another app is not a hint for this one (aud, OIDC Core 3.1.2.1).
    p, r = silent(
        server, b, prompt="none", id_token_hint=t["id_token"],
        client_id=other_app["client_id"], redirect_uri="https://second.example/cb",
    )
    assert r.status_code == 302, r.text[:300]
    cb = query(r.headers["Location"])
    assert r.headers["Location"].startswith("https://second.example/cb?")
    check_error_redirect(server, cb, p["state"], {"invalid_request"})


# claims parameter --------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-claims-essential")
def test_claims_parameter_with_essential_name(server, browser):
    assert discovery(server)["claims_parameter_supported"] is True
    claims = json.dumps({"userinfo": {"name": {"essential": True}}, "id_token": {"email": None}})
    params, cb = authorize(server, browser, claims=claims)
    t = tokens(server, cb)
    c = check_id_token(server, t["id_token"], params["nonce"])
    assert userinfo(server, t["access_token"]).json()["name"] == "Test Member"
    assert c["email"] == MEMBER


@pytest.mark.check("OIDCC-claims-essential")
def test_claims_parameter_never_widens_consent(server, browser):
    # The OIDF module asks with scope=openid only and warns when `name` is missing. scopegate
    # releases claims by consented scope (docs/oauth.md): a claims request is answered with what
    # the member agreed to show the app, never more, and an essential claim that is not
    # available is not an error (OIDC Core 5.5.1).
    claims = json.dumps({"userinfo": {"name": {"essential": True}}})
    params, cb = authorize(server, browser, scope="openid", claims=claims)
    t = tokens(server, cb)
    assert "name" not in check_id_token(server, t["id_token"], params["nonce"])
    u = userinfo(server, t["access_token"]).json()
    assert "name" not in u and u["sub"]


@pytest.mark.check("OIDCC-claims-essential")
@pytest.mark.parametrize(
    "claims",
    [
        "{not json",
        "[]",
        '{"userinfo": ["name"]}',
        '{"userinfo": {"name": {"essential": "yes"}}}',
        '{"userinfo": {"name": null, "name": null}}',
        '{"userinfo": {"name": {"value": ' + "[" * 10 + "]" * 10 + "}}}",
        '{"userinfo": {"name": {"value": "' + "x" * 5000 + '"}}}',
    ],
    ids=["syntax", "array", "target-array", "essential-string", "duplicate", "deep", "long"],
)
def test_malformed_claims_parameter_is_invalid_request(server, browser, claims):
    p, r = silent(server, browser, claims=claims)
    check_error_redirect(server, redirect_params(r), p["state"], {"invalid_request"})


@pytest.mark.check("OIDCC-claims-essential")
def test_claims_sub_value_names_the_only_acceptable_member(server):
    b = new_browser(server)
    _, c = signed_in(server, b)
    wanted = json.dumps({"id_token": {"sub": {"value": c["sub"]}}})
    p, r = silent(server, b, prompt="none", claims=wanted)
    assert redirect_params(r)["code"]
    wrong = json.dumps({"id_token": {"sub": {"value": "not-" + c["sub"]}}})
    p, r = silent(server, b, prompt="none", claims=wrong)
    check_error_redirect(server, redirect_params(r), p["state"], {"login_required"})


# Code reuse --------------------------------------------------------------------------------------


def check_token_error(r: requests.Response, error: str) -> None:
    assert r.status_code == 400, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "")
    body = r.json()
    assert body["error"] == error
    assert ERROR_CHARS.match(body["error"])
    if "error_description" in body:
        assert ERROR_CHARS.match(body["error_description"]), body["error_description"]
        assert not re.search(r"[\r\n\t]", body["error_description"])
    if "error_uri" in body:
        assert urlsplit(body["error_uri"]).scheme


@pytest.mark.check("OIDCC-codereuse")
def test_code_reuse_is_invalid_grant(server, browser):
    _, cb = authorize(server, browser)
    tokens(server, cb)
    check_token_error(redeem(server, cb["code"]), "invalid_grant")


@pytest.mark.check("OIDCC-codereuse-30seconds")
def test_code_reuse_after_30_seconds_revokes_tokens(server, browser):
    _, cb = authorize(server, browser)
    t = tokens(server, cb)
    assert userinfo(server, t["access_token"]).status_code == 200
    time.sleep(30)
    check_token_error(redeem(server, cb["code"]), "invalid_grant")
    r = userinfo(server, t["access_token"])
    assert 400 <= r.status_code < 500


# Redirect URI, POST, client authentication, PKCE ------------------------------------------------


@pytest.mark.check("OIDCC-ensure-registered-redirect-uri")
def test_unregistered_redirect_uri_gets_an_error_page(server, browser):
    bad = f"https://attacker.example/{secrets.token_hex(8)}"
    p, r = silent(server, browser, redirect_uri=bad)
    assert 400 <= r.status_code < 500
    assert "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html")


@pytest.mark.check("OIDCC-ensure-post-request-succeeds")
def test_authorization_by_post(server):
    b = new_browser(server)
    params = auth_params()
    r = b.post(server.authorization_endpoint, data=params, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert r.status_code == 302 and urlsplit(r.headers["Location"]).path == "/login"
    cb = query(browser_sign_in_and_consent(b, urljoin(r.url, r.headers["Location"])))
    assert cb["state"] == params["state"]
    t = tokens(server, cb)
    first = check_id_token(server, t["id_token"], params["nonce"])
    # Signed in, consented: a POST is answered straight away, like a GET.
    params = auth_params(prompt="none", id_token_hint=t["id_token"])
    r = b.post(server.authorization_endpoint, data=params, allow_redirects=False, timeout=HTTP_TIMEOUT)
    cb = redirect_params(r)
    assert cb["state"] == params["state"]
    assert check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])["sub"] == first["sub"]


@pytest.mark.check("OIDCC-server-client-secret-post")
def test_happy_path_with_client_secret_post(server, browser):
    assert "client_secret_post" in discovery(server)["token_endpoint_auth_methods_supported"]
    params, cb = authorize(server, browser)
    t = tokens(server, cb, auth="post")
    c = check_id_token(server, t["id_token"], params["nonce"])
    assert userinfo(server, t["access_token"]).json()["sub"] == c["sub"]


@pytest.mark.check("OIDCC-ensure-request-with-valid-pkce-succeeds")
def test_valid_pkce_succeeds(server, browser):
    import hashlib

    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    params, cb = authorize(server, browser, code_challenge=challenge, code_challenge_method="S256")
    t = tokens(server, cb, code_verifier=verifier)
    check_id_token(server, t["id_token"], params["nonce"])


# Request objects (not supported: rejected, never ignored) ----------------------------------------


def unsigned_request_object(**claims) -> str:
    head = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"{head}.{body}."


@pytest.mark.check("OIDCC-request-uri-unsigned-supported-correctly-or-rejected-as-unsupported")
def test_request_uri_is_rejected_as_unsupported(server, browser):
    assert discovery(server)["request_uri_parameter_supported"] is False
    p, r = silent(server, browser, request_uri="https://client.example/request.jwt")
    check_error_redirect(server, redirect_params(r), p["state"], {"request_uri_not_supported"})


@pytest.mark.check("OIDCC-unsigned-request-object-supported-correctly-or-rejected-as-unsupported")
def test_request_object_is_rejected_as_unsupported(server, browser):
    assert discovery(server)["request_parameter_supported"] is False
    ro = unsigned_request_object(client_id=DEMO_CLIENT_ID, response_type="code", scope="openid", nonce="n")
    p, r = silent(server, browser, request=ro)
    check_error_redirect(server, redirect_params(r), p["state"], {"request_not_supported"})


@pytest.mark.check("OIDCC-ensure-request-object-with-redirect-uri")
def test_request_object_redirect_uri_is_never_used(server, browser):
    # The OIDF module is skipped when request objects are unsupported; the negative: the request
    # is refused, and the error goes to the registered redirect_uri of the query, never to the
    # one inside the object.
    ro = unsigned_request_object(
        client_id=DEMO_CLIENT_ID, response_type="code", scope="openid",
        redirect_uri="https://attacker.example/cb",
    )
    p, r = silent(server, browser, request=ro)
    assert r.headers["Location"].startswith(DEMO_REDIRECT + "?")
    check_error_redirect(server, redirect_params(r), p["state"], {"request_not_supported"})


# Response type -----------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-response-type-missing")
def test_missing_response_type(server, browser):
    p, r = silent(server, browser, response_type=None)
    cb = redirect_params(r)
    assert cb["error"] in ("invalid_request", "unsupported_response_type")
    assert "code" not in cb and cb["state"] == p["state"] and cb["iss"] == server.issuer
    assert ERROR_CHARS.match(cb["error"])


# Refresh token -----------------------------------------------------------------------------------


@pytest.mark.check("OIDCC-refresh-token")
def test_refresh_token(server, browser, other_app):
    params, cb = authorize(server, browser, prompt="consent")
    t = tokens(server, cb)
    first = check_id_token(server, t["id_token"], params["nonce"])
    rt = t["refresh_token"]
    assert VSCHAR.match(rt)
    r = requests.post(
        server.token_endpoint, data={"grant_type": "refresh_token", "refresh_token": rt},
        auth=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), verify=server.cert, timeout=HTTP_TIMEOUT,
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert "no-store" in r.headers.get("Cache-Control", "")
    n = r.json()
    assert n["token_type"].lower() == "bearer" and VSCHAR.match(n["access_token"])
    assert len(n["access_token"]) >= 22  # >= 128 bits of base64url
    if "id_token" in n:
        # CompareIdTokenClaims: same iss, sub, aud, auth_time as the first one.
        c = check_id_token(server, n["id_token"], ANY_NONCE)
        for k in ("iss", "sub", "aud", "azp", "auth_time"):
            assert c.get(k) == first.get(k), k
        assert c.get("nonce") in (None, first["nonce"])
    # Another client's credentials with this refresh token: invalid_grant.
    r = requests.post(
        server.token_endpoint, data={"grant_type": "refresh_token", "refresh_token": rt},
        auth=(other_app["client_id"], other_app["client_secret"]), verify=server.cert, timeout=HTTP_TIMEOUT,
    )
    check_token_error(r, "invalid_grant")


# The sign-in page carries the whole request through, by its pending id ---------------------------


@pytest.mark.check("OIDCC-login-hint")
def test_sign_in_page_carries_the_request(server):
    b = new_browser(server)
    params = auth_params(login_hint=MEMBER, ui_locales="en", display="popup", claims_locales="en")
    r = b.get(auth_url(server, params), timeout=HTTP_TIMEOUT)
    forms = [f for f in parse_forms(r.text) if f["action"] == "/login"]
    assert forms and forms[0]["hidden"]["csrf"]
    # The validated request waits on the server: the page carries its id, not its parameters
    # (nothing a browser sends back is read as the request again).
    nxt = urlsplit(forms[0]["hidden"]["next"])
    assert nxt.path == "/oauth/v2/authorization/continue", nxt
    assert list(query("https://x" + forms[0]["hidden"]["next"])) == ["request"]
    assert f'value="{MEMBER}"' in r.text
    # ... and the whole request comes out the other side: state and nonce intact.
    cb = query(browser_sign_in_and_consent(b, auth_url(server, params)))
    assert cb["state"] == params["state"]
    check_id_token(server, tokens(server, cb)["id_token"], params["nonce"])

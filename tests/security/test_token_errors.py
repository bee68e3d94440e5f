"""Token, userinfo, revocation and introspection error rules (catalogue section 3.3: ERR, UI, REV,
INT), black-box against a real scopegate over HTTPS.

This module also holds the helpers the other check modules share (test_abuse.py imports them):
raw HTTP calls to the OAuth endpoints, a member's token through the real browser flow, and
sessions bound to another loopback source address.

Why source addresses matter: scopegate throttles client-authentication failures per address and
per (client, address) (docs/oauth.md), so every request here that is *meant* to fail
authentication goes out from a fresh loopback address (127.0.x.y); otherwise a dozen negative
checks from 127.0.0.1 would get the demo app throttled for the rest of the module.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import pytest
import requests

from scopegate import (  # tests/lib, put on sys.path by conftest.py
    SourceAddressAdapter,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    DEVELOPER,
    MEMBER,
    browser_sign_in_and_consent,
)

SCOPE = "openid profile w_member_social"
TIMEOUT = 30
DEMO_CREDENTIALS = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
# RFC 6749 5.2: the charset of `error` (no '"' nor '\').
ERROR_CHARSET = re.compile(r"[\x20-\x21\x23-\x5B\x5D-\x7E]+")


# Shared helpers ---------------------------------------------------------------------------------


_sessions: dict[tuple[str, str | None], requests.Session] = {}


def session_for(server, source: str | None = None) -> requests.Session:
    """A session verifying the server's certificate, from `source` (default 127.0.0.1); kept
    per (server, source) so connections are reused."""
    key = (server.base, source)
    s = _sessions.get(key)
    if s is None:
        s = requests.Session()
        s.trust_env = False  # REQUESTS_CA_BUNDLE must not override verify=
        s.verify = server.cert
        if source:
            s.mount("https://", SourceAddressAdapter(source))
        _sessions[key] = s
    return s


# 127.0.1.0 - 127.0.200.255: one fresh address per call; the throttling modules use 127.0.0.x
# and 127.1.x.y, so nothing here collides with them.
_fresh = (f"127.0.{a}.{b}" for a, b in itertools.product(range(1, 201), range(1, 255)))


def fresh_source() -> str:
    """A loopback address no earlier request of this run used."""
    return next(_fresh)


def post(server, path_or_url: str, data=None, *, source=None, **kwargs) -> requests.Response:
    url = path_or_url if path_or_url.startswith("https://") else server.base + path_or_url
    return session_for(server, source).post(url, data=data, timeout=TIMEOUT, allow_redirects=False, **kwargs)


def token_request(server, data, **kwargs) -> requests.Response:
    return post(server, server.token_endpoint, data, **kwargs)


def introspect(server, token, credentials=DEMO_CREDENTIALS, **kwargs) -> requests.Response:
    return post(server, server.introspection_endpoint, dict(credentials, token=token), **kwargs)


def revoke(server, token, credentials=DEMO_CREDENTIALS, **extra) -> requests.Response:
    return post(server, server.revocation_endpoint, dict(credentials, token=token, **extra))


def userinfo(server, token=None, *, header=None, source=None) -> requests.Response:
    headers = {}
    if header is not None:
        headers["Authorization"] = header
    elif token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return session_for(server, source).get(server.base + "/v2/userinfo", headers=headers, timeout=TIMEOUT)


def basic(client_id: str, secret: str) -> str:
    """An Authorization: Basic value the way RFC 6749 2.3.1 says: each half form-urlencoded
    first, then base64."""
    raw = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorize_code(server, *, email=MEMBER, scope=SCOPE, client_id=DEMO_CLIENT_ID,
                   redirect_uri=DEMO_REDIRECT) -> tuple[str, str]:
    """The member signs in and consents in a fresh browser; returns (code, PKCE verifier)."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    url = server.authorization_endpoint + "?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "scope": scope, "state": state, "code_challenge": challenge, "code_challenge_method": "S256",
    })
    with requests.Session() as browser:
        browser.trust_env = False
        browser.verify = server.cert
        callback = browser_sign_in_and_consent(browser, url, email=email)
    params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
    assert params.get("state") == state, callback
    assert "code" in params, callback
    return params["code"], verifier


def redeem(server, code, verifier, *, credentials=DEMO_CREDENTIALS, redirect_uri=DEMO_REDIRECT, **kw):
    return token_request(server, dict(credentials, grant_type="authorization_code", code=code,
                                      redirect_uri=redirect_uri, code_verifier=verifier), **kw)


def member_tokens(server, *, email=MEMBER, scope=SCOPE) -> dict:
    """A fresh 3-legged token response (access, refresh and ID token) for the demo app."""
    code, verifier = authorize_code(server, email=email, scope=scope)
    resp = redeem(server, code, verifier)
    assert resp.status_code == 200, resp.text
    return resp.json()


def app_token(server) -> str:
    resp = token_request(server, dict(DEMO_CREDENTIALS, grant_type="client_credentials"))
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def random_token() -> str:
    """A value shaped like scopegate's tokens ("AQ" + base64url) that was never issued."""
    return "AQ" + secrets.token_urlsafe(48)


def oauth_error(resp: requests.Response, status: int, error: str) -> dict:
    """Asserts an RFC 6749 5.2 error response and returns its body."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text[:500]}"
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == error, body
    return body


def jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@pytest.fixture(scope="module")
def other_app(server):
    """A second confidential app of another owner, with the demo app's redirect URL."""
    made = server.cli("app", "create", "--name", "Other Tenant", "--owner", DEVELOPER,
                      "--redirect-uri", DEMO_REDIRECT)
    return {"client_id": made["client_id"], "client_secret": made["client_secret"]}


# ERR: the token endpoint's errors (RFC 6749 5.2) ------------------------------------------------------


@pytest.mark.check("ERR-01")
def test_missing_or_repeated_parameters_and_a_wrong_content_type_are_invalid_request(server):
    oauth_error(token_request(server, dict(DEMO_CREDENTIALS)), 400, "invalid_request")
    oauth_error(token_request(server, dict(DEMO_CREDENTIALS, grant_type="authorization_code",
                                           redirect_uri=DEMO_REDIRECT)), 400, "invalid_request")
    repeated = urlencode(dict(DEMO_CREDENTIALS)) + "&grant_type=client_credentials&grant_type=client_credentials"
    oauth_error(token_request(server, repeated, headers={"Content-Type": "application/x-www-form-urlencoded"}),
                400, "invalid_request")
    as_json = json.dumps(dict(DEMO_CREDENTIALS, grant_type="client_credentials"))
    oauth_error(token_request(server, as_json, headers={"Content-Type": "application/json"}),
                400, "invalid_request")


@pytest.mark.check("ERR-02")
def test_a_wrong_secret_via_basic_gets_401_with_a_basic_challenge(server):
    resp = token_request(server, {"grant_type": "client_credentials"}, source=fresh_source(),
                         headers={"Authorization": basic(DEMO_CLIENT_ID, "wrong-secret")})
    oauth_error(resp, 401, "invalid_client")
    challenge = resp.headers.get("WWW-Authenticate", "")
    assert re.match(r"(?i)basic\s+realm=", challenge), challenge


@pytest.mark.check("ERR-03")
def test_wrong_secret_unknown_client_and_no_secret_all_get_401_invalid_client_alike(server):
    wrong = token_request(server, {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID,
                                   "client_secret": "wrong-secret"}, source=fresh_source())
    unknown = token_request(server, {"grant_type": "client_credentials", "client_id": "nosuchclient01",
                                     "client_secret": "wrong-secret"}, source=fresh_source())
    b1 = oauth_error(wrong, 401, "invalid_client")
    b2 = oauth_error(unknown, 401, "invalid_client")
    # No enumeration: the same answer, word for word, whether the client exists or not.
    assert b1 == b2
    assert wrong.headers.get("WWW-Authenticate") == unknown.headers.get("WWW-Authenticate")
    # RFC 6749 5.2: invalid_client covers "no client authentication included"; POLICY: 401.
    no_secret = token_request(server, {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID},
                              source=fresh_source())
    oauth_error(no_secret, 401, "invalid_client")


@pytest.mark.check("ERR-04")
def test_basic_and_a_body_secret_together_are_invalid_request(server):
    resp = token_request(server, {"grant_type": "client_credentials", "client_secret": DEMO_CLIENT_SECRET},
                         headers={"Authorization": basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)})
    oauth_error(resp, 400, "invalid_request")


@pytest.mark.check("ERR-05")
def test_basic_credentials_are_form_urlencoded_before_base64(server):
    # Every character percent-encoded (valid form-urlencoding of the same values): accepted.
    def encode_all(s):
        return "".join(f"%{b:02X}" for b in s.encode())
    raw = f"{encode_all(DEMO_CLIENT_ID)}:{encode_all(DEMO_CLIENT_SECRET)}"
    header = "Basic " + base64.b64encode(raw.encode()).decode()
    resp = token_request(server, {"grant_type": "client_credentials"}, headers={"Authorization": header})
    assert resp.status_code == 200, resp.text
    # A secret with ':', '%', '+' and non-ASCII, encoded per Appendix B: a clean 401, not a 400/500.
    for secret in ["se:cret", "50%+off", "pässwörd-ü", "a b+c"]:
        resp = token_request(server, {"grant_type": "client_credentials"}, source=fresh_source(),
                             headers={"Authorization": basic(DEMO_CLIENT_ID, secret)})
        oauth_error(resp, 401, "invalid_client")


@pytest.mark.check("ERR-06")
def test_used_foreign_misdirected_or_unverified_codes_and_revoked_refresh_tokens_are_invalid_grant(
        server, other_app):
    # Used code.
    code, verifier = authorize_code(server)
    assert redeem(server, code, verifier).status_code == 200
    oauth_error(redeem(server, code, verifier), 400, "invalid_grant")
    # Another client's code.
    code, verifier = authorize_code(server)
    oauth_error(redeem(server, code, verifier, credentials=other_app), 400, "invalid_grant")
    # Wrong redirect_uri.
    code, verifier = authorize_code(server)
    oauth_error(redeem(server, code, verifier, redirect_uri=DEMO_REDIRECT + "x"), 400, "invalid_grant")
    # Wrong PKCE verifier.
    code, _ = authorize_code(server)
    oauth_error(redeem(server, code, pkce_pair()[0]), 400, "invalid_grant")
    # Unknown refresh token, then a revoked one. (Expired codes and tokens need a clock the
    # black box cannot move; the Rust suite's OffsetClock covers them.)
    oauth_error(token_request(server, dict(DEMO_CREDENTIALS, grant_type="refresh_token",
                                           refresh_token=random_token())), 400, "invalid_grant")
    rt = member_tokens(server)["refresh_token"]
    assert revoke(server, rt).status_code == 200
    oauth_error(token_request(server, dict(DEMO_CREDENTIALS, grant_type="refresh_token", refresh_token=rt)),
                400, "invalid_grant")


@pytest.mark.check("ERR-07")
def test_a_client_not_allowed_a_grant_type_gets_unauthorized_client(server, other_app):
    # The other app lacks the client-credentials capability.
    resp = token_request(server, dict(other_app, grant_type="client_credentials"))
    oauth_error(resp, 400, "unauthorized_client")


@pytest.mark.check("ERR-08")
@pytest.mark.parametrize("grant_type", ["password", "foo", "implicit"])
def test_unknown_grant_types_are_unsupported_grant_type(server, grant_type):
    resp = token_request(server, dict(DEMO_CREDENTIALS, grant_type=grant_type, username=MEMBER, password="x"))
    oauth_error(resp, 400, "unsupported_grant_type")


@pytest.mark.check("ERR-09")
def test_unknown_or_widened_scope_is_invalid_scope(server):
    resp = token_request(server, dict(DEMO_CREDENTIALS, grant_type="client_credentials", scope="no_such_scope"))
    oauth_error(resp, 400, "invalid_scope")
    rt = member_tokens(server)["refresh_token"]
    resp = token_request(server, dict(DEMO_CREDENTIALS, grant_type="refresh_token", refresh_token=rt,
                                      scope=SCOPE + " email"))
    oauth_error(resp, 400, "invalid_scope")


@pytest.mark.check("ERR-10")
def test_every_token_error_is_clean_json_without_traces_or_echoed_secrets(server):
    canary = "CANARY-s3cr3t-" + secrets.token_hex(8)
    cases = [
        ({"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": canary}, {}),
        ({"grant_type": "client_credentials", "client_id": "unknown-" + canary, "client_secret": canary}, {}),
        ({"grant_type": "client_credentials"}, {"Authorization": basic(DEMO_CLIENT_ID, canary)}),
        ({"grant_type": "client_credentials"}, {"Authorization": "Basic " + canary}),
        ({"grant_type": "refresh_token", "refresh_token": canary, **DEMO_CREDENTIALS}, {}),
        ({"grant_type": "authorization_code", "code": canary, "redirect_uri": DEMO_REDIRECT,
          "code_verifier": canary * 4, **DEMO_CREDENTIALS}, {}),
        ({"grant_type": "fé\u0000o", **DEMO_CREDENTIALS}, {}),
        ({"grant_type": "password", "password": canary, **DEMO_CREDENTIALS}, {}),
        ({**DEMO_CREDENTIALS}, {}),
    ]
    for data, headers in cases:
        resp = token_request(server, data, headers=headers, source=fresh_source())
        assert 400 <= resp.status_code < 500, (data, resp.status_code, resp.text)
        assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
        body = resp.json()
        assert ERROR_CHARSET.fullmatch(body.get("error", "")), body
        assert canary not in resp.text, f"secret echoed: {resp.text}"
        for trace in ("panicked", ".rs:", "stack backtrace", "Traceback"):
            assert trace not in resp.text, resp.text


@pytest.mark.check("ERR-11")
def test_get_on_the_token_endpoint_is_refused(server):
    resp = session_for(server).get(server.token_endpoint + "?" + urlencode(
        dict(DEMO_CREDENTIALS, grant_type="client_credentials")), timeout=TIMEOUT)
    assert resp.status_code in (400, 405), resp.status_code
    assert "access_token" not in resp.text
    if resp.status_code == 400:
        assert resp.json()["error"] == "invalid_request"


@pytest.mark.check("ERR-12")
def test_token_responses_are_not_cached_and_well_typed(server):
    for resp in (
        token_request(server, dict(DEMO_CREDENTIALS, grant_type="client_credentials")),
        redeem(server, *authorize_code(server)),
    ):
        assert resp.status_code == 200, resp.text
        assert "no-store" in resp.headers.get("Cache-Control", "")
        assert resp.headers.get("Pragma") == "no-cache"
        body = resp.json()
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int) and not isinstance(body["expires_in"], bool)


# UI: userinfo (RFC 6750 3, OIDC Core 5.3.3) ----------------------------------------------------------


def bearer_challenge(resp) -> str:
    value = resp.headers.get("WWW-Authenticate", "")
    assert value.lower().startswith("bearer"), resp.headers
    return value


@pytest.mark.check("UI-01")
def test_userinfo_without_a_token_is_401_bearer_without_an_error_code(server):
    resp = userinfo(server)
    assert resp.status_code == 401
    assert "error=" not in bearer_challenge(resp)


@pytest.mark.check("UI-02")
def test_userinfo_with_an_invalid_or_revoked_token_is_401_invalid_token(server):
    at = member_tokens(server)["access_token"]
    assert revoke(server, at).status_code == 200
    for token in (random_token(), "not-a-token", at):
        resp = userinfo(server, token)
        assert resp.status_code == 401, (token, resp.text)
        assert 'error="invalid_token"' in bearer_challenge(resp)


@pytest.mark.check("UI-03")
def test_userinfo_with_a_token_lacking_openid_is_403_insufficient_scope(server):
    # A member token without openid (the developer member, so the demo member's grant is untouched).
    at = member_tokens(server, email=DEVELOPER, scope="w_member_social")["access_token"]
    resp = userinfo(server, at)
    assert resp.status_code == 403, resp.text
    # RFC 6750 3.1: the error code is in the Bearer challenge.
    assert 'error="insufficient_scope"' in resp.headers.get("WWW-Authenticate", ""), resp.headers


@pytest.mark.check("UI-04")
@pytest.mark.parametrize("header", ["Bearer AQaaaa AQbbbb", "Bearer", "Bearer "])
def test_userinfo_with_a_malformed_bearer_header_is_400_invalid_request(server, header):
    resp = userinfo(server, header=header)
    assert resp.status_code == 400, resp.text
    assert 'error="invalid_request"' in resp.headers.get("WWW-Authenticate", ""), resp.headers


@pytest.mark.check("UI-05")
@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_the_bearer_scheme_is_case_insensitive(server, scheme):
    at = member_tokens(server)["access_token"]
    resp = userinfo(server, header=f"{scheme} {at}")
    assert resp.status_code == 200, resp.text


@pytest.mark.check("UI-06")
def test_userinfo_returns_the_id_tokens_sub_and_the_claims_of_the_scope(server):
    tokens = member_tokens(server)
    resp = userinfo(server, tokens["access_token"])
    assert resp.status_code == 200, resp.text
    assert resp.headers["Content-Type"].startswith("application/json")
    claims = resp.json()
    assert claims["sub"] == jwt_claims(tokens["id_token"])["sub"]
    assert {"name", "given_name", "family_name"} <= set(claims)  # profile
    assert "email" not in claims and "email_verified" not in claims  # email was not asked for


# REV: revocation (RFC 7009) --------------------------------------------------------------------------


def is_active(server, token, credentials=DEMO_CREDENTIALS) -> bool:
    resp = introspect(server, token, credentials)
    assert resp.status_code == 200, resp.text
    return resp.json()["active"]


@pytest.mark.check("REV-01")
def test_revoking_a_refresh_token_revokes_its_grants_access_tokens(server):
    tokens = member_tokens(server)
    rt, at = tokens["refresh_token"], tokens["access_token"]
    refreshed = token_request(server, dict(DEMO_CREDENTIALS, grant_type="refresh_token", refresh_token=rt))
    assert refreshed.status_code == 200, refreshed.text
    at2 = refreshed.json()["access_token"]
    resp = revoke(server, rt)
    assert resp.status_code == 200, resp.text
    oauth_error(token_request(server, dict(DEMO_CREDENTIALS, grant_type="refresh_token", refresh_token=rt)),
                400, "invalid_grant")
    assert not is_active(server, at) and not is_active(server, at2)


@pytest.mark.check("REV-02")
def test_revoking_an_access_token_deactivates_it(server):
    at = member_tokens(server)["access_token"]
    assert userinfo(server, at).status_code == 200
    assert revoke(server, at).status_code == 200
    assert not is_active(server, at)
    assert userinfo(server, at).status_code == 401


@pytest.mark.check("REV-03")
def test_revoking_garbage_unknown_or_revoked_tokens_answers_200(server):
    at = app_token(server)
    assert revoke(server, at).status_code == 200
    for token in ("garbage", random_token(), at, "x" * 2000):
        resp = revoke(server, token)
        assert resp.status_code == 200, (token[:20], resp.text)


@pytest.mark.check("REV-04")
def test_a_wrong_token_type_hint_still_revokes(server):
    tokens = member_tokens(server)
    at = tokens["access_token"]
    assert revoke(server, at, token_type_hint="refresh_token").status_code == 200
    assert not is_active(server, at)
    rt = member_tokens(server)["refresh_token"]
    assert revoke(server, rt, token_type_hint="access_token").status_code == 200
    assert not is_active(server, rt)


@pytest.mark.check("REV-05")
def test_revocation_with_bad_client_credentials_is_401_invalid_client(server):
    at = app_token(server)
    resp = post(server, server.revocation_endpoint,
                {"client_id": DEMO_CLIENT_ID, "client_secret": "wrong", "token": at}, source=fresh_source())
    oauth_error(resp, 401, "invalid_client")
    resp = post(server, server.revocation_endpoint, {"token": at}, source=fresh_source(),
                headers={"Authorization": basic(DEMO_CLIENT_ID, "wrong")})
    oauth_error(resp, 401, "invalid_client")
    assert is_active(server, at)


@pytest.mark.check("REV-06")
def test_another_confidential_client_cannot_revoke_the_token(server, other_app):
    """Another client's live token is answered exactly like an unknown one (RFC 7009 2.2: 200
    for an invalid token), so the endpoint does not tell a scanner which guesses are live."""
    at = app_token(server)
    resp = revoke(server, at, credentials=other_app)
    unknown = revoke(server, "AQ" + "x" * 43, credentials=other_app)
    assert (resp.status_code, resp.text) == (unknown.status_code, unknown.text) == (200, "{}"), resp.text
    assert is_active(server, at)


@pytest.mark.check("REV-07")
def test_revocation_without_a_token_is_invalid_request(server):
    oauth_error(post(server, server.revocation_endpoint, dict(DEMO_CREDENTIALS)), 400, "invalid_request")


# INT: introspection (RFC 7662) -----------------------------------------------------------------------


@pytest.mark.check("INT-01")
def test_introspection_without_client_authentication_is_401(server):
    at = app_token(server)
    resp = post(server, server.introspection_endpoint, {"token": at}, source=fresh_source())
    assert resp.status_code == 401, resp.text
    resp = post(server, server.introspection_endpoint, {"token": at, "client_id": DEMO_CLIENT_ID},
                source=fresh_source())
    assert resp.status_code == 401, resp.text


@pytest.mark.check("INT-02")
def test_an_active_access_token_is_described_and_not_cached(server):
    at = member_tokens(server)["access_token"]
    resp = introspect(server, at)
    assert resp.status_code == 200
    assert "no-store" in resp.headers.get("Cache-Control", "")
    info = resp.json()
    assert info["active"] is True
    missing = {"scope", "client_id", "token_type", "exp", "iat", "sub", "aud", "iss"} - set(info)
    assert not missing, f"missing {missing} in {info}"
    assert info["client_id"] == DEMO_CLIENT_ID and info["iss"] == server.issuer


@pytest.mark.check("INT-03")
def test_inactive_tokens_say_exactly_active_false(server):
    revoked = app_token(server)
    assert revoke(server, revoked).status_code == 200
    code, verifier = authorize_code(server)
    assert redeem(server, code, verifier).status_code == 200  # a consumed code
    # The other tenant's own token is INT-05; here: a consumed code and junk say nothing more.
    for token in [code, "garbage", random_token()]:
        resp = introspect(server, token)
        assert resp.status_code == 200
        assert resp.json() == {"active": False}, (token[:12], resp.json())
    # POLICY (docs/security.md): the app's own revoked or expired token also says why, in
    # LinkedIn's `status` field, as the 2-legged issue requires. It tells the owning app nothing
    # it could not know, and no RFC 7662 metadata (exp, iat, sub, token_type) is given.
    info = introspect(server, revoked).json()
    assert info["active"] is False and info["status"] == "revoked", info
    assert info["client_id"] == DEMO_CLIENT_ID
    assert not {"exp", "iat", "sub", "token_type", "iss", "aud"} & set(info), info


@pytest.mark.check("INT-04")
def test_a_refresh_token_is_introspectable_by_its_client_only(server, other_app):
    rt = member_tokens(server)["refresh_token"]
    info = introspect(server, rt).json()
    assert info["active"] is True and info["client_id"] == DEMO_CLIENT_ID and "exp" in info
    assert introspect(server, rt, other_app).json() == {"active": False}


@pytest.mark.check("INT-05")
def test_another_client_asking_about_a_foreign_token_gets_active_false(server, other_app):
    for token in (member_tokens(server)["access_token"], app_token(server)):
        resp = introspect(server, token, other_app)
        assert resp.status_code == 200
        assert resp.json() == {"active": False}


@pytest.mark.check("INT-06")
def test_token_scanning_at_introspection_is_throttled(server):
    # RFC 7662 4: a caller polling random token values must be slowed down. The documented
    # thresholds are tens of failures; 300 guesses from one address is far past any of them.
    source = "127.0.201.1"
    statuses = []
    for _ in range(300):
        resp = introspect(server, random_token(), source=source)
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            break
        assert resp.json() == {"active": False}
    assert 429 in statuses, f"no 429 after {len(statuses)} random tokens from one caller"
    assert resp.headers.get("Retry-After"), resp.headers

"""Shared steps of the redirect, PKCE/code and refresh-token checks (test_redirect.py,
test_pkce_code.py, test_refresh.py).

Token-endpoint calls are raw ``requests`` posts rather than authlib: the checks must control every
parameter (omit ``redirect_uri``, send a 42-character verifier, no client authentication at all)
and look at the exact status, headers and body. The member's browser part is the harness's
``browser_sign_in_and_consent`` (tests/lib/scopegate.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import secrets
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import requests

from scopegate import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    DEVELOPER,
    HTTP_TIMEOUT,
    Server,
    browser_sign_in_and_consent,
)

# The demo app's approved products grant these; one scope set per app keeps the member's grant
# stable (consenting to another set invalidates the grant's earlier access tokens, docs/oauth.md).
SCOPE = "openid profile"
# A native (public) client's loopback redirect on the demo app: registered as
# http://127.0.0.1:8080/callback, any port on the native PKCE endpoint (RFC 8252 7.3).
NATIVE_REDIRECT = "http://127.0.0.1:5555/callback"


def session_for(server: Server) -> requests.Session:
    """A requests.Session trusting only the server's own certificate (see tests/lib/scopegate.py
    for why the environment is ignored)."""
    s = requests.Session()
    s.trust_env = False
    s.verify = server.cert
    return s


# PKCE -----------------------------------------------------------------------------------------


def new_verifier() -> str:
    """A 64-character RFC 7636 code verifier (48 random bytes, base64url)."""
    return secrets.token_urlsafe(48)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# The authorization endpoint ----------------------------------------------------------------------


def query_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


def authorization_url(
    server: Server,
    *,
    client_id: str | None = DEMO_CLIENT_ID,
    redirect_uri: str | None = DEMO_REDIRECT,
    scope: str | None = SCOPE,
    state: str | None = "st-" + "x" * 16,
    verifier: str | None = None,
    challenge: str | None = None,
    method: str | None = "S256",
    native: bool = False,
    **extra: str,
) -> str:
    """An authorization request URL; a parameter given as None is left out. With a ``verifier``
    the challenge is its S256 hash unless ``challenge`` overrides it; with neither, no PKCE."""
    if challenge is None and verifier is not None:
        challenge = s256(verifier)
    if challenge is None:
        method = None if method == "S256" else method
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": method,
        **extra,
    }
    endpoint = server.native_authorization_endpoint if native else server.authorization_endpoint
    return endpoint + "?" + urlencode({k: v for k, v in params.items() if v is not None})


@dataclass
class Code:
    """An authorization code and what its request was made with."""

    code: str
    state: str
    verifier: str | None
    redirect_uri: str
    callback: str


def obtain_code(
    server: Server,
    browser: requests.Session,
    *,
    client_id: str = DEMO_CLIENT_ID,
    redirect_uri: str = DEMO_REDIRECT,
    scope: str = SCOPE,
    pkce: bool = True,
    native: bool = False,
    verifier: str | None = None,
) -> Code:
    """Runs the member's part of the code flow (sign-in, consent) and returns the code."""
    if pkce and verifier is None:
        verifier = new_verifier()
    state = secrets.token_urlsafe(12)
    url = authorization_url(
        server,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        state=state,
        verifier=verifier if pkce else None,
        native=native,
    )
    callback = browser_sign_in_and_consent(browser, url)
    assert callback.startswith(redirect_uri + "?"), callback
    p = query_params(callback)
    assert "code" in p and p["state"] == state, p
    return Code(p["code"], state, verifier if pkce else None, redirect_uri, callback)


def sign_in_with_live_token(
    server: Server,
    browser: requests.Session,
    *,
    client_id: str = DEMO_CLIENT_ID,
    client_secret: str | None = DEMO_CLIENT_SECRET,
    redirect_uri: str = DEMO_REDIRECT,
    native: bool = False,
) -> dict:
    """Signs the member in, consents and redeems the code: with a live token of the grant the
    consent screen is skipped (LinkedIn's rule), so from then on a request the AS accepts is
    answered with a code at once. Returns the token response."""
    code = obtain_code(server, browser, client_id=client_id, redirect_uri=redirect_uri,
                       native=native)
    return assert_tokens(redeem(server, code, client_id=client_id, client_secret=client_secret))


def get_authorization(browser: requests.Session, url: str) -> requests.Response:
    """One GET of an authorization URL, redirects not followed."""
    return browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)


def assert_error_page(resp: requests.Response, status: int) -> None:
    """RFC 6749 4.1.2.1: an error shown on the AS itself: exact status, an HTML page, no Location
    (neither to the bad URL nor to the registered one), and no code anywhere in the answer."""
    assert resp.status_code == status, (resp.status_code, resp.headers, resp.text[:500])
    assert "Location" not in resp.headers, resp.headers
    assert resp.headers.get("Content-Type", "").startswith("text/html"), resp.headers
    assert "code=" not in resp.text


def assert_error_redirect(resp: requests.Response, redirect_uri: str, error: str, state: str,
                          issuer: str) -> dict[str, str]:
    """An error sent back to the verified redirect URL, with state and iss (RFC 9207), no code."""
    assert resp.status_code == 302, (resp.status_code, resp.text[:500])
    location = resp.headers["Location"]
    assert location.startswith(redirect_uri + "?"), location
    p = query_params(location)
    assert p.get("error") == error, p
    assert p.get("state") == state and p.get("iss") == issuer, p
    assert "code" not in p, p
    return p


# The token endpoint ----------------------------------------------------------------------------------


def token_request(server: Server, data: dict, *, basic: tuple[str, str] | None = None) -> requests.Response:
    """POST /oauth/v2/accessToken with the form ``data`` (None values left out)."""
    with session_for(server) as s:
        return s.post(
            server.token_endpoint,
            data={k: v for k, v in data.items() if v is not None},
            auth=basic,
            timeout=HTTP_TIMEOUT,
        )


_SAME = object()  # "use the value the authorization request was made with"


def redeem(
    server: Server,
    code: Code,
    *,
    client_id: str | None = DEMO_CLIENT_ID,
    client_secret: str | None = DEMO_CLIENT_SECRET,
    redirect_uri=_SAME,
    verifier=_SAME,
) -> requests.Response:
    """Redeems ``code`` (client_secret_post); pass None to leave a parameter out."""
    return token_request(
        server,
        {
            "grant_type": "authorization_code",
            "code": code.code,
            "redirect_uri": code.redirect_uri if redirect_uri is _SAME else redirect_uri,
            "code_verifier": code.verifier if verifier is _SAME else verifier,
            "client_id": client_id,
            "client_secret": client_secret,
        },
    )


def refresh(
    server: Server,
    refresh_token: str,
    *,
    client_id: str | None = DEMO_CLIENT_ID,
    client_secret: str | None = DEMO_CLIENT_SECRET,
    scope: str | None = None,
) -> requests.Response:
    """grant_type=refresh_token (client_secret_post; client_secret=None for a public client)."""
    return token_request(
        server,
        {
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": client_id,
            "client_secret": client_secret,
            "scope": scope,
        },
    )


def assert_tokens(resp: requests.Response) -> dict:
    """A successful token response (RFC 6749 5.1): 200 JSON, no-store, Bearer."""
    assert resp.status_code == 200, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    assert "no-store" in resp.headers.get("Cache-Control", ""), resp.headers
    body = resp.json()
    assert body["token_type"] == "Bearer" and body["access_token"], body
    return body


def assert_token_error(resp: requests.Response, status: int, error: str) -> dict:
    """A refused token request (RFC 6749 5.2): exact status and error, JSON, no token in it."""
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert resp.headers.get("Content-Type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body.get("error") == error, body
    assert not {"access_token", "refresh_token", "id_token"} & set(body), body
    return body


def introspect(server: Server, token: str, *, client_id: str = DEMO_CLIENT_ID,
               client_secret: str = DEMO_CLIENT_SECRET) -> dict:
    with session_for(server) as s:
        resp = s.post(
            server.introspection_endpoint,
            data={"token": token, "client_id": client_id, "client_secret": client_secret},
            timeout=HTTP_TIMEOUT,
        )
    assert resp.status_code == 200, resp.text
    return resp.json()


def userinfo(server: Server, access_token: str) -> requests.Response:
    with session_for(server) as s:
        return s.get(server.base + "/v2/userinfo",
                     headers={"Authorization": "Bearer " + access_token}, timeout=HTTP_TIMEOUT)


# Apps and tokens -------------------------------------------------------------------------------------


def create_app(server: Server, name: str, redirect_uris: list[str], *,
               products: tuple[str, ...] = ("openid-connect",),
               capabilities: tuple[str, ...] = ()) -> dict:
    """A new app made with the CLI on the server's store: {"client_id", "client_secret", ...}."""
    args = ["app", "create", "--name", name, "--owner", DEVELOPER]
    for uri in redirect_uris:
        args += ["--redirect-uri", uri]
    created = server.cli(*args)
    for program in products:
        server.cli("app", "product", "request", created["client_id"], program)
    for capability in capabilities:
        server.cli("app", "enable", created["client_id"], capability)
    return created


def jwt_claims(token: str) -> dict:
    """The payload of a JWS (no signature check: the ID-token checks do that; here only the claims
    are compared)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def shannon_bits(value: str) -> float:
    """Shannon entropy of the characters times the length: the estimate of OIDF's
    EnsureMinimumAuthorizationCodeEntropy / EnsureMinimumAccessTokenEntropy."""
    counts = Counter(value)
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in counts.values()) * n


def random_part_bits(token: str, prefix: str = "AQ") -> int:
    """Bits of the random part of a scopegate token: prefix + base64url characters, 6 bits each."""
    assert token.startswith(prefix), token
    body = token[len(prefix):]
    assert set(body) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"), token
    return 6 * len(body)

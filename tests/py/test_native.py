"""Native PKCE (/oauth/native-pkce/authorization) with authlib as a public client: no client secret,
a loopback redirect URL on any port, rotating refresh tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError

from conftest import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    HTTP_TIMEOUT,
    ResponseLog,
    browser_sign_in_and_consent,
    oauth_session,
)

SCOPE = "openid profile w_member_social"
ACCESS_TTL = 60 * 24 * 3600
REFRESH_TTL = 365 * 24 * 3600
# Registered for the demo app: http://127.0.0.1:8080/callback. RFC 8252 7.3: a native app's
# loopback redirect may use any port.
LOOPBACK = "http://127.0.0.1:5555/callback"
assert urlsplit(DEMO_REDIRECT).port == 8080


def public_client(server, redirect_uri=LOOPBACK, **kw):
    kw.setdefault("scope", SCOPE)
    return oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        token_endpoint_auth_method="none",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        **kw,
    )


def confidential_client(server):
    """The demo app's backend, to introspect what the public client got."""
    return oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
    )


def introspect(server, token):
    resp = confidential_client(server).introspect_token(server.introspection_endpoint, token=token)
    assert resp.status_code == 200, resp.text
    return resp.json()


def params(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def native_tokens(server, browser):
    client = public_client(server)
    log = ResponseLog(client)
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        server.native_authorization_endpoint, code_verifier=verifier
    )
    callback = browser_sign_in_and_consent(browser, url)
    assert callback.startswith(LOOPBACK + "?"), callback
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    return client, log, token


def test_native_pkce_public_client_with_rotating_refresh_tokens(server, browser):
    client, log, token = native_tokens(server, browser)
    req = log.last.request
    assert "Authorization" not in req.headers
    assert "client_secret" not in req.body and "client_id=" + DEMO_CLIENT_ID in req.body
    assert "code_verifier=" in req.body

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == ACCESS_TTL
    assert set(token["scope"].split(" ")) == set(SCOPE.split())
    assert token["refresh_token_expires_in"] == REFRESH_TTL
    rt0 = token["refresh_token"]

    info = introspect(server, token["access_token"])
    assert info["active"] is True and info["auth_type"] == "3L" and info["sub"]

    # Refresh as a public client: the refresh token rotates.
    t1 = client.refresh_token()
    assert log.last.status_code == 200
    assert "Authorization" not in log.last.request.headers
    rt1 = t1["refresh_token"]
    assert rt1 != rt0
    assert t1["access_token"] != token["access_token"]
    assert t1["refresh_token_expires_in"] <= REFRESH_TTL
    assert introspect(server, t1["access_token"])["active"] is True
    assert introspect(server, rt1)["active"] is True

    # Replaying the rotated-out token inside ROTATION_GRACE (30 s, crates/app/src/oauth/mod.rs)
    # is a concurrent refresh, not theft: it still succeeds, and both racers end up with working
    # tokens. (The replay after the grace window, which must revoke the whole grant, would need a
    # 31 s wait and is not exercised here.)
    t2 = client.refresh_token(refresh_token=rt0)
    assert log.last.status_code == 200
    rt2 = t2["refresh_token"]
    assert rt2 not in (rt0, rt1)
    for t in (t1["access_token"], t2["access_token"], rt1, rt2):
        assert introspect(server, t)["active"] is True

    t3 = client.refresh_token(refresh_token=rt1)
    assert t3["refresh_token"] not in (rt0, rt1, rt2)
    t4 = client.refresh_token(refresh_token=rt2)
    assert t4["refresh_token"] not in (rt0, rt1, rt2, t3["refresh_token"])


def test_native_code_without_verifier_is_refused(server, browser):
    client = public_client(server)
    log = ResponseLog(client)
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        server.native_authorization_endpoint, code_verifier=verifier
    )
    callback = browser_sign_in_and_consent(browser, url)
    # A public client without code_verifier has nothing to authenticate with.
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, state=state)
    assert e.value.error == "invalid_request"
    assert log.last.status_code == 400
    # With a wrong verifier the code is refused (and consumed).
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, state=state, code_verifier=generate_token(64))
    assert e.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert e.value.error == "invalid_grant"


def test_native_requires_pkce(server, browser):
    client = public_client(server)
    url, state = client.create_authorization_url(server.native_authorization_endpoint)
    assert "code_challenge" not in url
    resp = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 302
    p = params(resp.headers["Location"])
    assert resp.headers["Location"].startswith(LOOPBACK + "?")
    assert p["error"] == "invalid_request" and p["state"] == state


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://oauth.pstmn.io/v1/callback",  # registered, but not a loopback URL
        "https://evil.example/callback",  # neither
        "http://127.0.0.1:5555/other",  # loopback, another path
    ],
)
def test_native_refuses_non_loopback_redirect(server, browser, redirect_uri):
    client = public_client(server, redirect_uri=redirect_uri)
    url, _ = client.create_authorization_url(
        server.native_authorization_endpoint, code_verifier=generate_token(64)
    )
    resp = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401, (resp.status_code, resp.headers)
    assert "Location" not in resp.headers
    assert resp.headers["Content-Type"].startswith("text/html")
    assert "Redirect_uri doesn't match" in resp.text


def test_standard_endpoint_matches_loopback_port_exactly(server, browser):
    client = public_client(server)
    url, _ = client.create_authorization_url(
        server.authorization_endpoint, code_verifier=generate_token(64)
    )
    resp = browser.get(url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 401
    assert "Location" not in resp.headers


def test_revoking_the_current_refresh_token_ends_its_rotated_predecessors(server, browser):
    """RFC 7009 2.1 / RFC 9700 4.14.2: revoking a refresh token ends the grant's refresh-token
    family. The rotated-out predecessor is still inside ROTATION_GRACE here, but the grace exists
    for racing refreshes, not to outlive a revocation."""
    client, _, token = native_tokens(server, browser)
    rt0 = token["refresh_token"]
    rt1 = client.refresh_token()["refresh_token"]
    assert rt1 != rt0
    resp = confidential_client(server).revoke_token(
        server.revocation_endpoint, token=rt1, token_type_hint="refresh_token"
    )
    assert resp.status_code == 200
    assert introspect(server, rt1)["status"] == "revoked"
    assert introspect(server, rt0)["active"] is False
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=rt0)
    assert e.value.error == "invalid_grant"


def test_public_client_can_revoke_its_refresh_token(server, browser):
    """RFC 7009 2.1: client credentials are validated "in case of a confidential client"; a native
    app (no secret) revokes its own refresh token at sign-out with its client_id."""
    client, _, token = native_tokens(server, browser)
    resp = client.revoke_token(
        server.revocation_endpoint, token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert "Authorization" not in resp.request.headers
    assert "client_secret" not in resp.request.body
    assert resp.status_code == 200, resp.text
    assert introspect(server, token["refresh_token"])["status"] == "revoked"
    assert introspect(server, token["access_token"])["status"] == "revoked"


def test_confidential_refresh_token_cannot_be_used_without_the_secret(server, browser):
    """A refresh token issued to the app authenticated with its client_secret stays bound to that
    authentication (RFC 6749 6: a confidential client MUST authenticate to refresh). That the same
    app may also act as a native public client must not let anyone holding the token refresh it
    without the secret (nor turn it into a rotating token that the backend then loses)."""
    backend = oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        token_endpoint_auth_method="client_secret_post",
        scope=SCOPE,
        redirect_uri=DEMO_REDIRECT,
        code_challenge_method="S256",
    )
    verifier = generate_token(64)
    url, state = backend.create_authorization_url(server.authorization_endpoint, code_verifier=verifier)
    callback = browser_sign_in_and_consent(browser, url)
    token = backend.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    refresh = token["refresh_token"]

    no_secret = public_client(server, redirect_uri=DEMO_REDIRECT)
    log = ResponseLog(no_secret)
    with pytest.raises(OAuthError) as e:
        no_secret.refresh_token(refresh_token=refresh)
    assert log.last.status_code in (400, 401), log.last.text
    assert e.value.error in ("invalid_client", "invalid_request", "invalid_grant")

    # The backend's refresh token is untouched: not rotated, still refreshing.
    again = backend.refresh_token(refresh_token=refresh)
    assert again["refresh_token"] == refresh

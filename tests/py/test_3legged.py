"""3-legged OAuth (authorization code + PKCE) against scopegate, driven by authlib's OAuth2Session."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.oauth2.rfc6749.errors import MismatchingStateException

from conftest import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_REDIRECT,
    ResponseLog,
    browser_sign_in_and_consent,
    oauth_session,
)

SCOPE = "openid profile w_member_social"
ACCESS_TTL = 60 * 24 * 3600  # 5184000
REFRESH_TTL = 365 * 24 * 3600


def demo_client(server, auth_method: str):
    return oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        token_endpoint_auth_method=auth_method,
        scope=SCOPE,
        redirect_uri=DEMO_REDIRECT,
        code_challenge_method="S256",
    )


def authorize(server, browser, client, trace=None, **extra):
    """Authorization URL (PKCE S256 + state from authlib), the member's sign-in and consent;
    returns (callback URL, state, code_verifier)."""
    verifier = generate_token(64)
    url, state = client.create_authorization_url(
        server.authorization_endpoint, code_verifier=verifier, **extra
    )
    q = parse_qs(urlsplit(url).query)
    assert q["code_challenge_method"] == ["S256"]
    assert len(q["code_challenge"][0]) == 43
    callback = browser_sign_in_and_consent(browser, url, trace=trace)
    return callback, state, verifier


def callback_params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def introspect(client, server, token):
    resp = client.introspect_token(server.introspection_endpoint, token=token)
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("Cache-Control", "").lower().startswith("no-store")
    return resp.json()


def test_authorization_code_pkce_refresh_and_revocation(server, browser):
    client = demo_client(server, "client_secret_post")
    log = ResponseLog(client)
    trace: list[str] = []
    callback, state, verifier = authorize(server, browser, client, trace=trace)
    # A fresh server: the member signs in, then consents for the first time.
    assert trace == ["sign-in", "consent", "redirect"]

    assert callback.startswith(DEMO_REDIRECT + "?"), callback
    params = callback_params(callback)
    assert params["state"] == state
    assert params["iss"] == server.issuer  # RFC 9207
    assert "code" in params

    # authlib checks state itself: a callback carrying another state is refused before any request.
    with pytest.raises(MismatchingStateException):
        client.fetch_token(authorization_response=callback, state="not-" + state, code_verifier=verifier)
    assert log.responses == []

    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert log.last.status_code == 200
    assert "no-store" in log.last.headers.get("Cache-Control", "")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == ACCESS_TTL
    assert set(token["scope"].split(" ")) == set(SCOPE.split())
    assert token["access_token"] and token["refresh_token"]
    assert token["refresh_token"] != token["access_token"]
    assert token["refresh_token_expires_in"] == REFRESH_TTL
    first_access, refresh = token["access_token"], token["refresh_token"]

    info = introspect(client, server, first_access)
    assert info["active"] is True
    assert info["status"] == "active"
    assert info["auth_type"] == "3L"
    assert info["client_id"] == DEMO_CLIENT_ID
    assert info["token_type"] == "Bearer"
    assert isinstance(info["sub"], str) and info["sub"]
    assert set(info["scope"].split(",")) == set(SCOPE.split())
    assert info["expires_at"] - info["created_at"] == ACCESS_TTL
    assert info["exp"] == info["expires_at"] and info["iat"] == info["created_at"]
    assert info["authorized_at"] <= info["created_at"]
    sub = info["sub"]

    info = introspect(client, server, refresh)
    assert info["active"] is True and info["auth_type"] == "3L"
    assert info["token_type"] == "refresh_token"
    assert info["sub"] == sub

    # Refresh with authlib; the refresh token's lifetime counts from the grant and never grows.
    time.sleep(1.2)
    refreshed = client.refresh_token()
    assert log.last.status_code == 200
    assert refreshed["token_type"] == "Bearer"
    assert refreshed["access_token"] not in (first_access, refresh)
    assert refreshed["expires_in"] == ACCESS_TTL
    assert set(refreshed["scope"].split(" ")) == set(SCOPE.split())
    # A confidential client keeps its refresh token (no rotation); its remaining life shrinks.
    assert refreshed["refresh_token"] == refresh
    assert refreshed["refresh_token_expires_in"] < REFRESH_TTL
    second_access = refreshed["access_token"]

    info = introspect(client, server, second_access)
    assert info["active"] is True and info["auth_type"] == "3L" and info["sub"] == sub

    # Revoke the refresh token (authlib: RFC 7009, client_secret_basic by default).
    resp = client.revoke_token(server.revocation_endpoint, token=refresh, token_type_hint="refresh_token")
    assert resp.status_code == 200, resp.text

    for t in (refresh, first_access, second_access):
        info = introspect(client, server, t)
        assert info["active"] is False, (t == refresh, info)
        assert info["status"] == "revoked"
        assert "sub" not in info and "exp" not in info

    # The revoked refresh token no longer refreshes.
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=refresh)
    assert e.value.error == "invalid_grant"
    assert log.last.status_code == 400


def test_client_secret_basic_variant(server, browser):
    client = demo_client(server, "client_secret_basic")
    log = ResponseLog(client)
    callback, state, verifier = authorize(server, browser, client)
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    req = log.last.request
    assert req.headers["Authorization"].startswith("Basic ")
    assert "client_secret" not in (req.body or "")
    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == ACCESS_TTL
    assert "refresh_token" in token

    info = introspect(client, server, token["access_token"])
    assert info["active"] is True and info["auth_type"] == "3L" and info["sub"]

    refreshed = client.refresh_token()
    assert log.last.request.headers["Authorization"].startswith("Basic ")
    assert refreshed["refresh_token"] == token["refresh_token"]
    assert refreshed["refresh_token_expires_in"] <= token["refresh_token_expires_in"]

    resp = client.revoke_token(server.revocation_endpoint, token=refreshed["access_token"])
    assert resp.status_code == 200
    assert introspect(client, server, refreshed["access_token"])["status"] == "revoked"
    # Revoking an access token leaves the refresh token usable.
    assert introspect(client, server, token["refresh_token"])["active"] is True


def test_authorization_code_replay_is_refused_and_revokes_its_tokens(server, browser):
    client = demo_client(server, "client_secret_post")
    log = ResponseLog(client)
    callback, state, verifier = authorize(server, browser, client)
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert e.value.error == "invalid_grant"
    assert log.last.status_code == 400
    # RFC 6749 4.1.2: tokens issued from a replayed code are revoked.
    for t in (token["access_token"], token["refresh_token"]):
        assert introspect(client, server, t)["status"] == "revoked"


def test_wrong_code_verifier_is_refused(server, browser):
    client = demo_client(server, "client_secret_post")
    log = ResponseLog(client)
    callback, state, _ = authorize(server, browser, client)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(authorization_response=callback, state=state, code_verifier=generate_token(64))
    assert e.value.error == "invalid_grant"
    assert log.last.status_code == 400


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_wrong_client_secret_is_401_invalid_client(server, browser, auth_method):
    good = demo_client(server, auth_method)
    callback, state, verifier = authorize(server, browser, good)
    bad = oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret="not-the-secret",
        token_endpoint_auth_method=auth_method,
        redirect_uri=DEMO_REDIRECT,
    )
    log = ResponseLog(bad)
    with pytest.raises(OAuthError) as e:
        bad.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert e.value.error == "invalid_client"
    assert log.last.status_code == 401
    if auth_method == "client_secret_basic":
        # RFC 6749 5.2: a client that used Basic gets a Basic challenge back.
        assert log.last.headers.get("WWW-Authenticate", "").lower().startswith("basic")


def test_member_cancels_consent(server, browser):
    client = demo_client(server, "client_secret_post")
    # A scope this member never granted, so the consent page is shown.
    url, state = client.create_authorization_url(
        server.authorization_endpoint, code_verifier=generate_token(64), scope="openid profile email"
    )
    callback = browser_sign_in_and_consent(browser, url, consent="cancel")
    p = callback_params(callback)
    assert callback.startswith(DEMO_REDIRECT + "?")
    assert p["error"] == "access_denied"  # standard mode (LinkedIn mode: user_cancelled_authorize)
    assert p["state"] == state and "code" not in p


def test_member_cancels_sign_in(server, browser):
    client = demo_client(server, "client_secret_post")
    url, state = client.create_authorization_url(server.authorization_endpoint)
    callback = browser_sign_in_and_consent(browser, url, login_action="cancel")
    p = callback_params(callback)
    assert p["error"] == "access_denied"  # standard mode (LinkedIn mode: user_cancelled_login)
    assert p["state"] == state


@pytest.mark.parametrize(
    "scope",
    [
        "openid r_sales_nav_profiles",  # an application permission (2-legged only)
        "openid r_marketing_leadgen_automation",  # its product (Lead Sync) is not approved for the app
    ],
)
def test_scope_not_granted_is_unauthorized_scope_error(server, browser, scope):
    client = demo_client(server, "client_secret_post")
    url, state = client.create_authorization_url(server.authorization_endpoint, scope=scope)
    callback = browser_sign_in_and_consent(browser, url)
    p = callback_params(callback)
    assert callback.startswith(DEMO_REDIRECT + "?")
    assert p["error"] == "unauthorized_scope_error", p
    assert p["state"] == state and "code" not in p


def test_comma_separated_scope_as_linkedin_documents(server, browser):
    client = demo_client(server, "client_secret_post")
    callback, state, verifier = authorize(server, browser, client, scope="openid,profile")
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert set(token["scope"].split(" ")) == {"openid", "profile"}


def test_consent_is_not_asked_again_while_a_token_is_live(server, browser):
    client = demo_client(server, "client_secret_post")
    callback, state, verifier = authorize(server, browser, client)
    client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)

    verifier = generate_token(64)
    url, state = client.create_authorization_url(server.authorization_endpoint, code_verifier=verifier)
    trace: list[str] = []
    callback = browser_sign_in_and_consent(browser, url, trace=trace)
    assert trace == ["redirect"]  # signed in already, consent already given
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    assert set(token["scope"].split(" ")) == set(SCOPE.split())


def test_refresh_with_a_narrower_scope_and_not_a_wider_one(server, browser):
    client = demo_client(server, "client_secret_post")
    log = ResponseLog(client)
    callback, state, verifier = authorize(server, browser, client)
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    narrower = client.refresh_token(scope="openid")
    assert narrower["scope"] == "openid"
    info = introspect(client, server, narrower["access_token"])
    assert info["scope"] == "openid" and info["active"] is True
    with pytest.raises(OAuthError) as e:
        client.refresh_token(refresh_token=token["refresh_token"], scope="openid email")
    assert e.value.error == "invalid_scope"
    assert log.last.status_code == 400


def test_refresh_token_of_another_app_is_invalid_grant(server, browser):
    client = demo_client(server, "client_secret_post")
    callback, state, verifier = authorize(server, browser, client)
    token = client.fetch_token(authorization_response=callback, state=state, code_verifier=verifier)
    other = server.cli(
        "app", "create", "--name", "Other", "--owner", "developer@scopegate.local",
        "--redirect-uri", "https://other.example/cb",
    )
    thief = oauth_session(
        server,
        client_id=other["client_id"],
        client_secret=other["client_secret"],
        token_endpoint_auth_method="client_secret_basic",
    )
    log = ResponseLog(thief)
    with pytest.raises(OAuthError) as e:
        thief.refresh_token(refresh_token=token["refresh_token"])
    assert e.value.error == "invalid_grant"
    assert log.last.status_code == 400
    # Revoking another app's token changes nothing, and is answered exactly as an unknown token
    # is (RFC 7009 2.2), so revocation tells no one whether a token exists.
    resp = thief.revoke_token(server.revocation_endpoint, token=token["refresh_token"])
    unknown = thief.revoke_token(server.revocation_endpoint, token="AQ" + "x" * 40)
    assert (resp.status_code, resp.content) == (unknown.status_code, unknown.content) == (200, unknown.content)
    assert introspect(client, server, token["refresh_token"])["active"] is True

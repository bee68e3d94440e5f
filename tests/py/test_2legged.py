"""2-legged OAuth (client credentials) against scopegate, driven by authlib's OAuth2Session."""

from __future__ import annotations

import pytest
import requests
from authlib.integrations.base_client import OAuthError

from conftest import HTTP_TIMEOUT, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, ResponseLog, oauth_session

APP_TOKEN_TTL = 30 * 60
APP_SCOPES = {"r_sales_nav_profiles", "r_sales_nav_validation"}


def demo_client(server, auth_method: str, secret: str = DEMO_CLIENT_SECRET, **kw):
    return oauth_session(
        server,
        client_id=DEMO_CLIENT_ID,
        client_secret=secret,
        token_endpoint_auth_method=auth_method,
        **kw,
    )


@pytest.fixture(scope="module")
def other_app(server):
    """A second app, created with the CLI, without the client-credentials capability."""
    created = server.cli(
        "app",
        "create",
        "--name",
        "No App Tokens",
        "--owner",
        "developer@scopegate.local",
        "--redirect-uri",
        "https://x.example/cb",
    )
    assert created["client_id"] and created["client_secret"]
    assert created["app"]["client_credentials"] is False
    return created


def introspect(client, server, token):
    resp = client.introspect_token(server.introspection_endpoint, token=token)
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_client_credentials(server, auth_method):
    client = demo_client(server, auth_method)
    log = ResponseLog(client)
    token = client.fetch_token(grant_type="client_credentials")
    resp = log.last
    assert resp.status_code == 200
    assert "no-store" in resp.headers.get("Cache-Control", "")
    if auth_method == "client_secret_basic":
        assert resp.request.headers["Authorization"].startswith("Basic ")
        assert "client_secret" not in resp.request.body
    else:
        assert "Authorization" not in resp.request.headers
        assert "client_secret=" in resp.request.body

    assert token["token_type"] == "Bearer"
    assert token["expires_in"] == APP_TOKEN_TTL
    assert set(token["scope"].split(" ")) == APP_SCOPES
    assert "refresh_token" not in resp.json()
    assert token["access_token"].startswith("AQ")

    info = introspect(client, server, token["access_token"])
    assert info["active"] is True
    assert info["status"] == "active"
    assert info["auth_type"] == "2L"
    assert info["client_id"] == DEMO_CLIENT_ID
    assert info["token_type"] == "Bearer"
    assert set(info["scope"].split(",")) == APP_SCOPES
    assert info["expires_at"] - info["created_at"] == APP_TOKEN_TTL
    assert "sub" not in info  # no member behind an application token


def test_client_credentials_with_a_narrower_scope(server):
    client = demo_client(server, "client_secret_post", scope="r_sales_nav_profiles")
    token = client.fetch_token(grant_type="client_credentials")
    assert token["scope"] == "r_sales_nav_profiles"
    assert introspect(client, server, token["access_token"])["scope"] == "r_sales_nav_profiles"


def test_client_credentials_refuses_a_member_permission(server):
    client = demo_client(server, "client_secret_post", scope="w_member_social")
    log = ResponseLog(client)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(grant_type="client_credentials")
    assert e.value.error == "invalid_scope"
    assert log.last.status_code == 400


def test_revoked_application_token_is_inactive(server):
    client = demo_client(server, "client_secret_basic")
    token = client.fetch_token(grant_type="client_credentials")
    resp = client.revoke_token(server.revocation_endpoint, token=token["access_token"])
    assert resp.status_code == 200
    info = introspect(client, server, token["access_token"])
    assert info["active"] is False and info["status"] == "revoked" and info["auth_type"] == "2L"


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_app_without_client_credentials_is_denied(server, other_app, auth_method):
    client = oauth_session(
        server,
        client_id=other_app["client_id"],
        client_secret=other_app["client_secret"],
        token_endpoint_auth_method=auth_method,
    )
    log = ResponseLog(client)
    with pytest.raises(OAuthError) as e:
        client.fetch_token(grant_type="client_credentials")
    # Standard mode: RFC 6749's unauthorized_client (LinkedIn mode answers 401 access_denied).
    assert e.value.error == "unauthorized_client"
    assert e.value.description == "This application is not allowed to create application tokens"
    assert log.last.status_code == 400


def test_another_apps_token_introspects_as_exactly_inactive(server, other_app):
    demo = demo_client(server, "client_secret_post")
    token = demo.fetch_token(grant_type="client_credentials")
    for auth_method in ("client_secret_post", "client_secret_basic"):
        other = oauth_session(
            server,
            client_id=other_app["client_id"],
            client_secret=other_app["client_secret"],
            token_endpoint_auth_method=auth_method,
        )
        resp = other.introspect_token(server.introspection_endpoint, token=token["access_token"])
        assert resp.status_code == 200, resp.text
        assert resp.json() == {"active": False}
    # Still active for its own app.
    assert introspect(demo, server, token["access_token"])["active"] is True


@pytest.mark.parametrize("auth_method", ["client_secret_post", "client_secret_basic"])
def test_bad_secret_is_401(server, auth_method):
    good = demo_client(server, auth_method)
    token = good.fetch_token(grant_type="client_credentials")

    bad = demo_client(server, auth_method, secret="wrong-secret")
    log = ResponseLog(bad)
    with pytest.raises(OAuthError) as e:
        bad.fetch_token(grant_type="client_credentials")
    assert e.value.error == "invalid_client"
    assert log.last.status_code == 401

    # Introspection with the bad secret: 401 invalid_client, nothing about the token.
    resp = bad.introspect_token(server.introspection_endpoint, token=token["access_token"])
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"] == "invalid_client"
    assert "active" not in resp.json()


def test_unknown_client_is_401_like_a_wrong_secret(server):
    resp = requests.post(
        server.token_endpoint,
        data={"grant_type": "client_credentials"},
        auth=("nosuchclient00", "whatever"),
        verify=server.cert,
        timeout=HTTP_TIMEOUT,
    )
    assert resp.status_code == 401
    assert resp.json()["error"] == "invalid_client"

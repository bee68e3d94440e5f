"""Refresh-token checks (catalogue section 1.4, RT-01..RT-13).

scopegate's policy (docs/oauth.md): public clients (native PKCE, no secret) get rotating refresh
tokens; a rotated one presented again after a 30-second grace window (meant for concurrent
refreshes) revokes the whole grant (RFC 9700 4.14.2). Confidential clients keep their refresh
token (LinkedIn returns the same one) and must authenticate to use it. A refresh token lives 365
days from the first grant, never extended by refreshing; `scope` may narrow, never widen.
Expiry and the grace window are tested on a server whose clock moves (clock.py).
"""

from __future__ import annotations

import threading
import time

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from clock import timetravel_server  # noqa: F401  (pytest fixture)
from flows import (
    NATIVE_REDIRECT,
    SCOPE,
    assert_token_error,
    assert_tokens,
    create_app,
    introspect,
    obtain_code,
    random_part_bits,
    redeem,
    refresh,
    session_for,
    shannon_bits,
    token_request,
    userinfo,
)
from scopegate import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, HTTP_TIMEOUT, parse_forms

REFRESH_TTL = 365 * 24 * 3600
ROTATION_GRACE = 30  # crates/app/src/oauth/mod.rs, docs/oauth.md


def confidential_tokens(server, browser, scope=SCOPE) -> dict:
    """Tokens of the demo app's backend (client_secret_post); it has the refresh-tokens capability."""
    return assert_tokens(redeem(server, obtain_code(server, browser, scope=scope)))


def public_tokens(server, browser, scope=SCOPE) -> dict:
    """Tokens of the demo app as a native public client (no secret, PKCE, loopback redirect)."""
    code = obtain_code(server, browser, redirect_uri=NATIVE_REDIRECT, native=True, scope=scope)
    return assert_tokens(redeem(server, code, client_secret=None))


def public_refresh(server, rt, **kw):
    return refresh(server, rt, client_secret=None, **kw)


def assert_inactive(server, *tokens):
    for t in tokens:
        info = introspect(server, t)
        assert info["active"] is False, info


# RT-01, RT-02: rotation and replay --------------------------------------------------------------------


@pytest.mark.check("RT-01")
def test_public_client_refresh_rotates_the_refresh_token(server, browser):
    first = public_tokens(server, browser)
    rt1 = first["refresh_token"]
    second = assert_tokens(public_refresh(server, rt1))
    rt2 = second["refresh_token"]
    assert rt2 != rt1
    assert second["access_token"] != first["access_token"]
    assert introspect(server, rt2)["active"] is True
    assert introspect(server, second["access_token"])["active"] is True


@pytest.mark.check("RT-01")
def test_confidential_client_keeps_its_refresh_token(server, browser):
    """POLICY (docs/oauth.md): a confidential client's refresh token is not rotated (LinkedIn
    returns the same one); it is bound to the client's secret instead (RT-09)."""
    first = confidential_tokens(server, browser)
    again = assert_tokens(refresh(server, first["refresh_token"]))
    assert again["refresh_token"] == first["refresh_token"]
    assert again["access_token"] != first["access_token"]
    assert introspect(server, first["refresh_token"])["active"] is True


@pytest.mark.check("RT-02")
def test_rotated_refresh_token_replayed_after_the_grace_window_revokes_the_grant(timetravel_server):
    tt = timetravel_server
    with session_for(tt) as browser:
        first = public_tokens(tt, browser)
    rt1, at1 = first["refresh_token"], first["access_token"]
    second = assert_tokens(public_refresh(tt, rt1))
    rt2, at2 = second["refresh_token"], second["access_token"]
    tt.advance(ROTATION_GRACE + 2)
    assert_token_error(public_refresh(tt, rt1), 400, "invalid_grant")
    # Reuse detection: the legitimate holder's newer tokens die with the stolen one.
    assert_inactive(tt, rt2, at1, at2, rt1)
    assert_token_error(public_refresh(tt, rt2), 400, "invalid_grant")
    assert userinfo(tt, at2).status_code == 401


# RT-03: bound to the client --------------------------------------------------------------------------------


@pytest.mark.check("RT-03")
def test_refresh_token_of_another_confidential_client_is_invalid_grant(server, browser):
    tokens = confidential_tokens(server, browser)
    other = create_app(server, "Refresh Thief", ["https://thief.example/cb"],
                       capabilities=("refresh-tokens",))
    resp = refresh(server, tokens["refresh_token"], client_id=other["client_id"],
                   client_secret=other["client_secret"])
    assert_token_error(resp, 400, "invalid_grant")
    resp = token_request(server, {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
                         basic=(other["client_id"], other["client_secret"]))
    assert_token_error(resp, 400, "invalid_grant")
    # The owner's token is untouched.
    assert_tokens(refresh(server, tokens["refresh_token"]))


@pytest.mark.check("RT-03")
def test_refresh_token_of_another_public_client_is_invalid_grant(server, browser):
    tokens = public_tokens(server, browser)
    other = create_app(server, "Native Thief", ["http://127.0.0.1/cb"], capabilities=("native-pkce",))
    resp = refresh(server, tokens["refresh_token"], client_id=other["client_id"], client_secret=None)
    assert_token_error(resp, 400, "invalid_grant")
    assert_tokens(public_refresh(server, tokens["refresh_token"]))


# RT-04, RT-05: scope ------------------------------------------------------------------------------------------


@pytest.mark.check("RT-04")
@pytest.mark.parametrize("wider", ["openid profile email", "openid profile w_member_social",
                                   "openid profile r_sales_nav_profiles", "openid profile no_such_scope"])
def test_refresh_with_a_wider_scope_is_invalid_scope(server, browser, wider):
    tokens = confidential_tokens(server, browser)
    assert_token_error(refresh(server, tokens["refresh_token"], scope=wider), 400, "invalid_scope")
    # The refused request changed nothing.
    assert introspect(server, tokens["refresh_token"])["active"] is True


@pytest.mark.check("RT-04")
def test_public_refresh_with_a_wider_scope_is_invalid_scope(server, browser):
    tokens = public_tokens(server, browser)
    resp = public_refresh(server, tokens["refresh_token"], scope="openid profile email")
    assert_token_error(resp, 400, "invalid_scope")
    # Not rotated by the refused request: the same token still refreshes.
    assert_tokens(public_refresh(server, tokens["refresh_token"]))


@pytest.mark.check("RT-05")
def test_refresh_with_a_narrower_scope(server, browser):
    tokens = confidential_tokens(server, browser)
    rt = tokens["refresh_token"]
    narrow = assert_tokens(refresh(server, rt, scope="openid"))
    assert narrow["scope"] == "openid"
    assert introspect(server, narrow["access_token"])["scope"] == "openid"
    assert "id_token" in narrow
    # The refresh token keeps the original scope: the next refresh without scope gets all of it.
    assert set(introspect(server, rt)["scope"].split(",")) == set(SCOPE.split())
    full = assert_tokens(refresh(server, rt))
    assert set(full["scope"].split()) == set(SCOPE.split())
    # Without openid: no ID token.
    no_openid = assert_tokens(refresh(server, rt, scope="profile"))
    assert no_openid["scope"] == "profile"
    assert "id_token" not in no_openid


@pytest.mark.check("RT-05")
def test_public_refresh_with_a_narrower_scope_keeps_the_original_scope(server, browser):
    tokens = public_tokens(server, browser)
    narrow = assert_tokens(public_refresh(server, tokens["refresh_token"], scope="profile"))
    assert narrow["scope"] == "profile" and "id_token" not in narrow
    rotated = narrow["refresh_token"]
    assert set(introspect(server, rotated)["scope"].split(",")) == set(SCOPE.split())
    assert set(assert_tokens(public_refresh(server, rotated))["scope"].split()) == set(SCOPE.split())


# RT-06: the refreshed ID token ---------------------------------------------------------------------------------


@pytest.mark.check("RT-06")
def test_refreshed_id_token_keeps_the_identity_claims(server, browser):
    keys = KeySet.import_key_set(browser.get(server.base + "/oauth/openid/jwks", timeout=HTTP_TIMEOUT).json())

    def claims(id_token):
        # Signature checked against the JWKS, so the comparison is between genuine tokens.
        return jwt.decode(id_token, keys).claims

    first = confidential_tokens(server, browser)
    time.sleep(1.1)  # so that a new iat is visible at one-second resolution
    again = assert_tokens(refresh(server, first["refresh_token"]))
    before, after = claims(first["id_token"]), claims(again["id_token"])
    for name in ("iss", "sub", "aud", "azp", "auth_time"):
        assert after[name] == before[name], (name, before, after)
    assert before["iss"] == server.issuer and before["azp"] == DEMO_CLIENT_ID
    assert after["iat"] > before["iat"]
    assert after["exp"] > before["exp"]


# RT-07, RT-10: lifetime ---------------------------------------------------------------------------------


@pytest.mark.check("RT-07", "RT-10")
def test_refresh_token_expires_365_days_after_the_grant_however_used(timetravel_server):
    """RT-07: an expired refresh token is invalid_grant. RT-10 (POLICY): scopegate has no idle
    expiry; the lifetime is absolute, 365 days from the first grant: a token idle for 300 days
    still refreshes, and refreshing never extends it (docs/oauth.md)."""
    tt = timetravel_server
    with session_for(tt) as browser:
        conf = confidential_tokens(tt, browser)
        pub = public_tokens(tt, browser)
    tt.advance(300 * 24 * 3600)
    again = assert_tokens(refresh(tt, conf["refresh_token"]))
    assert again["refresh_token"] == conf["refresh_token"]
    # The remaining life counts from the grant, not from this refresh.
    assert REFRESH_TTL - 300 * 24 * 3600 - 30 <= again["refresh_token_expires_in"] <= REFRESH_TTL - 300 * 24 * 3600
    # The access token is capped at the refresh token's expiry (docs/oauth.md).
    assert again["expires_in"] <= again["refresh_token_expires_in"]
    pub_rt = assert_tokens(public_refresh(tt, pub["refresh_token"]))["refresh_token"]
    tt.advance(REFRESH_TTL - 300 * 24 * 3600 - 60)
    # A minute before expiry: still good (and the access token it gets lives at most that long).
    last = assert_tokens(refresh(tt, conf["refresh_token"]))
    assert last["expires_in"] <= 61
    pub_rt = assert_tokens(public_refresh(tt, pub_rt))["refresh_token"]
    tt.advance(62)  # past 365 days since the grant
    assert_token_error(refresh(tt, conf["refresh_token"]), 400, "invalid_grant")
    assert_token_error(public_refresh(tt, pub_rt), 400, "invalid_grant")
    assert_inactive(tt, conf["refresh_token"], pub_rt, last["access_token"])


# RT-08: the response -------------------------------------------------------------------------------------------


@pytest.mark.check("RT-08")
@pytest.mark.parametrize("public", [False, True], ids=["confidential", "public"])
def test_refresh_response_is_a_fresh_uncached_bearer_token(server, browser, public):
    tokens = public_tokens(server, browser) if public else confidential_tokens(server, browser)
    resp = public_refresh(server, tokens["refresh_token"]) if public else refresh(server, tokens["refresh_token"])
    body = assert_tokens(resp)
    assert resp.headers["Content-Type"].split(";")[0].strip() == "application/json"
    assert "no-store" in resp.headers["Cache-Control"]
    assert resp.headers.get("Pragma") == "no-cache"
    assert body["token_type"] == "Bearer"
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    for token in (body["access_token"], body["refresh_token"]):
        assert random_part_bits(token) >= 128, token
        assert shannon_bits(token) > 128, token
    assert body["access_token"] != tokens["access_token"]
    assert userinfo(server, body["access_token"]).status_code == 200


# RT-09: client authentication --------------------------------------------------------------------------------------


@pytest.mark.check("RT-09")
@pytest.mark.parametrize("client_id", [DEMO_CLIENT_ID, None], ids=["client_id-only", "nothing"])
def test_confidential_refresh_without_client_authentication_is_invalid_client(server, browser, client_id):
    """RFC 6749 6 / 5.2: a confidential client must authenticate to refresh; "no client
    authentication included" is invalid_client, 401 per the ERR-02/03 policy (docs/oauth.md: an
    unknown client and a wrong secret get 401 invalid_client)."""
    tokens = confidential_tokens(server, browser)
    resp = refresh(server, tokens["refresh_token"], client_id=client_id, client_secret=None)
    assert_token_error(resp, 401, "invalid_client")
    # The refused request changed nothing: the backend still refreshes, token not rotated.
    again = assert_tokens(refresh(server, tokens["refresh_token"]))
    assert again["refresh_token"] == tokens["refresh_token"]


# RT-11: revocation by the member (POLICY) --------------------------------------------------------------------------


def _member_form(browser, server, page, action):
    resp = browser.get(server.base + page, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200, resp.text[:500]
    forms = [f for f in parse_forms(resp.text) if f["action"] == action]
    assert forms, (action, resp.text[:2000])
    return forms


@pytest.mark.check("RT-11")
def test_signing_out_does_not_revoke_refresh_tokens(server, browser):
    """POLICY: a sign-in session and an app's grant are separate (as on LinkedIn): signing out of
    scopegate ends the session, not the apps' access."""
    tokens = confidential_tokens(server, browser)
    form = _member_form(browser, server, "/psettings/permitted-services", "/logout")[0]
    resp = browser.post(server.base + "/logout", data=form["hidden"], allow_redirects=False,
                        timeout=HTTP_TIMEOUT)
    assert resp.status_code == 303 and resp.headers["Location"] == "/login"
    # Signed out indeed: the page now asks for a sign-in.
    assert browser.get(server.base + "/psettings/permitted-services", allow_redirects=False,
                       timeout=HTTP_TIMEOUT).status_code in (302, 303)
    assert_tokens(refresh(server, tokens["refresh_token"]))


@pytest.mark.check("RT-11")
def test_withdrawing_consent_revokes_refresh_and_access_tokens(server, browser):
    """POLICY (§4.14.2 MAY): removing an app on Permitted services revokes its grant: every
    refresh and access token of it stops working at once."""
    conf = confidential_tokens(server, browser)
    pub = public_tokens(server, browser)
    forms = _member_form(browser, server, "/psettings/permitted-services",
                         "/psettings/permitted-services/revoke")
    form = next(f for f in forms if f["hidden"].get("client_id") == DEMO_CLIENT_ID)
    resp = browser.post(server.base + "/psettings/permitted-services/revoke", data=form["hidden"],
                        allow_redirects=False, timeout=HTTP_TIMEOUT)
    assert resp.status_code in (302, 303), resp.text[:500]
    assert_token_error(refresh(server, conf["refresh_token"]), 400, "invalid_grant")
    assert_token_error(public_refresh(server, pub["refresh_token"]), 400, "invalid_grant")
    assert_inactive(server, conf["refresh_token"], conf["access_token"], pub["refresh_token"],
                    pub["access_token"])


# RT-12: client credentials ---------------------------------------------------------------------------------------


@pytest.mark.check("RT-12")
def test_client_credentials_response_has_no_refresh_token(server):
    resp = token_request(server, {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID,
                                  "client_secret": DEMO_CLIENT_SECRET})
    body = assert_tokens(resp)
    assert "refresh_token" not in body and "refresh_token_expires_in" not in body
    resp = token_request(server, {"grant_type": "client_credentials"},
                         basic=(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET))
    assert "refresh_token" not in assert_tokens(resp)


# RT-13: concurrent refreshes -------------------------------------------------------------------------------------


def _parallel_refreshes(server, rt, workers, client_secret):
    barrier = threading.Barrier(workers)
    responses = [None] * workers

    def race(i):
        with session_for(server) as s:
            s.get(server.base + "/healthz", timeout=HTTP_TIMEOUT)  # connect before the barrier
            barrier.wait(timeout=60)
            data = {"grant_type": "refresh_token", "refresh_token": rt, "client_id": DEMO_CLIENT_ID}
            if client_secret:
                data["client_secret"] = client_secret
            responses[i] = s.post(server.token_endpoint, data=data, timeout=HTTP_TIMEOUT)

    threads = [threading.Thread(target=race, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return responses


@pytest.mark.check("RT-13")
def test_concurrent_public_refreshes_inside_the_grace_window(timetravel_server):
    """scopegate has a grace window (30 s from the first rotation) instead of strict rotation:
    racing refreshes with one token all succeed, each with its own new refresh token; the window
    does not slide with use, and a use after it revokes everything the racers got."""
    tt = timetravel_server
    with session_for(tt) as browser:
        rt = public_tokens(tt, browser)["refresh_token"]
    responses = _parallel_refreshes(tt, rt, 20, client_secret=None)
    statuses = [r.status_code for r in responses]
    assert statuses == [200] * 20, [(r.status_code, r.text[:200]) for r in responses]
    bodies = [r.json() for r in responses]
    new_rts = {b["refresh_token"] for b in bodies}
    assert len(new_rts) == 20 and rt not in new_rts
    # Inside the window, 20 s after the rotation: still accepted.
    tt.advance(20)
    late = assert_tokens(public_refresh(tt, rt))
    # 32 s after the first rotation (the use at 20 s did not extend the window): refused, and
    # every token of the grant, the racers' included, is revoked.
    tt.advance(12)
    assert_token_error(public_refresh(tt, rt), 400, "invalid_grant")
    assert_inactive(tt, late["refresh_token"], late["access_token"],
                    *(b["refresh_token"] for b in bodies), *(b["access_token"] for b in bodies))


@pytest.mark.check("RT-13")
def test_concurrent_confidential_refreshes_all_succeed_with_the_same_token(server, browser):
    """Confidential clients are not rotated (POLICY, RT-01): concurrent refreshes cannot race on
    the refresh token; each gets a new access token, none 5xx."""
    rt = confidential_tokens(server, browser)["refresh_token"]
    responses = _parallel_refreshes(server, rt, 20, client_secret=DEMO_CLIENT_SECRET)
    assert [r.status_code for r in responses] == [200] * 20, [r.text[:200] for r in responses]
    bodies = [r.json() for r in responses]
    assert {b["refresh_token"] for b in bodies} == {rt}
    assert len({b["access_token"] for b in bodies}) == 20

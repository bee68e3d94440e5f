"""PKCE checks (catalogue section 1.2, PKCE-01..PKCE-10) and authorization-code checks (section
1.3, CODE-01..CODE-07).

scopegate's rules (docs/oauth.md): PKCE is S256 only; it is optional on /oauth/v2/authorization
(confidential clients authenticate with their secret) and required on the native PKCE endpoint
(public clients); a code is single use, bound to the app, the redirect URL and the challenge, lives
10 minutes, and a failed attempt consumes it; a second use revokes every token issued from it.
"""

from __future__ import annotations

import threading
import time

import pytest

from clock import timetravel_server  # noqa: F401  (pytest fixture)
from flows import (
    NATIVE_REDIRECT,
    Code,
    browser_sign_in_and_consent,
    query_params,
    token_request,
    assert_error_redirect,
    assert_token_error,
    assert_tokens,
    authorization_url,
    create_app,
    get_authorization,
    introspect,
    new_verifier,
    obtain_code,
    random_part_bits,
    redeem,
    s256,
    session_for,
    shannon_bits,
    userinfo,
)
from scopegate import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_REDIRECT, HTTP_TIMEOUT

CODE_TTL = 10 * 60  # docs/oauth.md, standard mode


def native_code(server, browser, **kw):
    """A code from the native PKCE endpoint (public client, loopback redirect)."""
    return obtain_code(server, browser, redirect_uri=NATIVE_REDIRECT, native=True, **kw)


def redeem_public(server, code, **kw):
    """Redeems as the public (native) client: client_id only, no secret."""
    return redeem(server, code, client_secret=None, **kw)


# PKCE-01..PKCE-04: the authorization request ---------------------------------------------------------


@pytest.mark.check("PKCE-01")
def test_public_client_without_code_challenge_gets_invalid_request(server, browser):
    url = authorization_url(server, redirect_uri=NATIVE_REDIRECT, native=True, state="p1")
    resp = get_authorization(browser, url)
    p = assert_error_redirect(resp, NATIVE_REDIRECT, "invalid_request", "p1", server.issuer)
    assert "code_challenge" in p["error_description"]


@pytest.mark.check("PKCE-01")
def test_public_client_cannot_redeem_a_code_issued_without_pkce(server, browser):
    """On the standard endpoint PKCE is optional (a confidential client may omit it), so the
    public client's protection sits at the token endpoint: a code without a challenge needs the
    client secret; with no secret and no verifier nothing is issued."""
    code = obtain_code(server, browser, pkce=False)
    assert_token_error(redeem_public(server, code, verifier=None), 400, "invalid_request")


def _challenge_variants():
    ok = s256(new_verifier())
    return {
        "42 chars": ok[:42],
        "44 chars": ok + "A",
        "128 chars": (ok * 3)[:128],
        "129 chars": (ok * 4)[:129],
        "base64 '+' and '/'": "+/" + ok[2:],
        "padding '='": ok[:42] + "=",
        "space": ok[:21] + " " + ok[22:],
        "'.' and '~'": ".~" + ok[2:],  # in the ABNF, but never in a base64url SHA-256
    }


@pytest.mark.parametrize("native", [False, True], ids=["standard", "native"])
@pytest.mark.check("PKCE-02")
def test_plain_code_challenge_method_is_refused(server, browser, native):
    verifier = new_verifier()
    redirect = NATIVE_REDIRECT if native else DEMO_REDIRECT
    url = authorization_url(server, redirect_uri=redirect, native=native, state="p2",
                            challenge=verifier, method="plain")
    assert_error_redirect(get_authorization(browser, url), redirect, "invalid_request", "p2",
                          server.issuer)


@pytest.mark.parametrize("method", ["S512", "s256", "SHA256", "S256 "])
@pytest.mark.check("PKCE-03")
def test_unknown_code_challenge_method_is_refused(server, browser, method):
    url = authorization_url(server, state="p3", verifier=new_verifier(), method=method)
    p = assert_error_redirect(get_authorization(browser, url), DEMO_REDIRECT, "invalid_request",
                              "p3", server.issuer)
    assert "S256" in p["error_description"]


@pytest.mark.check("PKCE-03")
def test_code_challenge_method_without_challenge_is_refused(server, browser):
    url = authorization_url(server, state="p3", challenge=None, method="S256") + "&code_challenge_method=S256"
    assert_error_redirect(get_authorization(browser, url), DEMO_REDIRECT, "invalid_request", "p3",
                          server.issuer)


@pytest.mark.parametrize("challenge", list(_challenge_variants().values()),
                         ids=list(_challenge_variants()))
@pytest.mark.check("PKCE-04")
def test_malformed_code_challenge_is_refused(server, browser, challenge):
    url = authorization_url(server, state="p4", challenge=challenge)
    assert_error_redirect(get_authorization(browser, url), DEMO_REDIRECT, "invalid_request", "p4",
                          server.issuer)


# PKCE-05..PKCE-09: the token request ------------------------------------------------------------------


@pytest.mark.check("PKCE-05")
def test_pkce_code_without_code_verifier_is_invalid_grant(server, browser):
    code = obtain_code(server, browser)
    assert_token_error(redeem(server, code, verifier=None), 400, "invalid_grant")
    # The failed attempt consumed the code: the right verifier comes too late.
    assert_token_error(redeem(server, code), 400, "invalid_grant")


@pytest.mark.check("PKCE-06")
def test_wrong_code_verifier_is_invalid_grant(server, browser):
    code = obtain_code(server, browser)
    assert_token_error(redeem(server, code, verifier=new_verifier()), 400, "invalid_grant")
    assert_token_error(redeem(server, code), 400, "invalid_grant")


@pytest.mark.check("PKCE-06")
def test_public_client_with_wrong_code_verifier_is_invalid_grant(server, browser):
    code = native_code(server, browser)
    assert_token_error(redeem_public(server, code, verifier=new_verifier()), 400, "invalid_grant")
    # The verifier of another PKCE request (a valid pair, but not this code's) fails the same way.
    other = native_code(server, browser)
    assert_token_error(redeem_public(server, other, verifier=code.verifier), 400, "invalid_grant")


@pytest.mark.check("PKCE-07")
def test_code_verifier_for_a_code_issued_without_challenge_is_refused(server, browser):
    """RFC 9700 4.8.2 (PKCE downgrade): a code_verifier is accepted only if the authorization
    request had a code_challenge."""
    code = obtain_code(server, browser, pkce=False)
    assert_token_error(redeem(server, code, verifier=new_verifier()), 400, "invalid_grant")
    # The same as a public client (no secret, verifier only): refused, nothing issued.
    code = obtain_code(server, browser, pkce=False)
    assert_token_error(redeem_public(server, code, verifier=new_verifier()), 400, "invalid_grant")


def _bad_verifiers():
    return {
        "42 chars": "a" * 42,
        "129 chars": "a" * 129,
        "'+' '/' '='": "a" * 40 + "+/=",
        "space": "a" * 21 + " " + "a" * 21,
        "non-ASCII": "a" * 42 + "\u00e9",
    }


@pytest.mark.parametrize("verifier", list(_bad_verifiers().values()), ids=list(_bad_verifiers()))
@pytest.mark.check("PKCE-08")
def test_malformed_code_verifier_is_refused_even_when_its_hash_matches(server, browser, verifier):
    # The challenge is the S256 of the malformed verifier itself, so only the RFC 7636 4.1 ABNF
    # (43-128 characters of [A-Za-z0-9-._~]) can refuse it.
    url = authorization_url(server, challenge=s256(verifier), state="p8")
    callback = browser_sign_in_and_consent(browser, url)
    p = query_params(callback)
    assert p.get("code"), p
    code = Code(p["code"], "p8", verifier, DEMO_REDIRECT, callback)
    assert_token_error(redeem(server, code), 400, "invalid_grant")


@pytest.mark.check("PKCE-08")
@pytest.mark.parametrize("length", [43, 128])
def test_code_verifier_at_the_length_limits_succeeds(server, browser, length):
    verifier = ("abcXYZ019-._~" * 10)[:length]
    assert_tokens(redeem(server, obtain_code(server, browser, verifier=verifier)))


@pytest.mark.check("PKCE-09")
def test_valid_s256_flow_succeeds_for_a_confidential_client(server, browser):
    body = assert_tokens(redeem(server, obtain_code(server, browser)))
    assert introspect(server, body["access_token"])["active"] is True


@pytest.mark.check("PKCE-09")
def test_valid_s256_flow_succeeds_for_a_public_client(server, browser):
    body = assert_tokens(redeem_public(server, native_code(server, browser)))
    assert introspect(server, body["access_token"])["active"] is True


@pytest.mark.check("PKCE-10")
@pytest.mark.parametrize("path", ["/oauth/.well-known/openid-configuration",
                                  "/.well-known/openid-configuration",
                                  "/.well-known/oauth-authorization-server"])
def test_discovery_lists_s256_only(server, browser, path):
    resp = browser.get(server.base + path, timeout=HTTP_TIMEOUT)
    assert resp.status_code == 200
    methods = resp.json()["code_challenge_methods_supported"]
    assert isinstance(methods, list)
    # PKCE-02 refuses plain, so it must not be advertised.
    assert methods == ["S256"]


# CODE-01..CODE-07 ------------------------------------------------------------------------------------------


@pytest.mark.check("CODE-01")
def test_second_redemption_is_invalid_grant(server, browser):
    code = obtain_code(server, browser)
    assert_tokens(redeem(server, code))
    resp = redeem(server, code)
    assert_token_error(resp, 400, "invalid_grant")
    assert "no-store" in resp.headers.get("Cache-Control", "")


@pytest.mark.check("CODE-01")
def test_second_redemption_by_a_public_client_is_invalid_grant(server, browser):
    code = native_code(server, browser)
    assert_tokens(redeem_public(server, code))
    assert_token_error(redeem_public(server, code), 400, "invalid_grant")


@pytest.mark.check("CODE-02")
def test_replayed_code_revokes_the_tokens_issued_from_it(server, browser):
    code = obtain_code(server, browser)
    first = assert_tokens(redeem(server, code))
    at, rt = first["access_token"], first["refresh_token"]
    assert userinfo(server, at).status_code == 200
    time.sleep(1.1)  # OIDF fapi2-…-attempt-reuse-authorization-code-after-one-second
    assert_token_error(redeem(server, code), 400, "invalid_grant")
    resp = userinfo(server, at)
    assert resp.status_code == 401, resp.text
    assert resp.headers.get("WWW-Authenticate", "").startswith("Bearer")
    assert introspect(server, at)["active"] is False
    assert introspect(server, rt)["active"] is False


@pytest.mark.check("CODE-03")
def test_code_of_another_client_is_invalid_grant(server, browser):
    other = create_app(server, "Code Thief", ["http://127.0.0.1:8080/callback"])
    code = obtain_code(server, browser)
    # Client B's own, valid credentials, in the body and then via Basic.
    assert_token_error(redeem(server, code, client_id=other["client_id"],
                              client_secret=other["client_secret"]), 400, "invalid_grant")
    code = obtain_code(server, browser)
    resp = token_request(
        server,
        {"grant_type": "authorization_code", "code": code.code, "redirect_uri": code.redirect_uri,
         "code_verifier": code.verifier},
        basic=(other["client_id"], other["client_secret"]),
    )
    assert_token_error(resp, 400, "invalid_grant")
    # A failed attempt consumes the code (docs/oauth.md): the rightful client gets nothing either.
    assert_token_error(redeem(server, code), 400, "invalid_grant")


@pytest.mark.check("CODE-04")
def test_code_expires_after_its_lifetime(timetravel_server):
    tt = timetravel_server
    with session_for(tt) as browser:
        early, late = obtain_code(tt, browser), obtain_code(tt, browser)
        tt.advance(CODE_TTL - 15)
        # Still inside its 10 minutes: redeemed. Its token shows the server's moved clock.
        body = assert_tokens(redeem(tt, early))
        info = introspect(tt, body["access_token"])
        assert abs(info["iat"] - tt.now()) < 5, (info["iat"], tt.now(), time.time())
        tt.advance(16)  # lifetime + 1 s
        assert_token_error(redeem(tt, late), 400, "invalid_grant")


@pytest.mark.check("CODE-05")
def test_codes_carry_at_least_128_random_bits(server, browser):
    codes = [obtain_code(server, browser).code for _ in range(5)]
    assert len(set(codes)) == len(codes)
    for code in codes:
        # RFC 6749 10.10: >= 128 bits (SHOULD 160); OIDF estimates Shannon entropy x length > 96.
        assert random_part_bits(code) >= 160, code
        assert shannon_bits(code) > 128, (code, shannon_bits(code))


@pytest.mark.check("CODE-06")
def test_garbage_and_truncated_codes_are_invalid_grant(server, browser):
    code = obtain_code(server, browser)
    real = code.code
    flipped = real[:10] + ("A" if real[10] != "A" else "B") + real[11:]
    for value in ["garbage", "AQ", real[:-1], real[:20], real + "x", flipped, real.lower(),
                  "AQ" + "A" * 43, "x" * 4000, "%00", "' OR 1=1 --", "\u00e9\u00e9\u00e9"]:
        resp = redeem(server, Code(value, code.state, code.verifier, code.redirect_uri, ""))
        assert_token_error(resp, 400, "invalid_grant")
    # None of these touched the real code (no prefix or case-insensitive match).
    assert_tokens(redeem(server, code))


@pytest.mark.check("CODE-06")
def test_code_from_another_deployment_is_invalid_grant(server, timetravel_server):
    """The other tenant: a second scopegate with the same demo app (same client_id and secret)
    issues a code; this server has never seen it."""
    with session_for(timetravel_server) as browser:
        foreign = obtain_code(timetravel_server, browser)
    assert_token_error(redeem(server, foreign), 400, "invalid_grant")
    # It still works where it was issued.
    assert_tokens(redeem(timetravel_server, foreign))


@pytest.mark.check("CODE-07")
def test_fifty_parallel_redemptions_give_exactly_one_token(server, browser):
    code = obtain_code(server, browser)
    workers = 50
    barrier = threading.Barrier(workers)
    responses = [None] * workers

    def race(i):
        # Each worker its own connection (and TLS handshake) before the barrier, so the requests
        # reach the server together.
        with session_for(server) as s:
            s.get(server.base + "/healthz", timeout=HTTP_TIMEOUT)
            barrier.wait(timeout=60)
            responses[i] = s.post(server.token_endpoint, timeout=HTTP_TIMEOUT, data={
                "grant_type": "authorization_code", "code": code.code,
                "redirect_uri": code.redirect_uri, "code_verifier": code.verifier,
                "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})

    threads = [threading.Thread(target=race, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert statuses.count(400) == workers - 1, statuses
    winner = next(r for r in responses if r.status_code == 200).json()
    for r in responses:
        if r.status_code != 200:
            assert_token_error(r, 400, "invalid_grant")
    # The losers were replays: the winner's tokens are revoked too (RFC 6749 4.1.2 SHOULD; fosite
    # does the same).
    assert introspect(server, winner["access_token"])["active"] is False
    assert introspect(server, winner["refresh_token"])["active"] is False

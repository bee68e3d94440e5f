"""Abuse checks (catalogue sections 4.3-4.5): brute force and throttling (BF), timing-safe
comparison and secret handling (TS), malformed input (MAL), black-box against a real scopegate.

Three servers: the suite's ``server`` for the malformed-input checks, ``throttle_server`` for
everything that trips the failure counters (each check from its own loopback addresses, so they do
not feed each other's counters), and ``debug_server`` (SCOPEGATE_LOG=debug) whose logs and store
files are searched for secrets. The store is only ever read by ``grep`` in a child process: opening
the SQLite file here could take locks or checkpoint the WAL the check wants to search.
"""

from __future__ import annotations

import base64
import os
import re
import select
import socket
import ssl
import statistics
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from scopegate import (  # tests/lib, put on sys.path by conftest.py
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT,
    DEVELOPER,
    MEMBER,
    REPO_ROOT,
    Server,
    browser_sign_in_and_consent,
    parse_forms,
    scopegate_bin,
)
from test_token_errors import (
    DEMO_CREDENTIALS,
    SCOPE,
    TIMEOUT,
    authorize_code,
    basic,
    fresh_source,
    introspect,
    member_tokens,
    oauth_error,
    pkce_pair,
    post,
    random_token,
    redeem,
    session_for,
    token_request,
)


def start_server(tmp_path_factory, name: str, **env: str) -> Server:
    """A scopegate of this module's own, with extra environment for its process."""
    s = Server(scopegate_bin(), tmp_path_factory.mktemp(name), env=env)
    s.start()
    return s


@pytest.fixture(scope="module")
def throttle_server(tmp_path_factory):
    s = start_server(tmp_path_factory, "throttle")
    yield s
    s.stop()


LOG_FILES = ("serve.stdout", "serve.stderr")  # where tests/lib's Server sends the output


def logs_since_start(server) -> str:
    out = []
    for name, offset in server.log_offsets.items():
        with open(server.data_dir / name, "rb") as f:
            f.seek(offset)
            out.append(f.read().decode(errors="replace"))
    return "".join(out)


@pytest.fixture(scope="module")
def debug_server(tmp_path_factory):
    s = start_server(tmp_path_factory, "debuglog", SCOPEGATE_LOG="debug")
    # --demo prints the demo's deliberately public credentials once at start-up; the check is
    # about what serving requests logs, so it reads the logs from here on.
    s.log_offsets = {name: (s.data_dir / name).stat().st_size for name in LOG_FILES}
    yield s
    s.stop()


def wrong_secret(server, source, client_id=DEMO_CLIENT_ID, secret="wrong-secret", **kw):
    return token_request(server, {"grant_type": "client_credentials", "client_id": client_id,
                                  "client_secret": secret}, source=source, **kw)


def first_429(send, limit: int) -> tuple[int | None, requests.Response]:
    """Calls send(i) until a 429 (at most `limit` times); returns (1-based attempt, response)."""
    resp = None
    for i in range(limit):
        resp = send(i)
        if resp.status_code == 429:
            return i + 1, resp
    return None, resp


# BF: brute force and rate limiting (RFC 6749 2.3.1, 10.10) -------------------------------------------


@pytest.fixture(scope="module")
def secret_guessing(throttle_server):
    """BF-01's attack from 127.0.0.2, with the real client calling from 127.0.0.3 throughout."""
    attacker, legit = "127.0.0.2", "127.0.0.3"
    statuses, legit_statuses, last = [], [], None
    for i in range(300):  # bounded: far past the documented 10 per (client, address)
        last = wrong_secret(throttle_server, attacker, secret=f"guess-{i}")
        statuses.append(last.status_code)
        if i % 25 == 0:
            ok = token_request(throttle_server, dict(DEMO_CREDENTIALS, grant_type="client_credentials"),
                               source=legit)
            legit_statuses.append(ok.status_code)
    # The right secret from the attacker's address is refused too: the secret is not even checked.
    right_from_attacker = token_request(throttle_server, dict(DEMO_CREDENTIALS, grant_type="client_credentials"),
                                        source=attacker)
    return {"statuses": statuses, "last": last, "legit": legit_statuses,
            "right_from_attacker": right_from_attacker.status_code}


@pytest.mark.check("BF-01")
def test_repeated_wrong_secrets_from_one_address_get_429_with_retry_after(secret_guessing):
    statuses = secret_guessing["statuses"]
    assert 429 in statuses, "never throttled"
    first = statuses.index(429) + 1
    assert first <= 20, f"first 429 only at attempt {first}"
    assert set(statuses[first - 1:]) == {429}, "the throttle let guesses through again"
    assert int(secret_guessing["last"].headers["Retry-After"]) > 0
    assert secret_guessing["right_from_attacker"] == 429


@pytest.mark.check("BF-02")
def test_the_real_client_elsewhere_is_not_locked_out_during_an_attack(secret_guessing):
    assert secret_guessing["legit"] and set(secret_guessing["legit"]) == {200}, secret_guessing["legit"]


@pytest.mark.check("BF-03")
def test_spraying_one_guess_over_many_clients_trips_the_per_address_throttle(throttle_server):
    at, resp = first_429(lambda i: wrong_secret(throttle_server, "127.0.0.4", client_id=f"sprayclient{i:05d}"),
                         1000)
    assert at is not None and at <= 60, f"first 429 at {at}"
    assert resp.headers.get("Retry-After")


@pytest.mark.check("BF-04")
def test_guessing_codes_and_tokens_is_throttled_and_never_hits(throttle_server):
    """An authenticated client guessing codes, refresh tokens and access tokens: no guess may
    succeed, and the guessing must be slowed down (RFC 7662 4; RFC 6749 10.10)."""
    s = throttle_server
    guesses = {
        "code": lambda i, src: token_request(s, dict(DEMO_CREDENTIALS, grant_type="authorization_code",
                                                     code=random_token(), redirect_uri=DEMO_REDIRECT,
                                                     code_verifier=pkce_pair()[0]), source=src),
        "refresh token": lambda i, src: token_request(s, dict(DEMO_CREDENTIALS, grant_type="refresh_token",
                                                              refresh_token=random_token()), source=src),
        "access token": lambda i, src: introspect(s, random_token(), source=src),
    }
    unthrottled = []
    for n, (kind, guess) in enumerate(guesses.items()):
        source = f"127.0.0.{20 + n}"
        at, _ = first_429(lambda i: _no_hit(guess(i, source), kind), 200)
        if at is None:
            unthrottled.append(kind)
    assert not unthrottled, f"200 guesses each from one address, never throttled: {unthrottled}"


def _no_hit(resp, kind):
    assert resp.status_code in (400, 401, 429) or resp.json() == {"active": False}, (kind, resp.text)
    assert "access_token" not in resp.text
    return resp


def sign_in_attempt(server, source, email, password):
    s = session_for(server, source)
    page = s.get(server.base + "/login", timeout=TIMEOUT)
    form = next(f for f in parse_forms(page.text) if urlsplit(f["action"]).path == "/login")
    data = dict(form["hidden"], action="signin", email=email, password=password)
    return s.post(server.base + "/login", data=data, allow_redirects=False, timeout=TIMEOUT)


def page_message(html: str) -> str:
    """The page with the per-request and per-account bits removed, for comparing answers."""
    html = re.sub(r'value="[^"]*"', 'value=""', html)
    return re.sub(r"[\w.+-]+@[\w.-]+", "EMAIL", html)


@pytest.mark.check("BF-05")
def test_sign_in_guessing_is_throttled_per_account_and_per_address_without_enumeration(throttle_server):
    s = throttle_server
    # Per account and address: guesses at one account from one address are delayed.
    statuses = [sign_in_attempt(s, "127.0.0.40", DEVELOPER, f"guess-{i}").status_code for i in range(8)]
    assert 429 in statuses and statuses.index(429) <= 6, statuses
    # The member is not locked out by them: from an address with no failures the right password
    # still signs in (a per-account lockout would let anyone lock any member out).
    assert sign_in_attempt(s, "127.0.0.41", DEVELOPER, DEMO_PASSWORD).status_code == 303
    # Per address: many accounts (known and unknown) from one address.
    statuses = [sign_in_attempt(s, "127.0.0.60", f"nobody{i}@example.com", "guess").status_code for i in range(40)]
    assert 429 in statuses and statuses.index(429) <= 35, statuses
    # No enumeration: a known account with a wrong password and an unknown account read alike.
    known = sign_in_attempt(s, "127.0.0.61", MEMBER, "wrong-password")
    unknown = sign_in_attempt(s, "127.0.0.62", "no-such-member@example.com", "wrong-password")
    assert known.status_code == unknown.status_code == 401
    assert page_message(known.text) == page_message(unknown.text)


@pytest.mark.check("BF-05")
def test_parallel_sign_in_guesses_are_checked_at_most_as_often_as_the_limit(throttle_server):
    """40 wrong passwords at once from one address: each attempt is counted before its password
    is checked, so at most the 5 free attempts are checked (the rest get 429), and the right
    password from that address waits too."""
    from concurrent.futures import ThreadPoolExecutor
    s = throttle_server
    with ThreadPoolExecutor(max_workers=40) as pool:
        statuses = list(pool.map(lambda i: sign_in_attempt(s, "127.0.0.90", MEMBER, f"parallel-{i}").status_code,
                                 range(40)))
    # 401: the password was checked. (403 is a form the harness's parallel sessions let expire:
    # refused before the throttle, so not a checked password either.)
    assert set(statuses) <= {401, 403, 429}, statuses
    assert 0 < statuses.count(401) <= 5, statuses
    assert sign_in_attempt(s, "127.0.0.90", MEMBER, DEMO_PASSWORD).status_code == 429


@pytest.mark.check("BF-06")
def test_forwarded_headers_do_not_dodge_the_throttle(throttle_server):
    def spoofed(i):
        fake = f"10.9.{i // 250}.{i % 250 + 1}"
        return wrong_secret(throttle_server, "127.0.0.70", headers={
            "X-Forwarded-For": fake, "X-Real-IP": fake, "Forwarded": f"for={fake}",
            "X-Scopegate-Peer-Address": fake,
        })
    at, _ = first_429(spoofed, 100)
    assert at is not None and at <= 20, f"first 429 at {at}"


@pytest.fixture(scope="module")
def proxied_server(tmp_path_factory):
    """A scopegate behind a trusted proxy at 127.0.0.77 (--trusted-proxy)."""
    s = start_server(tmp_path_factory, "proxied", SCOPEGATE_TRUSTED_PROXIES="127.0.0.77")
    yield s
    s.stop()


@pytest.mark.check("BF-06", "OTH-03")
def test_forwarded_for_names_the_client_only_from_the_trusted_proxy(proxied_server):
    """Behind the configured proxy the throttle keys on the client the proxy names (so one
    guesser does not lock every client of the proxy out); the same header from any other peer
    is ignored, and a client-written entry left of the proxy's does not count."""
    def via_proxy(client, forged=None):
        chain = f"{forged}, {client}" if forged else client
        return wrong_secret(proxied_server, "127.0.0.77", headers={"X-Forwarded-For": chain})

    # A guesser behind the proxy is throttled by its own address, even when it forges the
    # left-hand entries (a fresh one each time).
    at, _ = first_429(lambda i: via_proxy("198.51.100.7", forged=f"10.8.{i // 250}.{i % 250 + 1}"), 30)
    assert at is not None and at <= 11, f"first 429 at {at}"
    # Another client of the same proxy is not locked out.
    assert via_proxy("198.51.100.8").status_code == 401
    # From a peer that is not the proxy, X-Forwarded-For is ignored: the peer is throttled.
    at, _ = first_429(lambda i: wrong_secret(proxied_server, "127.0.0.78", headers={
        "X-Forwarded-For": f"10.7.{i // 250}.{i % 250 + 1}"}), 30)
    assert at is not None and at <= 11, f"first 429 at {at}"


# TS: timing-safe comparison and secret handling ------------------------------------------------------

RUST_SOURCES = sorted((REPO_ROOT / "crates").glob("*/src/**/*.rs"))
SECRET_WORDS = r"(secret|verifier|csrf|password|passwd|signature|hmac|\bmac\b|api_key|token_hash|code_hash|challenge)"
# Comparisons the review found safe: the left side is not secret material.
REVIEWED_SAFE = [
    re.compile(r"\.is_none\(\)|\.is_some\(\)|\.len\(\)|== None|!= None|\.is_empty\(\)"),
    re.compile(r"kind\s*==|Kind::|method\s*==|== \"S256\"|code_challenge_method|StatusCode::"),
    re.compile(r"client_id\s*[!=]=|redirect_uri\s*[!=]=|\.id\s*[!=]="),  # identifiers, not secrets
]


def production_code(path: Path) -> str:
    """The file without its `#[cfg(test)]` module."""
    text = path.read_text()
    cut = text.find("#[cfg(test)]")
    return text if cut < 0 else text[:cut]


@pytest.mark.check("TS-01", "PKCE-11")
def test_secrets_are_compared_in_constant_time():
    """Code review as a test: secret material is compared through subtle's ConstantTimeEq (via
    scopegate_core::secret::ct_eq / ct_eq_str) or as fixed-length keyed hashes in the store;
    a new `==` on a secret-looking value fails here until reviewed."""
    suspicious = []
    for path in RUST_SOURCES:
        for n, line in enumerate(production_code(path).splitlines(), 1):
            code = line.split("//")[0]
            if not re.search(r"[!=]=", code) or not re.search(SECRET_WORDS, code, re.I):
                continue
            if "ct_eq" in code or any(p.search(code) for p in REVIEWED_SAFE):
                continue
            suspicious.append(f"{path.relative_to(REPO_ROOT)}:{n}: {line.strip()}")
    assert not suspicious, "secret compared with ==/!=:\n" + "\n".join(suspicious)
    secret_rs = (REPO_ROOT / "crates/core/src/secret.rs").read_text()
    assert "subtle::ConstantTimeEq" in secret_rs
    # The PKCE verifier and the CSRF tokens go through the constant-time helper.
    token_rs = production_code(REPO_ROOT / "crates/app/src/oauth/token.rs")
    assert re.search(r"ct_eq_str\(&sha256_b64url\(v\), ch\)", token_rs)
    session_rs = production_code(REPO_ROOT / "crates/http/src/web/session.rs")
    assert session_rs.count("ct_eq_str(") >= 2
    # Client secrets and API keys are looked up by their HMAC (fixed length), never in the clear.
    apps_rs = (REPO_ROOT / "crates/store/src/apps.rs").read_text()
    assert "secret_hash = $2" in apps_rs


def _timed(session, url, data) -> float:
    t0 = time.perf_counter()
    resp = session.post(url, data=data, timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    assert resp.status_code == 401, resp.text
    return elapsed


def trimmed_mean(xs, cut=0.1):
    xs = sorted(xs)
    k = int(len(xs) * cut)
    return statistics.fmean(xs[k:len(xs) - k])


@pytest.mark.check("TS-03")
def test_unknown_client_and_wrong_secret_take_the_same_time(throttle_server):
    """Black-box timing, bounded: 2000 interleaved samples of each kind from rotating source
    addresses (9 per address keeps every counter under the throttle). A leak worth finding here
    is a slow hash run for one case and not the other (milliseconds); loopback noise on a busy
    machine is tens of microseconds, so the bar is a 20% / 0.5 ms gap in median and trimmed
    mean, not a dudect t-test (that one belongs to an offline investigation, not a CI gate)."""
    s = throttle_server
    prefix_secret = DEMO_CLIENT_SECRET[:-1] + ("X" if DEMO_CLIENT_SECRET[-1] != "X" else "Y")
    kinds = {
        "unknown client": {"client_id": "nosuchclient01", "client_secret": "wrong-secret-xxxxxxxxxxxxxxxxx"},
        "wrong secret": {"client_id": DEMO_CLIENT_ID, "client_secret": "wrong-secret-xxxxxxxxxxxxxxxxx"},
        "secret, all but the last byte right": {"client_id": "nosuchclient02", "client_secret": prefix_secret},
        "secret, nothing right": {"client_id": "nosuchclient03", "client_secret": "Z" * len(prefix_secret)},
    }
    kinds["secret, all but the last byte right"]["client_id"] = DEMO_CLIENT_ID
    kinds["secret, nothing right"]["client_id"] = DEMO_CLIENT_ID
    samples = {k: [] for k in kinds}
    # 3 demo-client failures a round: 3 rounds per address stay under 10 per (client, address).
    per_address, rounds = 3, 2000
    names = list(kinds)
    for r in range(rounds):
        if r % per_address == 0:
            a = r // per_address
            sess = session_for(s, f"127.1.{a // 250}.{a % 250 + 1}")
            sess.post(s.base + "/healthz", timeout=TIMEOUT)  # connect outside the timed region
        order = names if r % 2 == 0 else names[::-1]
        for k in order:
            samples[k].append(_timed(sess, s.token_endpoint, dict(kinds[k], grant_type="client_credentials")))

    def compare(a, b):
        ma, mb = statistics.median(samples[a]), statistics.median(samples[b])
        ta, tb = trimmed_mean(samples[a]), trimmed_mean(samples[b])
        for x, y, what in ((ma, mb, "median"), (ta, tb, "trimmed mean")):
            gap = abs(x - y)
            assert gap < max(0.2 * min(x, y), 0.0005), (
                f"{a} vs {b}: {what} {x * 1e3:.3f} ms vs {y * 1e3:.3f} ms")

    compare("unknown client", "wrong secret")
    compare("secret, all but the last byte right", "secret, nothing right")


def grep_store(server, needles: list[str]) -> list[str]:
    """Which of `needles` occur in the store files (database, WAL, shared memory), searched by
    grep in a child process."""
    files = [str(p) for p in Path(server.data_dir).iterdir()
             if p.name.startswith("scopegate.db")]
    assert any(f.endswith("scopegate.db") for f in files), files
    patterns = Path(server.data_dir).parent / f"{Path(server.data_dir).name}-needles.txt"
    patterns.write_text("\n".join(needles) + "\n")
    p = subprocess.run(["grep", "-a", "-o", "-h", "-F", "-f", str(patterns), *files],
                       capture_output=True, text=True, errors="replace", timeout=60)
    assert p.returncode in (0, 1), p.stderr
    return sorted(set(p.stdout.split()))


@pytest.fixture(scope="module")
def issued_secrets(debug_server):
    """Everything secret that crossed the wire of a full flow on the debug-logging server."""
    s = debug_server
    code, verifier = authorize_code(s)
    tokens = redeem(s, code, verifier).json()
    refreshed = token_request(s, dict(DEMO_CREDENTIALS, grant_type="refresh_token",
                                      refresh_token=tokens["refresh_token"])).json()
    app = token_request(s, dict(DEMO_CREDENTIALS, grant_type="client_credentials")).json()
    made = s.cli("app", "create", "--name", "Secret Check", "--owner", DEVELOPER, "--redirect-uri",
                 "https://secret-check.example/cb")
    wrong = "wrong-secret-canary-7f3a9c"
    token_request(s, {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID, "client_secret": wrong},
                  source=fresh_source())
    sign_in_attempt(s, fresh_source(), MEMBER, "wrong-password-canary-51ab")
    time.sleep(1.5)  # let the log writer flush
    return {
        "code": code, "code_verifier": verifier,
        "access token": tokens["access_token"], "refresh token": tokens["refresh_token"],
        "refreshed access token": refreshed["access_token"], "app token": app["access_token"],
        "new client secret": made["client_secret"], "demo client secret": DEMO_CLIENT_SECRET,
        "wrong secret": wrong, "member password": DEMO_PASSWORD,
        "wrong password": "wrong-password-canary-51ab",
    }


@pytest.mark.check("TS-04", "TS-02")
def test_no_code_token_or_secret_is_stored_in_the_clear(debug_server, issued_secrets):
    leaked = grep_store(debug_server, list(issued_secrets.values()))
    names = [k for k, v in issued_secrets.items() if v in leaked]
    assert not names, f"found in the store files: {names}"
    # TS-02: the client secret is not stored as a bare (unkeyed) SHA-256 either.
    import hashlib
    secret = issued_secrets["new client secret"]
    digest = hashlib.sha256(secret.encode()).digest()
    bare = [digest.hex(), base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
            base64.b64encode(digest).decode().rstrip("=")]
    assert not grep_store(debug_server, bare), "client secret stored as plain SHA-256"


@pytest.mark.check("TS-05")
def test_no_code_token_secret_or_password_reaches_the_debug_logs(debug_server, issued_secrets):
    logs = logs_since_start(debug_server)
    assert "DEBUG" in logs or "debug" in logs.lower(), "the server does not log at debug level"
    leaked = [k for k, v in issued_secrets.items() if v in logs]
    assert not leaked, f"found in the logs: {leaked}"


@pytest.mark.check("TS-06")
def test_tokens_are_unique_and_carry_at_least_128_random_bits(debug_server):
    s = debug_server
    sessions = [session_for(s, f"127.2.0.{i + 1}") for i in range(4)]

    def app_tokens(i):
        out = []
        for _ in range(1250):
            r = sessions[i].post(s.token_endpoint, data=dict(DEMO_CREDENTIALS, grant_type="client_credentials"),
                                 timeout=TIMEOUT)
            assert r.status_code == 200, r.text
            out.append(r.json()["access_token"])
        return out

    with ThreadPoolExecutor(4) as pool:
        tokens = [t for chunk in pool.map(app_tokens, range(4)) for t in chunk]
    codes, refresh = [], []
    for _ in range(20):
        code, verifier = authorize_code(s)
        codes.append(code)
        refresh.append(redeem(s, code, verifier).json()["refresh_token"])
    everything = tokens + codes + refresh
    assert len(set(everything)) == len(everything), "duplicate token or code"
    for value in everything:
        body = value[2:] if value.startswith("AQ") else value
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert len(raw) >= 16, f"only {len(raw) * 8} bits: {value}"
    # A crude uniformity check over 5000 x 43 characters: every base64url symbol shows up at a
    # rate near 1/64 (a broken generator, e.g. a counter or a fixed seed, fails this).
    chars = "".join(t[2:44] for t in tokens)
    freq = {c: chars.count(c) / len(chars) for c in set(chars)}
    assert len(freq) == 64
    assert all(0.5 / 64 < f < 1.5 / 64 for f in freq.values()), freq
    # Code review: the entropy source is the OS CSPRNG.
    assert "getrandom::getrandom" in (REPO_ROOT / "crates/app/src/clock.rs").read_text()


# MAL: malformed input --------------------------------------------------------------------------------


def auth_params(**extra) -> dict:
    verifier, challenge = pkce_pair()
    p = {"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT,
         "scope": SCOPE, "state": "st-123", "code_challenge": challenge, "code_challenge_method": "S256"}
    p.update(extra)
    return p


def authorize_raw(server, query: str, method="GET"):
    s = session_for(server)
    if method == "GET":
        return s.get(server.authorization_endpoint + "?" + query, allow_redirects=False, timeout=TIMEOUT)
    return s.post(server.authorization_endpoint, data=query, allow_redirects=False, timeout=TIMEOUT,
                  headers={"Content-Type": "application/x-www-form-urlencoded"})


def no_server_error(resp):
    assert resp.status_code < 500, f"{resp.status_code}: {resp.text[:300]}"
    for trace in ("panicked", ".rs:", "stack backtrace"):
        assert trace not in resp.text
    return resp


def redirect_error(resp) -> dict:
    assert resp.status_code in (302, 303), f"{resp.status_code}: {resp.text[:200]}"
    loc = resp.headers["Location"]
    assert loc.startswith(DEMO_REDIRECT), loc
    return {k: v[0] for k, v in parse_qs(urlsplit(loc).query).items()}


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.mark.check("MAL-01")
def test_duplicated_parameters_are_refused_everywhere(server):
    base = auth_params()
    for method in ("GET", "POST"):
        # A trusted client and redirect URL: the error goes back to the client.
        for name in ("state", "scope", "response_type", "code_challenge"):
            q = urlencode(base) + "&" + urlencode({name: base[name]})
            params = redirect_error(no_server_error(authorize_raw(server, q, method)))
            assert params.get("error") == "invalid_request", (method, name, params)
        # The client or the redirect URL itself duplicated: a page, never a redirect.
        for name in ("client_id", "redirect_uri"):
            q = urlencode(base) + "&" + urlencode({name: base[name]})
            resp = no_server_error(authorize_raw(server, q, method))
            assert resp.status_code == 400 and "Location" not in resp.headers, (method, name)
    for url, data in (
        (server.token_endpoint, urlencode(dict(DEMO_CREDENTIALS, grant_type="client_credentials"))),
        (server.revocation_endpoint, urlencode(dict(DEMO_CREDENTIALS, token=random_token()))),
        (server.introspection_endpoint, urlencode(dict(DEMO_CREDENTIALS, token=random_token()))),
    ):
        for name in ("client_id", "grant_type", "token", "client_secret"):
            if name + "=" not in data:
                continue
            value = parse_qs(data)[name][0]
            oauth_error(post(server, url, data + "&" + urlencode({name: value}), headers=FORM),
                        400, "invalid_request")
    # Userinfo takes the token from the header only; a duplicated body token must not work.
    resp = post(server, "/v2/userinfo", "access_token=AQx&access_token=AQx", headers=FORM)
    assert resp.status_code in (400, 401), resp.status_code


@pytest.mark.check("MAL-02")
def test_a_parameter_in_both_query_and_body_of_the_token_request_is_refused(server):
    body = dict(DEMO_CREDENTIALS, grant_type="client_credentials")
    for name, value in (("grant_type", "client_credentials"), ("client_id", DEMO_CLIENT_ID),
                        ("scope", "r_sales_nav_profiles")):
        data = dict(body, scope="r_sales_nav_validation") if name == "scope" else body
        resp = post(server, server.token_endpoint + "?" + urlencode({name: value}), data)
        oauth_error(resp, 400, "invalid_request")


def rss_kib(server) -> int:
    status = Path(f"/proc/{server.proc.pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+)", status).group(1))


@pytest.mark.check("MAL-03")
def test_huge_inputs_are_refused_fast_with_constant_memory(server):
    s = session_for(server)
    before = rss_kib(server)
    cases = {
        "10 KiB state": ("GET", server.authorization_endpoint + "?" + urlencode(auth_params(state="s" * 10240)), None),
        "100 KiB scope": ("POST", server.token_endpoint, dict(DEMO_CREDENTIALS, grant_type="client_credentials",
                                                              scope="a" * 102400)),
        "1 MiB body": ("POST", server.token_endpoint, "x=" + "a" * (1 << 20)),
        "64 KiB URL": ("GET", server.authorization_endpoint + "?state=" + "a" * 65536, None),
        "10 000 parameters": ("POST", server.token_endpoint, "&".join(f"p{i}=v" for i in range(10000))),
        "1 000 scope values": ("POST", server.token_endpoint, dict(DEMO_CREDENTIALS, grant_type="client_credentials",
                                                                   scope=" ".join(f"s{i}" for i in range(1000)))),
    }
    for _ in range(3):  # repeated, so a leak would show in the RSS
        for what, (method, url, data) in cases.items():
            t0 = time.monotonic()
            try:
                if method == "GET":
                    resp = s.get(url, allow_redirects=False, timeout=TIMEOUT)
                else:
                    resp = s.post(url, data=data, allow_redirects=False, timeout=TIMEOUT,
                                  headers=FORM if isinstance(data, str) else None)
                status = resp.status_code
            except requests.ConnectionError:
                status = "closed"  # hyper drops an oversized request head: also a refusal
            elapsed = time.monotonic() - t0
            assert elapsed < 2, f"{what}: {elapsed:.1f} s"
            if what == "10 KiB state":
                assert status != "closed" and status < 500, (what, status)
            else:
                assert status in (400, 413, 414, 431, "closed"), (what, status)
    assert s.get(server.base + "/healthz", timeout=TIMEOUT).ok
    grown = rss_kib(server) - before
    assert grown < 64 * 1024, f"RSS grew by {grown} KiB"


BAD_UTF8 = ["%FF", "%C3%28", "%C0%AF", "%ED%A0%80"]


@pytest.mark.check("MAL-04")
def test_invalid_utf8_is_invalid_request_never_a_crash(server):
    body = dict(DEMO_CREDENTIALS, grant_type="client_credentials", scope="r_sales_nav_profiles")
    for bad in BAD_UTF8:
        for name in body:
            data = urlencode({k: v for k, v in body.items() if k != name}) + f"&{name}=x{bad}"
            oauth_error(post(server, server.token_endpoint, data, headers=FORM), 400, "invalid_request")
        for url in (server.revocation_endpoint, server.introspection_endpoint):
            data = urlencode(DEMO_CREDENTIALS) + f"&token=AQ{bad}"
            oauth_error(post(server, url, data, headers=FORM), 400, "invalid_request")
        for name in ("client_id", "redirect_uri", "state", "scope"):
            q = urlencode({k: v for k, v in auth_params().items() if k != name}) + f"&{name}=x{bad}"
            resp = no_server_error(authorize_raw(server, q))
            if resp.status_code in (302, 303):
                assert redirect_error(resp)["error"] == "invalid_request"
            else:
                assert resp.status_code == 400, (name, bad, resp.status_code)
        # In the (form-urlencoded) Basic credentials, and as raw bytes after base64.
        for raw in (f"{DEMO_CLIENT_ID}:x{bad}".encode(), DEMO_CLIENT_ID.encode() + b":\xff\xfe"):
            header = "Basic " + base64.b64encode(raw).decode()
            resp = post(server, server.token_endpoint, {"grant_type": "client_credentials"},
                        headers={"Authorization": header}, source=fresh_source())
            oauth_error(resp, 400, "invalid_request")


@pytest.mark.check("MAL-05")
def test_nul_and_crlf_in_parameters_never_inject_headers(server):
    for name in ("state", "redirect_uri", "client_id", "login_hint"):
        for bad in ("%00", "%0D%0AX-Injected:%20yes", "%0AX-Injected:%20yes"):
            value = urlencode({name: auth_params().get(name, "hint")})
            q = urlencode({k: v for k, v in auth_params().items() if k != name}) + f"&{value}{bad}"
            resp = no_server_error(authorize_raw(server, q))
            assert "X-Injected" not in resp.headers
            loc = resp.headers.get("Location", "")
            assert not re.search(r"[\x00\r\n]", loc), loc
            assert resp.status_code == 400 or (resp.status_code in (302, 303) and "\n" not in loc), resp.status_code


@pytest.mark.check("MAL-06")
def test_the_token_endpoint_takes_only_form_urlencoded_bodies(server):
    body = dict(DEMO_CREDENTIALS, grant_type="client_credentials")
    s = session_for(server)
    for content_type, data in (
        ("application/json", '{"grant_type": "client_credentials"}'),
        ("text/plain", urlencode(body)),
        ("multipart/form-data; boundary=b", None),
        (None, urlencode(body)),
    ):
        if content_type and content_type.startswith("multipart"):
            resp = s.post(server.token_endpoint, files={k: (None, v) for k, v in body.items()}, timeout=TIMEOUT)
        else:
            req = requests.Request("POST", server.token_endpoint, data=data.encode()).prepare()
            if content_type:
                req.headers["Content-Type"] = content_type
            else:
                req.headers.pop("Content-Type", None)
            resp = s.send(req, timeout=TIMEOUT)
        oauth_error(resp, 400, "invalid_request")
    # A charset other than UTF-8: either handled (ASCII is the same in latin1) or refused
    # explicitly; a latin1 byte that is not UTF-8 must not be misread.
    latin = {"Content-Type": "application/x-www-form-urlencoded; charset=latin1"}
    resp = post(server, server.token_endpoint, urlencode(body), headers=latin)
    assert resp.status_code == 200 or resp.json()["error"] == "invalid_request", resp.text
    resp = post(server, server.token_endpoint, urlencode(body) + "&scope=caf%E9", headers=latin)
    oauth_error(resp, 400, "invalid_request")


@pytest.mark.check("MAL-07")
def test_empty_parameters_count_as_omitted(server):
    resp = post(server, server.token_endpoint,
                urlencode(dict(DEMO_CREDENTIALS, grant_type="client_credentials")) + "&scope=&state=",
                headers=FORM)
    assert resp.status_code == 200, resp.text
    assert set(resp.json()["scope"].split()) == {"r_sales_nav_profiles", "r_sales_nav_validation"}
    q = urlencode({k: v for k, v in auth_params().items() if k != "state"}) + "&state=&login_hint=&nonce="
    with requests.Session() as browser:
        browser.trust_env, browser.verify = False, server.cert
        callback = browser_sign_in_and_consent(browser, server.authorization_endpoint + "?" + q)
    params = parse_qs(urlsplit(callback).query)
    assert "code" in params and "state" not in params, callback


@pytest.mark.check("MAL-08")
def test_unknown_parameters_are_ignored(server):
    resp = token_request(server, dict(DEMO_CREDENTIALS, grant_type="client_credentials", foo="bar",
                                      x_unknown="1"))
    assert resp.status_code == 200, resp.text
    q = urlencode(auth_params(foo="bar", x_vendor_thing="1"))
    with requests.Session() as browser:
        browser.trust_env, browser.verify = False, server.cert
        callback = browser_sign_in_and_consent(browser, server.authorization_endpoint + "?" + q)
    assert "code" in parse_qs(urlsplit(callback).query), callback


def raw_https(server, request: bytes, *, timeout=10.0, source="127.0.0.1") -> bytes:
    """Sends raw bytes over TLS and returns everything the server answers until it closes or
    goes quiet for `timeout` seconds."""
    host, port = urlsplit(server.base).hostname, urlsplit(server.base).port
    ctx = ssl.create_default_context(cafile=server.cert)
    ctx.set_alpn_protocols(["http/1.1"])
    with socket.create_connection((host, port), timeout=timeout, source_address=(source, 0)) as raw:
        with ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.sendall(request)
            chunks = []
            try:
                while True:
                    data = tls.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
            except (socket.timeout, ssl.SSLError, ConnectionError):
                pass
            return b"".join(chunks)


def status_of(answer: bytes) -> int | None:
    m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    return int(m.group(1)) if m else None


@pytest.mark.check("MAL-09")
def test_malformed_authorization_headers_get_400_or_401(server):
    body = urlencode({"grant_type": "client_credentials"})
    headers_list = [
        ["Authorization: Basic !!!not-base64!!!"],
        ["Authorization: Basic " + base64.b64encode(b"no-colon-here").decode()],
        ["Authorization: Basic " + "A" * 10240],
        ["Authorization: " + basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET), "Authorization: " + basic(DEMO_CLIENT_ID, "x")],
        ["Authorization: Bearer AQabc", "Authorization: " + basic(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)],
        ["Authorization: Bearer AQabc"],
        ["Authorization: Basic"],
        ["Authorization: "],
    ]
    host = urlsplit(server.base).netloc
    for extra in headers_list:
        request = (f"POST /oauth/v2/accessToken HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
                   f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                   + "".join(h + "\r\n" for h in extra) + "\r\n" + body).encode()
        answer = raw_https(server, request, source=fresh_source())
        assert status_of(answer) in (400, 401), (extra[0][:40], answer[:200])
    assert session_for(server).get(server.base + "/healthz", timeout=TIMEOUT).ok


def jws(header: dict | str, payload: dict | str, signature: bytes = b"") -> str:
    def part(x):
        raw = x if isinstance(x, str) else __import__("json").dumps(x)
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    return f"{part(header)}.{part(payload)}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


@pytest.mark.check("MAL-10")
def test_malformed_jwts_are_rejected_cleanly(server):
    claims = {"iss": DEMO_CLIENT_ID, "sub": DEMO_CLIENT_ID, "aud": server.token_endpoint, "exp": 2 ** 40}
    bad_jwts = [
        jws({"alg": "none"}, claims),
        jws({"alg": "HS256", "kid": "x"}, claims, b"\x00" * 32),
        jws({"alg": "RS256"}, claims, b"\x01" * 256),  # missing kid
        jws({"alg": "RS256", "x": "h" * 20000}, claims),
        jws("[" * 10000 + "]" * 10000, claims),
        "not.a.jwt", "!!!.???.***", "a.b", "",
    ]
    for token in bad_jwts:
        # id_token_hint and request at the authorization endpoint.
        for name in ("id_token_hint", "request"):
            resp = no_server_error(authorize_raw(server, urlencode(auth_params(**{name: token}))))
            if name == "request" and token:
                assert redirect_error(resp)["error"] in ("request_not_supported", "invalid_request_object")
        # client_assertion at the token endpoint: never authenticates the client.
        resp = no_server_error(token_request(server, {
            "grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID,
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token}, source=fresh_source()))
        assert resp.status_code in (400, 401) and "access_token" not in resp.text, resp.text


@pytest.mark.check("MAL-11")
def test_http_level_abuse_is_cut_off(server):
    host, port = urlsplit(server.base).hostname, urlsplit(server.base).port
    results: dict[str, float | None] = {}

    def silent_tcp():
        # Never starts TLS: the handshake timeout must close it.
        with socket.create_connection((host, port), timeout=20) as s:
            t0 = time.monotonic()
            try:
                closed = s.recv(1) == b""
            except socket.timeout:
                closed = False  # still open after 20 s
            except ConnectionError:
                closed = True
            results["silent"] = time.monotonic() - t0 if closed else None

    def slowloris():
        ctx = ssl.create_default_context(cafile=server.cert)
        ctx.set_alpn_protocols(["http/1.1"])
        with socket.create_connection((host, port), timeout=5) as raw, \
                ctx.wrap_socket(raw, server_hostname=host) as tls:
            tls.setblocking(False)
            t0 = time.monotonic()
            tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            results["slowloris"] = None
            while time.monotonic() - t0 < 45:
                try:
                    tls.sendall(b"X-a: b\r\n")
                except (BrokenPipeError, ConnectionError, ssl.SSLError):
                    results["slowloris"] = time.monotonic() - t0
                    return
                readable, _, _ = select.select([tls], [], [], 1.0)
                if readable:
                    try:
                        tls.recv(4096)  # a 408 or the close
                    except ssl.SSLWantReadError:
                        continue
                    except (ConnectionError, ssl.SSLError):
                        pass
                    results["slowloris"] = time.monotonic() - t0
                    return

    threads = [threading.Thread(target=f) for f in (silent_tcp, slowloris)]
    for t in threads:
        t.start()
    # Meanwhile: request smuggling and a flood of headers on other connections.
    smuggle = (b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
    answer = raw_https(server, smuggle, timeout=5)
    # hyper refuses the pair (400) or lets chunked win and closes (RFC 9112 6.3); either way one
    # answer, and nothing for the smuggled request.
    assert status_of(answer) in (400, 405), answer[:200]
    assert answer.count(b"HTTP/1.1 ") == 1, f"a second response: request smuggling\n{answer[:500]!r}"
    flood = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
        b"X-h%d: v\r\n" % i for i in range(100000)) + b"\r\n"
    t0 = time.monotonic()
    try:
        answer = raw_https(server, flood, timeout=10)
    except (ConnectionError, ssl.SSLError):
        answer = b""
    assert time.monotonic() - t0 < 10
    assert status_of(answer) in (400, 431, None), answer[:200]
    for t in threads:
        t.join(60)
    assert results.get("silent") is not None and results["silent"] < 15, results
    assert results.get("slowloris") is not None and results["slowloris"] < 40, results
    assert session_for(server).get(server.base + "/healthz", timeout=TIMEOUT).ok


@pytest.fixture(scope="module")
def admin_key(server):
    return server.cli("admin-key", "create", "--name", "mal-12")["key"]


@pytest.mark.check("MAL-12")
def test_the_admin_api_refuses_malformed_json_with_a_schema_error(server, admin_key):
    s = session_for(server)
    headers = {"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"}
    good = {"name": "Mal App", "owner": DEVELOPER, "redirect_uris": ["https://mal.example/cb"]}
    import json as _json
    bodies = {
        "deep nesting": "[" * 10000 + "]" * 10000,
        "deep object": '{"name":' * 5000 + '"x"' + "}" * 5000,
        "huge array": _json.dumps(dict(good, redirect_uris=["https://mal.example/cb"] * 2000)),  # < 64 KiB
        "wrong types": _json.dumps(dict(good, name=123, redirect_uris="https://mal.example/cb")),
        "extra fields": _json.dumps(dict(good, is_admin=True, client_secret="chosen")),
        "not JSON": "{name: 'x'",
        "null": "null",
    }
    for what, body in bodies.items():
        resp = s.post(server.base + "/admin/v1/apps", data=body.encode(), headers=headers, timeout=TIMEOUT)
        assert resp.status_code in (400, 413, 422), (what, resp.status_code, resp.text[:200])
        assert "error" in resp.json(), (what, resp.text[:200])
    # And the well-formed body is accepted, so the refusals above were about the shape.
    resp = s.post(server.base + "/admin/v1/apps", data=_json.dumps(good).encode(), headers=headers, timeout=TIMEOUT)
    assert resp.status_code == 201, resp.text


# Each parser of untrusted input and its cargo-fuzz target (fuzz/fuzz_targets/<target>.rs).
FUZZ_TARGETS = {
    "form bodies": "form",
    "query strings and the body/query/Content-Type mix": "form_request",
    "Basic and Bearer headers": "auth_header",
    "scope strings": "scope",
    "redirect URLs": "redirect_uri",
    "JWS (id_token_hint)": "jws",
    "prompt and the claims parameter": "oidc_request",
    "the catalog loader": "catalog",
    "the route-table loader": "routes",
    "route matching and URNs": "route_match",
}


@pytest.mark.check("MAL-13")
def test_every_parser_has_a_fuzz_target_and_corpus():
    """The fuzzing itself is cargo-fuzz's (scripts/fuzz, run by scripts/test); this holds that
    every parser has a target, a non-empty corpus under fuzz/corpus/<target>, and that
    scripts/fuzz runs it (it runs every target in fuzz/fuzz_targets)."""
    fuzz = REPO_ROOT / "fuzz"
    missing = [
        f"{what} ({t})"
        for what, t in FUZZ_TARGETS.items()
        if not (fuzz / "fuzz_targets" / f"{t}.rs").is_file()
        or not (fuzz / "corpus" / t).is_dir()
        or not any((fuzz / "corpus" / t).iterdir())
    ]
    assert not missing, f"no fuzz target or corpus for {missing}"
    assert "scripts/fuzz" in (REPO_ROOT / "scripts" / "test").read_text()

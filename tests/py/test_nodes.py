"""Three scopegate nodes over one PostgreSQL, black-box (docs/deployment.md says how to run them).

The nodes share what a deployment behind a load balancer shares: one PostgreSQL schema (fresh
per run, dropped at the end), one master secret (SCOPEGATE_SECRET_KEY), one TLS certificate and
one public URL, hence one issuer. Each listens on its own loopback port and keeps it across
restarts, as a load balancer's backend list would expect.

What is checked:

* keys and issuer agree: the same JWKS and discovery at every node; an ID token signed at one
  node verifies with the keys another node publishes;
* a code issued at one node is redeemed at another, and a replay at a third is refused and
  revokes what the code gave;
* a revocation at one node is seen at once by the others (no cache lets a revoked token in),
  at introspection and at the enforcement API;
* the rate limits are shared: the sandbox's daily quota counters, the sign-in failure counters
  and the client-authentication failure counters (all in PostgreSQL);
* a rolling restart under load: worker threads run a mix of client-credentials issuance,
  introspection, authorization (code issuance), code redemption and refresh round-robin over
  the nodes while each node in turn gets SIGTERM and is started again. No 5xx, no timeout, no
  connection error outside a node's restart window, every shutdown graceful (exit 0, and a
  request in flight when SIGTERM came is answered), and every acknowledged (2xx/302) request
  holds afterwards. Connection errors inside a restart window are counted and reported: a
  client behind a load balancer would have been sent elsewhere or retried.

Needs PostgreSQL at SCOPEGATE_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test)
and `psql`; fails when either is missing, unless SCOPEGATE_TEST_SKIP_POSTGRES=1 asks, loudly,
to skip (as the store suite does).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import itertools
import json
import os
import random
import re
import secrets
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests

from conftest import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT,
    MEMBER,
    CliError,
    Server,
    browser_sign_in_and_consent,
    new_session,
    parse_forms,
    scopegate_bin,
)

NODES = 3
SCOPE = "openid profile w_member_social"
# The load balancer's name: every node announces it, so every node has the same issuer.
PUBLIC_URL = "https://login.scopegate.test"
ISSUER = PUBLIC_URL + "/oauth"
# Daily quota of the one route of the routes file below, small enough to exhaust in a test.
APP_DAILY_QUOTA = 20
ROUTES_TOML = f"""\
[api]
name = "quota"

[[route]]
method = "GET"
path = "/rest/salesNavigatorProfiles"
resource = "salesNavigatorProfiles"
permissions = ["r_sales_nav_profiles"]
tokens = "application"
quota = {{ app_daily = {APP_DAILY_QUOTA} }}
action = "salesNavigatorProfiles"
"""
# scopegate's drain timeout (crates/http/src/serve.rs DRAIN_TIMEOUT) plus slack: a node that
# takes longer to exit after SIGTERM did not shut down gracefully.
DRAIN_TIMEOUT = 20
# /rest needs an active LinkedIn-Version (docs/routes.md "Versions"): this month's is, on nodes
# running on the system clock.
LINKEDIN_VERSION = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m")
EXIT_TIMEOUT = DRAIN_TIMEOUT + 5
# Per-request timeout of the load: a request that hangs this long is a failure, not a retry.
LOAD_TIMEOUT = 15
LOAD_WORKERS = 6
# The client-authentication throttle (crates/app/src/throttle.rs PER_PAIR).
CLIENT_AUTH_PER_PAIR = 10
# The sign-in throttle (crates/app/src/throttle.rs SIGN_IN_PER_ACCOUNT_AND_ADDRESS.free).
SIGN_IN_MAX_FAILURES = 5
# Failures of the throttle tests come from their own loopback addresses, so the throttles they
# trip (keyed by source address) cannot block the other tests' requests from 127.0.0.1.
SIGN_IN_PROBE_ADDR = "127.0.0.3"
CLIENT_AUTH_PROBE_ADDR = "127.0.0.4"


# PostgreSQL ---------------------------------------------------------------------------------------


def _pg_base_url() -> str:
    url = os.environ.get("SCOPEGATE_TEST_DATABASE_URL", "")
    if url:
        return url
    if os.environ.get("SCOPEGATE_TEST_SKIP_POSTGRES") == "1":
        pytest.skip("SKIPPED: several nodes over PostgreSQL (SCOPEGATE_TEST_SKIP_POSTGRES=1)")
    pytest.fail(
        "SCOPEGATE_TEST_DATABASE_URL is not set: the multi-node test needs PostgreSQL "
        "(e.g. postgres://postgres@127.0.0.1:5432/test)"
    )


def _psql(url: str, sql: str) -> str:
    """Runs one statement with psql in a child process (no PostgreSQL driver in the venv)."""
    try:
        p = subprocess.run(
            ["psql", url, "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        pytest.fail("psql is not installed: the multi-node test needs it to manage its schema")
    if p.returncode != 0:
        raise AssertionError(f"psql {sql!r} failed ({p.returncode}): {p.stderr.strip()}")
    return p.stdout.strip()


@pytest.fixture(scope="module")
def pg_schema():
    """A fresh schema name on the test database, dropped at the end. It matches the pattern
    scripts/test-deps sweeps (it_<hex>), so a run killed half-way leaves nothing for long."""
    base = _pg_base_url()
    try:
        _psql(base, "SELECT 1")
    except AssertionError as e:
        pytest.fail(f"PostgreSQL at SCOPEGATE_TEST_DATABASE_URL is unreachable: {e}")
    schema = "it_" + secrets.token_hex(6)
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}schema={schema}"
    finally:
        _psql(base, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# Nodes --------------------------------------------------------------------------------------------


def _free_port() -> int:
    """A port nothing listens on now; the node keeps it across restarts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_certificate(directory: Path) -> tuple[Path, Path]:
    """One certificate for every node, as behind a load balancer that passes TLS through (or
    re-encrypts to backends that share a name). For 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "scopegate nodes test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


class Node(Server):
    """One scopegate node: tests/lib/scopegate.py's Server on PostgreSQL, with the deployment's
    shared secret, certificate and public URL, on a fixed port so it can be restarted in place."""

    def __init__(self, index: int, binary: Path, data_dir: Path, *, database_url: str,
                 secret: str, cert: Path, key: Path, routes: Path, port: int):
        super().__init__(binary, data_dir)
        self.index = index
        self.database_url = database_url
        self.cert = str(cert)
        self.key = str(key)
        self.routes = str(routes)
        self.port = port
        self.env = {"SCOPEGATE_SECRET_KEY": secret}
        self.restarts = 0
        self.demo = False

    def __repr__(self) -> str:
        return f"node{self.index}(:{self.port})"

    def serve_args(self) -> list[str]:
        return self._global_args() + [
            "serve",
            "--listen", f"127.0.0.1:{self.port}",
            "--public-url", PUBLIC_URL,
            "--tls-cert", self.cert,
            "--tls-key", self.key,
            "--routes", self.routes,
            "--sandbox", "true",
        ] + (["--demo"] if self.demo else [])

    def start(self, demo: bool = False) -> None:
        """Starts `scopegate serve` with this node's flags and returns once /healthz answers."""
        self.demo = demo
        # Each run of the process gets its own log files, so a restart keeps the earlier logs.
        self._stdout = self.data_dir / f"serve.{self.restarts}.stdout"
        self._stderr = self.data_dir / f"serve.{self.restarts}.stderr"
        super().start()

    def terminate(self, signalled: threading.Event | None = None) -> tuple[int | None, float]:
        """SIGTERM, as a rolling restart or an orchestrator sends it; returns (exit code, seconds
        to exit). The exit code is None when the node had to be killed. `signalled` is set once
        the signal is sent."""
        assert self.proc is not None and self.proc.poll() is None, f"{self} is not running"
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        if signalled is not None:
            signalled.set()
        try:
            rc = self.proc.wait(timeout=EXIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
            rc = None
        self.restarts += 1
        return rc, time.monotonic() - began

    def cli(self, *args: str, check: bool = True):
        """`scopegate --json ARGS` on the shared store, with the shared secret."""
        cmd = self._global_args() + ["--json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                           cwd=self.data_dir, env=self.env)
        if check and p.returncode != 0:
            raise CliError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        return json.loads(p.stdout) if p.stdout.strip() else None

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')}"
            for p in sorted(self.data_dir.glob("serve.*"))
        )


@pytest.fixture(scope="module")
def nodes(pg_schema, tmp_path_factory):
    """Three nodes over one PostgreSQL schema. Node 0 starts first with --demo (one node
    migrates and creates the demo data); nodes 1 and 2 then start together."""
    shared = tmp_path_factory.mktemp("nodes-shared")
    cert, key = _make_certificate(shared)
    routes = shared / "routes.toml"
    routes.write_text(ROUTES_TOML)
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")
    ports: set[int] = set()
    while len(ports) < NODES:
        ports.add(_free_port())
    all_nodes = [
        Node(i, scopegate_bin(), tmp_path_factory.mktemp(f"node{i}"), database_url=pg_schema,
             secret=secret, cert=cert, key=key, routes=routes, port=port)
        for i, port in enumerate(sorted(ports))
    ]
    try:
        all_nodes[0].start(demo=True)
        with ThreadPoolExecutor(NODES - 1) as pool:
            list(pool.map(lambda n: n.start(), all_nodes[1:]))
        yield all_nodes
    finally:
        for n in all_nodes:
            n.stop()


# HTTP ---------------------------------------------------------------------------------------------


def session_for(nodes: list[Node], source: str | None = None) -> requests.Session:
    """A session that verifies the nodes' shared certificate, optionally from `source`."""
    return new_session(nodes[0].cert, source)


CLIENT = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}


def client_credentials(s: requests.Session, node: Node, timeout: float = 30) -> requests.Response:
    return s.post(node.token_endpoint, data=dict(CLIENT, grant_type="client_credentials"),
                  timeout=timeout)


def introspect(s: requests.Session, node: Node, token: str, timeout: float = 30) -> dict:
    r = s.post(node.introspection_endpoint, data=dict(CLIENT, token=token), timeout=timeout)
    assert r.status_code == 200, f"introspection at {node}: {r.status_code} {r.text}"
    return r.json()


def redeem(s: requests.Session, node: Node, code: str, verifier: str,
           timeout: float = 30) -> requests.Response:
    return s.post(node.token_endpoint, timeout=timeout, data=dict(
        CLIENT, grant_type="authorization_code", code=code, redirect_uri=DEMO_REDIRECT,
        code_verifier=verifier))


def refresh(s: requests.Session, node: Node, refresh_token: str,
            timeout: float = 30) -> requests.Response:
    return s.post(node.token_endpoint, timeout=timeout, data=dict(
        CLIENT, grant_type="refresh_token", refresh_token=refresh_token))


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.decode().rstrip("=")


def authorization_url(node: Node) -> tuple[str, str, str]:
    """The demo app's authorization URL at a node; returns (url, state, code_verifier)."""
    verifier, challenge = _pkce()
    state = secrets.token_urlsafe(12)
    q = urlencode({"response_type": "code", "client_id": DEMO_CLIENT_ID,
                   "redirect_uri": DEMO_REDIRECT, "scope": SCOPE, "state": state,
                   "code_challenge": challenge, "code_challenge_method": "S256"})
    return f"{node.authorization_endpoint}?{q}", state, verifier


def callback_params(location: str, state: str) -> dict[str, str]:
    """The parameters of a redirect back to the demo app, checked: its URL, state and issuer."""
    assert location.startswith(DEMO_REDIRECT + "?"), location
    q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert q.get("state") == state, location
    # RFC 9207: every node names the one issuer of the deployment.
    assert q.get("iss") == ISSUER, location
    return q


def signed_in_browser(nodes: list[Node]) -> requests.Session:
    """The member's browser, signed in and consented at node 0, holding a live token of the
    grant: later authorizations at any node redirect straight back with a code."""
    browser = session_for(nodes)
    url, state, verifier = authorization_url(nodes[0])
    q = callback_params(browser_sign_in_and_consent(browser, url), state)
    r = redeem(browser, nodes[0], q["code"], verifier)
    assert r.status_code == 200, r.text
    return browser


def _b64(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def verify_jwt(jwt: str, jwks: dict) -> dict:
    """Checks an RS256 or ES256 JWT against a JWKS; returns its claims."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    head_b64, body_b64, sig_b64 = jwt.split(".")
    head = json.loads(_b64(head_b64))
    jwk = next((k for k in jwks["keys"] if k["kid"] == head["kid"]), None)
    assert jwk is not None, f"kid {head['kid']} is not in {jwks}"
    signed, sig = f"{head_b64}.{body_b64}".encode(), _b64(sig_b64)
    if head["alg"] == "RS256":
        pub = rsa.RSAPublicNumbers(int.from_bytes(_b64(jwk["e"]), "big"),
                                   int.from_bytes(_b64(jwk["n"]), "big")).public_key()
        pub.verify(sig, signed, padding.PKCS1v15(), hashes.SHA256())
    else:
        assert head["alg"] == "ES256", head
        pub = ec.EllipticCurvePublicNumbers(int.from_bytes(_b64(jwk["x"]), "big"),
                                            int.from_bytes(_b64(jwk["y"]), "big"),
                                            ec.SECP256R1()).public_key()
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        pub.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    return json.loads(_b64(body_b64))


# Agreement ----------------------------------------------------------------------------------------


def test_nodes_publish_the_same_keys_and_issuer(nodes):
    s = session_for(nodes)
    jwks = [s.get(n.base + "/oauth/openid/jwks", timeout=30).json() for n in nodes]
    assert jwks[0] == jwks[1] == jwks[2], "every node publishes the same keys"
    assert len(jwks[0]["keys"]) == 1, f"one signing key per deployment, not one per node: {jwks[0]}"
    docs = [s.get(n.base + "/oauth/.well-known/openid-configuration", timeout=30).json()
            for n in nodes]
    assert {d["issuer"] for d in docs} == {ISSUER}
    assert {d["jwks_uri"] for d in docs} == {docs[0]["jwks_uri"]}
    assert docs[0]["jwks_uri"].startswith(PUBLIC_URL + "/"), docs[0]["jwks_uri"]
    for n in nodes:
        assert n.issuer == ISSUER, f"{n} announced issuer {n.issuer}"


def test_code_issued_at_one_node_is_redeemed_at_another_and_not_twice(nodes):
    a, b, c = nodes
    browser = session_for(nodes)
    s = session_for(nodes)
    url, state, verifier = authorization_url(a)
    q = callback_params(browser_sign_in_and_consent(browser, url), state)
    r = redeem(s, b, q["code"], verifier)
    assert r.status_code == 200, f"a code issued at {a} is redeemed at {b}: {r.text}"
    token = r.json()
    # The ID token comes from node b and verifies with the keys node c publishes.
    claims = verify_jwt(token["id_token"], s.get(c.base + "/oauth/openid/jwks", timeout=30).json())
    assert claims["iss"] == ISSUER and claims["aud"] == DEMO_CLIENT_ID, claims
    for n in nodes:
        for t in (token["access_token"], token["refresh_token"]):
            assert introspect(s, n, t)["active"] is True, f"{n} does not know a token of {b}"
    # The session made at node a signs the member in at node c too: no consent or sign-in again.
    url, state, verifier2 = authorization_url(c)
    r = browser.get(url, allow_redirects=False, timeout=30)
    assert r.status_code in (302, 303), f"{c} did not accept {a}'s session: {r.status_code}"
    callback_params(r.headers["Location"], state)
    # A replay of the first code at node c is refused, and revokes the tokens node b issued.
    again = redeem(s, c, q["code"], verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant", again.text
    for n in nodes:
        for t in (token["access_token"], token["refresh_token"]):
            info = introspect(s, n, t)
            assert info["active"] is False and info.get("status") == "revoked", (n, info)


def test_revocation_at_one_node_is_seen_at_once_by_the_others(nodes):
    """Each round: a token is issued at one node and used at every node (so any cache would be
    warm), revoked at the next one, and at once refused at every node, at introspection and at
    the enforcement API (the sandbox route of the routes file)."""
    s = session_for(nodes)
    for i in range(3 * NODES):
        issuer_node, revoker = nodes[i % NODES], nodes[(i + 1) % NODES]
        r = client_credentials(s, issuer_node)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        for n in nodes:
            assert introspect(s, n, token)["active"] is True
        r = s.post(revoker.revocation_endpoint, data=dict(CLIENT, token=token), timeout=30)
        assert r.status_code == 200, f"revocation at {revoker}: {r.status_code} {r.text}"
        for n in nodes:
            info = introspect(s, n, token)
            assert info["active"] is False and info.get("status") == "revoked", (
                f"{n} still takes a token revoked at {revoker}: {info}")
            api = s.get(n.base + "/rest/salesNavigatorProfiles", timeout=30,
                        headers={"Authorization": f"Bearer {token}", "LinkedIn-Version": LINKEDIN_VERSION})
            assert api.status_code == 401, (
                f"{n}'s API still takes a token revoked at {revoker}: {api.status_code}")


# Rate limits --------------------------------------------------------------------------------------


def test_quota_counters_are_shared(nodes):
    """The daily app quota of a route (docs/routes.md "Rate limits") is one counter in
    PostgreSQL: three nodes hit concurrently serve exactly the quota, not three times it."""
    s = session_for(nodes)
    r = client_credentials(s, nodes[0])
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    targets = [nodes[i % NODES] for i in range(3 * APP_DAILY_QUOTA)]

    def call(n: Node) -> int:
        with session_for(nodes) as own:
            return own.get(n.base + "/rest/salesNavigatorProfiles", timeout=30,
                           headers={"Authorization": f"Bearer {token}", "LinkedIn-Version": LINKEDIN_VERSION}).status_code

    with ThreadPoolExecutor(12) as pool:
        statuses = Counter(pool.map(call, targets))
    assert statuses == Counter({200: APP_DAILY_QUOTA, 429: 2 * APP_DAILY_QUOTA}), statuses
    # Every node now refuses: the counter each of them sees is the full one.
    for n in nodes:
        r = s.get(n.base + "/rest/salesNavigatorProfiles", timeout=30,
                  headers={"Authorization": f"Bearer {token}", "LinkedIn-Version": LINKEDIN_VERSION})
        assert r.status_code == 429, (n, r.status_code, r.text)


def _sign_in_attempt(s: requests.Session, login_at: Node, post_at: Node, email: str,
                     password: str) -> requests.Response:
    """Fetches the sign-in form at one node and posts it to another (the form's CSRF token
    is shared state too)."""
    page = s.get(login_at.base + "/login", timeout=30)
    assert page.status_code == 200, page.status_code
    form = next(f for f in parse_forms(page.text) if urlsplit(f["action"]).path == "/login")
    data = dict(form["hidden"], action="signin", email=email, password=password)
    return s.post(urljoin(post_at.base + "/", form["action"].lstrip("/")), data=data,
                  allow_redirects=False, timeout=60)


def test_sign_in_failure_counters_are_shared(nodes):
    """Sign-in attempts are counted in PostgreSQL per (account, address) and per address
    (docs/deployment.md: 5 free attempts per account and address, then growing delays):
    failures for one account spread over the nodes add up, and the next attempt from that address
    waits at a node that saw none of them, even with the right password."""
    s = session_for(nodes, SIGN_IN_PROBE_ADDR)
    for i in range(SIGN_IN_MAX_FAILURES):
        r = _sign_in_attempt(s, nodes[i % NODES], nodes[(i + 1) % NODES], MEMBER, "wrong password")
        assert r.status_code == 401, (i, r.status_code)
    fresh = session_for(nodes, SIGN_IN_PROBE_ADDR)
    r = _sign_in_attempt(fresh, nodes[2], nodes[2], MEMBER, DEMO_PASSWORD)
    assert r.status_code == 429, (
        f"the sign-in throttle is not shared: {nodes[2]} answered {r.status_code} after "
        f"{SIGN_IN_MAX_FAILURES} failures at the other nodes")
    assert r.headers.get("Retry-After"), r.headers
    # The member is not locked out: the right password from an address without failures works.
    r = _sign_in_attempt(session_for(nodes), nodes[2], nodes[2], MEMBER, DEMO_PASSWORD)
    assert r.status_code in (302, 303), r.status_code


def test_client_auth_throttle_is_shared_by_the_nodes(nodes):
    """Client-authentication failures are counted in PostgreSQL as well as in each node's
    memory (crates/app/src/oauth/client.rs): 10 failures spread over three nodes make the
    next attempt at any node a 429, so N nodes do not give an attacker N times the attempts."""
    s = session_for(nodes, CLIENT_AUTH_PROBE_ADDR)
    # A client id of its own: a real client from this address is never affected anyway.
    probe = {"client_id": "throttleprobe01", "client_secret": "not-the-secret",
             "grant_type": "client_credentials"}
    for i in range(CLIENT_AUTH_PER_PAIR):
        node = nodes[i % len(nodes)]
        r = s.post(node.token_endpoint, data=probe, timeout=30)
        assert r.status_code == 401, (i, node, r.status_code, r.text)
    for node in nodes:
        r = s.post(node.token_endpoint, data=probe, timeout=30)
        assert r.status_code == 429 and r.headers.get("Retry-After"), (node, r.status_code, r.text)


# Rolling restart under load -----------------------------------------------------------------------


@dataclass
class Outcome:
    """One request of the load."""
    op: str
    node: int
    began: float
    ended: float
    status: int | None = None
    # "refused" (no connection: nothing was sent), "tls" (the handshake failed: nothing was
    # sent), "dropped" (sent, then the connection closed without an answer), "timeout".
    error: str | None = None
    detail: str = ""


def _classify(e: requests.RequestException) -> str:
    text = repr(e)
    if isinstance(e, requests.Timeout):
        return "timeout"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "refused"
    if isinstance(e, requests.exceptions.SSLError):
        return "tls"
    return "dropped"


@dataclass
class Ledger:
    """What the load generator was told, shared by its threads."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    outcomes: list[Outcome] = field(default_factory=list)
    # Every acknowledged token: token -> (kind, code it descends from or None).
    tokens: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Codes acknowledged by a redirect and not yet presented: (code, verifier).
    pending_codes: list[tuple[str, str]] = field(default_factory=list)
    # Codes presented once: code -> (verifier, node index, "redeemed" or the error class).
    presented: dict[str, tuple[str, int, str]] = field(default_factory=dict)
    # Refresh tokens acknowledged, for the refresh operation.
    refresh_tokens: list[str] = field(default_factory=list)
    # Introspections that said a token acknowledged earlier was not active.
    stale: list[tuple[int, str, dict]] = field(default_factory=list)
    # Redemptions of an acknowledged code refused on first presentation.
    lost_codes: list[tuple[int, str]] = field(default_factory=list)
    # Answers no operation expects (4xx other than those above, 3xx other than the callback).
    unexpected: list[Outcome] = field(default_factory=list)


OPS = ["issue", "introspect", "authorize", "redeem", "introspect", "refresh"]


def _worker(w: int, nodes: list[Node], cookies, ledger: Ledger, stop: threading.Event) -> None:
    """Runs the operations in turn, each at the next node in round-robin order, as a load
    balancer without health checks would send them."""
    rng = random.Random(w)
    s = session_for(nodes)
    s.cookies.update(cookies)
    turn = itertools.count(w)
    ops = itertools.cycle(OPS[w % len(OPS):] + OPS[:w % len(OPS)])
    while not stop.is_set():
        op = next(ops)
        node = nodes[next(turn) % NODES]
        with ledger.lock:
            if op == "introspect" and not ledger.tokens:
                op = "issue"
            if op == "redeem" and not ledger.pending_codes:
                op = "authorize"
            if op == "refresh" and not ledger.refresh_tokens:
                op = "issue"
            if op == "introspect":
                token = rng.choice(list(ledger.tokens))
            elif op == "redeem":
                code, verifier = ledger.pending_codes.pop(0)
            elif op == "refresh":
                rt = rng.choice(ledger.refresh_tokens)
        out = Outcome(op, node.index, time.monotonic(), 0.0)
        try:
            if op == "issue":
                r = client_credentials(s, node, LOAD_TIMEOUT)
            elif op == "introspect":
                r = s.post(node.introspection_endpoint, data=dict(CLIENT, token=token),
                           timeout=LOAD_TIMEOUT)
            elif op == "authorize":
                url, state, verifier = authorization_url(node)
                r = s.get(url, allow_redirects=False, timeout=LOAD_TIMEOUT)
            elif op == "redeem":
                r = redeem(s, node, code, verifier, LOAD_TIMEOUT)
            else:
                r = refresh(s, node, rt, LOAD_TIMEOUT)
            out.status = r.status_code
        except requests.RequestException as e:
            out.error, out.detail = _classify(e), repr(e)[:300]
            r = None
        out.ended = time.monotonic()
        with ledger.lock:
            ledger.outcomes.append(out)
            if op == "redeem":
                ledger.presented[code] = (verifier, node.index, out.error or "answered")
            if r is None or r.status_code >= 500:
                continue
            if op == "issue" and r.status_code == 200:
                ledger.tokens[r.json()["access_token"]] = ("client_credentials", None)
            elif op == "introspect" and r.status_code == 200:
                info = r.json()
                if info.get("active") is not True:
                    ledger.stale.append((node.index, ledger.tokens[token][0], info))
            elif op == "authorize" and r.status_code in (302, 303):
                try:
                    q = callback_params(r.headers["Location"], state)
                except AssertionError:
                    ledger.unexpected.append(out)
                    out.detail = r.headers.get("Location", "")[:300]
                else:
                    ledger.pending_codes.append((q["code"], verifier))
            elif op == "redeem" and r.status_code == 200:
                t = r.json()
                ledger.tokens[t["access_token"]] = ("code access", code)
                ledger.tokens[t["refresh_token"]] = ("code refresh", code)
                ledger.refresh_tokens.append(t["refresh_token"])
            elif op == "redeem" and r.status_code == 400:
                ledger.lost_codes.append((node.index, r.text[:300]))
            elif op == "refresh" and r.status_code == 200:
                origin = ledger.tokens.get(rt, ("", None))[1]
                ledger.tokens[r.json()["access_token"]] = ("refreshed access", origin)
            else:
                out.detail = r.text[:300]
                ledger.unexpected.append(out)


def _in_flight_request(node: Node, result: dict, half_sent: threading.Event,
                       signalled: threading.Event) -> None:
    """A client-credentials request in flight when SIGTERM comes, for certain: its headers and
    half its body are sent before the signal, the rest after. Graceful shutdown must read it to
    the end and answer it. Raw TLS, since requests cannot pause in the middle of a body."""
    body = urlencode(dict(CLIENT, grant_type="client_credentials")).encode()
    head = (f"POST /oauth/v2/accessToken HTTP/1.1\r\nHost: 127.0.0.1:{node.port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    ctx = ssl.create_default_context(cafile=node.cert)
    try:
        with socket.create_connection(("127.0.0.1", node.port), timeout=30) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(head + body[: len(body) // 2])
            time.sleep(0.3)  # the node reads the headers and waits for the body
            half_sent.set()
            signalled.wait(timeout=30)
            time.sleep(0.3)  # the node is shutting down now
            tls.sendall(body[len(body) // 2:])
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
        result["status"] = int(answer.split(b" ", 2)[1]) if answer else None
        m = re.search(rb'"access_token":"([^"]+)"', answer)
        result["token"] = m.group(1).decode() if m else None
    except (OSError, ValueError, IndexError) as e:
        result["error"] = repr(e)[:300]


def test_rolling_restart_under_load_loses_no_acknowledged_request(nodes):
    """Worker threads load the three nodes while each in turn gets SIGTERM and is started
    again on its port; then everything acknowledged is checked at every node."""
    browser = signed_in_browser(nodes)
    ledger, stop = Ledger(), threading.Event()
    workers = [threading.Thread(target=_worker, args=(w, nodes, browser.cookies, ledger, stop),
                                daemon=True) for w in range(LOAD_WORKERS)]
    for t in workers:
        t.start()
    # node -> [(window start, window end)]: from SIGTERM until the new process is healthy.
    windows: dict[int, list[tuple[float, float]]] = defaultdict(list)
    shutdowns = []
    try:
        time.sleep(2)  # the load runs against a healthy cluster first
        for node in nodes:
            probe: dict = {}
            half_sent, signalled = threading.Event(), threading.Event()
            prober = threading.Thread(target=_in_flight_request,
                                      args=(node, probe, half_sent, signalled), daemon=True)
            prober.start()
            assert half_sent.wait(timeout=30), f"the in-flight probe could not reach {node}: {probe}"
            began = time.monotonic()
            rc, took = node.terminate(signalled)
            node.start()
            windows[node.index].append((began, time.monotonic()))
            prober.join(timeout=60)
            shutdowns.append((node, rc, took, probe))
            time.sleep(2)  # the restarted node takes load before the next one stops
    finally:
        stop.set()
        for t in workers:
            t.join(timeout=LOAD_TIMEOUT + 5)
    load_end = time.monotonic()

    # The shutdowns were graceful: exit 0 within the drain timeout, the request in flight
    # answered (and its token is checked below with the rest).
    for node, rc, took, probe in shutdowns:
        assert rc == 0, f"{node} exited with {rc} {took:.1f}s after SIGTERM:\n{node.logs()[-4000:]}"
        assert took < DRAIN_TIMEOUT, f"{node} took {took:.1f}s to exit after SIGTERM"
        assert probe.get("status") == 200 and probe.get("token"), (
            f"a request in flight at {node} when SIGTERM came was not answered: {probe}")
        ledger.tokens[probe["token"]] = ("client_credentials (in flight at SIGTERM)", None)

    outcomes = ledger.outcomes
    by_op = Counter(o.op for o in outcomes)
    statuses = Counter((o.op, o.status or o.error) for o in outcomes)

    def in_window(o: Outcome) -> bool:
        # A request that began just before SIGTERM and ended in it belongs to the window too.
        return any(o.began <= end and o.ended >= start - 0.5 for start, end in windows[o.node])

    errors = [o for o in outcomes if o.error]
    in_windows = Counter((o.error, f"node{o.node}") for o in errors if in_window(o))
    outside = [o for o in errors if not in_window(o)]

    def since_sigterm(o: Outcome) -> str:
        start = min((w[0] for w in windows[o.node]), key=lambda t: abs(t - o.began))
        return f"{o.op} at node{o.node} sent {o.began - start:+.3f}s from SIGTERM: {o.detail}"

    # Sent and not answered: the node closed the connection without reading the request (an
    # idle keep-alive connection closed at shutdown, or one accepted just before it). Not lost
    # (nothing was acknowledged), but a proxy would answer 502 for a POST it may not retry.
    dropped = [since_sigterm(o) for o in errors if o.error in ("dropped", "tls") and in_window(o)]
    report = (
        f"{len(outcomes)} requests in {load_end - outcomes[0].began:.1f}s: {dict(by_op)}\n"
        f"answers: {dict(sorted(statuses.items(), key=str))}\n"
        f"connection errors in restart windows: {dict(in_windows)}\n"
        + "".join(f"  unanswered: {d}\n" for d in dropped[:5]) +
        f"shutdowns: " + ", ".join(f"{n} exit {rc} after {t:.2f}s, in-flight request "
                                    f"{p.get('status', p.get('error'))}"
                                    for n, rc, t, p in shutdowns)
    )
    print("\n" + report)
    assert by_op["issue"] and by_op["introspect"] and by_op["authorize"] and by_op["redeem"] \
        and by_op["refresh"], f"the load did not run every operation:\n{report}"
    five = [o for o in outcomes if o.status and o.status >= 500]
    assert not five, f"5xx under a rolling restart: {five[:5]}\n{report}"
    assert not [o for o in errors if o.error == "timeout"], f"requests hung:\n{report}"
    assert not outside, (
        f"connection errors outside any restart window: {outside[:5]}\n{report}")
    assert not ledger.unexpected, f"unexpected answers: {ledger.unexpected[:5]}\n{report}"
    assert not ledger.stale, (
        f"acknowledged tokens introspected inactive: {ledger.stale[:5]}\n{report}")
    assert not ledger.lost_codes, (
        f"acknowledged codes refused on first presentation: {ledger.lost_codes[:5]}\n{report}")

    # Afterwards, with every node up: what was acknowledged holds at every node.
    s_local = threading.local()

    def own_session() -> requests.Session:
        if not hasattr(s_local, "s"):
            s_local.s = session_for(nodes)
        return s_local.s

    def active_everywhere(token: str) -> list[str]:
        return [f"{n}: {info}" for n in nodes
                if (info := introspect(own_session(), n, token))["active"] is not True]

    with ThreadPoolExecutor(8) as pool:
        inactive = [x for x in pool.map(active_everywhere, list(ledger.tokens)) if x]
    assert not inactive, f"acknowledged tokens not active afterwards: {inactive[:5]}\n{report}"

    # Codes acknowledged but not presented before the load stopped still work, once.
    for code, verifier in ledger.pending_codes:
        r = redeem(own_session(), nodes[0], code, verifier)
        assert r.status_code == 200, f"an acknowledged code was lost: {r.status_code} {r.text}"
        ledger.presented[code] = (verifier, 0, "answered")
        ledger.tokens[r.json()["access_token"]] = ("code access", code)

    # No code is redeemable again, at any node other than the one that took it; the replay
    # revokes what the code gave (RFC 6749 4.1.2), which every node then sees.
    # A code whose first presentation failed with a connection error is presented again, as
    # the client would retry it: it must then work once, since the node that dropped the
    # connection never redeemed it. A code consumed by a request that got no answer is an
    # in-flight request dropped by the shutdown.
    retried: Counter = Counter()

    def replay(item) -> str | None:
        code, (verifier, at, how) = item
        other = nodes[(at + 1) % NODES]
        r = redeem(own_session(), other, code, verifier)
        if how == "answered":
            if r.status_code == 400 and r.json().get("error") == "invalid_grant":
                return None
            return f"code redeemed at node{at} is redeemable again at {other}: {r.status_code}"
        with ledger.lock:
            retried[(how, r.status_code)] += 1
        if r.status_code == 200:
            return None
        return (f"code presented at node{at} without an answer ({how}) had been consumed: the "
                f"node redeemed it and dropped the response; retry at {other}: {r.status_code} "
                f"{r.text[:200]}")

    with ThreadPoolExecutor(8) as pool:
        replayed = [x for x in pool.map(replay, list(ledger.presented.items())) if x]
    print(f"codes retried after a connection error (error, retry status): {dict(retried)}")
    assert not replayed, f"{replayed[:5]}\n{report}"

    def revoked_everywhere(token: str) -> list[str]:
        return [f"{n}: {info}" for n in nodes
                if (info := introspect(own_session(), n, token)).get("status") != "revoked"]

    lineage = [t for t, (_, code) in ledger.tokens.items() if code is not None]
    with ThreadPoolExecutor(8) as pool:
        alive = [x for x in pool.map(revoked_everywhere, lineage) if x]
    assert not alive, f"tokens of replayed codes still active: {alive[:5]}\n{report}"

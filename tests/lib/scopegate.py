"""What every Python black-box suite (tests/py, tests/security) needs to drive scopegate.

* ``Server``: a scopegate started with ``--demo`` on a fresh data folder and a free port, its TLS
  certificate (used as ``verify=``, never disabled) and a CLI on the same store.
* ``browser_sign_in_and_consent(session, auth_url) -> callback_url``: what the member does between
  the client's authorization URL and the redirect back to the client; the final redirect is not
  followed (nothing listens on the client's redirect URL), its Location is returned.
* ``oauth_session``, ``ResponseLog``, ``parse_forms``: authlib clients and page forms.

The suites' conftest.py files turn these into fixtures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from authlib.integrations.requests_client import OAuth2Session

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent


def _cargo_target_dir() -> Path:
    """The target directory cargo reports (CARGO_TARGET_DIR or the workspace default)."""
    import json
    import subprocess

    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps", "--manifest-path", str(REPO_ROOT / "Cargo.toml")],
        check=True,
        capture_output=True,
    ).stdout
    return Path(json.loads(out)["target_directory"])


# Where suites write their figures: the target directory the run.sh resolved, else cargo's.
TARGET_DIR = Path(os.environ.get("SCOPEGATE_TARGET_DIR") or _cargo_target_dir())

DEMO_CLIENT_ID = "demoapp0000001"
DEMO_CLIENT_SECRET = "demo-secret-not-for-production"
DEMO_REDIRECT = "http://127.0.0.1:8080/callback"
DEMO_PASSWORD = "scopegate-demo"
MEMBER = "test-member@scopegate.local"
DEVELOPER = "developer@scopegate.local"
ADMIN = "admin@scopegate.local"

HTTP_TIMEOUT = 30
# How long to wait for the binary when another build is replacing it.
BINARY_WAIT = float(os.environ.get("SCOPEGATE_BIN_WAIT", "600"))
START_TIMEOUT = 60

SERVING = re.compile(r"scopegate is serving (https://[^\s]+) \(public URL ([^\s,]+), issuer ([^\s)]+)\)")


def scopegate_bin() -> Path:
    """The binary run.sh built and named; there is no default, so a stale binary is never tested."""
    path = os.environ.get("SCOPEGATE_BIN")
    if not path:
        pytest.fail("SCOPEGATE_BIN is not set: run the suite through its run.sh, which builds the binary")
    return Path(path)


def _wait_for_binary(path: Path) -> None:
    deadline = time.monotonic() + BINARY_WAIT
    while not (path.is_file() and os.access(path, os.X_OK)):
        if time.monotonic() > deadline:
            pytest.fail(f"scopegate binary {path} not found (set SCOPEGATE_BIN)")
        time.sleep(2)


class CliError(AssertionError):
    pass


class Server:
    """A running scopegate and what the tests need to talk to it."""

    def __init__(self, binary: Path, data_dir: Path, env: dict[str, str] | None = None):
        self.binary = binary
        self.data_dir = data_dir
        # Extra environment for the server process (SCOPEGATE_LOG, SCOPEGATE_ADMIN_LISTEN, ...).
        self.env = env or {}
        self.database_url = f"sqlite://{data_dir}/scopegate.db"
        self.cert = str(data_dir / "tls-cert.pem")
        self.proc: subprocess.Popen | None = None
        self.base = ""
        self.issuer = ""
        self._stdout = data_dir / "serve.stdout"
        self._stderr = data_dir / "serve.stderr"

    # Endpoints -------------------------------------------------------------------------------
    @property
    def authorization_endpoint(self) -> str:
        return self.base + "/oauth/v2/authorization"

    @property
    def native_authorization_endpoint(self) -> str:
        return self.base + "/oauth/native-pkce/authorization"

    @property
    def token_endpoint(self) -> str:
        return self.base + "/oauth/v2/accessToken"

    @property
    def introspection_endpoint(self) -> str:
        return self.base + "/oauth/v2/introspectToken"

    @property
    def revocation_endpoint(self) -> str:
        return self.base + "/oauth/v2/revoke"

    # Process ---------------------------------------------------------------------------------
    def _global_args(self) -> list[str]:
        return [
            str(self.binary),
            "--data-dir",
            str(self.data_dir),
            "--database-url",
            self.database_url,
        ]

    def serve_args(self) -> list[str]:
        """The `scopegate serve` command line; subclasses add their own flags."""
        return self._global_args() + ["serve", "--listen", "127.0.0.1:0", "--demo"]

    def start(self) -> None:
        args = self.serve_args()
        # The binary may be mid-rebuild (ETXTBSY, or briefly absent): retry for a while.
        deadline = time.monotonic() + BINARY_WAIT
        while True:
            _wait_for_binary(self.binary)
            try:
                with open(self._stdout, "wb") as out, open(self._stderr, "wb") as err:
                    self.proc = subprocess.Popen(
                        args,
                        stdout=out,
                        stderr=err,
                        stdin=subprocess.DEVNULL,
                        cwd=self.data_dir,
                        env={**os.environ, **self.env} if self.env else None,
                    )
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(2)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            text = self._stdout.read_text(errors="replace")
            m = SERVING.search(text)
            if m:
                self.base, self.issuer = m.group(1).rstrip("/"), m.group(3)
                break
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"scopegate exited with {self.proc.returncode} before serving:\n"
                    f"{text}\n{self._stderr.read_text(errors='replace')}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"scopegate did not start in {START_TIMEOUT}s:\n{text}")
            time.sleep(0.1)
        # Serving is printed once the socket is bound; check TLS and routing answer too.
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                if requests.get(self.base + "/healthz", verify=self.cert, timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("scopegate /healthz did not answer")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)

    def logs(self) -> str:
        return self._stdout.read_text(errors="replace") + self._stderr.read_text(errors="replace")

    # CLI on the same store ------------------------------------------------------------------------
    def cli(self, *args: str, check: bool = True):
        """Runs `scopegate --json ARGS` on the server's store; returns the parsed JSON (or None)."""
        cmd = self._global_args() + ["--json", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=self.data_dir)
        if check and p.returncode != 0:
            raise CliError(f"{' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
        out = p.stdout.strip()
        if not out:
            return None
        try:
            return json.loads(out)
        except ValueError:
            return out




# requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override Session.verify
# (psf/requests#3829), which would check scopegate's self-signed certificate against the system
# CAs. Sessions here therefore ignore the environment (trust_env=False) and verify against the
# server's own certificate.


def oauth_session(server: Server, **kwargs) -> OAuth2Session:
    """An authlib client for scopegate: TLS verified against its certificate, its token endpoint."""
    kwargs.setdefault("token_endpoint", server.token_endpoint)
    kwargs.setdefault("default_timeout", HTTP_TIMEOUT)
    return OAuth2Session(verify=server.cert, trust_env=False, **kwargs)


class ResponseLog:
    """Keeps the raw HTTP responses behind authlib's token calls (authlib only raises OAuthError
    with the error code; the status code matters too)."""

    def __init__(self, client: OAuth2Session):
        self.responses: list[requests.Response] = []
        client.register_compliance_hook("access_token_response", self._keep)
        client.register_compliance_hook("refresh_token_response", self._keep)

    def _keep(self, resp):
        self.responses.append(resp)
        return resp

    @property
    def last(self) -> requests.Response:
        return self.responses[-1]


# The member's browser -------------------------------------------------------------------------------


class _Forms(HTMLParser):
    """The forms of a page: action, method, hidden inputs and submit buttons."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms: list[dict] = []
        self._current: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self._current = {
                "action": a.get("action") or "",
                "method": (a.get("method") or "get").lower(),
                "hidden": {},
                "buttons": [],
            }
            self.forms.append(self._current)
        elif self._current is not None and tag == "input" and (a.get("type") or "").lower() == "hidden":
            self._current["hidden"][a.get("name")] = a.get("value") or ""
        elif self._current is not None and tag == "button":
            self._current["buttons"].append((a.get("name"), a.get("value")))

    def handle_endtag(self, tag):
        if tag == "form":
            self._current = None


def parse_forms(html: str) -> list[dict]:
    p = _Forms()
    p.feed(html)
    p.close()
    return p.forms


def _form(forms: list[dict], action: str) -> dict | None:
    return next((f for f in forms if urlsplit(f["action"]).path == action), None)


def _origin(url: str) -> tuple[str, str]:
    u = urlsplit(url)
    return u.scheme, u.netloc


def browser_sign_in_and_consent(
    session: requests.Session,
    auth_url: str,
    *,
    email: str = MEMBER,
    password: str = DEMO_PASSWORD,
    login_action: str = "signin",
    consent: str = "allow",
    trace: list[str] | None = None,
    max_steps: int = 12,
) -> str:
    """Plays the member's browser from the client's authorization URL until scopegate redirects
    to another origin (the client's redirect URL), and returns that URL without following it.

    Signs in on /login when asked to (``login_action`` "signin" or "cancel") and answers the
    consent page with ``consent`` ("allow" or "cancel"); a member who already consented and holds
    a live token is sent straight back, which is fine too. ``trace``, when given, receives the
    steps taken: "sign-in", "consent", then "redirect"."""
    trace = [] if trace is None else trace
    here = _origin(auth_url)
    resp = session.get(auth_url, allow_redirects=False, timeout=HTTP_TIMEOUT)
    for _ in range(max_steps):
        if resp.status_code in (301, 302, 303, 307, 308):
            location = resp.headers.get("Location")
            assert location, f"{resp.status_code} without Location from {resp.url}"
            target = urljoin(resp.url, location)
            if _origin(target) != here:
                trace.append("redirect")
                return target
            resp = session.get(target, allow_redirects=False, timeout=HTTP_TIMEOUT)
            continue
        if resp.status_code != 200:
            raise AssertionError(
                f"unexpected HTTP {resp.status_code} at {resp.request.method} {resp.url}:\n"
                f"{resp.text[:2000]}"
            )
        forms = parse_forms(resp.text)
        consent_form = _form(forms, "/oauth/v2/authorization/consent")
        login_form = _form(forms, "/login")
        if consent_form is not None:
            assert ("action", consent) in consent_form["buttons"], consent_form
            trace.append("consent")
            data = dict(consent_form["hidden"], action=consent)
            resp = session.post(
                urljoin(resp.url, consent_form["action"]),
                data=data,
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        elif login_form is not None:
            assert {"csrf", "next"} <= set(login_form["hidden"]), login_form
            trace.append("sign-in")
            data = dict(login_form["hidden"], action=login_action)
            if login_action == "signin":
                data.update(email=email, password=password)
            resp = session.post(
                urljoin(resp.url, login_form["action"]),
                data=data,
                allow_redirects=False,
                timeout=HTTP_TIMEOUT,
            )
        else:
            raise AssertionError(f"no sign-in or consent form at {resp.url}:\n{resp.text[:2000]}")
    raise AssertionError(f"no redirect back to the client after {max_steps} steps")


class SourceAddressAdapter(HTTPAdapter):
    """Binds the client end of every connection to one loopback address (127.0.0.0/8 all
    reaches the server listening on 127.0.0.1), so the server sees distinct callers."""

    def __init__(self, source: str, **kwargs):
        self.source = source
        super().__init__(**kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["source_address"] = (self.source, 0)
        super().init_poolmanager(*args, **kwargs)


def new_session(server_or_cert, source: str | None = None) -> requests.Session:
    """A requests session that verifies scopegate's own certificate (a Server or a path) and
    ignores the environment (requests lets REQUESTS_CA_BUNDLE override verify=); with `source`,
    it connects from that loopback address, so address-keyed throttles see a caller of its own."""
    s = requests.Session()
    s.trust_env = False
    s.verify = getattr(server_or_cert, "cert", server_or_cert)
    if source is not None:
        s.mount("https://", SourceAddressAdapter(source))
    return s


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def query_params(url: str) -> dict[str, str]:
    """The query parameters of a URL (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}

"""Fixtures for the authlib black-box tests; the harness itself is tests/lib/scopegate.py.

* ``server`` (module scope): a scopegate started with ``--demo`` on a fresh data folder.
* ``cli``: ``scopegate --json ...`` on that server's store.
* ``browser``: a ``requests.Session`` standing in for the member's browser (cookies, TLS).
* ``browser_sign_in_and_consent``: the member's part of the code flow.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from scopegate import *  # noqa: E402,F401,F403  (the tests import names from conftest)
from scopegate import Server, browser_sign_in_and_consent, scopegate_bin  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Server(scopegate_bin(), tmp_path_factory.mktemp("scopegate"))
    s.start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def cli(server):
    return server.cli


# requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE from the environment override Session.verify
# (psf/requests#3829), which would check scopegate's self-signed certificate against the system
# CAs. Sessions here therefore ignore the environment (trust_env=False) and verify against the
# server's own certificate.
@pytest.fixture
def browser(server):
    with requests.Session() as s:
        s.trust_env = False
        s.verify = server.cert
        yield s


@pytest.fixture(name="browser_sign_in_and_consent")
def _browser_sign_in_and_consent_fixture():
    return browser_sign_in_and_consent

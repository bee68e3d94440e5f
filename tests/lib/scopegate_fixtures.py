"""The pytest fixtures every Python suite shares (tests/py, tests/security load this module with
``pytest_plugins``):

* ``server`` (module scope): a scopegate started with ``--demo`` on a fresh data folder.
* ``cli``: ``scopegate --json ...`` on that server's store.
* ``browser``: a ``requests.Session`` standing in for the member's browser (cookies, TLS).
* ``browser_sign_in_and_consent``: the member's part of the code flow.
"""

from __future__ import annotations

import pytest

from scopegate import Server, browser_sign_in_and_consent, new_session, scopegate_bin


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


@pytest.fixture
def browser(server):
    with new_session(server) as s:
        yield s


@pytest.fixture(name="browser_sign_in_and_consent")
def _browser_sign_in_and_consent_fixture():
    return browser_sign_in_and_consent

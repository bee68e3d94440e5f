"""The authlib black-box tests' conftest: the harness is tests/lib/scopegate.py, the fixtures
tests/lib/scopegate_fixtures.py.

* ``server`` (module scope): a scopegate started with ``--demo`` on a fresh data folder.
* ``cli``: ``scopegate --json ...`` on that server's store.
* ``browser``: a ``requests.Session`` standing in for the member's browser (cookies, TLS).
* ``browser_sign_in_and_consent``: the member's part of the code flow.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "lib"))

from scopegate import *  # noqa: E402,F401,F403  (the tests import names from conftest)

pytest_plugins = ["scopegate_fixtures"]

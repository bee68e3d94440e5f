"""A scopegate whose wall clock the tests can move forward: the ``timetravel_server`` fixture.

Expiry checks (a code after its 10 minutes, a refresh token after 365 days, a rotated refresh
token after its grace window) cannot wait in real time. The server is started under libfaketime
(``LD_PRELOAD``) reading its offset from a file on every call (``FAKETIME_TIMESTAMP_FILE`` with
``FAKETIME_NO_CACHE=1``); ``advance(seconds)`` rewrites that file with the new cumulative offset
("+N", seconds relative to the real time, libfaketime README section 4d). The monotonic clock is
left alone (``FAKETIME_DONT_FAKE_MONOTONIC=1``) so that tokio's timers and timeouts keep working.

Only the server's process is faked: this Python process, the CLI (``server.cli``) and TLS
certificate checks use the real time. ``server_time()`` reads the server's clock black-box from
the HTTP ``Date`` header, and ``advance`` waits until that header shows the jump, so a test never
races the change. Time only moves forward, and the fixture is module-scoped: a test must not
assume the offset is zero, only that ``advance`` adds to it.

Usage::

    from clock import timetravel_server  # noqa: F401  (a pytest fixture)

    def test_expiry(timetravel_server):
        ...
        timetravel_server.advance(601)
"""

from __future__ import annotations

import os
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
import requests

from scopegate import Server, scopegate_bin

LIBFAKETIME = Path(
    os.environ.get("SCOPEGATE_LIBFAKETIME", "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1")
)
# Allowed difference between the server's Date header and the expected faked time: the header
# has one-second resolution and hyper refreshes it at most once a second.
CLOCK_TOLERANCE = 3


class TimeTravelServer(Server):
    """A ``Server`` started under libfaketime; ``advance(seconds)`` moves its wall clock."""

    def __init__(self, binary: Path, data_dir: Path):
        super().__init__(binary, data_dir)
        self.offset = 0
        self.clock_file = data_dir / "faketime.rc"
        self._write_offset()

    def _write_offset(self) -> None:
        # Written whole then renamed, so libfaketime never reads a half-written line.
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(f"+{self.offset}\n")
        tmp.replace(self.clock_file)

    def start(self) -> None:
        if not LIBFAKETIME.is_file():
            pytest.fail(f"libfaketime not found at {LIBFAKETIME} (apt-get install libfaketime)")
        # Only this server process runs under libfaketime (Server passes self.env to it).
        self.env = dict(
            self.env,
            LD_PRELOAD=str(LIBFAKETIME),
            FAKETIME_TIMESTAMP_FILE=str(self.clock_file),
            FAKETIME_NO_CACHE="1",
            FAKETIME_DONT_FAKE_MONOTONIC="1",
        )
        super().start()
        self._wait_for_clock()

    def now(self) -> float:
        """The time the server should see: the real time plus the offset."""
        return time.time() + self.offset

    def server_time(self) -> float:
        """The server's wall clock, read from the Date header of /healthz."""
        resp = requests.get(self.base + "/healthz", verify=self.cert, timeout=10)
        return parsedate_to_datetime(resp.headers["Date"]).timestamp()

    def advance(self, seconds: int) -> None:
        """Moves the server's clock ``seconds`` forward and waits until the server sees it."""
        assert seconds > 0, "time only moves forward"
        self.offset += int(seconds)
        self._write_offset()
        self._wait_for_clock()

    def _wait_for_clock(self) -> None:
        deadline = time.monotonic() + 10
        while True:
            seen = self.server_time()
            if abs(seen - self.now()) <= CLOCK_TOLERANCE:
                return
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"the server's clock did not follow libfaketime: Date says {seen:.0f}, "
                    f"expected {self.now():.0f} (offset {self.offset}s)"
                )
            time.sleep(0.2)


@pytest.fixture(scope="module")
def timetravel_server(tmp_path_factory):
    """A separate ``--demo`` scopegate (own data dir, own port) whose clock the test moves with
    ``timetravel_server.advance(seconds)``; ``.offset`` is the total so far, ``.now()`` the
    server's expected time, ``.server_time()`` its actual one. Module scope: time only moves
    forward, so tests sharing it must rely on relative moves only."""
    s = TimeTravelServer(scopegate_bin(), tmp_path_factory.mktemp("scopegate-timetravel"))
    s.start()
    try:
        yield s
    finally:
        s.stop()

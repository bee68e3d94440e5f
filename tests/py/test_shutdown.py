"""Graceful shutdown with a drain phase (`serve --drain-seconds N`, docs/deployment.md): on
SIGTERM /healthz answers 503 at once, so a load balancer stops sending new requests, while the
listener keeps serving (old and new connections) for N seconds; then in-flight requests finish
and the process exits 0."""

from __future__ import annotations

import signal
import time

from conftest import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    HTTP_TIMEOUT,
    Server,
    new_session,
    scopegate_bin,
)

DRAIN = 2


def test_sigterm_drains_then_exits(tmp_path):
    s = Server(scopegate_bin(), tmp_path, env={"SCOPEGATE_DRAIN_SECONDS": str(DRAIN)})
    s.start()
    try:
        kept = new_session(s)
        assert kept.get(s.base + "/healthz", timeout=HTTP_TIMEOUT).status_code == 200
        began = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        while True:
            r = kept.get(s.base + "/healthz", timeout=HTTP_TIMEOUT)
            if r.status_code == 503:
                break
            assert time.monotonic() - began < 1, f"/healthz still {r.status_code} after SIGTERM"
            time.sleep(0.02)
        assert r.json() == {"status": "draining"}
        # Still serving: on the kept connection and on a new one.
        credentials = {"grant_type": "client_credentials", "client_id": DEMO_CLIENT_ID,
                       "client_secret": DEMO_CLIENT_SECRET}
        for session in (kept, new_session(s)):
            r = session.post(s.token_endpoint, data=credentials, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, r.text
        assert s.proc.wait(timeout=DRAIN + 25) == 0
        assert time.monotonic() - began >= DRAIN, "the listener closed before the drain ended"
    finally:
        s.stop()

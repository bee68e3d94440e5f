"""Crash durability of the token store (security-checks.md 4.1, DUR-01..06), black-box.

DUR-01 is a kill -9 soak: workers run code -> token -> refresh -> introspect -> revoke loops and
journal every answer; the server is killed with SIGKILL at random points under that load,
restarted on the same data folder, and after every restart the journal is checked against what
the server says: no answered token lost, no answered revocation or rotation undone, no code
redeemable twice, PRAGMA integrity_check ok (on a copy of the crashed files, through the sqlite3
CLI, never inside this process). Bounded: SOAK_CYCLES kills and SOAK_BUDGET seconds.

The figures go to the terminal and to the target directory's security-soak.json (section "soak").
"""

from __future__ import annotations

import errno
import json
import os
import random
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import requests

from scopegate import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PASSWORD,
    DEMO_REDIRECT,
    MEMBER,
    TARGET_DIR,
    Server,
    browser_sign_in_and_consent,
    new_session,
    pkce_pair,
    query_params,
    scopegate_bin,
)

SCOPE = "openid profile"
LOOPBACK = "http://127.0.0.1:5555/callback"  # native apps: any loopback port (RFC 8252 7.3)
WORKERS = int(os.environ.get("SOAK_WORKERS", "12"))
SOAK_CYCLES = int(os.environ.get("SOAK_CYCLES", "10"))
SOAK_BUDGET = float(os.environ.get("SOAK_BUDGET", "60"))  # seconds, the whole soak
SUSTAINED = float(os.environ.get("SOAK_SUSTAINED", "8"))  # seconds of load without kills (DUR-06)
TIMEOUT = 10
FIGURES = TARGET_DIR / "security-soak.json"
WAL_BOUND = 16 * 1024 * 1024


# Shared helpers ---------------------------------------------------------------------------------


def write_figures(section: str, figures: dict) -> None:
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(FIGURES.read_text())
    except (OSError, ValueError):
        data = {}
    data[section] = figures
    FIGURES.write_text(json.dumps(data, indent=1, sort_keys=True))


def sqlite3_cli(db: Path, sql: str) -> str:
    """Runs the sqlite3 CLI in a child process (the store is never opened in this process)."""
    assert shutil.which("sqlite3"), "the sqlite3 CLI is needed (Debian package sqlite3)"
    p = subprocess.run(["sqlite3", "-batch", str(db), sql], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, f"sqlite3 {sql!r}: {p.stderr}"
    return p.stdout.strip()


def crash_image_check(db: Path) -> tuple[str, str]:
    """integrity_check and journal_mode of a copy of the database and its WAL as they are on
    disk now (the server is down): checking a copy leaves the crash image for the restart."""
    with tempfile.TemporaryDirectory() as t:
        copy = Path(t) / "copy.db"
        shutil.copyfile(db, copy)
        wal = Path(str(db) + "-wal")
        if wal.exists():
            shutil.copyfile(wal, Path(str(copy) + "-wal"))
        integrity = sqlite3_cli(copy, "PRAGMA integrity_check;")
        mode = sqlite3_cli(copy, "PRAGMA journal_mode;")
    return integrity, mode


def session_for(server: Server) -> requests.Session:
    return new_session(server)


query = query_params


def create_member(server: Server, email: str) -> None:
    cmd = server._global_args() + [
        "--json", "member", "create", "--email", email, "--first-name", "Soak", "--last-name", "Worker",
        "--password-stdin",
    ]
    p = subprocess.run(cmd, input=DEMO_PASSWORD, capture_output=True, text=True, timeout=60, cwd=server.data_dir)
    assert p.returncode == 0, p.stderr


class Interrupted(Exception):
    """The request got no answer (the server was being killed)."""


# The soak ---------------------------------------------------------------------------------------


@dataclass
class Tok:
    value: str
    kind: str  # access | refresh
    worker: int
    public: bool
    code: str
    seq: int
    cycle: int
    rotated: bool = False  # a 200 refresh replaced it (public clients)
    refresh_unanswered: bool = False


@dataclass
class Code:
    value: str
    worker: int
    public: bool
    verifier: str | None
    redirect_uri: str
    cycle: int
    answered: bool = False  # the first redemption got a 200
    replayed: bool = False  # the test presented it again (its lineage is revoked from then on)


@dataclass
class Event:
    seq: int
    kind: str  # revoke
    answered: bool = False


@dataclass
class Journal:
    lock: threading.Lock = field(default_factory=threading.Lock)
    seq: int = 0
    tokens: list[Tok] = field(default_factory=list)
    codes: list[Code] = field(default_factory=list)
    events: dict[int, list[Event]] = field(default_factory=dict)
    responses: int = 0
    server_errors: list[str] = field(default_factory=list)
    anomalies: list[str] = field(default_factory=list)

    def next_seq(self) -> int:
        with self.lock:
            self.seq += 1
            return self.seq


class Soak:
    def __init__(self, data_dir: Path):
        self.server = Server(scopegate_bin(), data_dir)
        self.db = data_dir / "scopegate.db"
        self.j = Journal()
        self.running = threading.Event()
        self.stop = False
        self.killing = False
        self.cycle = 0
        self.parked = 0
        # Workers that leave their last grant unrevoked (and then idle), so that the final crash
        # always has live refresh tokens to check (d); chosen for the sustained phase.
        self.keepers: set[int] = set()
        self.kept: set[int] = set()
        self.cond = threading.Condition()
        self.violations: list[str] = []
        self.integrity: list[tuple[str, str]] = []
        self.wal_samples: list[tuple[float, int, int]] = []
        self.checked_tokens: set[str] = set()
        self.token_checks = 0
        self.codes_checked: set[str] = set()
        self.inflight_codes_checked = 0
        self.redeemed_twice = 0
        self.lost = 0
        self.restarts: list[float] = []
        self.members = [f"soak-{i}@scopegate.local" for i in range(WORKERS)]
        self.sessions: list[requests.Session] = []
        self.sustained: list[tuple[float, int, int]] = []
        self.final_integrity = ("not run", "not run")
        self.duration = 0.0

    # HTTP with journaling of every answer ------------------------------------------------------
    def _hook(self, resp, *args, **kwargs):
        with self.j.lock:
            self.j.responses += 1
            if resp.status_code >= 500:
                self.j.server_errors.append(f"{resp.status_code} {resp.request.method} {urlsplit(resp.url).path}: {resp.text[:200]}")

    def new_session(self) -> requests.Session:
        s = session_for(self.server)
        s.hooks["response"].append(self._hook)
        return s

    def call(self, fn):
        if not self.running.is_set():
            raise Interrupted()
        try:
            return fn()
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            if not self.killing:
                with self.j.lock:
                    self.j.anomalies.append(f"no answer while the server was up: {e!r}"[:300])
            raise Interrupted() from e

    # One worker's loop --------------------------------------------------------------------------
    def iteration(self, w: int) -> None:
        s = self.sessions[w]
        public = w % 2 == 1
        base = self.server.base
        verifier, challenge = pkce_pair() if public else (None, None)
        redirect = LOOPBACK if public else DEMO_REDIRECT
        params = {
            "response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": redirect,
            "scope": SCOPE, "state": secrets.token_urlsafe(8),
        }
        if public:
            params.update(code_challenge=challenge, code_challenge_method="S256")
        endpoint = "/oauth/native-pkce/authorization" if public else "/oauth/v2/authorization"
        url = base + endpoint + "?" + urlencode(params)
        try:
            callback = self.call(lambda: browser_sign_in_and_consent(s, url, email=self.members[w]))
        except AssertionError as e:
            with self.j.lock:
                self.j.anomalies.append(f"authorization failed: {e}"[:300])
            time.sleep(0.2)
            return
        code = query(callback).get("code")
        if not code:
            with self.j.lock:
                self.j.anomalies.append(f"no code in {callback}"[:300])
            return
        c = Code(code, w, public, verifier, redirect, self.cycle)
        with self.j.lock:
            self.j.codes.append(c)
        auth = {"client_id": DEMO_CLIENT_ID} if public else {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
        data = dict(auth, grant_type="authorization_code", code=code, redirect_uri=redirect)
        if public:
            data["code_verifier"] = verifier
        r = self.call(lambda: s.post(base + "/oauth/v2/accessToken", data=data, timeout=TIMEOUT))
        if r.status_code != 200:
            with self.j.lock:
                self.j.anomalies.append(f"code redemption {r.status_code}: {r.text[:200]}")
            return
        body = r.json()
        seq = self.j.next_seq()
        at1 = Tok(body["access_token"], "access", w, public, code, seq, self.cycle)
        rt1 = Tok(body["refresh_token"], "refresh", w, public, code, seq, self.cycle)
        with self.j.lock:
            c.answered = True
            self.j.tokens += [at1, rt1]
        # Refresh.
        data = dict(auth, grant_type="refresh_token", refresh_token=rt1.value)
        rt1.refresh_unanswered = True
        r = self.call(lambda: s.post(base + "/oauth/v2/accessToken", data=data, timeout=TIMEOUT))
        rt1.refresh_unanswered = False
        if r.status_code != 200:
            with self.j.lock:
                self.j.anomalies.append(f"refresh {r.status_code}: {r.text[:200]}")
            return
        body = r.json()
        seq = self.j.next_seq()
        at2 = Tok(body["access_token"], "access", w, public, code, seq, self.cycle)
        new = [at2]
        rt = rt1
        if public:
            rt1.rotated = True
            rt = Tok(body["refresh_token"], "refresh", w, public, code, seq, self.cycle)
            new.append(rt)
        elif body["refresh_token"] != rt1.value:
            with self.j.lock:
                self.j.anomalies.append("a confidential client's refresh token rotated")
        with self.j.lock:
            self.j.tokens += new
        # Introspect the new access token.
        intro = {"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "token": at2.value}
        r = self.call(lambda: s.post(base + "/oauth/v2/introspectToken", data=intro, timeout=TIMEOUT))
        if r.status_code != 200 or r.json().get("active") is not True:
            with self.j.lock:
                self.j.anomalies.append(f"fresh token not active: {r.status_code} {r.text[:200]}")
        if w in self.keepers:
            self.kept.add(w)
            return
        # Revoke the refresh token (and so every token of the member's grant).
        ev = Event(self.j.next_seq(), "revoke")
        with self.j.lock:
            self.j.events.setdefault(w, []).append(ev)
        data = dict(auth, token=rt.value, token_type_hint="refresh_token")
        r = self.call(lambda: s.post(base + "/oauth/v2/revoke", data=data, timeout=TIMEOUT))
        if r.status_code == 200:
            ev.answered = True
        else:
            with self.j.lock:
                self.j.anomalies.append(f"revoke {r.status_code}: {r.text[:200]}")

    def worker(self, w: int) -> None:
        while not self.stop:
            if not self.running.is_set():
                with self.cond:
                    self.parked += 1
                    self.cond.notify_all()
                self.running.wait()
                with self.cond:
                    self.parked -= 1
                continue
            if w in self.kept:
                time.sleep(0.05)
                continue
            try:
                self.iteration(w)
            except Interrupted:
                pass
            except Exception as e:  # a bug in the soak itself must not hang it
                with self.j.lock:
                    self.j.anomalies.append(f"worker {w}: {e!r}"[:300])
                time.sleep(0.1)

    # Expectations -------------------------------------------------------------------------------
    def expected(self, t: Tok) -> set[str]:
        """The statuses introspection may answer for a journaled token."""
        evs = self.j.events.get(t.worker, [])
        code = self.code_of[t.code]
        if code.replayed:
            return {"revoked"}
        if any(e.seq > t.seq and e.answered for e in evs):
            return {"revoked"}
        if t.kind == "refresh" and t.public and t.rotated:
            return {"revoked"}
        maybe = any(e.seq > t.seq and not e.answered for e in evs) or t.refresh_unanswered
        return {"active", "revoked"} if maybe else {"active"}

    # Verification after a restart -------------------------------------------------------------
    def introspect(self, s: requests.Session, token: str) -> dict:
        r = s.post(
            self.server.introspection_endpoint,
            data={"client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "token": token},
            timeout=TIMEOUT,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def redeem(self, s: requests.Session, c: Code) -> requests.Response:
        data = {"grant_type": "authorization_code", "code": c.value, "redirect_uri": c.redirect_uri,
                "client_id": DEMO_CLIENT_ID}
        if c.public:
            data["code_verifier"] = c.verifier
        else:
            data["client_secret"] = DEMO_CLIENT_SECRET
        return s.post(self.server.token_endpoint, data=data, timeout=TIMEOUT)

    def verify(self, final: bool = False) -> None:
        self.code_of = {c.value: c for c in self.j.codes}
        tokens = list(self.j.tokens)
        if final:
            todo = tokens
        else:
            recent = [t for t in tokens if t.cycle >= self.cycle - 1 or "active" in self.expected(t)]
            older = [t for t in tokens if t not in recent]
            todo = recent + random.sample(older, min(40, len(older)))
        local = threading.local()

        def sess():
            if not hasattr(local, "s"):
                local.s = self.new_session()
            return local.s

        def check_token(t: Tok):
            info = self.introspect(sess(), t.value)
            want = self.expected(t)
            status = info.get("status")
            if status is None:
                return f"LOST {t.kind} token of cycle {t.cycle} (worker {t.worker}): {info}"
            if status not in want:
                return f"{t.kind} token of cycle {t.cycle} (worker {t.worker}, public={t.public}): {status}, expected {sorted(want)}"
            return None

        with ThreadPoolExecutor(8) as pool:
            for problem in pool.map(check_token, todo):
                if problem:
                    self.violations.append(problem)
                    if problem.startswith("LOST"):
                        self.lost += 1
        self.token_checks += len(todo)
        self.checked_tokens.update(t.value for t in todo)

        if final:
            self.refresh_survivors()
        # (b) answered codes, (c) codes whose redemption had no answer: presented again now.
        codes = [c for c in self.j.codes if not c.replayed]

        def check_code(c: Code):
            problems = []
            r1 = self.redeem(sess(), c)
            oks = int(c.answered) + int(r1.status_code == 200)
            if r1.status_code != 200 and not (r1.status_code == 400 and r1.json().get("error") == "invalid_grant"):
                problems.append(f"code of cycle {c.cycle} presented again: {r1.status_code} {r1.text[:200]}")
            if not c.answered:
                r2 = self.redeem(sess(), c)
                oks += int(r2.status_code == 200)
                if not (r2.status_code == 400 and r2.json().get("error") == "invalid_grant"):
                    problems.append(f"in-flight code of cycle {c.cycle}, second presentation: {r2.status_code} {r2.text[:200]}")
            if oks > 1:
                problems.append(f"REDEEMED TWICE: code of cycle {c.cycle} (answered={c.answered})")
            return c, problems

        with ThreadPoolExecutor(8) as pool:
            for c, problems in pool.map(check_code, codes):
                c.replayed = True
                self.codes_checked.add(c.value)
                if not c.answered:
                    self.inflight_codes_checked += 1
                for p in problems:
                    self.violations.append(p)
                    if p.startswith("REDEEMED TWICE"):
                        self.redeemed_twice += 1

    # The controller ------------------------------------------------------------------------------
    def sample_wal(self, stop: threading.Event):
        wal = Path(str(self.db) + "-wal")
        t0 = time.monotonic()
        while not stop.wait(0.2):
            try:
                self.wal_samples.append((time.monotonic() - t0, wal.stat().st_size, self.db.stat().st_size))
            except OSError:
                pass

    def kill(self) -> None:
        self.killing = True
        self.server.proc.kill()  # SIGKILL, under load
        self.server.proc.wait(timeout=15)
        self.running.clear()
        with self.cond:
            ok = self.cond.wait_for(lambda: self.parked == WORKERS, timeout=3 * TIMEOUT)
        assert ok, "workers did not stop after the kill"
        self.integrity.append(crash_image_check(self.db))

    def restart(self) -> None:
        t = time.monotonic()
        self.server.start()
        self.restarts.append(time.monotonic() - t)
        self.killing = False

    def run(self) -> dict:
        started = time.monotonic()
        self.server.start()
        for m in self.members:
            create_member(self.server, m)
        self.sessions = [self.new_session() for _ in range(WORKERS)]
        threads = [threading.Thread(target=self.worker, args=(w,), daemon=True) for w in range(WORKERS)]
        stop_sampling = threading.Event()
        sampler = threading.Thread(target=self.sample_wal, args=(stop_sampling,), daemon=True)
        sampler.start()
        self.running.set()
        for t in threads:
            t.start()
        # Warm-up: every worker signs in (argon2, slow in a debug build) before the first kill.
        warm = time.monotonic() + 25
        while time.monotonic() < warm and len({c.worker for c in self.j.codes if c.answered}) < WORKERS:
            time.sleep(0.2)
        deadline = started + SOAK_BUDGET
        try:
            while self.cycle < SOAK_CYCLES and time.monotonic() < deadline - 6:
                time.sleep(random.uniform(2.0, 4.0))  # load, then a kill at a random point
                self.kill()
                self.restart()
                self.verify()
                self.cycle += 1
                self.running.set()
            # DUR-06: sustained load without kills, sampling the WAL.
            sustained_from = len(self.wal_samples)
            self.keepers = {0, 1}  # one confidential, one public client
            time.sleep(SUSTAINED)
            self.sustained = self.wal_samples[sustained_from:]
            # A last kill under load, then everything the journal holds is checked.
            self.kill()
            self.restart()
            self.verify(final=True)
            self.cycle += 1
        finally:
            self.stop = True
            self.running.set()
            stop_sampling.set()
            for t in threads:
                t.join(timeout=2 * TIMEOUT)
            self.server.stop()
        self.final_integrity = (sqlite3_cli(self.db, "PRAGMA integrity_check;"), sqlite3_cli(self.db, "PRAGMA journal_mode;"))
        self.duration = time.monotonic() - started
        return self.figures()

    def refresh_survivors(self) -> None:
        """(d) the newest refresh token of a grant, never revoked, still refreshes after the crash."""
        self.code_of = {c.value: c for c in self.j.codes}
        alive = [t for t in self.j.tokens if t.kind == "refresh" and self.expected(t) == {"active"}]
        s = self.new_session()
        self.survivors_refreshed = 0
        if not alive:
            self.violations.append("no live refresh token was left to refresh after the last crash")
        for t in alive[:10]:
            data = {"grant_type": "refresh_token", "refresh_token": t.value, "client_id": DEMO_CLIENT_ID}
            if not t.public:
                data["client_secret"] = DEMO_CLIENT_SECRET
            r = s.post(self.server.token_endpoint, data=data, timeout=TIMEOUT)
            if r.status_code != 200:
                self.violations.append(f"a live refresh token does not refresh after the crash: {r.status_code} {r.text[:200]}")
            else:
                self.survivors_refreshed += 1

    def figures(self) -> dict:
        return {
            "kill_cycles": self.cycle,
            "workers": WORKERS,
            "duration_s": round(self.duration, 1),
            "responses": self.j.responses,
            "tokens_issued": len(self.j.tokens),
            "tokens_checked": len(self.checked_tokens),
            "token_checks": self.token_checks,
            "codes_issued": len(self.j.codes),
            "codes_checked": len(self.codes_checked),
            "codes_in_flight_at_kill": self.inflight_codes_checked,
            "lost": self.lost,
            "redeemed_twice": self.redeemed_twice,
            "violations": len(self.violations),
            "server_errors_5xx": len(self.j.server_errors),
            "anomalies": len(self.j.anomalies),
            "integrity_checks": len(self.integrity) + 1,
            "integrity_ok": all(i == "ok" for i, _ in self.integrity) and self.final_integrity[0] == "ok",
            "journal_mode": sorted({m for _, m in self.integrity} | {self.final_integrity[1]}),
            "restart_s_max": round(max(self.restarts, default=0), 2),
            "wal_max_bytes": max((w for _, w, _ in self.wal_samples), default=0),
            "wal_max_bytes_sustained": max((w for _, w, _ in self.sustained), default=0),
            "db_bytes_sustained": [min((d for _, _, d in self.sustained), default=0), max((d for _, _, d in self.sustained), default=0)],
            "live_refresh_tokens_refreshed_after_crash": getattr(self, "survivors_refreshed", 0),
        }


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    s = Soak(tmp_path_factory.mktemp("soak"))
    s.run()
    return s


@pytest.mark.check("DUR-01")
def test_kill_9_soak_loses_no_token_and_redeems_no_code_twice(soak, capsys):
    f = soak.figures()
    write_figures("soak", f)
    with capsys.disabled():
        sys.stdout.write(
            f"\nsoak: {f['kill_cycles']} kill cycles, {f['tokens_checked']} tokens checked, "
            f"{f['codes_checked']} codes ({f['codes_in_flight_at_kill']} in flight at a kill), "
            f"{f['lost']} lost, {f['redeemed_twice']} redeemed twice; {f['responses']} responses, "
            f"{f['server_errors_5xx']} 5xx, integrity_check {'ok' if f['integrity_ok'] else 'FAILED'} "
            f"x{f['integrity_checks']}, {f['duration_s']} s\n"
        )
    assert f["kill_cycles"] >= 4, f
    assert f["tokens_checked"] > 0 and f["codes_checked"] > 0, f
    problems = soak.violations[:20]
    assert not problems, f"{len(soak.violations)} journal invariants broken:\n" + "\n".join(problems)
    assert f["lost"] == 0 and f["redeemed_twice"] == 0
    # (e) every crash image and the final store: integrity ok, WAL.
    assert f["integrity_ok"], (soak.integrity, soak.final_integrity)
    assert f["journal_mode"] == ["wal"], f["journal_mode"]
    # (f) no 5xx at all; no request left unanswered while the server was up.
    assert not soak.j.server_errors, soak.j.server_errors[:10]
    assert not soak.j.anomalies, soak.j.anomalies[:10]

@pytest.mark.check("DUR-06")
def test_wal_stays_bounded_under_sustained_load(soak):
    """Sustained load without kills (after the soak's cycles): the WAL is checkpointed back into
    the database while the server runs, so it stays bounded; readers never pin it."""
    samples = soak.sustained
    assert len(samples) >= 5, "the sustained phase was not sampled"
    wal_max = max(w for _, w, _ in samples)
    db_min, db_max = min(d for _, _, d in samples), max(d for _, _, d in samples)
    print(f"WAL max {wal_max} bytes, database {db_min} -> {db_max} bytes, {len(samples)} samples")
    assert wal_max <= WAL_BOUND, f"WAL grew to {wal_max} bytes under load (bound {WAL_BOUND})"
    # Checkpoints ran during the load: pages moved from the WAL into the database file.
    assert db_max > db_min, f"the database file did not grow during sustained load ({db_min} bytes): no checkpoint"


# DUR-03: the store's settings at startup ------------------------------------------------------------


def start_server(tmp_path: Path, **attrs) -> Server:
    s = Server(scopegate_bin(), tmp_path)
    for k, v in attrs.items():
        setattr(s, k, v)
    s.start()
    return s


def confidential_tokens(server: Server, s: requests.Session) -> dict:
    params = {"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT,
              "scope": SCOPE, "state": "dur"}
    callback = browser_sign_in_and_consent(s, server.authorization_endpoint + "?" + urlencode(params))
    r = s.post(server.token_endpoint, timeout=TIMEOUT, data={
        "grant_type": "authorization_code", "code": query(callback)["code"], "redirect_uri": DEMO_REDIRECT,
        "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET})
    assert r.status_code == 200, r.text
    return r.json()


def refresh(server: Server, s: requests.Session, rt: str) -> requests.Response:
    return s.post(server.token_endpoint, timeout=TIMEOUT, data={
        "grant_type": "refresh_token", "refresh_token": rt, "client_id": DEMO_CLIENT_ID,
        "client_secret": DEMO_CLIENT_SECRET})


@pytest.mark.check("DUR-03")
def test_a_rollback_journal_store_is_switched_to_wal_at_startup(tmp_path):
    db = tmp_path / "scopegate.db"
    sqlite3_cli(db, "PRAGMA journal_mode=DELETE; CREATE TABLE operator_note (x TEXT);")
    assert sqlite3_cli(db, "PRAGMA journal_mode;") == "delete"
    server = start_server(tmp_path)
    try:
        assert server.proc.poll() is None
    finally:
        server.stop()
    assert sqlite3_cli(db, "PRAGMA journal_mode;") == "wal", server.logs()
    assert sqlite3_cli(db, "PRAGMA integrity_check;") == "ok"


@pytest.mark.check("DUR-03")
def test_every_token_commit_syncs_the_wal_before_the_answer(tmp_path):
    """synchronous=FULL in WAL mode fsyncs the WAL at every commit (NORMAL only at checkpoints):
    strace counts the syncs of the -wal file while N refreshes, each one commit, are answered."""
    assert shutil.which("strace"), "strace is needed (Debian package strace)"
    server = start_server(tmp_path)
    trace = tmp_path / "sync.trace"
    try:
        s = session_for(server)
        rt = confidential_tokens(server, s)["refresh_token"]
        tracer = subprocess.Popen(
            ["strace", "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync", "-o", str(trace), "-p", str(server.proc.pid)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(1.0)  # attached to every thread
        assert tracer.poll() is None, tracer.stderr.read()
        n = 10
        for _ in range(n):
            r = refresh(server, s, rt)
            assert r.status_code == 200, r.text
        time.sleep(0.3)
        tracer.send_signal(2)
        tracer.wait(timeout=15)
    finally:
        server.stop()
    lines = trace.read_text().splitlines()
    wal_syncs = [l for l in lines if re.search(r"f(data)?sync\(\d+<[^>]*scopegate\.db-wal>\)\s*=\s*0", l)]
    assert len(wal_syncs) >= n, f"{len(wal_syncs)} syncs of the WAL for {n} commits:\n" + "\n".join(lines[:20])


@pytest.mark.check("DUR-03")
def test_cli_writes_during_server_load_wait_for_the_lock(tmp_path):
    """busy_timeout > 0 on both sides: CLI writes while the server commits tokens neither fail
    (SQLITE_BUSY) nor make the server answer 5xx."""
    server = start_server(tmp_path)
    try:
        s = session_for(server)
        rt = confidential_tokens(server, s)["refresh_token"]
        statuses: list[int] = []
        stop = threading.Event()

        def load():
            ss = session_for(server)
            while not stop.is_set():
                statuses.append(refresh(server, ss, rt).status_code)

        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        try:
            for i in range(6):
                create_member(server, f"busy-{i}@scopegate.local")
                server.cli("admin-key", "create", "--name", f"busy-{i}")
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=30)
    finally:
        server.stop()
    assert statuses and set(statuses) == {200}, {c: statuses.count(c) for c in set(statuses)}


# DUR-04: kill -9 during migration -----------------------------------------------------------------


def schema(db: Path) -> tuple[str, str]:
    tables = sqlite3_cli(db, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name;")
    versions = sqlite3_cli(db, "SELECT version FROM schema_migrations ORDER BY version;")
    return tables, versions


@pytest.mark.check("DUR-04")
def test_kill_during_startup_migration_then_a_normal_start_completes_it(tmp_path):
    ref_dir = tmp_path / "reference"
    ref_dir.mkdir()
    t = time.monotonic()
    ref = start_server(ref_dir)
    serving_after = time.monotonic() - t
    ref.stop()
    ref_schema = schema(ref_dir / "scopegate.db")
    ref_members = sqlite3_cli(ref_dir / "scopegate.db", "SELECT COUNT(*) FROM members;")
    kills = 0
    rng = random.Random(4242)
    for attempt in range(3):
        d = tmp_path / f"killed-{attempt}"
        d.mkdir()
        srv = Server(scopegate_bin(), d)
        args = srv._global_args() + ["serve", "--listen", "127.0.0.1:0", "--demo"]
        for _ in range(4):
            with open(d / "serve.stdout", "wb") as out, open(d / "serve.stderr", "wb") as err:
                p = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL, cwd=d)
            time.sleep(rng.uniform(0.0, min(serving_after, 1.0)))
            p.kill()
            p.wait(timeout=15)
            kills += 1
            if (d / "scopegate.db").exists():
                integrity, _ = crash_image_check(d / "scopegate.db")
                assert integrity == "ok", integrity
        srv.start()  # a normal start after the kills must succeed ...
        srv.stop()
        db = d / "scopegate.db"
        assert sqlite3_cli(db, "PRAGMA integrity_check;") == "ok"
        # ... with the whole schema, every migration recorded (no half-migrated schema) ...
        assert schema(db) == ref_schema, "the schema after kills during migration differs from a clean one"
        # ... and the first-start data complete (here --demo's members and app), not half of it.
        members = sqlite3_cli(db, "SELECT COUNT(*) FROM members;")
        apps = sqlite3_cli(db, f"SELECT COUNT(*) FROM apps WHERE client_id = '{DEMO_CLIENT_ID}';")
        assert (members, apps) == (ref_members, "1"), (
            f"after {kills} kills during first start and a normal start, the store holds {members} of "
            f"{ref_members} demo members and {apps} demo app: the first-start data stayed half-made"
        )
    print(f"{kills} kills during startup (0..{serving_after:.2f} s), 3 stores recovered")


# DUR-05: disk full ----------------------------------------------------------------------------------


@pytest.mark.check("DUR-05")
def test_disk_full_answers_a_json_5xx_keeps_no_partial_state_and_recovers(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    m = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)], capture_output=True, text=True)
    assert m.returncode == 0, f"cannot mount a small tmpfs (needs root): {m.stderr}"
    server = None
    try:
        data = tmp_path / "data"
        data.mkdir()
        # The store on the small file system; certificate, secret and logs stay elsewhere.
        server = start_server(data, database_url=f"sqlite://{mnt}/scopegate.db")
        s = session_for(server)
        before = confidential_tokens(server, s)
        params = {"response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": DEMO_REDIRECT,
                  "scope": SCOPE, "state": "full"}
        pending = query(browser_sign_in_and_consent(s, server.authorization_endpoint + "?" + urlencode(params)))["code"]
        # Fill the file system.
        filler = mnt / "filler"
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError as e:
                assert e.errno == errno.ENOSPC
        failed = None
        answers = []
        for _ in range(300):
            r = refresh(server, s, before["refresh_token"])
            answers.append(r.status_code)
            if r.status_code != 200:
                failed = r
                break
        assert failed is not None, f"{len(answers)} refreshes all succeeded on a full disk"
        assert failed.status_code in (500, 503), (failed.status_code, failed.text)
        assert failed.headers["Content-Type"].startswith("application/json"), failed.headers
        assert failed.json().get("error") in ("server_error", "temporarily_unavailable"), failed.text
        # A code redemption on the full disk fails as a whole ...
        code_req = {"grant_type": "authorization_code", "code": pending, "redirect_uri": DEMO_REDIRECT,
                    "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET}
        r = s.post(server.token_endpoint, data=code_req, timeout=TIMEOUT)
        assert r.status_code in (500, 503), (r.status_code, r.text)
        assert r.json().get("error") in ("server_error", "temporarily_unavailable"), r.text
        assert server.proc.poll() is None, "the server died on a full disk"
        # ... and space returns: nothing of it was kept, the code redeems once, the rest works.
        filler.unlink()
        r = s.post(server.token_endpoint, data=code_req, timeout=TIMEOUT)
        assert r.status_code == 200, f"the code did not survive the failed redemption: {r.status_code} {r.text}"
        assert refresh(server, s, before["refresh_token"]).status_code == 200
        intro = s.post(server.introspection_endpoint, timeout=TIMEOUT, data={
            "client_id": DEMO_CLIENT_ID, "client_secret": DEMO_CLIENT_SECRET, "token": before["access_token"]})
        assert intro.json().get("active") is True, intro.text
    finally:
        if server is not None:
            server.stop()
        if server is not None and (mnt / "scopegate.db").exists():
            integrity = sqlite3_cli(mnt / "scopegate.db", "PRAGMA integrity_check;")
        else:
            integrity = "ok"
        subprocess.run(["umount", str(mnt)], capture_output=True)
    assert integrity == "ok", integrity

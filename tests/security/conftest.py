"""The security check suite's harness.

Every check of ``catalogue.tsv`` is held by one or more tests marked ``@pytest.mark.check("ID")``
or listed, with the reason, in the "Checks not applicable" table of docs/security.md. At the end
the suite prints one line, ``security checks: P passed, F failed, N not applicable (of T)``, and
a run of the whole suite fails if a check is neither tested nor listed, or both.

A check passes when every test marked with it passed; a skipped test counts as a failure (a
check that could not run has not been shown to hold).

Fixtures: ``server`` (module scope, ``--demo``), ``cli``, ``browser`` (a requests.Session with the
server's certificate) and ``browser_sign_in_and_consent``; the harness is tests/lib/scopegate.py.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "lib"))

from scopegate import REPO_ROOT, TARGET_DIR  # noqa: E402

CATALOGUE = HERE / "catalogue.tsv"
SECURITY_DOC = REPO_ROOT / "docs" / "security.md"
SUMMARY_FILE = TARGET_DIR / "security-checks.json"


def load_catalogue() -> dict[str, str]:
    checks = {}
    for line in CATALOGUE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        check_id, _section, text = line.split("\t", 2)
        checks[check_id] = text
    return checks


def load_not_applicable() -> dict[str, str]:
    """The table under "## Checks not applicable" in docs/security.md: | ID | reason |."""
    text = SECURITY_DOC.read_text()
    m = re.search(r"^## Checks not applicable\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if not m:
        return {}
    rows = {}
    for line in m.group(1).splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and re.fullmatch(r"[A-Z]+-[A-Za-z0-9-]+", cells[0]):
            rows[cells[0]] = cells[1]
    return rows


CHECKS = load_catalogue()
NOT_APPLICABLE = load_not_applicable()


class _Tally:
    def __init__(self):
        self.tests_of: dict[str, list[str]] = defaultdict(list)
        self.failed: set[str] = set()
        self.passed_tests: set[str] = set()
        self.whole_suite = False


TALLY = _Tally()


def pytest_configure(config):
    # The whole suite ran when no file, node id or -k/-m selection narrowed it.
    args = [a for a in config.args if a]
    whole = all(Path(a).resolve() == HERE for a in args) if args else True
    TALLY.whole_suite = whole and not config.getoption("keyword") and not config.getoption("markexpr")


def pytest_collection_modifyitems(config, items):
    unknown = []
    for item in items:
        for mark in item.iter_markers("check"):
            for check_id in mark.args:
                if check_id not in CHECKS:
                    unknown.append(f"{item.nodeid}: {check_id}")
                TALLY.tests_of[check_id].append(item.nodeid)
    if unknown:
        raise pytest.UsageError("tests mark checks missing from catalogue.tsv:\n" + "\n".join(unknown))


def pytest_deselected(items):
    # -k / -m narrowed the run: a deselected test holds nothing, and fails nothing.
    for item in items:
        for mark in item.iter_markers("check"):
            for check_id in mark.args:
                tests = TALLY.tests_of.get(check_id, [])
                if item.nodeid in tests:
                    tests.remove(item.nodeid)
                if not tests:
                    TALLY.tests_of.pop(check_id, None)


def pytest_runtest_logreport(report):
    if report.failed or report.skipped:
        TALLY.failed.add(report.nodeid)
    elif report.when == "call" and report.passed:
        TALLY.passed_tests.add(report.nodeid)


def _summary():
    passed, failed = [], []
    for check_id, tests in TALLY.tests_of.items():
        ok = all(t in TALLY.passed_tests and t not in TALLY.failed for t in tests)
        (passed if ok else failed).append(check_id)
    tested = set(TALLY.tests_of)
    not_applicable = [c for c in NOT_APPLICABLE if c in CHECKS and c not in tested]
    missing = [c for c in CHECKS if c not in tested and c not in NOT_APPLICABLE]
    both = sorted(tested & set(NOT_APPLICABLE))
    stray = sorted(c for c in NOT_APPLICABLE if c not in CHECKS)
    return {
        "passed": sorted(passed),
        "failed": sorted(failed),
        "not_applicable": sorted(not_applicable),
        "missing": missing,
        "tested_and_not_applicable": both,
        "not_applicable_unknown": stray,
        "total": len(CHECKS),
    }


def pytest_sessionfinish(session, exitstatus):
    s = _summary()
    if TALLY.whole_suite:
        SUMMARY_FILE.parent.mkdir(parents=True, exist_ok=True)
        SUMMARY_FILE.write_text(json.dumps(s, indent=1))
        if s["missing"] or s["tested_and_not_applicable"] or s["not_applicable_unknown"]:
            session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    s = _summary()
    tr = terminalreporter
    if s["failed"]:
        tr.write_line("failed checks: " + ", ".join(s["failed"]))
    if TALLY.whole_suite:
        if s["missing"]:
            tr.write_line("checks neither tested nor listed as not applicable in docs/security.md: "
                          + ", ".join(s["missing"]))
        if s["tested_and_not_applicable"]:
            tr.write_line("checks both tested and listed as not applicable: "
                          + ", ".join(s["tested_and_not_applicable"]))
        if s["not_applicable_unknown"]:
            tr.write_line("docs/security.md lists checks the catalogue lacks: "
                          + ", ".join(s["not_applicable_unknown"]))
    tr.write_line(
        f"security checks: {len(s['passed'])} passed, {len(s['failed'])} failed, "
        f"{len(s['not_applicable'])} not applicable (of {s['total']})"
        + ("" if TALLY.whole_suite else "; a partial run")
    )


pytest_plugins = ["scopegate_fixtures"]

#!/usr/bin/env bash
# The security check suite: every check of tests/security/catalogue.tsv, black-box against a real
# scopegate over HTTPS, or listed as not applicable (with the reason) in docs/security.md.
# Prints one summary line: "security checks: P passed, F failed, N not applicable (of T)".
# Usage: tests/security/run.sh [pytest args or files under tests/security...]
# Runs in tests/py's virtualenv (tests/py/run.sh), adding tests/security/requirements.txt.
exec "$(dirname "${BASH_SOURCE[0]}")/../py/run.sh" --suite tests/security "$@"

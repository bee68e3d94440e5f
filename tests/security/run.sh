#!/usr/bin/env bash
# The security check suite: every check of tests/security/catalogue.tsv, black-box against a real
# scopegate over HTTPS, or listed as not applicable (with the reason) in docs/security.md.
# Prints one summary line: "security checks: P passed, F failed, N not applicable (of T)".
# Usage: tests/security/run.sh [pytest args...]
#   SCOPEGATE_BIN  the scopegate binary to test (default: <repo>/target/debug/scopegate)
# Shares the Python environment of tests/py (authlib, requests, pytest).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${SCOPEGATE_BIN:-$root/target/debug/scopegate}"
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
export SCOPEGATE_BIN="$bin"

venv="$root/tests/py/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/tests/py/requirements.txt" -r "$here/requirements.txt"

cd "$root"
set +e
# The whole suite unless a file or node id under tests/security is named.
targets=(tests/security)
for arg in "$@"; do
  case "$arg" in tests/security/*) targets=() ;; esac
done
"$venv/bin/python" -m pytest -q "${targets[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"

#!/usr/bin/env bash
# Black-box tests of scopegate driven by Python's authlib (a real third-party OAuth client).
# Usage: tests/py/run.sh [pytest args...]
#   SCOPEGATE_BIN  the scopegate binary to test (default: <repo>/target/debug/scopegate)
#   PYTHON         the interpreter that creates the venv (default: python3)
# The exit code is pytest's; "no tests collected" (pytest's 5) is reported as an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

bin="${SCOPEGATE_BIN:-$root/target/debug/scopegate}"
case "$bin" in
  /*) ;;
  *) bin="$PWD/$bin" ;;
esac
export SCOPEGATE_BIN="$bin"

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt"

cd "$root"
set +e
"$venv/bin/python" -m pytest -q tests/py "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"

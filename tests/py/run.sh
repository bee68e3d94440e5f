#!/usr/bin/env bash
# Runs a Python black-box suite of scopegate in one virtualenv (tests/py/.venv):
#   tests/py/run.sh [pytest args...]                    authlib and LinkedIn's client (tests/py)
#   tests/py/run.sh --suite tests/security [args...]    the security check suite
# The whole suite runs unless a file or node id under it is named.
#   SCOPEGATE_BIN  the scopegate binary to test (default: build it, then the one in cargo's target directory)
#   PYTHON         the interpreter that creates the venv (default: python3)
# The exit code is pytest's; "no tests collected" (pytest's 5) is reported as an error.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

suite=tests/py
if [ "${1:-}" = "--suite" ]; then
  suite=${2:?--suite needs a folder}
  shift 2
fi

# shellcheck source=../lib/bin.sh
. "$root/tests/lib/bin.sh"
resolve_scopegate_bin

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
requirements=(-r "$here/requirements.txt")
if [ "$suite" != tests/py ] && [ -f "$root/$suite/requirements.txt" ]; then
  requirements+=(-r "$root/$suite/requirements.txt")
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check "${requirements[@]}"

cd "$root"
targets=("$suite")
for arg in "$@"; do
  case "$arg" in "$suite"/*) targets=() ;; esac
done
set +e
"$venv/bin/python" -m pytest -q "${targets[@]}" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "run.sh: pytest collected no tests; that is a failure" >&2
fi
exit "$rc"

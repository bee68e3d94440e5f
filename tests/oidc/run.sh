#!/usr/bin/env bash
# Runs scopegate's third-party relying-party tests: openid-client (npm) signs a member in end to end.
#   tests/oidc/run.sh            (from anywhere)
# Environment:
#   SCOPEGATE_BIN   the scopegate binary (default: <repo>/target/debug/scopegate)
# Exit code: node's test runner's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SCOPEGATE_BIN="${SCOPEGATE_BIN:-$root/target/debug/scopegate}"

# shellcheck source=../lib/node.sh
. "$root/tests/lib/node.sh"
require_node

if [ ! -f "$here/node_modules/openid-client/package.json" ]; then
  echo "run.sh: installing openid-client (npm ci)..." >&2
  (cd "$here" && npm ci --no-audit --no-fund)
fi

if [ ! -x "$SCOPEGATE_BIN" ]; then
  echo "run.sh: $SCOPEGATE_BIN is not there yet; the tests wait for it (SCOPEGATE_BIN_WAIT_MS, default 300000)." >&2
fi

cd "$root"
set +e
node --test tests/oidc/*.test.mjs
rc=$?
set -e
exit "$rc"

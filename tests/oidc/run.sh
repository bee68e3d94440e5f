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

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "run.sh: node and npm are required (node 20 or later)." >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if [ "$node_major" -lt 20 ]; then
  echo "run.sh: node $(node --version) is too old: node 20 or later is required." >&2
  exit 1
fi

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

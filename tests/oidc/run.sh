#!/usr/bin/env bash
# Runs scopegate's third-party relying-party tests: openid-client (npm) signs a member in end to end.
#   tests/oidc/run.sh            (from anywhere)
# Environment:
#   SCOPEGATE_BIN   the scopegate binary (default: build it, then the one in cargo's target directory)
# Exit code: node's test runner's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../lib/bin.sh
. "$root/tests/lib/bin.sh"
resolve_scopegate_bin

# shellcheck source=../lib/node.sh
. "$root/tests/lib/node.sh"
require_node

if [ ! -f "$here/node_modules/openid-client/package.json" ]; then
  echo "run.sh: installing openid-client (npm ci)..." >&2
  (cd "$here" && npm ci --no-audit --no-fund)
fi


cd "$root"
set +e
# TAP: scripts/test reads failed test names from its "not ok" lines.
node --test --test-reporter=tap tests/oidc/*.test.mjs
rc=$?
set -e
exit "$rc"

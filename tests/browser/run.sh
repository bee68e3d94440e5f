#!/usr/bin/env bash
# Runs scopegate's browser tests: headless Debian Chromium driven by playwright-core.
#   tests/browser/run.sh            (from anywhere)
# Environment:
#   SCOPEGATE_BIN   the scopegate binary (default: build it, then the one in cargo's target directory)
#   CHROMIUM_PATH   the browser (default: /usr/bin/chromium, Debian's package; never a download)
# Exit code: node's test runner's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../lib/bin.sh
. "$root/tests/lib/bin.sh"
resolve_scopegate_bin
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "run.sh: $CHROMIUM_PATH not found: the browser tests need Debian's chromium (apt-get install -y chromium)." >&2
  echo "run.sh: refusing to skip them silently." >&2
  exit 1
fi
# shellcheck source=../lib/node.sh
. "$root/tests/lib/node.sh"
require_node

if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  echo "run.sh: installing playwright-core (npm ci)..." >&2
  # playwright-core downloads no browser; the tests use $CHROMIUM_PATH.
  (cd "$here" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
fi


cd "$root"
set +e
# TAP: scripts/test reads failed test names from its "not ok" lines.
node --test --test-reporter=tap tests/browser/*.test.mjs
rc=$?
set -e
exit "$rc"

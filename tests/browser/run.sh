#!/usr/bin/env bash
# Runs scopegate's browser tests: headless Debian Chromium driven by playwright-core.
#   tests/browser/run.sh            (from anywhere)
# Environment:
#   SCOPEGATE_BIN   the scopegate binary (default: <repo>/target/debug/scopegate)
#   CHROMIUM_PATH   the browser (default: /usr/bin/chromium, Debian's package; never a download)
# Exit code: node's test runner's.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export SCOPEGATE_BIN="${SCOPEGATE_BIN:-$root/target/debug/scopegate}"
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

if [ ! -x "$SCOPEGATE_BIN" ]; then
  echo "run.sh: $SCOPEGATE_BIN is not there yet; the tests wait for it (SCOPEGATE_BIN_WAIT_MS, default 300000)." >&2
fi

cd "$root"
set +e
node --test tests/browser/*.test.mjs
rc=$?
set -e
exit "$rc"

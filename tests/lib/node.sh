# Sourced by the node suites' run.sh: refuses to go on without node 20 or later and npm.
require_node() {
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "run.sh: node and npm are required (node 20 or later)." >&2
    exit 1
  fi
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then
    echo "run.sh: node $(node --version) is too old: node 20 or later is required." >&2
    exit 1
  fi
}

# Sourced by scripts/test and scripts/flake-hunt: the black-box suites and how to read the names
# of the failed tests from each runner's own output.

# The suites after cargo test, as "name kind command...": kind says how to read its failures.
BLACK_BOX_SUITES=(
  "tests/py pytest tests/py/run.sh"
  "tests/oidc node tests/oidc/run.sh"
  "tests/browser node tests/browser/run.sh"
  "tests/security pytest tests/security/run.sh"
)

# failures_in KIND LOG: the names of the failed tests in one suite's log, one per line.
failures_in() {
  local kind=$1 log=$2
  case $kind in
    cargo)
      # "test name ... FAILED" per test; a test binary that crashed or did not build names
      # itself in cargo's "error: test failed, to rerun pass `…`" line instead.
      sed -n -e 's/^test \(.*\) \.\.\. FAILED$/\1/p' \
        -e 's/^error: test failed, to rerun pass `\(.*\)`$/(test binary) \1/p' \
        -e 's/^error: could not compile `\([^`]*\)`.*/(build) \1/p' "$log"
      ;;
    pytest) sed -n 's/^\(FAILED\|ERROR\) \([^ ]*\).*/\2/p' "$log" ;;
    # node's TAP: a failed subtest and the test holding it both say "not ok".
    node) sed -n 's/^ *not ok [0-9]* - \(.*\)$/\1/p' "$log" ;;
    fuzz) sed -n 's/^--- \([^ ]*\) FAILED.*/\1/p' "$log" ;;
    # scripts/shape prints one "path[:line]: breach" line per problem, then its count.
    shape) grep -E '^[^ ]+(:[0-9]+)?: ' "$log" | grep -v '^shape: ' ;;
  esac | awk '!seen[$0]++'
}

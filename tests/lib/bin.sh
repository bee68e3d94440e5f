# Sourced by the suites' run.sh (with $root set to the repository): exports SCOPEGATE_BIN, the
# scopegate binary the suite drives, and SCOPEGATE_TARGET_DIR, where suites write their figures.
# Without SCOPEGATE_BIN it builds the binary first and takes it from the target directory cargo
# reports (scripts/target-dir), so a suite never drives a binary left over from an older build or
# from another target directory. It prints which binary it drives.
resolve_scopegate_bin() {
  SCOPEGATE_TARGET_DIR="${SCOPEGATE_TARGET_DIR:-$("$root/scripts/target-dir")}" || exit 1
  export SCOPEGATE_TARGET_DIR
  if [ -z "${SCOPEGATE_BIN:-}" ]; then
    (cd "$root" && cargo build --locked --quiet --bin scopegate) || exit 1
    SCOPEGATE_BIN="$SCOPEGATE_TARGET_DIR/debug/scopegate"
  fi
  case "$SCOPEGATE_BIN" in
    /*) ;;
    *) SCOPEGATE_BIN="$PWD/$SCOPEGATE_BIN" ;;
  esac
  if [ ! -x "$SCOPEGATE_BIN" ]; then
    echo "run.sh: $SCOPEGATE_BIN is not an executable scopegate binary" >&2
    exit 1
  fi
  export SCOPEGATE_BIN
  echo "run.sh: driving $SCOPEGATE_BIN (built $(date -u -r "$SCOPEGATE_BIN" +%Y-%m-%dT%H:%M:%SZ))" >&2
}

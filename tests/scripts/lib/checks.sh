# checks.sh — sourced by the shell tests (`. tests/scripts/lib/checks.sh`
# from tests/scripts/NAME.sh BUILD): $build, $dalc, a scratch directory
# $tmp removed at exit, and the pass/fail count with its closing line.
build=${1:-build}
dalc="$build/dalc"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); printf 'FAIL: %s\n' "$*"; }
# summary NAME: prints "NAME: N passed, N failed"; fails if any check did.
summary() {
  printf '%s: %d passed, %d failed\n' "$1" "$pass" "$fail"
  [ "$fail" -eq 0 ]
}

# expect_error WHAT PATTERN CMD... : CMD exits 1 and its stderr matches PATTERN.
expect_error() {
  what=$1; pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 1 ]; then bad "$what: exit $rc, expected 1"; cat "$tmp/err"; return; fi
  if ! grep -q -- "$pattern" "$tmp/err"; then bad "$what: stderr lacks '$pattern'"; cat "$tmp/err"; return; fi
  ok
}

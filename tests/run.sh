#!/bin/sh
# run.sh BUILD [--san] — runs every test program and script, then prints
# one closing line "N passed, N failed" and exits non-zero on failure.
#   unit tests:   BUILD/tests/test_*      (Check programs)
#   script tests: tests/scripts/*.sh and tests/scripts/*.py (need BUILD/dalc)
# With --san (a sanitizer build) only the unit tests and the shell scripts
# run: the Python parity scripts would only measure the slow -O1 build.
build=${1:-build}
mode=${2:-}
passed=0
failed=0
failures=""
export DALC="$build/dalc"
export CK_DEFAULT_TIMEOUT=${CK_DEFAULT_TIMEOUT:-60}
# The compiled-object cache of every test in one fresh directory, removed
# at the end: tests never read or write the user's ~/.cache/dal.
DAL_CACHE_DIR=$(mktemp -d "${TMPDIR:-/tmp}/dal-test-cache.XXXXXX") || exit 1
export DAL_CACHE_DIR
trap 'rm -rf "$DAL_CACHE_DIR"' EXIT

run_one() {
  name=$1; shift
  printf '== %s\n' "$name"
  if "$@"; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures="$failures $name"
  fi
}

for t in "$build"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done

for s in tests/scripts/*.sh; do
  [ -f "$s" ] || continue
  run_one "$(basename "$s")" sh "$s" "$build"
done
if [ "$mode" != "--san" ]; then
  for s in tests/scripts/*.py; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s")" /usr/bin/python3 "$s" "$build"
  done
  # The PyTorch parity scripts once more on the reference executor: the
  # oracle itself must match PyTorch, not only the native code.
  for s in tests/scripts/parity.py tests/scripts/grad_parity.py; do
    [ -f "$s" ] || continue
    run_one "$(basename "$s") (reference executor)" env DAL_BACKEND=ref /usr/bin/python3 "$s" "$build"
  done
fi

[ -n "$failures" ] && printf 'failed:%s\n' "$failures"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]

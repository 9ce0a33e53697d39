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

# tiny_dvae_inputs: $tmp/x.npy and $tmp/noise.npy, fixed inputs of the dVAE
# tiny's loss_given_noise, and $tiny_run, the dalc run command that uses
# them (--out and --grad-out to be added).
tiny_dvae_inputs() {
  /usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
r = np.random.default_rng(0)
np.save(f"{sys.argv[1]}/x.npy", r.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
np.save(f"{sys.argv[1]}/noise.npy", r.gumbel(size=(4, 64, 4, 4)).astype(np.float32))
PY
  tiny_run="$dalc run models/dvae.dal --config tiny --fn loss_given_noise --in x=$tmp/x.npy --in noise=$tmp/noise.npy
     --in tau=0.8 --in beta=0.5 --seed 3"
}

# wait_lines FILE N: until FILE has at least N lines (20 s at most): a
# background run has got that far (tests that signal a training run).
wait_lines() {
  i=0
  while [ "$(cat "$1" 2>/dev/null | wc -l)" -lt "$2" ] && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
}

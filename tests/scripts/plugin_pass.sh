#!/bin/sh
# plugin_pass.sh BUILD — pass plugins end to end: the example plugin
# (examples/passes/exp_log_softmax.c, built by make) loads with --plugin,
# is listed, runs by name in --passes, and its rewrite shows in --stats and
# --print-after (the dVAE's exp(log_softmax) becomes a softmax); the
# training loss and every parameter's gradient with it, through the JIT and
# through the reference executor, agree with the reference executor without
# it. Then every bad plugin: a missing file, a file dlopen refuses, no
# dal_plugin symbol, another API version, a duplicate, invalid or reserved
# pass name, no run function, and the plugin's pass named without
# --plugin; each exits 1 naming the problem.
# Last, bench/passes.sh once on one step of each pipeline (its table's
# shape only, never its times) and its bad arguments.
. tests/scripts/lib/checks.sh

plugin="$build/examples/passes/exp_log_softmax.so"
pipeline=cse,fold,algebra,exp_log_softmax,cse,dce
dvae="models/dvae.dal --config tiny"

# expect_error WHAT PATTERN CMD... : CMD exits 1 and its stderr matches PATTERN.
expect_error() {
  what=$1; pattern=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 1 ]; then bad "$what: exit $rc, expected 1"; cat "$tmp/err"; return; fi
  grep -q -- "$pattern" "$tmp/err" && ok || { bad "$what: stderr lacks '$pattern'"; cat "$tmp/err"; }
}

[ -s "$plugin" ] && ok || bad "make built no $plugin"

# ---- listed: by `dalc passes`, with the plugin that added it; --help lists the built-ins ----
"$dalc" passes --plugin="$plugin" > "$tmp/out" 2> "$tmp/err" && ok || { bad "dalc passes --plugin"; cat "$tmp/err"; }
grep -q '^  exp_log_softmax  rewrite exp(log_softmax(x)) into softmax(x).*\[plugin exp_log_softmax\]$' "$tmp/out" &&
  ok || bad "dalc passes does not list the plugin's pass: $(cat "$tmp/out")"
grep -q '^  algebra ' "$tmp/out" && ok || bad "dalc passes lacks the built-ins"
"$dalc" --help > "$tmp/out"
grep -q '^  fold  *evaluate ops over constants' "$tmp/out" && grep -q -- '--plugin=FILE.so' "$tmp/out" && ok ||
  bad "dalc --help lists no passes or no --plugin"

# ---- --stats: the pass turns the one exp into a second softmax ----
counts() { sed -n "s/^$1  .*| \(.*\)/\1/p" "$tmp/err" | tr ',' '\n' | sed -n "s/^ *$2 \([0-9]*\)$/\1/p"; }
if "$dalc" $dvae --fn loss --grad --emit=ir --plugin="$plugin" --passes=$pipeline --stats > "$tmp/ir" 2> "$tmp/err"; then
  ok
  exp_before=$(counts 'after algebra' exp); exp_after=$(counts 'after exp_log_softmax' exp)
  sm_before=$(counts 'after algebra' softmax); sm_after=$(counts 'after exp_log_softmax' softmax)
  [ "$exp_before" = 1 ] && [ -z "$exp_after" ] && [ "$sm_before" = 1 ] && [ "$sm_after" = 2 ] && ok ||
    bad "--stats: exp $exp_before -> '$exp_after', softmax $sm_before -> $sm_after (want 1 -> none, 1 -> 2)"
else
  bad "--stats with the plugin's pass"; cat "$tmp/err"
fi

# ---- --print-after: a softmax along the logits' axis 1 where the exp was ----
"$dalc" $dvae --fn loss --grad --emit=ir --passes=cse,fold,algebra,dce > "$tmp/plain" 2>&1
grep -q '= exp %[0-9]* : f32\[4, 64, 4, 4\]' "$tmp/plain" && ok || bad "without the pass the loss has no exp(log_softmax)"
"$dalc" $dvae --fn loss --grad --emit=ir --plugin="$plugin" --passes=$pipeline --print-after=exp_log_softmax \
  > /dev/null 2> "$tmp/err"
grep -q "^; IR after pass 'exp_log_softmax'" "$tmp/err" && ok || bad "--print-after=exp_log_softmax printed nothing"
grep -q '= exp ' "$tmp/err" && bad "an exp is left after the pass" || ok
[ "$(grep -c '= softmax %[0-9]*  axis=1 *: f32\[4, 64, 4, 4\]' "$tmp/err")" = 2 ] && ok ||
  bad "want two softmaxes along axis 1 of f32[4, 64, 4, 4]: $(grep '= softmax' "$tmp/err")"

# ---- --explain-fusion and --time-passes see the plugin's pass ----
"$dalc" $dvae --fn loss --grad --emit=ir --plugin="$plugin" --passes=$pipeline --explain-fusion --time-passes \
  > /dev/null 2> "$tmp/err" && grep -q '^; fusion of loss: [0-9]* nodes in [0-9]* kernels' "$tmp/err" &&
  grep -q 'ms .*pass exp_log_softmax$' "$tmp/err" && ok || { bad "--explain-fusion / --time-passes"; cat "$tmp/err"; }

# ---- outputs: loss and gradients with the pass agree with the reference executor ----
/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
r = np.random.default_rng(0)
np.save(f"{sys.argv[1]}/x.npy", r.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
np.save(f"{sys.argv[1]}/noise.npy", r.gumbel(size=(4, 64, 4, 4)).astype(np.float32))
PY
run="$dalc run $dvae --fn loss_given_noise --in x=$tmp/x.npy --in noise=$tmp/noise.npy --in tau=0.8 --in beta=0.5 --seed 3"
$run --backend=ref --out loss_given_noise="$tmp/ref.npy" --grad-out "$tmp/ref.safetensors" > /dev/null 2> "$tmp/err" &&
  ok || { bad "the reference run"; cat "$tmp/err"; }
for backend in jit ref; do
  if $run --backend=$backend --plugin="$plugin" --passes=$pipeline --stats --out loss_given_noise="$tmp/$backend-p.npy" \
     --grad-out "$tmp/$backend-p.safetensors" > /dev/null 2> "$tmp/err"; then
    grep -q "^after exp_log_softmax .*softmax 2" "$tmp/err" && ok || bad "$backend: the pass did not fire in the run"
  else
    bad "$backend run with the plugin's pass"; cat "$tmp/err"
  fi
  /usr/bin/python3 - "$tmp" "$backend" <<'PY' && ok || bad "$backend with the pass differs from the reference executor"
import json, struct, sys, numpy as np
t, backend = sys.argv[1], sys.argv[2]
def tensors(path):  # a safetensors file of f32 tensors, by name
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}
want, got = tensors(f"{t}/ref.safetensors"), tensors(f"{t}/{backend}-p.safetensors")
want["loss"], got["loss"] = np.load(f"{t}/ref.npy").reshape(1), np.load(f"{t}/{backend}-p.npy").reshape(1)
assert want.keys() == got.keys() and len(want) == 70, (len(want), len(got))
worst = max((float(np.abs(got[k] - want[k]).max() / max(1e-3, np.abs(want[k]).max())), k) for k in want)
print(f"{backend} + exp_log_softmax vs reference: worst relative difference {worst[0]:.2e} ({worst[1]})")
sys.exit(0 if worst[0] < 1e-4 else 1)
PY
done

# ---- bad plugins ----
cc=${CC:-cc}
cat > "$tmp/nosym.c" <<'C'
int not_a_plugin(void) { return 0; }
C
cat > "$tmp/oldapi.c" <<'C'
#include "passes/plugin.h"
const DalPlugin dal_plugin = {DAL_PLUGIN_API_VERSION + 41, "oldapi", 0};
C
# reg_NAME registers a pass called NAME; reg_norun one without a run function
for name in dce Bad-Name all norun; do
  fn=run; [ $name = norun ] && fn=0
  cat > "$tmp/reg_$name.c" <<C
#include "passes/plugin.h"
static int run(IrGraph *g) { (void)g; return 0; }
static int init(char *why, size_t size) {
  (void)run;
  static const Pass p = {"$name", "registers an unusable pass", $fn};
  return pass_register(&p, why, size);
}
DAL_PLUGIN_DEFINE("reg_$name", init)
C
done
for f in nosym oldapi reg_dce reg_Bad-Name reg_all reg_norun; do
  $cc -std=c11 -I. -fPIC -shared -o "$tmp/$f.so" "$tmp/$f.c" && ok || bad "cannot build the test plugin $f"
done
echo 'not a shared object' > "$tmp/text.so"
list="$dalc passes"
expect_error "missing plugin" "error: cannot read plugin '$tmp/none.so': No such file or directory" $list --plugin="$tmp/none.so"
expect_error "not a shared object" "error: cannot load plugin '$tmp/text.so': .*text.so: .*" $list --plugin="$tmp/text.so"
expect_error "no dal_plugin symbol" "is not a dal plugin: it defines no 'dal_plugin' symbol" $list --plugin="$tmp/nosym.so"
expect_error "another API version" "was built for plugin API version 43, this dalc has version 2: rebuild it" \
  $list --plugin="$tmp/oldapi.so"
expect_error "a built-in's name" "failed to initialise: a pass named 'dce' is already registered" \
  $list --plugin="$tmp/reg_dce.so"
expect_error "an invalid name" "invalid pass name 'Bad-Name'" $list --plugin="$tmp/reg_Bad-Name.so"
expect_error "the reserved name" "invalid pass name 'all': it is reserved" $list --plugin="$tmp/reg_all.so"
expect_error "no run function" "pass 'norun' has no run function" $list --plugin="$tmp/reg_norun.so"
expect_error "the same plugin twice" "a pass named 'exp_log_softmax' is already registered" \
  $list --plugin="$plugin" --plugin="$plugin"
expect_error "the plugin's pass without --plugin" "unknown pass 'exp_log_softmax'.*--plugin" \
  "$dalc" $dvae --fn loss --emit=ir --passes=cse,exp_log_softmax
expect_error "a bad plugin in a compile" "cannot read plugin" "$dalc" $dvae --emit=ir --plugin="$tmp/none.so"
expect_error "--plugin without a value" "--plugin needs a value" $list --plugin

# ---- the passes bench: one step per pipeline, the table's shape only ----
if sh bench/passes.sh --build "$build" --plugin "$plugin" --a cse,fold,algebra,dce --b "$pipeline" \
   --runs 1 --steps 1 --warmup 0 > "$tmp/out" 2> "$tmp/err"; then
  grep -q '^passes bench: models/dvae.dal --config tiny (--plugin=.*), entry loss (training step)$' "$tmp/out" &&
    grep -Eq '^  A  --passes=cse,fold,algebra,dce +median +[0-9.]+ ms/step  \(runs: [0-9.]+\)$' "$tmp/out" &&
    grep -Eq "^  B  --passes=$pipeline +median +[0-9.]+ ms/step" "$tmp/out" &&
    grep -Eq '^ratio A/B: [0-9.]+  \(above 1: B is faster\)$' "$tmp/out" && ok || bad "passes.sh table: $(cat "$tmp/out")"
else
  bad "bench/passes.sh failed"; cat "$tmp/err"
fi
sh bench/passes.sh --build "$build" --a dce --b dce --b-flags -fno-fuse --runs 1 --steps 1 --warmup 0 > "$tmp/out" 2>&1 &&
  grep -Eq '^  B  --passes=dce -fno-fuse +median' "$tmp/out" && ok || bad "passes.sh --b-flags: $(cat "$tmp/out")"
sh bench/passes.sh --build "$build" --a dce > "$tmp/out" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'name both pipelines' "$tmp/err" && ok || bad "passes.sh without --b: $(cat "$tmp/err")"
sh bench/passes.sh --build "$build" --a dce --b nosuch --runs 1 --steps 1 > "$tmp/out" 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "pipeline B (nosuch) failed in run 1" "$tmp/err" && grep -q "unknown pass 'nosuch'" "$tmp/err" &&
  ok || bad "passes.sh with an unknown pass: $(cat "$tmp/err")"
sh bench/passes.sh --build "$build" --a dce --b dce --runs 0 > "$tmp/out" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'must be positive integers' "$tmp/err" && ok || bad "passes.sh --runs 0: $(cat "$tmp/err")"

summary plugin_pass

#!/bin/sh
# numerics.sh BUILD — non-finite values through the command line (issue 12,
# rows 6-8): NaN/Inf in a loaded parameter file or an input is an error
# naming the tensor (--allow-nonfinite accepts it); --check-numerics names
# the op that first made a non-finite value and its .dal file:line:col, on
# the dVAE and the GPT, natively, on the reference executor and in an
# AOT-built executable; files written with non-finite values warn, naming
# the tensor; a training run whose loss turns NaN reruns with the check and
# names the op and step; a diverging loss (--lr 1e6) is reported, and
# --stop-on-divergence ends the run (exit 1) with the checkpoint of the
# last good state.
. tests/scripts/lib/checks.sh
tiny_dvae_inputs

# match WHAT PATTERN FILE: FILE has a line matching the extended regex PATTERN.
match() {
  if grep -Eq -- "$2" "$3"; then ok; else bad "$1: lacks /$2/"; cat "$3"; fi
}
# expect_status WHAT STATUS CMD...: CMD exits STATUS, its stderr in $tmp/err.
expect_status() {
  what=$1; want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -eq "$want" ]; then ok; else bad "$what: exit $rc, expected $want"; cat "$tmp/err"; fi
}

/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
t = sys.argv[1]
x = np.load(f"{t}/x.npy"); x[1, 2, 3, 4] = np.nan
np.save(f"{t}/xnan.npy", x)
r = np.random.default_rng(0)
np.save(f"{t}/text.npy", r.integers(0, 64, (4, 8)).astype(np.int32))
np.save(f"{t}/image.npy", r.integers(0, 64, (4, 16)).astype(np.int32))
PY
# poison IN OUT NAME INDEX VALUE: safetensors IN with element INDEX of tensor NAME set to VALUE.
poison() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
import numpy as np
src, dst, name, index, value = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
at = 8 + n + json.loads(b[8:8 + n])[name]["data_offsets"][0] + 4 * index
b[at:at + 4] = np.float32(value).tobytes()
open(dst, "wb").write(b)
PY
}
# meta FILE KEY: a safetensors file's metadata value.
meta() {
  /usr/bin/python3 -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; print(json.loads(b[8:8+n])["__metadata__"][sys.argv[2]])' "$1" "$2"
}

# ---- the usage texts name the options ----
$dalc --help >"$tmp/help" 2>&1
match "dalc --help" "--check-numerics" "$tmp/help"
match "dalc --help" "--allow-nonfinite" "$tmp/help"
$dalc run models/dvae.dal --config tiny -- help >"$tmp/help" 2>&1
match "-- help" "--check-numerics" "$tmp/help"
match "-- help" "--stop-on-divergence" "$tmp/help"

# ---- dVAE: a NaN in an input ----
dvae="$dalc run models/dvae.dal --config tiny --fn encode --in x=$tmp/xnan.npy"
expect_error "NaN input" "input 'x' (.*xnan.npy) holds 1 non-finite value (element \[1, 2, 3, 4\] is nan); --allow-nonfinite" $dvae
expect_status "NaN input, --allow-nonfinite" 0 $dvae --allow-nonfinite
# the op, the library line it comes from (nn.dal's conv, as called by
# dvae.dal), the step of the plan, the entry, the buffer and the element
op_re="models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op '[^']+' \(plan step [0-9]+ of [0-9]+[^)]*\) of entry 'encode' wrote nan to element \[[0-9, ]+\] of"
expect_status "dVAE --check-numerics" 1 $dvae --allow-nonfinite --check-numerics
match "dVAE --check-numerics" "$op_re" "$tmp/err"
# ... and the model's lines that called it (dvae.dal's encoder, from the entry)
calls_re="; called from models/dvae\.dal:[0-9]+:[0-9]+, models/dvae\.dal:[0-9]+:[0-9]+$"
match "dVAE --check-numerics: the calls" "$calls_re" "$tmp/err"
expect_status "dVAE --check-numerics, reference executor" 1 $dvae --allow-nonfinite --check-numerics --backend=ref
match "dVAE --check-numerics, reference executor" \
  "models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op 'conv2d' \(node %[0-9]+[^)]*\) of entry 'encode' wrote nan" "$tmp/err"
match "dVAE --check-numerics, reference executor: the calls" "$calls_re" "$tmp/err"
# an AOT-built executable carries the locations in its tables
if $dalc models/dvae.dal --config tiny -o "$tmp/dvae" >"$tmp/out" 2>&1; then ok; else bad "dvae -o failed"; cat "$tmp/out"; fi
expect_error "AOT NaN input" "input 'x' (.*xnan.npy) holds 1 non-finite value" "$tmp/dvae" run --fn encode --in "x=$tmp/xnan.npy"
expect_status "AOT --check-numerics" 1 "$tmp/dvae" run --fn encode --in "x=$tmp/xnan.npy" --allow-nonfinite --check-numerics
match "AOT --check-numerics" "$op_re" "$tmp/err"
match "AOT --check-numerics: the calls" "$calls_re" "$tmp/err"

# ---- GPT: a NaN in a parameter file ----
gpt="$dalc run models/gpt.dal --config tiny --fn image_ce --in text=$tmp/text.npy --in image=$tmp/image.npy"
expect_status "GPT --save-params" 0 $gpt --save-params "$tmp/gpt.safetensors"
poison "$tmp/gpt.safetensors" "$tmp/gptnan.safetensors" blocks.1.mlp.fc.weight 5 nan
expect_error "NaN parameter" "gptnan.safetensors: tensor 'blocks.1.mlp.fc.weight' holds 1 non-finite value (element \[0, 5\] is nan); --allow-nonfinite" \
  $gpt --params "$tmp/gptnan.safetensors"
expect_status "NaN parameter, --allow-nonfinite" 0 $gpt --params "$tmp/gptnan.safetensors" --allow-nonfinite
gpt_re="models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op 'matmul' \([^)]*reading blocks\.1\.mlp\.fc\.weight\) of entry 'image_ce' wrote nan.*; called from models/gpt\.dal:$(grep -n 'gelu(linear(x, 4 \* w))' models/gpt.dal | cut -d: -f1):[0-9]+, models/gpt\.dal"
expect_status "GPT --check-numerics" 1 $gpt --params "$tmp/gptnan.safetensors" --allow-nonfinite --check-numerics
match "GPT --check-numerics" "$gpt_re" "$tmp/err"
expect_status "GPT --check-numerics, reference executor" 1 $gpt --params "$tmp/gptnan.safetensors" --allow-nonfinite \
  --check-numerics --backend=ref
match "GPT --check-numerics, reference executor" "$gpt_re" "$tmp/err"
# sampling with the KV cache: checked, and no false alarm on a finite model
poison "$tmp/gpt.safetensors" "$tmp/gptinf.safetensors" blocks.0.attn.qkv.weight 3 inf
sample="$dalc run models/gpt.dal --config tiny -- sample --in text=$tmp/text.npy --out $tmp/tokens.npy"
expect_status "sample --check-numerics" 1 $sample --params "$tmp/gptinf.safetensors" --allow-nonfinite --check-numerics
match "sample --check-numerics" "models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op 'matmul[^']*' \([^)]*reading blocks\.0\.attn\.qkv\.weight[^)]*\) of entry 'prefill' wrote -?inf" "$tmp/err"
expect_status "sample --check-numerics, finite" 0 $sample --params "$tmp/gpt.safetensors" --check-numerics
# a healthy run is unchanged by the check
expect_status "GPT --check-numerics, finite" 0 $gpt --params "$tmp/gpt.safetensors" --check-numerics
$gpt --params "$tmp/gpt.safetensors" >"$tmp/plain" 2>&1
if cmp -s "$tmp/out" "$tmp/plain"; then ok; else bad "--check-numerics changed the output"; diff "$tmp/out" "$tmp/plain"; fi

# ---- a non-finite gradient of finite values: sqrt'(0) ----
cat >"$tmp/grad.dal" <<'DAL'
config tiny { batch = 2 }

@train
def loss(x: f32[B, 4]) -> f32 {
    param w: [4] = zeros()
    h = sqrt(w * w) * x
    return sum(h * h)
}
DAL
/usr/bin/python3 -c "import numpy as np, sys; np.save(sys.argv[1], np.ones((2, 4), np.float32))" "$tmp/gx.npy"
g="$dalc run $tmp/grad.dal --fn loss --in x=$tmp/gx.npy --grad-out $tmp/gg.safetensors"
expect_status "NaN gradient" 0 $g
match "NaN gradient warning" "warning: .*gg\.safetensors: 'w' written with 4 non-finite values of 4" "$tmp/err"
expect_status "NaN gradient --check-numerics" 1 $g --check-numerics
match "NaN gradient --check-numerics" "grad\.dal:6:[0-9]+: non-finite value: in the gradient of the op at this line, op '[^']+' \(plan step [0-9]+ of [0-9]+, reading w\) of entry 'loss'" "$tmp/err"
expect_status "NaN gradient --check-numerics, reference executor" 1 $g --check-numerics --backend=ref
match "NaN gradient --check-numerics, reference executor" "grad\.dal:6:9: non-finite value: in the gradient of the op at this line, op 'div'" "$tmp/err"

# ---- written files warn, naming each tensor once ----
grad="$dalc run models/gpt.dal --config tiny --fn loss --in text=$tmp/text.npy --in image=$tmp/image.npy"
expect_status "--grad-out with a NaN parameter" 0 $grad --params "$tmp/gptnan.safetensors" --allow-nonfinite \
  --grad-out "$tmp/g.safetensors" --save-params "$tmp/p.safetensors"
match "--grad-out warning" "warning: .*g\.safetensors: 'blocks\.0\.attn\.qkv\.weight' written with [0-9]+ non-finite values of 3072" "$tmp/err"
match "--save-params warning" "warning: .*p\.safetensors: 'blocks\.1\.mlp\.fc\.weight' written with 1 non-finite value of 4096" "$tmp/err"
[ "$(grep -c "g.safetensors: 'head.weight'" "$tmp/err")" -eq 1 ] && ok || bad "one warning per tensor"
expect_status "--out with NaN" 0 $dvae --allow-nonfinite --out "$tmp/z.npy"
match "--out warning" "warning: .*z\.npy: written with [0-9]+ non-finite values of 4096" "$tmp/err"
$dalc run models/dvae.dal --config tiny --fn encode --in "x=$tmp/x.npy" --out "$tmp/z.npy" >"$tmp/out" 2>"$tmp/err"
[ -s "$tmp/err" ] && { bad "a finite output warned"; cat "$tmp/err"; } || ok

# ---- training: a NaN loss names its op and step ----
train="$dalc run models/dvae.dal --config tiny -- train --steps 4 --set tau=1 --set beta=0 --quiet"
expect_status "NaN loss" 1 $train --lr 1e20 --every 1 --checkpoint "$tmp/nan.safetensors"
match "NaN loss" "step 1: the loss is -?nan; running the steps since the last checkpoint again with --check-numerics" "$tmp/err"
match "NaN loss" "error: step 1: models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op '[^']+' \(plan step [0-9]+ of [0-9]+[^)]*\) of entry 'loss' wrote -?(inf|nan)" "$tmp/err"
match "NaN loss" "training stopped at step 1 \(loss -?nan; the last checkpoint, if any, is kept\)" "$tmp/err"
[ "$(meta "$tmp/nan.safetensors" dal.step)" = 1 ] && ok || bad "the last good checkpoint (step 1) is not kept"
# the same from the initial state (no checkpoint yet), and with the check on from the start
expect_status "NaN loss, no checkpoint" 1 $train --lr 1e20 --every none --checkpoint "$tmp/nan0.safetensors"
match "NaN loss, no checkpoint" "error: step 1: models/nn\.dal:[0-9]+:[0-9]+: non-finite value" "$tmp/err"
[ ! -e "$tmp/nan0.safetensors" ] && ok || bad "a failed run wrote a checkpoint"
expect_status "NaN loss, --check-numerics" 1 $train --lr 1e20 --checkpoint "$tmp/nan1.safetensors" --check-numerics
match "NaN loss, --check-numerics" "error: step 1: models/nn\.dal:[0-9]+:[0-9]+: non-finite value" "$tmp/err"

# the GPT: a learning rate that overflows the next step's first GEMM
/usr/bin/python3 -c "
import numpy as np, sys; r = np.random.default_rng(0)
np.save(sys.argv[1], r.integers(0, 64, (16, 8)).astype(np.int32)); np.save(sys.argv[2], r.integers(0, 64, (16, 16)).astype(np.int32))
" "$tmp/tt.npy" "$tmp/ti.npy"
expect_status "GPT NaN loss" 1 $dalc run models/gpt.dal --config tiny -- train --steps 3 --lr 1e30 --quiet \
  --data "npy:text=$tmp/tt.npy,image=$tmp/ti.npy" --checkpoint "$tmp/gnan.safetensors"
match "GPT NaN loss" "error: step 1: models/nn\.dal:[0-9]+:[0-9]+: non-finite value: op '[^']+' \([^)]*reading blocks\.0\.[^)]*\) of entry 'loss' wrote -?(inf|nan).*; called from models/gpt\.dal:[0-9]+:[0-9]+, .*; training stopped at step 1" "$tmp/err"

# ---- training: divergence ----
expect_status "divergence reported" 0 $train --lr 1e6 --checkpoint "$tmp/div.safetensors"
match "divergence reported" "warning: step 1: the loss is diverging: smoothed [0-9.e+]+, above 10 times its start [0-9.]+ \(step 0\); --stop-on-divergence would stop here" "$tmp/err"
[ "$(grep -c diverging "$tmp/err")" -eq 1 ] && ok || bad "divergence reported more than once"
expect_status "--stop-on-divergence" 1 $train --lr 1e6 --every 1 --checkpoint "$tmp/stop.safetensors" --stop-on-divergence
match "--stop-on-divergence" "error: step 1: training diverged \(smoothed loss [0-9.e+]+, start [0-9.]+\); stopped by --stop-on-divergence with the checkpoint of step 0, the last good state" "$tmp/err"
[ "$(meta "$tmp/stop.safetensors" dal.step)" = 0 ] && ok || bad "--stop-on-divergence: the checkpoint is not step 0's"
# step 0's state is the initial one: the same parameters as a fresh init
$dalc run models/dvae.dal --config tiny --fn encode --in "x=$tmp/x.npy" --save-params "$tmp/init.safetensors" >/dev/null 2>&1
/usr/bin/python3 - "$tmp/init.safetensors" "$tmp/stop.safetensors" >"$tmp/cmp" 2>&1 <<'PY'
import json, struct, sys
def read(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
    return {k: b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]] for k, v in h.items() if k != "__metadata__"}
a, c = read(sys.argv[1]), read(sys.argv[2])
bad = [k for k in a if a[k] != c[k]]
print("differ:", bad[:3]) if bad else print("same")
sys.exit(1 if bad else 0)
PY
[ $? -eq 0 ] && ok || { bad "--stop-on-divergence: step 0's checkpoint is not the initial state"; cat "$tmp/cmp"; }
# a resumed checkpoint with non-finite values is refused, unless allowed
expect_error "resume a non-finite checkpoint" "div.safetensors: tensor 'opt.v.[^']*' holds [0-9]* non-finite values" \
  $train --lr 1e6 --steps 5 --resume "$tmp/div.safetensors"

summary numerics.sh

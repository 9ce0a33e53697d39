#!/bin/sh
# conv_table.sh BUILD — `dalc tune-conv` and the measured conv table
# (codegen/conv_table.h) end to end, in a cache directory of its own: the
# table gets one row per conv shape of the dVAE tiny's entries (forward,
# backward-data, weight gradient), times for each algorithm that applies;
# a second model's tuning keeps the first's rows; -fconv=auto then says
# its choices come from the table; results still match the reference
# executor; a table of another machine is ignored with a note.
. tests/scripts/lib/checks.sh

DAL_CACHE_DIR="$tmp/cache"
export DAL_CACHE_DIR
table="$DAL_CACHE_DIR/conv-table.tsv"

if $dalc tune-conv models/dvae.dal --config tiny > "$tmp/tune.out" 2> "$tmp/tune.err"; then ok
else bad "tune-conv failed"; cat "$tmp/tune.err"; fi
[ -f "$table" ] && ok || bad "no table at $table"
head -n 1 "$table" | grep -q '^# dal conv table 1$' && ok || bad "table header: $(head -n 1 "$table")"
for op in conv2d conv_transpose2d conv2d_backward_weight; do
  grep -q "^$op " "$table" && ok || bad "no $op row in the table"
done
# a 3x3 stride-1 conv has times for im2col and both Winograd tiles; a 4x4 stride-2 one none for Winograd
grep -q '^conv2d 4 16 16 16 16 3 3 1 1 im2col=[0-9.]* winograd=[0-9.]* direct=- winograd4=[0-9.]*$' "$table" &&
  ok || bad "3x3 row: $(grep '^conv2d 4 16 16 16 16 3 3' "$table")"
grep -q '^conv2d 4 16 16 16 32 4 4 2 1 im2col=[0-9.]* winograd=- direct=[0-9.]* winograd4=-$' "$table" &&
  ok || bad "4x4 stride-2 row: $(grep '^conv2d 4 16 16 16 32 4 4' "$table")"
rows=$(grep -c '^conv' "$table")
grep -q "tune-conv: $rows shapes measured, 0 kept" "$tmp/tune.err" && ok || bad "summary: $(tail -n 1 "$tmp/tune.err")"

# another batch: new shapes, the old rows kept
$dalc tune-conv models/dvae.dal --config tiny --batch 2 > /dev/null 2> "$tmp/tune2.err" && ok || bad "second tune-conv failed"
grep -q "kept from before" "$tmp/tune2.err" && ok || bad "second summary: $(tail -n 1 "$tmp/tune2.err")"
grep -q '^conv2d 4 16 16 16 16 3 3 1 1 ' "$table" && grep -q '^conv2d 2 16 16 16 16 3 3 1 1 ' "$table" && ok ||
  bad "batch 4 and batch 2 rows not both in the table"

# auto reads it
$dalc models/dvae.dal --config tiny --stats > "$tmp/stats.out" 2>&1 && ok || bad "--stats failed"
grep -q '(auto: measured (conv table)' "$tmp/stats.out" && ok || bad "--stats does not show table choices"
! grep -q '(auto: 3x3 stride 1' "$tmp/stats.out" && ok || bad "a conv of the tuned model still went by the rules"

# the tuned plan still computes the same loss and gradients as the reference executor
tiny_dvae_inputs
run=$tiny_run
$run --out loss_given_noise="$tmp/jit.npy" --grad-out "$tmp/jit.safetensors" > /dev/null 2>&1 && ok || bad "jit run"
$run --backend=ref --out loss_given_noise="$tmp/ref.npy" --grad-out "$tmp/ref.safetensors" > /dev/null 2>&1 &&
  ok || bad "ref run"
/usr/bin/python3 - "$tmp" <<'PY' && ok || bad "the tuned plan disagrees with the reference executor"
import sys, json, struct, numpy as np
d = sys.argv[1]
def st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in h.items() if k != "__metadata__"}
a, b = np.load(f"{d}/jit.npy"), np.load(f"{d}/ref.npy")
assert abs(float(a) - float(b)) <= 1e-5 * abs(float(b)), (a, b)
ga, gb = st(f"{d}/jit.safetensors"), st(f"{d}/ref.safetensors")
for k in gb:
    err = np.abs(ga[k] - gb[k]).max() / max(np.abs(gb[k]).max(), 1e-30)
    assert err <= 1e-4, (k, err)
PY

# another machine's table: ignored, with a note; the rules decide
sed -i 's/^# cpu: .*/# cpu: Some Other CPU; threads: 64/' "$table"
$dalc models/dvae.dal --config tiny --stats > "$tmp/stats2.out" 2> "$tmp/stats2.err" && ok || bad "--stats failed"
grep -q 'measured on another machine' "$tmp/stats2.err" && ok || bad "no note for another machine's table"
! grep -q 'conv table' "$tmp/stats2.out" && ok || bad "another machine's table was used"

expect_error "tune-conv of a missing file" "no-such.dal" $dalc tune-conv "$tmp/no-such.dal"

summary conv_table.sh

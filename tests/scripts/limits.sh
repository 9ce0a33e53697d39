#!/bin/sh
# limits.sh BUILD — the frontend's resource limits (frontend/fe_limits.h)
# and the faults of issue 12's hostile probe, through dalc: sources that
# are not regular files (a device, a FIFO, a directory, as the file or an
# import: refused without reading or blocking), sources over the size
# limit, shapes whose products overflow, lists and strings that double,
# loops past the step limit, recursion past the stack, and programs with
# tens of thousands of parameters or inputs, which must compile in linear
# time: those run under a generous `timeout` (20 s where the quadratic
# versions took 18-113 s on this machine and the linear ones take under
# 3 s; 120 s for a sanitizer build), which is the only timing here.
. tests/scripts/lib/checks.sh

export DAL_CACHE_DIR="$tmp/cache"
entry='@infer
def f(x: f32[1]) -> f32[1] {'

# expect_fail WHAT PATTERN CMD...: expect_error under a $secs timeout and a
# 4 GB address-space limit (a runaway is then "exit 124/134", not a hang
# or a swapping machine; AddressSanitizer's shadow memory needs more
# address space than that, so a sanitizer build runs without the limit).
# (The sanitizer build is also many times slower: its timeout is 120 s.)
case $build in *san*) vlimit=unlimited secs=120 ;; *) vlimit=4000000 secs=20 ;; esac
expect_fail() {
  what=$1; pattern=$2; shift 2
  expect_error "$what" "$pattern" sh -c 'ulimit -v "$0"; t=$1; shift; exec timeout "$t" "$@"' "$vlimit" "$secs" "$@"
}

# ---- row 3: only regular files are sources ----
mkfifo "$tmp/fifo"
expect_fail "/dev/zero as the source" "/dev/zero: error: cannot open file: not a regular file" \
  "$dalc" /dev/zero --emit=ir
expect_fail "a FIFO as the source" "fifo: error: cannot open file: not a regular file" "$dalc" "$tmp/fifo" --emit=ir
expect_fail "a directory as the source" "not a regular file" "$dalc" "$tmp" --emit=ir
expect_fail "info on a FIFO" "not a regular file" "$dalc" info "$tmp/fifo"
for f in /dev/zero "$tmp/fifo"; do
  printf 'import "%s"\n%s\n  return x\n}\n' "$f" "$entry" >"$tmp/imp.dal"
  expect_fail "import $f" "imp.dal:1:1: error: cannot open imported file '$f': not a regular file" \
    "$dalc" "$tmp/imp.dal" --emit=ir
  printf 'import "%s" as m\n%s\n  return x\n}\n' "$f" "$entry" >"$tmp/imp.dal"
  expect_fail "import $f as a module" "not a regular file" "$dalc" "$tmp/imp.dal" --emit=ir
done
truncate -s 17M "$tmp/big.dal"
expect_fail "a 17 MiB source" "the file has 17825792 bytes, more than the 16 MiB a source file may have" \
  "$dalc" "$tmp/big.dal" --emit=ir

# ---- row 1: shapes whose product overflows ----
printf '%s\n  y = reshape(x, [4294967296, 4294967296, -1])\n  return x\n}\n' "$entry" >"$tmp/r.dal"
expect_fail "reshape overflowing to 0 with a -1" "r.dal:3:18: error: reshape: the target shape .* has more than 2^48 elements" \
  "$dalc" run "$tmp/r.dal" --fn f --in x=1

# ---- row 2: lists and strings that double; loops; recursion ----
printf '%s\n  s = [1]\n  for i in 0..60 { s = s + s }\n  return x\n}\n' "$entry" >"$tmp/l.dal"
expect_fail "a list doubled 60 times" "l.dal:4:26: error: a list of 16777216 elements is longer than the 10000000" \
  "$dalc" "$tmp/l.dal" --emit=ir
printf '%s\n  s = "x"\n  for i in 0..60 { s = s + s }\n  return x\n}\n' "$entry" >"$tmp/s.dal"
expect_fail "a string doubled 60 times" "s.dal:4:26: error: a string of 2097152 bytes is longer than the 1048576" \
  "$dalc" "$tmp/s.dal" --emit=ir
printf '%s\n  s = []\n  for i in 0..1000000 { s = s + [i] }\n  return x\n}\n' "$entry" >"$tmp/a.dal"
expect_fail "a list copied as it grows" "take more than 512 MiB in all" "$dalc" "$tmp/a.dal" --emit=ir
printf 'let n_res = 2 ** 62\n%s\n  for i in 0..n_res { }\n  return x\n}\n' "$entry" >"$tmp/n.dal"
expect_fail "for i in 0..2**62" "n.dal:4:3: error: the loop runs 4611686018427387904 times, more than the 5000000 steps" \
  "$dalc" "$tmp/n.dal" --emit=ir
/usr/bin/python3 - "$tmp" <<'PY'
import sys
e = "g(n + 1)"
for _ in range(990):
    e = "[" + e + "]"
open(f"{sys.argv[1]}/deep.dal", "w").write(f"def g(n) {{\n  return {e}\n}}\nlet a = g(0)\n")
open(f"{sys.argv[1]}/paren.dal", "w").write("let a = " + "(" * 100000 + "1" + ")" * 100000 + "\n")
PY
expect_fail "recursion through a deep expression" "error: evaluation nests too deeply" "$dalc" "$tmp/deep.dal" --emit=ir
expect_fail "100,000 nested parentheses" "error: the program nests too deeply here" "$dalc" "$tmp/paren.dal" --emit=ir

# ---- row 16: small ones ----
printf 'let a = abs(-9223372036854775807 - 1)\n%s\n  return x\n}\n' "$entry" >"$tmp/abs.dal"
expect_fail "abs(INT64_MIN)" "abs.dal:1:34: error: integer overflow in 'abs'" "$dalc" "$tmp/abs.dal" --emit=ir
printf '%s\n  return conv(x)\n}\n' "$entry" >"$tmp/conv.dal"
expect_fail "conv(x)" "unknown function 'conv' (did you mean 'conv2d'?)" "$dalc" "$tmp/conv.dal" --emit=ir

# ---- row 4: many parameters and inputs compile in linear time ----
/usr/bin/python3 - "$tmp" <<'PY'
import sys
d = sys.argv[1]
head = "@infer\ndef f(x: f32[1]) -> f32[1] {\n"
open(f"{d}/p40k.dal", "w").write(head + "  for i in 0..40000 { with p[i] { param w: [1] = zeros() } }\n  return x\n}\n")
open(f"{d}/sum2k.dal", "w").write(head + "  s = x\n  for i in 0..2000 { with p[i] { param w: [1] = ones()\n"
                                  "    s = s + w } }\n  return s\n}\n")
args = ", ".join(f"x{i}: f32[1]" for i in range(40000))
open(f"{d}/in40k.dal", "w").write(f"@infer\ndef f({args}) -> f32[1] {{\n  return x39999\n}}\n")
open(f"{d}/p100k.dal", "w").write(head + "  for i in 0..100001 { with p[i] { param w: [1] = zeros() } }\n  return x\n}\n")
PY
if timeout "$secs" "$dalc" run "$tmp/p40k.dal" --fn f --in x=2 >"$tmp/out" 2>"$tmp/err" && grep -q "f: f32\[1\] = 2" "$tmp/out"; then
  ok
else
  bad "40,000 parameters: dalc run did not finish in $secs s (exit $?)"; cat "$tmp/err"
fi
# rule kernel-inputs: 2,000 additions of parameters are 8 kernels of at most
# 256 inputs, not one kernel reading 2,001 buffers (LLVM took minutes on it)
"$dalc" "$tmp/sum2k.dal" --fn f --stats >"$tmp/out" 2>&1 && grep -q "kernels: 8 fused kernels for 4001 nodes" "$tmp/out" \
  && ok || bad "sum of 2,000 parameters: $(grep kernels: "$tmp/out")"
"$dalc" fuse-rules 2>&1 | grep -q "^  kernel-inputs " && ok || bad "dalc fuse-rules does not list kernel-inputs"
"$dalc" info "$tmp/p40k.dal" >"$tmp/out" 2>&1 && grep -q "p.39999.w" "$tmp/out" && ok || bad "info lacks p.39999.w"
if timeout "$secs" "$dalc" run "$tmp/sum2k.dal" --fn f --in x=1 >"$tmp/out" 2>"$tmp/err" && grep -q "f: f32\[1\] = 2001" "$tmp/out"; then
  ok
else
  bad "a sum of 2,000 parameters: dalc run did not give 2001 in $secs s (exit $?)"; cat "$tmp/out" "$tmp/err"
fi
if timeout "$secs" "$dalc" "$tmp/in40k.dal" --emit=ir >"$tmp/out" 2>"$tmp/err" && grep -q 'input "x39999"' "$tmp/out"; then
  ok
else
  bad "40,000 entry inputs: --emit=ir did not finish in $secs s (exit $?)"; cat "$tmp/err"
fi
# a training entry of 10,000 separate parameters: the step's optimizer
# update is one fusion group lowered to a kernel per parameter, which must
# cost each kernel its own nodes, not the whole graph's (this took 98 s and
# 23 GB before; a few seconds now). 60 s here, 360 s for a sanitizer build.
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
open(f"{d}/t10k.dal", "w").write("@train\ndef loss(x: f32[1]) -> f32 {\n  s = x\n"
                                 "  for i in 0..10000 { with p[i] { param w: [1] = zeros()\n    s = s + w } }\n"
                                 "  return sum(s * s)\n}\n")
np.save(f"{d}/t10k_x.npy", np.ones(4, np.float32))
PY
tsecs=$((secs * 3))
if timeout "$tsecs" "$dalc" run "$tmp/t10k.dal" -- train --steps 1 --data "npy:x=$tmp/t10k_x.npy" \
    --checkpoint "$tmp/t10k.safetensors" >"$tmp/out" 2>&1 && grep -q "step 1/1  loss 1 " "$tmp/out"; then
  ok
else
  bad "training 10,000 parameters: one step did not finish in $tsecs s (exit $?)"; tail -5 "$tmp/out"
fi
expect_fail "100,001 parameters" "p100k.dal:3:36: error: the entry declares more than 100000 parameters" \
  "$dalc" "$tmp/p100k.dal" --emit=ir

summary limits

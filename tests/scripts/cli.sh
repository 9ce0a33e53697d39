#!/bin/sh
# cli.sh BUILD — dalc's command line end to end: --emit=ir/dot on the real
# models, run with seeded and saved parameters, and every class of bad
# input (each must exit 1 with a message naming the problem, never crash).
. tests/scripts/lib/checks.sh


# expect_ok WHAT CMD...
expect_ok() {
  what=$1; shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "$what: exit $?"; cat "$tmp/err"; fi
}

# ---- emitting the graph ----
expect_ok "emit ir" "$dalc" models/dvae.dal --config tiny --emit=ir
grep -q 'conv2d' "$tmp/out" && grep -q 'enc.conv_in.weight' "$tmp/out" && ok || bad "emit ir lacks conv2d / enc.conv_in.weight"
expect_ok "emit dot" "$dalc" models/dvae.dal --config tiny --emit=dot -o "$tmp/g.dot"
if dot -Tpng "$tmp/g.dot" -o "$tmp/g.png" && [ -s "$tmp/g.png" ]; then ok; else bad "dot -Tpng failed"; fi
expect_ok "emit ir one entry" "$dalc" models/gpt.dal --config tiny --emit=ir --fn logits
grep -q 'entry logits' "$tmp/out" && ok || bad "emit ir --fn logits lacks its header"

# ---- native code: LLVM IR, assembly with AVX2 FMA, object files ----
expect_ok "emit llvm" "$dalc" models/gpt.dal --config tiny --emit=llvm --fn logits
grep -q 'define void' "$tmp/out" && grep -q '<8 x float>' "$tmp/out" && ok || bad "emit llvm lacks vectorised kernels"
expect_ok "emit asm" "$dalc" models/gpt.dal --config tiny --emit=asm
grep -q 'vfmadd' "$tmp/out" && grep -q 'ymm' "$tmp/out" && ok || bad "the training step's asm has no AVX2 FMA"
expect_ok "emit obj" "$dalc" models/dvae.dal --config tiny --emit=obj -o "$tmp/k.o"
[ -s "$tmp/k.o" ] && ok || bad "no object file"

# ---- memory plans of the bench training steps: arena <= 1.05x the lower bound,
#      elementwise kernels reusing their dying inputs, every update in place ----
for m in "gpt loss" "dvae loss"; do
  set -- $m
  expect_ok "stats $1 bench" "$dalc" models/$1.dal --config bench --stats --fn $2
  ratio=$(sed -n 's/.*arena\/bound \([0-9.]*\).*/\1/p' "$tmp/out")
  grep -q 'no reuse' "$tmp/out" && [ -n "$ratio" ] && awk "BEGIN { exit !($ratio <= 1.05) }" \
    && ok || bad "$1 bench training step: arena/bound '$ratio' (must be <= 1.05)"
  merged=$(sed -n 's/^in place: \([0-9]*\).*/\1/p' "$tmp/out")
  [ "${merged:-0}" -gt 0 ] && ok || bad "$1 bench training step: no kernel writes in place ('$merged')"
  grep -q ' 0 copies)' "$tmp/out" && ok || bad "$1 bench training step: state updates copied: $(grep '^kernels:' "$tmp/out")"
done
set --

# ---- run: seeded parameters, saved and reloaded, give the same output ----
/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
t = sys.argv[1]
np.save(f"{t}/x.npy", np.random.default_rng(0).uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
np.save(f"{t}/x_small.npy", np.zeros((2, 3, 16, 16), np.float32))
np.save(f"{t}/x_int.npy", np.zeros((4, 3, 16, 16), np.int32))
np.save(f"{t}/x_bench.npy", np.zeros((4, 3, 64, 64), np.float32))
np.save(f"{t}/text.npy", np.arange(32, dtype=np.int32).reshape(4, 8) % 64)
np.save(f"{t}/image.npy", np.arange(64, dtype=np.int32).reshape(4, 16))
bad = np.arange(64, dtype=np.int32).reshape(4, 16); bad[2, 5] = 64
np.save(f"{t}/image_bad.npy", bad)
open(f"{t}/trunc.npy", "wb").write(open(f"{t}/x.npy", "rb").read()[:200])
open(f"{t}/garbage.safetensors", "wb").write(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
PY
run="$dalc run models/dvae.dal --config tiny"
expect_ok "run seeded" $run --fn encode --in x="$tmp/x.npy" --seed 7 --save-params "$tmp/p.safetensors" --out "$tmp/a.npy"
expect_ok "run from params" $run --fn encode --in "$tmp/x.npy" --params "$tmp/p.safetensors" --out encode="$tmp/b.npy"
if cmp -s "$tmp/a.npy" "$tmp/b.npy"; then ok; else bad "saved parameters do not reproduce the seeded run"; fi
expect_ok "run on the reference executor" $run --backend=ref --fn encode --in "$tmp/x.npy" --params "$tmp/p.safetensors" --out "$tmp/c.npy"
/usr/bin/python3 -c "
import numpy as np, sys
a, c = np.load('$tmp/a.npy'), np.load('$tmp/c.npy')
sys.exit(0 if np.abs(a - c).max() <= 1e-5 * np.abs(c).max() else 1)" && ok || bad "JIT and reference executor disagree on encode"
expect_error "bad backend" "--backend must be jit" $run --backend=gpu --fn encode --in "$tmp/x.npy"
expect_ok "run scalar inputs" $run --fn loss --in x="$tmp/x.npy" --in tau=1 --in beta=0.5
grep -q 'loss: f32 = ' "$tmp/out" && ok || bad "loss summary missing"

# ---- gradients and pass-pipeline controls ----
expect_ok "emit grad" "$dalc" models/dvae.dal --config tiny --emit=ir --fn loss_given_noise --grad
grep -q 'straight_through' "$tmp/out" && grep -q 'conv2d_backward_weight' "$tmp/out" && grep -q '"grad:enc.conv_in.weight"' "$tmp/out" \
  && ok || bad "emit --grad lacks the backward graph"
expect_ok "grad-out" $run --fn loss --in x="$tmp/x.npy" --in tau=1 --in beta=0.5 --grad-out "$tmp/g.safetensors"
/usr/bin/python3 - "$tmp/g.safetensors" <<'PY' && ok || bad "grad-out file lacks parameter names or values"
import sys; sys.path.insert(0, "tests/torch_ref")
from dal_io import load_safetensors
g = load_safetensors(sys.argv[1])
assert "enc.conv_in.weight" in g and "codebook.weight" in g and len(g) == 69, sorted(g)[:5]
assert any(abs(v).max() > 0 for v in g.values())
PY
expect_error "grad-out of an @infer entry" "needs a training entry" $run --fn encode --in "$tmp/x.npy" --grad-out "$tmp/g2.safetensors"
expect_ok "time passes" "$dalc" models/gpt.dal --config tiny --emit=ir --time-passes
grep -q 'pass cse' "$tmp/err" && grep -q 'total' "$tmp/err" && ok || bad "--time-passes table missing"
expect_ok "print after" "$dalc" models/gpt.dal --config tiny --emit=ir --fn logits --print-after=cse
grep -q "IR after pass 'cse'" "$tmp/err" && ok || bad "--print-after output missing"
expect_ok "stats" "$dalc" models/gpt.dal --config tiny --emit=ir --fn logits --stats
grep -q 'after dce' "$tmp/err" && ok || bad "--stats lines missing"
expect_ok "explain fusion" "$dalc" models/gpt.dal --config tiny --emit=dot --fn logits --explain-fusion -o "$tmp/f.dot"
grep -q 'fusion of logits' "$tmp/err" && grep -q 'cluster' "$tmp/f.dot" && ok || bad "--explain-fusion / fusion clusters missing"
if dot -Tpng "$tmp/f.dot" -o "$tmp/f.png" && [ -s "$tmp/f.png" ]; then ok; else bad "fused dot does not render"; fi
expect_ok "no fusion" "$dalc" models/gpt.dal --config tiny --emit=dot --fn logits -fno-fuse -o "$tmp/nf.dot"
grep -q 'cluster' "$tmp/nf.dot" && bad "-fno-fuse still draws clusters" || ok
# convolution algorithms: -fconv, each conv's choice in --explain-fusion, the counts in --stats
expect_ok "fconv winograd" "$dalc" models/dvae.dal --config tiny --fn encode --emit=ir --explain-fusion -fconv=winograd
grep -q 'conv2d \[4,16,16,16\] -> \[4,16,16,16\] k3x3 s1 p1: winograd' "$tmp/err" && ok || bad "--explain-fusion lacks the Winograd choice"
expect_ok "fconv im2col" "$dalc" models/dvae.dal --config tiny --stats --fn encode -fconv=im2col
grep -q 'convs: *0 Winograd' "$tmp/out" && ok || bad "-fconv=im2col still lowers a conv through Winograd"
expect_ok "fconv auto" "$dalc" models/dvae.dal --config bench --stats --fn encode
grep -q 'convs: *8 Winograd' "$tmp/out" && ok || bad "auto does not pick Winograd for the bench's residual convs"
expect_ok "fconv winograd4" "$dalc" models/dvae.dal --config tiny --stats --fn loss -fconv=winograd4
grep -q 'weight gradients: *14 Winograd.*of the Winograd ones 41 F(4x4,3x3)' "$tmp/out" && ok || bad "-fconv=winograd4 does not lower the 3x3 convs and weight gradients through F(4x4,3x3)"
expect_ok "fconv direct" "$dalc" models/dvae.dal --config tiny --stats --fn encode -fconv=direct
grep -q 'convs: *0 Winograd, 7 im2col + GEMM, 3 direct' "$tmp/out" &&
  grep -q 'conv2d \[4,16,16,16\] -> \[4,32,8,8\] k4x4 s2 p1: direct (-fconv=direct)' "$tmp/out" && ok ||
  bad "-fconv=direct does not send the down and 1x1 convs through the direct path"
expect_ok "fconv direct explained" "$dalc" models/dvae.dal --config tiny --fn encode --emit=ir --explain-fusion -fconv=direct
grep -q 'k3x3 s1 p1: im2col + GEMM (-fconv=direct, but not' "$tmp/err" && ok || bad "--explain-fusion lacks the direct refusal"
expect_error "bad -fconv" "-fconv must be auto, im2col, winograd, direct or winograd4, not 'fft'" "$dalc" models/dvae.dal --stats -fconv=fft
expect_error "unknown pass" "unknown pass 'nosuch'" "$dalc" models/gpt.dal --config tiny --emit=ir --passes=cse,nosuch

# ---- bad input: each exits 1 with a clear message ----
expect_error "no file" "nope.npy: cannot open" $run --fn encode --in "$tmp/nope.npy"
expect_error "missing --fn" "needs --fn" $run
expect_error "unknown entry" "no entry function 'nosuch'" $run --fn nosuch
expect_error "missing input" "needs --in tau" $run --fn loss --in x="$tmp/x.npy" --in beta=1
expect_error "unknown input" "has no input 'y'" $run --fn encode --in y="$tmp/x.npy"
expect_error "wrong shape" "must be f32\[4, 3, 16, 16\]" $run --fn encode --in "$tmp/x_small.npy"
expect_error "wrong dtype" "got i32" $run --fn encode --in "$tmp/x_int.npy"
expect_error "truncated npy" "trunc.npy" $run --fn encode --in "$tmp/trunc.npy"
expect_error "corrupt safetensors" "garbage.safetensors" $run --fn encode --in "$tmp/x.npy" --params "$tmp/garbage.safetensors"
expect_error "missing parameter" "parameter 'text_emb.weight' of model 'models/gpt.dal' is missing" \
  "$dalc" run models/gpt.dal --config tiny --fn logits --params "$tmp/p.safetensors" --in text="$tmp/text.npy" --in image="$tmp/image.npy"
expect_error "wrong parameter shape" "tensor 'enc.conv_in.weight' is f32\[16, 3, 3, 3\] but the model's is f32\[64, 3, 3, 3\]" \
  "$dalc" run models/dvae.dal --config bench --batch 4 --fn encode --params "$tmp/p.safetensors" --in "$tmp/x_bench.npy"
expect_error "token id out of range" "input 'image': element \[2, 5\] is 64, outside \[0, 64) (the rows of image_emb.weight)" \
  "$dalc" run models/gpt.dal --config tiny --fn logits --seed 1 --in text="$tmp/text.npy" --in image="$tmp/image_bad.npy"
expect_error "unknown config" "tiny" "$dalc" info models/dvae.dal --config huge
expect_error "unknown option" "unknown option" "$dalc" info models/dvae.dal --frobnicate
expect_error "bad emit" "--emit must be ir, dot, llvm, asm or obj" "$dalc" models/dvae.dal --emit=wasm
expect_error "obj without -o" "needs -o" "$dalc" models/dvae.dal --emit=obj
expect_error "missing .dal" "nosuch.dal" "$dalc" info nosuch.dal

# ---- dalc bpe: a tokenizer from text files or a dataset's captions ----
printf 'a red circle\na red square\n\na blue circle at the top\n' >"$tmp/caps.txt"
expect_ok "bpe train (file)" "$dalc" bpe train "$tmp/caps.txt" --vocab 40 -o "$tmp/tok.json"
grep -q '"format":"dal-bpe"' "$tmp/tok.json" && ok || bad "bpe train wrote no tokenizer"
expect_ok "bpe encode" "$dalc" bpe encode --tokenizer "$tmp/tok.json" --len 12 --vocab 64 "a red circle"
ids=$(cat "$tmp/out")
case "$ids" in *" 75") ok ;; *) bad "bpe encode --len 12 --vocab 64: the last position is not the pad 64 + 11: '$ids'" ;; esac
expect_ok "bpe encode, the tokenizer's vocabulary" "$dalc" bpe encode --tokenizer "$tmp/tok.json" --len 12 "a red circle"
case "$(cat "$tmp/out")" in *" 51") ok ;; *) bad "bpe encode --len 12 (trained for 40 ids): the last position is not 40 + 11: '$(cat "$tmp/out")'" ;; esac
expect_ok "bpe decode" "$dalc" bpe decode --tokenizer "$tmp/tok.json" $ids
[ "$(cat "$tmp/out")" = "a red circle" ] && ok || bad "bpe decode gave '$(cat "$tmp/out")'"
expect_ok "bpe encode -o" "$dalc" bpe encode --tokenizer "$tmp/tok.json" --len 12 --vocab 64 --from "$tmp/caps.txt" -o "$tmp/ids.npy"
/usr/bin/python3 -c "
import sys, numpy as np
a = np.load('$tmp/ids.npy')
sys.exit(not (a.dtype == np.int32 and a.shape == (4, 12) and a[0, 11] == 64 + 11 and (a[2] == 64 + np.arange(12)).all()))" \
  && ok || bad "bpe encode -o: not the i32 [4, 12] array expected (one row per line, the blank one all pads)"
expect_error "bpe encode -o without --len" "needs --len (the rows" "$dalc" bpe encode --tokenizer "$tmp/tok.json" --from "$tmp/caps.txt" -o "$tmp/x.npy"
expect_ok "bpe train (dataset)" "$dalc" bpe train --data shapes --examples 500 --vocab 64 -o "$tmp/tok2.json"
expect_error "bpe without a mode" "usage: dalc bpe" "$dalc" bpe
expect_error "bpe train without -o" "needs --vocab V, -o TOK.json" "$dalc" bpe train "$tmp/caps.txt" --vocab 40
expect_error "bpe vocabulary too small" "more than a vocabulary of 5" "$dalc" bpe train "$tmp/caps.txt" --vocab 5 -o "$tmp/t.json"
expect_error "bpe missing tokenizer" "nope.json: cannot open" "$dalc" bpe encode --tokenizer "$tmp/nope.json" x
expect_error "bpe --vocab below the tokenizer's" "must be at least the tokenizer's" "$dalc" bpe encode --tokenizer "$tmp/tok.json" --len 4 --vocab 3 x
expect_error "bpe dataset without captions" "has no captions" "$dalc" bpe train --data "npy:x=$tmp/x.npy" --vocab 40 -o "$tmp/t.json"

# ---- sample: image tokens with the KV cache (kv_cache.py compares it with image_logits) ----
gpt="$dalc run models/gpt.dal --config tiny"
expect_ok "sample greedy" $gpt -- sample --in text="$tmp/text.npy" --seed 3 --temperature 0 --out "$tmp/g.npy"
expect_ok "sample top-k 1" $gpt -- sample --in text="$tmp/text.npy" --seed 3 --top-k 1 --sample-seed 9 --out "$tmp/k1.npy"
expect_ok "sample T=1" $gpt -- sample --in text="$tmp/text.npy" --seed 3 --sample-seed 5 --out "$tmp/s5.npy"
expect_ok "sample T=1 again" $gpt -- sample --in text="$tmp/text.npy" --seed 3 --sample-seed 5 --out "$tmp/s5b.npy"
expect_ok "sample T=1 another seed" $gpt -- sample --in text="$tmp/text.npy" --seed 3 --sample-seed 6 --out "$tmp/s6.npy"
/usr/bin/python3 - "$tmp" <<'PY' && ok || bad "sample: tokens not greedy/deterministic as expected"
import sys, numpy as np
t = sys.argv[1]
g, k1 = np.load(f"{t}/g.npy"), np.load(f"{t}/k1.npy")
s5, s5b, s6 = (np.load(f"{t}/{n}.npy") for n in ("s5", "s5b", "s6"))
assert g.shape == (4, 4, 4) and g.dtype == np.int32 and g.min() >= 0 and g.max() < 64
assert (g == k1).all()                       # top-1 is greedy whatever the seed
assert (s5 == s5b).all() and (s5 != s6).any()  # a sample seed decides the draws
np.save(f"{t}/g_flat.npy", g.reshape(4, 16))
PY
# greedy tokens are the argmax of image_logits run on them: position j saw tokens 0..j-1 only
expect_ok "image_logits on the sampled tokens" $gpt --seed 3 --fn image_logits --in text="$tmp/text.npy" \
  --in image="$tmp/g_flat.npy" --out image_logits="$tmp/il.npy"
/usr/bin/python3 -c "
import sys, numpy as np
g, il = np.load('$tmp/g_flat.npy'), np.load('$tmp/il.npy')
sys.exit(not (il.argmax(-1) == g).all())" && ok || bad "sample: greedy tokens differ from the argmax of image_logits on them"
# captions through a tokenizer: two captions fill the batch of 4 in turn, so greedy rows 0 and 2 agree
printf 'a red circle\n\na blue square at the top\n' >"$tmp/two.txt"
expect_ok "sample from captions" $gpt -- sample --captions "$tmp/two.txt" --tokenizer "$tmp/tok2.json" --seed 3 \
  --temperature 0 --out "$tmp/c.npy"
grep -q '^3	a blue square at the top$' "$tmp/out" && ok || bad "sample --captions: row 3 is not the second caption"
/usr/bin/python3 -c "
import sys, numpy as np
c = np.load('$tmp/c.npy')
sys.exit(not ((c[0] == c[2]).all() and (c[1] == c[3]).all()))" && ok || bad "sample --captions: repeated captions gave different greedy tokens"
printf 'a\nb\nc\nd\ne\n' >"$tmp/five.txt"
expect_error "sample with too many captions" "more captions than the 4 images" $gpt -- sample --captions "$tmp/five.txt" --tokenizer "$tmp/tok2.json"
expect_error "sample captions without a tokenizer" "or --captions FILE.txt with --tokenizer" $gpt -- sample --captions "$tmp/two.txt"
expect_error "sample without text" "needs --in text=FILE.npy" $gpt -- sample
expect_error "sample wrong text shape" "the text must be i32\[4, 8\]" $gpt -- sample --in text="$tmp/image.npy"
expect_error "sample without the sampling entries" "has no entry 'prefill' (sampling with the KV cache needs it" \
  "$dalc" run models/dvae.dal --config tiny -- sample --bench
expect_error "sample without image_logits" "has no entry 'image_logits' (sampling without a cache needs it" \
  "$dalc" run models/dvae.dal --config tiny -- sample --bench --no-cache
expect_error "sample top-k above K" "--top-k 65 is more than the 64 image tokens" $gpt -- sample --bench --top-k 65
expect_error "sample unknown sampler" "--sampler must be gumbel" $gpt -- sample --bench --sampler nope
expect_error "sample two text sources" "needs --in text=FILE.npy" $gpt -- sample --bench --in text="$tmp/text.npy"
expect_error "sample negative temperature" "--temperature must be 0" $gpt -- sample --in text="$tmp/text.npy" --temperature -1

# ---- bad .dal files: file:line:col, the source line and a caret, exit 1 ----
cat >"$tmp/syntax.dal" <<'DAL'
config tiny { n = 4 }
@infer
def f(x: f32[n]) -> f32[n] {
    return x +* 2
}
DAL
expect_error "syntax error" "syntax.dal:4:15: error: syntax error" "$dalc" "$tmp/syntax.dal" --emit=ir
grep -q '^ *\^' "$tmp/err" && ok || bad "syntax error has no caret line"
cat >"$tmp/shape.dal" <<'DAL'
config tiny { n = 4 }
@infer
def f(x: f32[n, 3], y: f32[2, n]) -> f32[n, n] {
    return matmul(x, y)
}
DAL
expect_error "shape mismatch" "shape.dal:4:12: error: matmul" "$dalc" run "$tmp/shape.dal" --fn f
printf 'import "b.dal"\n' >"$tmp/a.dal"
printf 'import "a.dal"\n' >"$tmp/b.dal"
expect_error "import cycle" "import cycle" "$dalc" info "$tmp/a.dal"
printf 'config tiny { n = 4 }\n@infer\ndef f(x: f32[n]) -> f32[n] { return undefined_thing(x) }\n' >"$tmp/name.dal"
expect_error "unknown name" "name.dal:3:37: error:" "$dalc" info "$tmp/name.dal"

summary cli.sh

#!/bin/sh
# token_cache.sh BUILD — stage 2's data path through the command line, on
# the real models (tiny): a dVAE trained for two steps makes a token cache
# of shapes (and of fashion-mnist's test split when Debian's package is
# there) with `tokenize`; the cache's batches (`data --data tokens:FILE` on
# the GPT) must equal the dVAE's `tokens` entry run on the images of the
# same steps (`run --fn tokens --data SPEC --step K`) and the captions
# encoded by `dalc bpe encode --len 8`; the GPT trains from it; --init
# with a prefix fills a model that holds the dVAE under "vae."; and every
# error class exits 1 with a message naming the problem.
. tests/scripts/lib/checks.sh
expect_ok() {
  what=$1; shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "$what: exit $?"; cat "$tmp/err"; fi
}
py=/usr/bin/python3
dvae="$dalc run models/dvae.dal --config tiny"
gpt="$dalc run models/gpt.dal --config tiny"

# check_batch SPEC CACHE SEED STEP: the GPT's batch of STEP from the cache
# against the dVAE's tokens of the images of that step and the encoded
# captions of that step.
check_batch() {
  spec=$1; cache=$2; seed=$3; step=$4; tok=$5
  $dvae -- run --fn tokens --data "$spec" --seed "$seed" --step "$step" --params "$tmp/dvae.st" \
    --out tokens="$tmp/t.npy" >"$tmp/run.out" 2>"$tmp/err" || { bad "run --data $spec --step $step"; cat "$tmp/err"; return; }
  $gpt -- data --data "tokens:$cache" --seed "$seed" --step "$step" >"$tmp/batch.txt" 2>"$tmp/err" \
    || { bad "data tokens:$cache --step $step"; cat "$tmp/err"; return; }
  sed -n 's/^caption [0-9]*: //p' "$tmp/run.out" >"$tmp/caps.txt"
  $dalc bpe encode --tokenizer "$tok" --len 8 --from "$tmp/caps.txt" >"$tmp/ids.txt" 2>/dev/null
  if $py - "$tmp" <<'PY'; then ok; else bad "$spec step $step: the cache's batch is not the in-graph one"; fi
import sys, numpy as np
d = sys.argv[1]
want_img = np.load(d + "/t.npy").reshape(4, -1)
want_txt = [list(map(int, l.split())) for l in open(d + "/ids.txt") if l.strip()]
rows = [l.rstrip("\n").split("\t") for l in open(d + "/batch.txt") if l.strip()]
got_txt = [list(map(int, r[1].split(":")[1].split())) for r in rows]
got_img = np.array([list(map(int, r[2].split(":")[1].split())) for r in rows])
sys.exit(0 if len(rows) == 4 and got_txt == want_txt and (got_img == want_img).all() else 1)
PY
}

# ---- a tokenizer and a dVAE ----
expect_ok "bpe train" "$dalc" bpe train --data shapes --examples 2000 --vocab 64 -o "$tmp/tok.json"
expect_ok "dvae train" $dvae -- train --steps 2 --set beta=0.01 --anneal tau=1:0.5 --checkpoint "$tmp/dvae.st" --quiet

# ---- tokenize shapes; the cache's batches are the in-graph ones ----
expect_ok "tokenize shapes" $dvae -- tokenize --data shapes --count 24 --len 8 --tokenizer "$tmp/tok.json" \
  --params "$tmp/dvae.st" --seed 5 --out "$tmp/shapes.tok"
grep -q 'text i32\[24, 8\] and image tokens i32\[24, 16\]' "$tmp/out" && ok || bad "tokenize summary: $(cat "$tmp/out")"
grep -q 'warning: caption ".*" is [0-9]* tokens, more than the 8' "$tmp/err" && ok || bad "no warning for cut captions"
for step in 0 2 5; do check_batch shapes "$tmp/shapes.tok" 5 $step "$tmp/tok.json"; done
expect_ok "gpt from the cache" $gpt -- train --steps 6 --seed 5 --data "tokens:$tmp/shapes.tok" --quiet \
  --checkpoint "$tmp/gpt.st" --log "$tmp/gpt.tsv"
[ "$(wc -l <"$tmp/gpt.tsv")" -eq 7 ] && ok || bad "the GPT's log should have 6 steps"
expect_error "cache too small" "step 6 needs examples 24 .. 27 of shapes" \
  $gpt -- train --steps 7 --seed 5 --data "tokens:$tmp/shapes.tok" --quiet --checkpoint "$tmp/x.st"
expect_error "cache of another seed" "made from shapes with seed 5" \
  $gpt -- train --steps 2 --seed 6 --data "tokens:$tmp/shapes.tok" --quiet --checkpoint "$tmp/x.st"
expect_ok "shapes:test cache" $dvae -- tokenize --data shapes:test --count 8 --len 8 --tokenizer "$tmp/tok.json" \
  --params "$tmp/dvae.st" --seed 5 --out "$tmp/test.tok"
check_batch shapes:test "$tmp/test.tok" 5 1 "$tmp/tok.json"

# ---- --init: the same cache from the dVAE inside a bigger model ----
cat >"$tmp/wrap.dal" <<EOF
import "$PWD/models/dvae.dal"
@infer
def vtokens(x: f32[B, 3, S, S]) -> i32[B, grid, grid] {
    return with vae { argmax(encoder(x), axis=1) }
}
EOF
wrap="$dalc run $tmp/wrap.dal --config tiny"
expect_error "init: tensors without a parameter" "tensor 'codebook.weight' has no parameter 'vae.codebook.weight'" \
  $wrap -- tokenize --fn vtokens --data shapes --count 24 --len 8 --tokenizer "$tmp/tok.json" --seed 5 \
  --init vae="$tmp/dvae.st" --out "$tmp/w.tok"
expect_ok "init partial" $wrap -- tokenize --fn vtokens --data shapes --count 24 --len 8 --tokenizer "$tmp/tok.json" \
  --seed 5 --init vae="$tmp/dvae.st" --init-partial --out "$tmp/w.tok"
if $py - "$tmp/shapes.tok" "$tmp/w.tok" <<'PY'; then ok; else bad "--init vae=: not the cache --params made"; fi
import json, struct, sys, numpy as np
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        lo, hi = v["data_offsets"]
        out[k] = np.frombuffer(b[8 + n + lo:8 + n + hi], dtype=np.int32).reshape(v["shape"])
    return out, h["__metadata__"]
a, ma = load(sys.argv[1]); b, mb = load(sys.argv[2])
ok = all((a[k] == b[k]).all() for k in ("text", "image")) and mb["dal.init"].startswith("vae=")
ok = ok and ma["dal.kind"] == "token-cache" and ma["dal.count"] == "24" and ma["dal.data"] == "shapes"
sys.exit(0 if ok else 1)
PY
$py - "$tmp/odd.st" <<'PY'
import json, struct, sys
h = json.dumps({"text_emb.weight": {"dtype": "F32", "shape": [3, 2], "data_offsets": [0, 24]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + bytes(24))
PY
expect_error "init: a shape that differs" "tensor 'text_emb.weight' is f32\[3, 2\] but parameter 'text_emb.weight'" \
  $gpt -- train --steps 1 --init "=$tmp/odd.st" --init-partial --quiet --data "tokens:$tmp/shapes.tok" --seed 5 \
  --checkpoint "$tmp/x.st"
expect_ok "init the GPT from its checkpoint (opt.* skipped)" $gpt -- train --steps 1 --seed 5 --init "=$tmp/gpt.st" \
  --data "tokens:$tmp/shapes.tok" --quiet --checkpoint "$tmp/g2.st"
expect_error "init + resume" "cannot be used together" \
  $gpt -- train --steps 7 --init "=$tmp/gpt.st" --resume "$tmp/gpt.st" --data "tokens:$tmp/shapes.tok"
expect_error "init from the dVAE into the GPT" "has no parameter" \
  $gpt -- train --steps 1 --init "=$tmp/dvae.st" --data "tokens:$tmp/shapes.tok" --seed 5 --quiet --checkpoint "$tmp/x.st"

# ---- bad caches and tokenize errors ----
head -c 500 "$tmp/shapes.tok" >"$tmp/cut.tok"
expect_error "truncated cache" "cut.tok" $gpt -- train --steps 1 --seed 5 --data "tokens:$tmp/cut.tok" --quiet
expect_error "a checkpoint is no cache" "not a token cache" \
  $gpt -- train --steps 1 --data "tokens:$tmp/gpt.st" --quiet
expect_error "cache rows vs the entry" "rows are i32\[8\]" \
  $dalc run models/gpt.dal --config bench -- train --steps 1 --seed 5 --data "tokens:$tmp/shapes.tok" --quiet
expect_error "tokenize without --count" "needs --count N" \
  $dvae -- tokenize --data shapes --len 8 --tokenizer "$tmp/tok.json" --params "$tmp/dvae.st" --out "$tmp/x.tok"
expect_error "tokenize without --len" "needs --len L" \
  $dvae -- tokenize --data shapes --count 4 --tokenizer "$tmp/tok.json" --params "$tmp/dvae.st" --out "$tmp/x.tok"
expect_error "tokenize without parameters" "needs the trained dVAE's parameters" \
  $dvae -- tokenize --data shapes --count 4 --len 8 --tokenizer "$tmp/tok.json" --out "$tmp/x.tok"
expect_error "tokenize a non-tokens entry" "must take images" \
  $dvae -- tokenize --fn decode --data shapes --count 4 --len 8 --tokenizer "$tmp/tok.json" --params "$tmp/dvae.st" \
  --out "$tmp/x.tok"
cat >"$tmp/wrap2.dal" <<EOF
import "$PWD/models/dvae.dal"
@train
def loss2(x: f32[B, 3, S, S], text: i32[B, 8]) -> f32 {
    return mean(encoder(x)) + mean(onehot(text, 80, axis=1))
}
EOF
expect_error "text input without --tokenizer" "takes the captions as BPE ids: pass --tokenizer" \
  $dalc run "$tmp/wrap2.dal" --config tiny -- train --fn loss2 --steps 1 --data shapes --quiet
expect_ok "text input with --tokenizer" $dalc run "$tmp/wrap2.dal" --config tiny -- train --fn loss2 --steps 2 \
  --data shapes --tokenizer "$tmp/tok.json" --quiet --checkpoint "$tmp/w2.st"
expect_ok "bench with --tokenizer" $dalc run "$tmp/wrap2.dal" --config tiny -- bench --fn loss2 --steps 2 --warmup 1 \
  --data shapes --tokenizer "$tmp/tok.json"
expect_ok "data with --tokenizer" $dalc run "$tmp/wrap2.dal" --config tiny -- data --fn loss2 --data shapes --step 3 \
  --tokenizer "$tmp/tok.json"
[ "$(grep -c "	text: [0-9 ]*$" "$tmp/out")" -eq 4 ] && ok || bad "data --tokenizer: not one line of ids per example: $(cat "$tmp/out")"
[ -e "$tmp/x.tok" ] && bad "a failed tokenize left a file" || ok

# ---- fashion-mnist's test split: the shuffle across an epoch boundary ----
if [ -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] || [ -n "$DAL_FASHION_MNIST" ]; then
  expect_ok "bpe train fashion" "$dalc" bpe train --data fashion-mnist:test --examples 200 --vocab 64 -o "$tmp/tokf.json"
  expect_ok "tokenize fashion-mnist:test" $dalc run models/dvae.dal --config tiny --batch 200 -- tokenize \
    --data fashion-mnist:test --len 8 --tokenizer "$tmp/tokf.json" --params "$tmp/dvae.st" --out "$tmp/f.tok"
  grep -q 'i32\[10000, 16\]' "$tmp/out" && ok || bad "fashion cache: $(cat "$tmp/out")"
  # 10000 examples, batch 4: step 2499 ends epoch 0, 2500 starts epoch 1
  for step in 0 2499 2500; do check_batch fashion-mnist:test "$tmp/f.tok" 3 $step "$tmp/tokf.json"; done
else
  echo "fashion-mnist is not installed: its token cache was not tested"
fi

summary token_cache.sh

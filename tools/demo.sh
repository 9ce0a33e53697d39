#!/bin/sh
# demo.sh BUILD — the most end-to-end thing dal does today:
#   1. describe both models (the paper-sized GPT is counted, not allocated);
#   2. train the tiny dVAE on the built-in shapes dataset (forward, backward
#      and AdamW compiled into one step graph, JIT-compiled to native code);
#   3. turn images into tokens and back with the trained dVAE (PNG files);
#   4. learn a BPE tokenizer from the captions and turn the held-out
#      images' captions into text tokens;
#   5. run the tiny GPT over [caption tokens; image tokens] and train it a
#      little on them;
#   6. sample image tokens from the GPT for those captions and decode them
#      with the dVAE: text -> image, end to end.
# Everything lands in demo-out/.
set -e
build=${1:-build}
dalc="$build/dalc"
out=demo-out
py=/usr/bin/python3
steps=${DAL_DEMO_STEPS:-2000}
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dalc info models/dvae.dal --config tiny"
"$dalc" info models/dvae.dal --config tiny | sed -n '1,/^parameters:/p'
step "dalc info models/gpt.dal (tiny, and paper: counted, not allocated)"
"$dalc" info models/gpt.dal --config tiny | sed -n '/^entries:/,/^parameters:/p'
"$dalc" info models/gpt.dal --config paper | grep '^parameters:'

step "the shapes dataset: a batch of 16x16 images and their captions"
"$dalc" run models/dvae.dal --config tiny -- data --data shapes --batch 8 --out "$out/shapes.png"
if [ -r /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  step "the fashion-mnist dataset, resized to the same 16x16"
  "$dalc" run models/dvae.dal --config tiny -- data --data fashion-mnist --batch 8 --out "$out/fashion.png"
fi

step "train the tiny dVAE for $steps steps on shapes (native code; tau annealed 1 -> 1/16 as in the paper)"
"$dalc" run models/dvae.dal --config tiny -- train --steps "$steps" --data shapes --lr 3e-3 \
  --set beta=0.001 --anneal tau=1:0.0625 --checkpoint "$out/dvae-tiny.safetensors" --log "$out/dvae-loss.tsv"

step "images -> tokens -> images with the trained dVAE"
data="$dalc run models/dvae.dal --config tiny -- data --data shapes --step 100000"
$data --out "$out/x.png" >/dev/null      # held-out images (a step the training never saw)
$data --out "$out/x.npy" >/dev/null
run="$dalc run models/dvae.dal --config tiny --params $out/dvae-tiny.safetensors"
$run --fn tokens --in "$out/x.npy" --out "$out/tokens.npy"
$run --fn decode_tokens --in "$out/tokens.npy" --out "$out/recon.png"
printf 'originals: %s/x.png   reconstructions: %s/recon.png\n' "$out" "$out"

step "captions -> BPE text tokens (a 64-id tokenizer learned from 10000 shapes captions)"
"$dalc" bpe train --data shapes --vocab 64 -o "$out/bpe.json"
$data --out "$out/x.png" | cut -f2 | head -4 > "$out/captions.txt"
# the tiny GPT's text is Lt = 8 ids from a vocabulary of Vt = 64: long captions are cut
"$dalc" bpe encode --tokenizer "$out/bpe.json" --len 8 --vocab 64 --from "$out/captions.txt" > "$out/text.txt"
paste "$out/captions.txt" "$out/text.txt"
"$dalc" bpe encode --tokenizer "$out/bpe.json" --len 8 --vocab 64 --from "$out/captions.txt" -o "$out/text.npy" \
  2>/dev/null

step "GPT: logits and loss over [caption; the dVAE's image tokens], then 300 training steps"
$py - "$out" <<'PY'
import sys, numpy as np
out = sys.argv[1]
text = np.load(f"{out}/text.npy")
t = np.load(f"{out}/tokens.npy")
np.save(f"{out}/image.npy", t.reshape(t.shape[0], -1)[: text.shape[0]])
PY
run="$dalc run models/gpt.dal --config tiny --seed 1"
$run --fn logits --in text="$out/text.npy" --in image="$out/image.npy" --out "$out/gpt_logits.npy"
"$dalc" run models/gpt.dal --config tiny -- train --steps 300 --lr 3e-3 \
  --data "npy:text=$out/text.npy,image=$out/image.npy" --checkpoint "$out/gpt-tiny.safetensors"
step "text -> image: image tokens sampled from the GPT for those captions, decoded by the dVAE"
"$dalc" run models/gpt.dal --config tiny -- sample --captions "$out/captions.txt" --tokenizer "$out/bpe.json" \
  --params "$out/gpt-tiny.safetensors" --temperature 0 --out "$out/sampled.npy"
"$dalc" run models/dvae.dal --config tiny --params "$out/dvae-tiny.safetensors" \
  --fn decode_tokens --in "$out/sampled.npy" --out "$out/sampled.png"
printf 'captions: %s/captions.txt   their images: %s/x.png   drawn from the captions: %s/sampled.png\n' \
  "$out" "$out" "$out"
printf '(the tiny GPT has memorised these four pairs, so greedy sampling gives their tokens back)\n'
printf '\noutputs are in %s/\n' "$out"

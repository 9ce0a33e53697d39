#!/bin/sh
# demo.sh BUILD — the most end-to-end thing dal does today:
#   1. describe both models (the paper-sized GPT is counted, not allocated);
#   2. train the tiny dVAE on the built-in shapes dataset (forward, backward
#      and AdamW compiled into one step graph, JIT-compiled to native code);
#   3. turn images into tokens and back with the trained dVAE (PNG files);
#   4. learn a BPE tokenizer from the captions;
#   5. train stage 2 (models/dalle.dal): the dVAE, frozen, turns each
#      batch of images into tokens inside the step, and the GPT learns
#      [caption tokens; image tokens];
#   6. generate images for held-out captions from the resulting model file
#      (KV-cached sampling, the dVAE's decoder): text -> image, end to end.
# Everything lands in demo-out/.
set -e
build=${1:-build}
dalc="$build/dalc"
out=demo-out
py=/usr/bin/python3
steps=${DAL_DEMO_STEPS:-2000}
gpt_steps=${DAL_DEMO_GPT_STEPS:-1500}
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
"$dalc" bpe encode --tokenizer "$out/bpe.json" --len 8 "a small red circle at the top left"

step "stage 2: models/dalle.dal (the trained dVAE, frozen, tokenises each batch; the GPT learns [caption; tokens])"
"$dalc" info models/dalle.dal --config tiny | sed -n '/^entries:/,/^parameters:/p'
"$dalc" run models/dalle.dal --config tiny -- train --steps "$gpt_steps" --data shapes --lr 1e-3 \
  --tokenizer "$out/bpe.json" --init vae="$out/dvae-tiny.safetensors" --checkpoint "$out/dalle-tiny.safetensors"
printf 'the checkpoint is a whole model file: the dVAE, the GPT, the tokenizer, the source fingerprint\n'

step "text -> image: captions of held-out images, each drawn 6 times with the KV cache (Gumbel-max sampling)"
"$dalc" run models/dvae.dal --config tiny -- data --data shapes:test --batch 4 --out "$out/heldout.png" \
  | grep '	' | cut -f2 > "$out/captions.txt"
cat "$out/captions.txt"
"$dalc" generate --model "$out/dalle-tiny.safetensors" --captions "$out/captions.txt" --n 6 --top-k 16 \
  --seed 1 --out "$out/generated.png"
printf 'held-out images: %s/heldout.png   drawn from their captions: %s/generated.png\n' "$out" "$out"
printf '(the tiny models train for seconds at 16x16: expect coloured blobs roughly where the caption says)\n'
printf '\noutputs are in %s/\n' "$out"

#!/bin/sh
# demo.sh BUILD — text -> image on the built-in shapes dataset, measured, in
# under ten minutes on two cores:
#   1. describe the models (the paper-sized GPT is counted, not allocated);
#   2. run the shapes recipe (tools/recipes/shapes.sh) with fewer steps:
#      a BPE tokenizer, the dVAE and the GPT (stage 2, the dVAE frozen),
#      trained on shapes without the default held-out (colour, kind) pairs
#      (purple triangles, green circles and blue squares never appear);
#   3. generate images from held-out captions, both seen ones and
#      never-seen compositions, and read them back with the rule-based
#      judge: the caption accuracies printed are this run's own.
# Everything lands in demo-out/; the recipe's defaults train longer (README).
set -e
build=${1:-build}
dalc="$build/dalc"
out=demo-out
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dalc info models/dvae.dal --config small16 (32x32 images, a 16x16 grid of 512 codes)"
"$dalc" info models/dvae.dal --config small16 | sed -n '/^entries:/,/^parameters:/p'
step "dalc info models/dalle.dal (small16; and gpt.dal paper: counted, not allocated)"
"$dalc" info models/dalle.dal --config small16 | grep '^parameters:'
"$dalc" info models/gpt.dal --config paper | grep '^parameters:'

step "the shapes dataset: a batch of 32x32 images and their captions"
"$dalc" run models/dvae.dal --config small16 -- data --data shapes --batch 8 --out "$out/shapes.png"

DVAE_STEPS=${DAL_DEMO_DVAE_STEPS:-400} GPT_STEPS=${DAL_DEMO_GPT_STEPS:-600} SAMPLES=${DAL_DEMO_SAMPLES:-2} \
  EVAL_CAPTIONS=${DAL_DEMO_CAPTIONS:-50} EVAL_IMAGES=${DAL_DEMO_EVAL_IMAGES:-500} \
  sh tools/recipes/shapes.sh --build "$build" --out "$out"

printf '\npictures:\n'
printf '  %-28s %s\n' "$out/shapes.png" "a batch of the training data" \
  "$out/grid-seen.png" "images drawn from held-out captions of seen (colour, kind) pairs" \
  "$out/grid-novel.png" "images drawn from never-seen compositions" \
  "$out/heldout.png" "held-out images and their captions" \
  "$out/recon.png" "the same images rebuilt by the dVAE from their tokens" \
  "$out/dvae.png" "the dVAE's training loss and held-out reconstruction error" \
  "$out/dalle.png" "the GPT's training loss and held-out image-token cross-entropy"

#!/bin/sh
# shapes.sh — DALL-E on the built-in shapes dataset, end to end, measured:
#
#   sh tools/recipes/shapes.sh [--holdout SPEC] [--seed S] [--out DIR] [--build DIR]
#
# (from the project root, after `make`). Trains the BPE tokenizer, the dVAE
# (`small16`: 32x32 images, a 16x16 grid of K = 512 codes; an 8x8 grid of
# 4x4-pixel tokens loses small shapes' corners) and stage 2
# (models/dalle.dal, the dVAE frozen) on shapes without the held-out
# (colour, kind) pairs (the figures logged while training are on
# shapes:val), then measures on shapes:test only: the dVAE's
# reconstructions (eval dvae), the GPT's image-token cross-entropy (eval
# gpt), and the caption accuracy of generated images (dalc judge shapes) for
# seen captions and for never-seen compositions. Leaves DIR/model.safetensors
# (the one-file model `generate --model` reads), DIR/results.json, captioned
# grids and plots of the training logs.
#
# Steps and settings can be changed through the environment:
#   DVAE_STEPS [600]  GPT_STEPS [1300]  SAMPLES [4] (images per caption)
#   TEMPERATURE [1]   TOP_K [0: none]   EVAL_CAPTIONS [100] (per split)
#   EVAL_IMAGES [1000] (held-out images for eval dvae and eval gpt)
set -eu
holdout=purple-triangle+green-circle+blue-square
seed=0
out=recipe-shapes
build=build
while [ $# -gt 0 ]; do
  case $1 in
    --holdout) holdout=$2; shift ;;
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    *) echo "shapes.sh: unknown argument '$1' (usage: shapes.sh [--holdout SPEC] [--seed S] [--out DIR])" >&2
       exit 2 ;;
  esac
  shift
done
dalc=$build/dalc
[ -x "$dalc" ] || { echo "shapes.sh: $dalc is not built (run make first)" >&2; exit 1; }
dvae_steps=${DVAE_STEPS:-600}
gpt_steps=${GPT_STEPS:-1300}
samples=${SAMPLES:-4}
temperature=${TEMPERATURE:-1}
top_k=${TOP_K:-0}
ncap=${EVAL_CAPTIONS:-100}
neval=${EVAL_IMAGES:-1000}
mkdir -p "$out"
train="shapes:holdout=$holdout"
t0=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" "$(($(date +%s) - t0))"; }

step "tokenizer: BPE on the training captions ($train)"
"$dalc" bpe train --data "$train" --vocab 128 -o "$out/tok.json"

# tau reaches 1/16 and the Gumbel noise fades out at 5/8 of the run: for
# the rest, the decoder learns from the very tokens the GPT will see (the
# argmax), which keeps small squares and triangles sharp (models/dvae.dal).
anneal=$((dvae_steps * 5 / 8))
t_train=$(date +%s)
step "dVAE small16: $dvae_steps steps (soft relaxation, tau 1 -> 1/16 and noise 1 -> 0 cosine, KL weight ramped)"
"$dalc" run models/dvae.dal --config small16 -- train --fn loss_soft --steps "$dvae_steps" --data "$train" \
  --seed "$seed" --lr 2e-3 --warmup 100 --lr-decay cos --anneal tau=1:0.0625:cos:$anneal \
  --anneal noise=1:0:cos:$anneal --anneal beta=0:0.001:linear:$anneal --set usage=0 --ema 0.999 \
  --eval-every $(( dvae_steps >= 10 ? dvae_steps / 10 : 1 )) --eval-fn recon_mse --eval-data "shapes:val:seen=$holdout" --eval-batches 4 \
  --checkpoint "$out/dvae.safetensors" --log "$out/dvae.tsv"
"$dalc" plot "$out/dvae.tsv" --columns loss,eval.recon_mse --log-y --smooth 0.9 -o "$out/dvae.png" >/dev/null

step "stage 2: dalle small16, $gpt_steps steps (the dVAE's average, frozen)"
"$dalc" run models/dalle.dal --config small16 -- train --steps "$gpt_steps" --data "$train" --seed "$seed" \
  --tokenizer "$out/tok.json" --init vae="$out/dvae.ema.safetensors" --lr 2e-3 --warmup 100 --lr-decay cos \
  --ema 0.999 --eval-every $(( gpt_steps >= 10 ? gpt_steps / 10 : 1 )) --eval-fn image_ce --eval-data "shapes:val:seen=$holdout" \
  --eval-batches 4 --checkpoint "$out/dalle.safetensors" --log "$out/dalle.tsv"
"$dalc" plot "$out/dalle.tsv" --columns loss,eval.image_ce --log-y --smooth 0.9 -o "$out/dalle.png" >/dev/null
cp "$out/dalle.ema.safetensors" "$out/model.safetensors"
train_secs=$(($(date +%s) - t_train))

step "held-out evaluation"
run="$dalc run models/dalle.dal --config small16 --"
$run eval dvae --data shapes:test --count "$neval" --params "$out/model.safetensors" --out-recon "$out/recon.npy" \
  --out-captions "$out/recon.txt" --json > "$out/eval-dvae.json"
printf 'reconstructions from the tokens (the ceiling for generated images):\n'
"$dalc" judge shapes --images "$out/recon.npy" --captions "$out/recon.txt" --json > "$out/judge-recon.json"
"$dalc" judge shapes --images "$out/recon.npy" --captions "$out/recon.txt"
# 16 held-out images and their reconstructions from the dVAE's tokens, as pictures
vae="$dalc run models/dvae.dal --config small16 --batch 16"
$vae -- data --data shapes:test --batch 16 --out "$out/heldout.png" >/dev/null
$vae -- data --data shapes:test --batch 16 --out "$out/heldout.npy" >/dev/null
$vae --params "$out/dvae.ema.safetensors" --fn tokens --in "$out/heldout.npy" --out "$out/heldout-tokens.npy"
$vae --params "$out/dvae.ema.safetensors" --fn decode_tokens --in "$out/heldout-tokens.npy" --out "$out/recon.png"
$run eval gpt --data "shapes:test:seen=$holdout" --tokenizer "$out/tok.json" --count "$neval" \
  --params "$out/model.safetensors" --train-data "$train" --train-count $((2 * neval)) --json > "$out/eval-gpt.json"
for split in seen novel; do
  $run data --data "shapes:test:$split=$holdout" --batch "$ncap" | grep '	' | cut -f2 > "$out/captions-$split.txt"
  k=""; [ "$top_k" -gt 0 ] && k="--top-k $top_k"
  # shellcheck disable=SC2086
  $run generate --model "$out/model.safetensors" --captions "$out/captions-$split.txt" --n "$samples" \
    --temperature "$temperature" $k --seed "$seed" --out-npy "$out/generated-$split.npy" >/dev/null
  head -8 "$out/captions-$split.txt" > "$out/grid-$split.txt"
  # shellcheck disable=SC2086
  $run generate --model "$out/model.safetensors" --captions "$out/grid-$split.txt" --n 6 \
    --temperature "$temperature" $k --seed "$seed" --out "$out/grid-$split.png" >/dev/null
  "$dalc" judge shapes --images "$out/generated-$split.npy" --captions "$out/captions-$split.txt" --n "$samples" \
    --json > "$out/judge-$split.json"
  printf '%s captions (%s, temperature %s, top-k %s):\n' "$split" "$ncap" "$temperature" "$top_k"
  "$dalc" judge shapes --images "$out/generated-$split.npy" --captions "$out/captions-$split.txt" --n "$samples"
done

step "results"
/usr/bin/python3 tools/recipes/results.py shapes "$out" holdout="$holdout" seed="$seed" \
  temperature="$temperature" top_k="$top_k" samples_per_caption="$samples" captions_per_split="$ncap" \
  dvae_steps="$dvae_steps" gpt_steps="$gpt_steps" train_seconds="$train_secs" seconds="$(($(date +%s) - t0))"
printf '\nmodel: %s/model.safetensors  grids: %s/grid-seen.png %s/grid-novel.png  plots: %s/dvae.png %s/dalle.png\n' \
  "$out" "$out" "$out" "$out" "$out"

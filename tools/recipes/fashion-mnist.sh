#!/bin/sh
# fashion-mnist.sh — DALL-E on Fashion-MNIST (Debian's dataset-fashion-mnist),
# end to end, measured on the test split:
#
#   sh tools/recipes/fashion-mnist.sh [--seed S] [--out DIR] [--build DIR]
#
# (from the project root, after `make`). Trains the tokenizer on the class
# captions, the dVAE (`small`: 32x32, an 8x8 grid of K = 512 codes), stage 2
# (models/dalle.dal, the dVAE frozen) on fashion-mnist:train (the first
# 55000 training images; the held-out figures logged while training are on
# :val, the last 5000) and the judge (models/classifier.dal, on all 60000),
# then reports on fashion-mnist:test: the dVAE's hard-token PSNR and codebook
# perplexity (eval dvae), the GPT's held-out image-token cross-entropy (eval
# gpt), and the judge's accuracy on the real images, on their
# reconstructions and on images generated from each class caption. Leaves
# DIR/model.safetensors and DIR/results.json.
#
# Environment: DVAE_STEPS [1000] GPT_STEPS [1500] CLS_STEPS [2000]
#   SAMPLES [20] (images per class caption) TEMPERATURE [1] TOP_K [0: none]
#   EVAL_IMAGES [10000: the whole test split] (for eval dvae; eval gpt takes
#   a fifth of them)
set -eu
seed=0
out=recipe-fashion-mnist
build=build
while [ $# -gt 0 ]; do
  case $1 in
    --seed) seed=$2; shift ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    *) echo "fashion-mnist.sh: unknown argument '$1' (usage: fashion-mnist.sh [--seed S] [--out DIR])" >&2; exit 2 ;;
  esac
  shift
done
dalc=$build/dalc
[ -x "$dalc" ] || { echo "fashion-mnist.sh: $dalc is not built (run make first)" >&2; exit 1; }
dvae_steps=${DVAE_STEPS:-1000}
gpt_steps=${GPT_STEPS:-1500}
cls_steps=${CLS_STEPS:-2000}
samples=${SAMPLES:-20}
temperature=${TEMPERATURE:-1}
top_k=${TOP_K:-0}
neval=${EVAL_IMAGES:-10000}
mkdir -p "$out"
t0=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" "$(($(date +%s) - t0))"; }

step "tokenizer: BPE on the class captions"
"$dalc" bpe train --data fashion-mnist --vocab 128 -o "$out/tok.json"

step "judge: models/classifier.dal s32, $cls_steps steps"
cls="$dalc run models/classifier.dal --config s32 --"
$cls train --data fashion-mnist --steps "$cls_steps" --seed "$seed" --lr 2e-3 --warmup 100 --lr-decay cos \
  --checkpoint "$out/classifier.safetensors" --log "$out/classifier.tsv"

# tau reaches 1/16 and the Gumbel noise fades out at 5/8 of the run; the
# codebook-usage term (not the per-cell KL, beta = 0) keeps the codes in use.
anneal=$((dvae_steps * 5 / 8))
t_train=$(date +%s)
step "dVAE small: $dvae_steps steps (soft relaxation, tau 1 -> 1/16 and noise 1 -> 0 cosine, usage term 0.03)"
"$dalc" run models/dvae.dal --config small -- train --fn loss_soft --steps "$dvae_steps" --data fashion-mnist:train \
  --seed "$seed" --lr 2e-3 --warmup 100 --lr-decay cos --anneal tau=1:0.0625:cos:$anneal \
  --anneal noise=1:0:cos:$anneal --set beta=0 --set usage=0.03 --ema 0.999 \
  --eval-every $(( dvae_steps >= 10 ? dvae_steps / 10 : 1 )) --eval-fn recon_mse --eval-data fashion-mnist:val --eval-batches 4 \
  --checkpoint "$out/dvae.safetensors" --log "$out/dvae.tsv"
"$dalc" plot "$out/dvae.tsv" --columns loss,eval.recon_mse --log-y --smooth 0.9 -o "$out/dvae.png" >/dev/null

step "stage 2: dalle small, $gpt_steps steps (the dVAE's average, frozen)"
"$dalc" run models/dalle.dal --config small -- train --steps "$gpt_steps" --data fashion-mnist:train --seed "$seed" \
  --tokenizer "$out/tok.json" --init vae="$out/dvae.ema.safetensors" --lr 1e-3 --warmup 100 --lr-decay cos \
  --ema 0.999 --eval-every $(( gpt_steps >= 10 ? gpt_steps / 10 : 1 )) --eval-fn image_ce --eval-data fashion-mnist:val \
  --eval-batches 4 --checkpoint "$out/dalle.safetensors" --log "$out/dalle.tsv"
"$dalc" plot "$out/dalle.tsv" --columns loss,eval.image_ce --smooth 0.9 -o "$out/dalle.png" >/dev/null
cp "$out/dalle.ema.safetensors" "$out/model.safetensors"
train_secs=$(($(date +%s) - t_train))

step "held-out evaluation (fashion-mnist:test)"
run="$dalc run models/dalle.dal --config small --"
$run eval dvae --data fashion-mnist:test --count "$neval" --params "$out/model.safetensors" --out-recon "$out/recon.npy" \
  --out-captions "$out/recon.txt" --json > "$out/eval-dvae.json"
$run eval gpt --data fashion-mnist:test --tokenizer "$out/tok.json" --count $((neval / 5)) --params "$out/model.safetensors" \
  --train-data fashion-mnist:train --train-count $((neval / 5)) --json > "$out/eval-gpt.json"
$cls eval classify --data fashion-mnist:test --params "$out/classifier.safetensors" --json > "$out/cls-real.json"
$cls eval classify --images "$out/recon.npy" --labels "$out/recon.txt" --params "$out/classifier.safetensors" \
  --json > "$out/cls-recon.json"
# the ten class captions, as the dataset writes them
"$dalc" run models/dvae.dal --config tiny -- data --data fashion-mnist:test --batch 1000 | grep '	' | cut -f2 |
  sort -u > "$out/classes.txt"
k=""; [ "$top_k" -gt 0 ] && k="--top-k $top_k"
# shellcheck disable=SC2086
$run generate --model "$out/model.safetensors" --captions "$out/classes.txt" --n "$samples" \
  --temperature "$temperature" $k --seed "$seed" --out "$out/generated.png" --out-npy "$out/generated.npy"
$cls eval classify --images "$out/generated.npy" --labels "$out/classes.txt" --repeat "$samples" \
  --params "$out/classifier.safetensors" --json > "$out/cls-generated.json"

step "results"
/usr/bin/python3 tools/recipes/results.py fashion-mnist "$out" seed="$seed" temperature="$temperature" \
  top_k="$top_k" samples_per_class="$samples" dvae_steps="$dvae_steps" gpt_steps="$gpt_steps" \
  classifier_steps="$cls_steps" train_seconds="$train_secs" seconds="$(($(date +%s) - t0))"
printf '\nmodel: %s/model.safetensors  samples: %s/generated.png  plots: %s/dvae.png %s/dalle.png\n' \
  "$out" "$out" "$out" "$out"

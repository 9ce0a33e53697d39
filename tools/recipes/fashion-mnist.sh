#!/bin/sh
# fashion-mnist.sh — DALL-E on Fashion-MNIST (Debian's dataset-fashion-mnist),
# end to end, measured on the test split:
#
#   sh tools/recipes/fashion-mnist.sh [--seed S] [--out DIR] [--build DIR]
#
# (from the project root, after `make`). Trains the tokenizer on the class
# captions, the dVAE (`small`: 32x32, an 8x8 grid of K = 512 codes), stage 2
# (models/dalle.dal, the dVAE frozen) and the judge (models/classifier.dal),
# then reports on fashion-mnist:test: the dVAE's hard-token PSNR and codebook
# perplexity (eval dvae), the GPT's held-out image-token cross-entropy (eval
# gpt), and the judge's accuracy on the real images, on their
# reconstructions and on images generated from each class caption. Leaves
# DIR/model.safetensors and DIR/results.json.
#
# Environment: DVAE_STEPS [3000] GPT_STEPS [3000] CLS_STEPS [2000]
#   SAMPLES [20] (images per class caption) TEMPERATURE [1] TOP_K [0: none]
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
dvae_steps=${DVAE_STEPS:-3000}
gpt_steps=${GPT_STEPS:-3000}
cls_steps=${CLS_STEPS:-2000}
samples=${SAMPLES:-20}
temperature=${TEMPERATURE:-1}
top_k=${TOP_K:-0}
mkdir -p "$out"
t0=$(date +%s)
step() { printf '\n\033[1m== %s\033[0m  (%ss)\n' "$*" "$(($(date +%s) - t0))"; }

step "tokenizer: BPE on the class captions"
"$dalc" bpe train --data fashion-mnist --vocab 128 -o "$out/tok.json"

step "judge: models/classifier.dal s32, $cls_steps steps"
cls="$dalc run models/classifier.dal --config s32 --"
$cls train --data fashion-mnist --steps "$cls_steps" --seed "$seed" --lr 2e-3 --warmup 100 --lr-decay cos \
  --checkpoint "$out/classifier.safetensors" --log "$out/classifier.tsv"

step "dVAE small: $dvae_steps steps"
"$dalc" run models/dvae.dal --config small -- train --fn loss_soft --steps "$dvae_steps" --data fashion-mnist \
  --seed "$seed" --lr 1e-3 --warmup 200 --lr-decay cos --anneal tau=1:0.0625:cos \
  --anneal beta=0:0.05:linear:$((dvae_steps / 2)) --ema 0.999 \
  --eval-every $((dvae_steps / 10)) --eval-fn recon_mse --eval-data fashion-mnist:test --eval-batches 4 \
  --checkpoint "$out/dvae.safetensors" --log "$out/dvae.tsv"
"$dalc" plot "$out/dvae.tsv" --log-y -o "$out/dvae.png" >/dev/null

step "stage 2: dalle small, $gpt_steps steps (the dVAE's average, frozen)"
"$dalc" run models/dalle.dal --config small -- train --steps "$gpt_steps" --data fashion-mnist --seed "$seed" \
  --tokenizer "$out/tok.json" --init vae="$out/dvae.ema.safetensors" --lr 1e-3 --warmup 200 --lr-decay cos \
  --ema 0.999 --eval-every $((gpt_steps / 10)) --eval-fn image_ce --eval-data fashion-mnist:test \
  --eval-batches 4 --checkpoint "$out/dalle.safetensors" --log "$out/dalle.tsv"
"$dalc" plot "$out/dalle.tsv" -o "$out/dalle.png" >/dev/null
cp "$out/dalle.ema.safetensors" "$out/model.safetensors"

step "held-out evaluation (fashion-mnist:test)"
run="$dalc run models/dalle.dal --config small --"
$run eval dvae --data fashion-mnist:test --params "$out/model.safetensors" --out-recon "$out/recon.npy" \
  --out-captions "$out/recon.txt" --json > "$out/eval-dvae.json"
$run eval gpt --data fashion-mnist:test --tokenizer "$out/tok.json" --count 2000 --params "$out/model.safetensors" \
  --train-data fashion-mnist --train-count 2000 --json > "$out/eval-gpt.json"
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
/usr/bin/python3 - "$out" "$seed" "$temperature" "$top_k" "$(($(date +%s) - t0))" <<'PY'
import json, sys
out, seed, temperature, top_k, secs = sys.argv[1:]
j = lambda n: json.load(open(f"{out}/{n}.json"))
d, g = j("eval-dvae"), j("eval-gpt")
res = {"dataset": "fashion-mnist", "seed": int(seed), "temperature": float(temperature), "top_k": int(top_k),
       "seconds": int(secs), "dvae_psnr_db": d["psnr_db"], "dvae_perplexity": d["perplexity"],
       "gpt_image_ce": g["image_ce"], "train_unigram_entropy": g.get("train_unigram_entropy"),
       "judge_real": j("cls-real")["accuracy"], "judge_recon": j("cls-recon")["accuracy"],
       "judge_generated": j("cls-generated")["accuracy"]}
json.dump(res, open(f"{out}/results.json", "w"), indent=1)
print("| figure | value |\n|---|---|")
for k, v in res.items():
    print(f"| {k} | {v} |")
PY
printf '\nmodel: %s/model.safetensors  samples: %s/generated.png  plots: %s/dvae.png %s/dalle.png\n' \
  "$out" "$out" "$out" "$out"

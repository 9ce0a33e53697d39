#!/bin/sh
# demo.sh BUILD — the most end-to-end thing dal does today: describe both
# models, then run every entry function of the tiny dVAE and GPT on the
# reference executor with seeded parameters, feeding the dVAE's image
# tokens to the GPT.
set -e
build=${1:-build}
dalc="$build/dalc"
out=demo-out
py=/usr/bin/python3
mkdir -p "$out"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "dalc info models/dvae.dal --config tiny"
"$dalc" info models/dvae.dal --config tiny
step "dalc info models/gpt.dal --config tiny"
"$dalc" info models/gpt.dal --config tiny
step "the paper-sized GPT (counted, not allocated)"
"$dalc" info models/gpt.dal --config paper | grep '^parameters:'

step "inputs: 4 random 16x16 images, 4 captions of 8 BPE ids (padded)"
$py - "$out" <<'PY'
import sys, numpy as np
out = sys.argv[1]
rng = np.random.default_rng(0)
np.save(f"{out}/x.npy", rng.uniform(-1, 1, (4, 3, 16, 16)).astype(np.float32))
Lt, Vt = 8, 64
text = rng.integers(0, Vt, (4, Lt)).astype(np.int32)
for b, n in enumerate([8, 5, 3, 6]):      # caption lengths; the rest is padding
    text[b, n:] = Vt + np.arange(n, Lt)  # one pad token per position
np.save(f"{out}/text.npy", text)
PY

step "dVAE: encode, tokens, decode_tokens, loss (seeded parameters, seed 1)"
run="$dalc run models/dvae.dal --config tiny --seed 1"
$run --fn encode --in x="$out/x.npy" --out "$out/logits.npy"
$run --fn tokens --in x="$out/x.npy" --out "$out/tokens.npy"
$run --fn decode_tokens --in "$out/tokens.npy" --out "$out/recon.npy"
$run --fn loss --in x="$out/x.npy" --in tau=1.0 --in beta=0.1

step "GPT: next-token logits and loss over [caption; the dVAE's image tokens]"
$py -c "import numpy as np; t=np.load('$out/tokens.npy'); np.save('$out/image.npy', t.reshape(t.shape[0], -1))"
run="$dalc run models/gpt.dal --config tiny --seed 1"
$run --fn logits --in text="$out/text.npy" --in image="$out/image.npy" --out "$out/gpt_logits.npy"
$run --fn loss --in text="$out/text.npy" --in image="$out/image.npy"
printf '\noutputs are in %s/\n' "$out"

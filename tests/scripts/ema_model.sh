#!/bin/sh
# ema_model.sh BUILD — `train --ema` through the command line: a dVAE
# trained with an EMA initialises DALL-E (--init skips its ema.* tensors),
# the DALL-E's EMA model file (CKPT.ema.safetensors) is a model file that
# `dalc generate --model` reads alone, and it is refused by --resume.
. tests/scripts/lib/checks.sh

if $dalc run models/dvae.dal --config tiny -- train --steps 10 --data shapes --set beta=0.001 \
    --anneal tau=1:0.0625:cos --ema 0.99 --checkpoint "$tmp/dvae.safetensors" --quiet 2>"$tmp/err"; then ok; else
  bad "dvae train --ema failed"; cat "$tmp/err"; fi
[ -f "$tmp/dvae.ema.safetensors" ] && ok || bad "no dvae.ema.safetensors beside the checkpoint"
$dalc bpe train --data shapes --vocab 64 -o "$tmp/tok.json" >/dev/null 2>&1 || bad "bpe train failed"
dalle="$dalc run models/dalle.dal --config tiny --"
if $dalle train --steps 10 --data shapes --tokenizer "$tmp/tok.json" --init "vae=$tmp/dvae.safetensors" \
    --ema 0.999 --checkpoint "$tmp/dalle.safetensors" --quiet 2>"$tmp/err"; then ok; else
  bad "dalle train --init from a checkpoint with an EMA, --ema, failed"; cat "$tmp/err"; fi
if $dalc generate --model "$tmp/dalle.ema.safetensors" "a red circle at the top left" --n 2 --seed 1 \
    --out "$tmp/grid.png" >"$tmp/out" 2>&1 && [ -s "$tmp/grid.png" ]; then ok; else
  bad "generate --model CKPT.ema.safetensors failed"; cat "$tmp/out"; fi
$dalle train --steps 20 --data shapes --tokenizer "$tmp/tok.json" --resume "$tmp/dalle.ema.safetensors" \
  --quiet >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'EMA model file' "$tmp/err" && ok || { bad "resume from an EMA model file: exit $rc"; cat "$tmp/err"; }
# the EMA model file's parameters are the dVAE EMA's, and differ from the checkpoint's
$dalc run models/dvae.dal --config tiny -- data --data shapes:test --out "$tmp/x.npy" >/dev/null 2>&1
for f in dvae dvae.ema; do
  $dalc run models/dvae.dal --config tiny --params "$tmp/$f.safetensors" --fn encode --in "$tmp/x.npy" \
    --out "$tmp/$f.npy" >/dev/null 2>&1 || bad "run --params $f.safetensors failed"
done
cmp -s "$tmp/dvae.npy" "$tmp/dvae.ema.npy" && bad "the EMA model encodes exactly like the trained parameters" || ok

summary ema_model.sh

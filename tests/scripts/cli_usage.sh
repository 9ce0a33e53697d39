#!/bin/sh
# cli_usage.sh BUILD — the command lines of dalc and of the executables
# (issue 12): a model too big for the memory is refused before anything is
# allocated, saying what it needs and what there is (--force overrides);
# every command prints its usage for --help and -h; the small messages of
# --in, an empty file name and a --top-k too large; --save-params writes
# the whole model.
. tests/scripts/lib/checks.sh

# expect_ok WHAT CMD... : exit 0.
expect_ok() {
  what=$1; shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "$what: exit $?"; head -3 "$tmp/err"; fi
}

# expect_usage WHAT CMD... : exit 0, a usage on stdout, nothing on stderr.
expect_usage() {
  what=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -ne 0 ]; then bad "$what: exit $rc"; head -3 "$tmp/err"; return; fi
  if ! grep -q 'usage' "$tmp/out" || [ -s "$tmp/err" ]; then bad "$what: no usage on stdout, or stderr not empty"; return; fi
  ok
}

tiny_dvae_inputs
/usr/bin/python3 - "$tmp" <<'PY'
import sys, numpy as np
t = sys.argv[1]
np.save(f"{t}/text.npy", np.zeros((1, 256), np.int32))
np.save(f"{t}/image.npy", np.zeros((1, 1024), np.int32))
PY
"$dalc" models/dvae.dal --config tiny -o "$tmp/dvae" >/dev/null 2>&1 || bad "dalc -o dvae (tiny)"

# ---- memory: the paper GPT (12.3 B parameters, 45.8 GiB) on a machine of
#      24 GiB is refused before allocating (the limit stands for this
#      machine's; ulimit keeps a missing check from taking the machine,
#      except under ASan, which reserves terabytes of address space) ----
vlimit=8000000
case "$build" in *san*) vlimit=unlimited ;; esac
(ulimit -v $vlimit; DAL_MEMORY_LIMIT=24G timeout 20 "$dalc" run models/gpt.dal --config paper --fn logits \
  --in text="$tmp/text.npy" --in image="$tmp/image.npy") >"$tmp/out" 2>"$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q 'needs about 45.80 GiB (parameters 45.80 GiB), more than the [0-9.]* GiB' "$tmp/err" \
   && grep -q 'MemAvailable [0-9.]* GiB' "$tmp/err" && grep -q -- '--force' "$tmp/err"; then ok
else bad "paper GPT logits: exit $rc, not refused with its GiB figures: $(head -c 400 "$tmp/err")"; fi
(ulimit -v $vlimit; DAL_MEMORY_LIMIT=24G timeout 20 "$dalc" run models/gpt.dal --config paper -- train --steps 1 \
  --checkpoint "$tmp/paper.safetensors") \
  >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'needs about 45.80 GiB' "$tmp/err" && ok || bad "paper GPT -- train: exit $rc: $(head -c 300 "$tmp/err")"
expect_ok "info: the estimate" "$dalc" info models/gpt.dal --config paper
grep -q '^memory, estimated (f32): available [0-9.]* GiB (MemAvailable' "$tmp/out" \
  && grep -q '^  loss *(train) 182.55 GiB (parameters 45.80 GiB + optimizer state 91.60 GiB + arena (intermediates and gradients) 45.15 GiB)' "$tmp/out" \
  && grep -q '^  prefill .*KV cache and other transient state 2.42 GiB' "$tmp/out" \
  && ok || bad "dalc info gpt paper: no memory estimate: $(grep -A3 '^memory' "$tmp/out")"
# the small model under a small limit: the parameters, then an entry's arena
expect_error "params over DAL_MEMORY_LIMIT" "needs about 1.1 MiB (parameters 1.1 MiB), more than the 1.0 MiB" \
  env DAL_MEMORY_LIMIT=1M $tiny_run
expect_error "arena over DAL_MEMORY_LIMIT" "entry 'loss_given_noise' needs about [0-9.]* MiB (parameters 1.1 MiB + arena (intermediates) [0-9.]* MiB)" \
  env DAL_MEMORY_LIMIT=1200K $tiny_run
expect_ok "--force" env DAL_MEMORY_LIMIT=1M $tiny_run --force
expect_error "training over DAL_MEMORY_LIMIT" "optimizer state 2.2 MiB + arena (intermediates and gradients)" \
  env DAL_MEMORY_LIMIT=4M "$dalc" run models/dvae.dal --config tiny -- train --steps 1 --set tau=1 --set beta=1 --quiet \
  --checkpoint "$tmp/ck.safetensors"
expect_ok "training --force" env DAL_MEMORY_LIMIT=4M "$dalc" run models/dvae.dal --config tiny -- train --steps 1 \
  --set tau=1 --set beta=1 --quiet --force --checkpoint "$tmp/ck.safetensors"
expect_error "executable over DAL_MEMORY_LIMIT" "needs about" env DAL_MEMORY_LIMIT=1M "$tmp/dvae" run --fn encode --in "$tmp/x.npy"
expect_ok "executable --force" env DAL_MEMORY_LIMIT=1M "$tmp/dvae" run --fn encode --in "$tmp/x.npy" --force
expect_error "bad DAL_MEMORY_LIMIT" "DAL_MEMORY_LIMIT must be a size" env DAL_MEMORY_LIMIT=lots $tiny_run

# ---- --help and -h: every command, usage on stdout, exit 0 ----
for h in --help -h; do
  for c in info run tune-conv bpe "bpe train" "bpe encode" "bpe decode" generate judge "judge shapes" plot passes \
           fuse-rules models/dvae.dal; do
    expect_usage "dalc $c $h" "$dalc" $c $h
  done
  for c in info train run data tokenize sample generate bench eval "eval dvae" help; do
    expect_usage "run -- $c $h" "$dalc" run models/dvae.dal --config tiny -- $c $h
    expect_usage "EXE $c $h" "$tmp/dvae" $c $h
  done
done
"$dalc" run models/dvae.dal --config tiny -- train --help >"$tmp/out" 2>&1
grep -q '^usage: dalc run models/dvae.dal -- train --steps N' "$tmp/out" && grep -q '^datasets (SPEC)' "$tmp/out" \
  && ! grep -q '^  sample' "$tmp/out" && ok || bad "-- train --help is not train's usage: $(head -3 "$tmp/out")"
"$dalc" run --help >"$tmp/out" 2>&1
grep -q '^usage: dalc run FILE.dal --fn NAME' "$tmp/out" && ! grep -q 'dalc bpe' "$tmp/out" \
  && ok || bad "dalc run --help is not run's usage: $(head -3 "$tmp/out")"
expect_error "fuse-rules takes no arguments" "takes no arguments" "$dalc" fuse-rules extra

# ---- small messages ----
run="$dalc run models/dvae.dal --config tiny"
expect_error "--in without =, no such file" "--in x: cannot open: no such file (the form is --in NAME=FILE.npy" $run --fn encode --in x
expect_error "--in without =, several inputs" "--in x: name the input: the form is --in NAME=FILE.npy" $run --fn loss --in x
expect_error "-- run --in without =" "--in x: cannot open: no such file (the form is --in NAME=FILE.npy" $run -- run --fn encode --in x
expect_error "--in twice" "--in: two values for the same input ('0.8' and '2')" $tiny_run --in tau=2
expect_error "--out twice" "--out: two values for the same output" $run --fn encode --in "$tmp/x.npy" \
  --out "$tmp/a.npy" --out encode="$tmp/b.npy"
expect_error "-- run --in twice" "--in: two values for input 'x'" $run -- run --fn encode --in x="$tmp/x.npy" \
  --in "$tmp/x.npy"
expect_error "empty file name" "an empty argument where the .dal file goes" "$dalc" run ""
expect_error "empty file name (info)" "an empty argument where the .dal file goes" "$dalc" info ""
expect_error "run's own flags before --" "go after \`--\`, to the command" $run --fn encode --params "$tmp/p.st" -- info
expect_error "run without --fn lists the entries" "the entries of models/dvae.dal are: encode tokens" $run
expect_error "--top-k above K" "--top-k 100000 is more than the 64 image tokens" \
  "$dalc" run models/gpt.dal --config tiny -- sample --bench --top-k 100000
expect_error "--temperature too large" "--temperature must be 0 (greedy) or more, at most 1e6" \
  "$dalc" run models/gpt.dal --config tiny -- sample --bench --temperature 1e300

# ---- --save-params: the whole model, whichever entry ran ----
expect_ok "save-params from encode" $run --fn encode --in x="$tmp/x.npy" --seed 3 --save-params "$tmp/enc.safetensors"
grep -q '(69 tensors: the whole model)' "$tmp/out" && ok || bad "save-params: $(tail -1 "$tmp/out")"
expect_ok "those parameters for loss_given_noise" $tiny_run --params "$tmp/enc.safetensors"
expect_ok "save-params from loss_given_noise" $tiny_run --save-params "$tmp/loss.safetensors"
cmp -s "$tmp/enc.safetensors" "$tmp/loss.safetensors" && ok || bad "save-params: encode's and loss_given_noise's files differ"
expect_ok "save-params after --params" $run --fn encode --in x="$tmp/x.npy" --params "$tmp/enc.safetensors" \
  --save-params "$tmp/again.safetensors"
cmp -s "$tmp/enc.safetensors" "$tmp/again.safetensors" && ok || bad "save-params after --params changed the values"

summary cli_usage

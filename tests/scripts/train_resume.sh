#!/bin/sh
# train_resume.sh BUILD — kill-and-resume through the command line:
#   dalc run models/dvae.dal --config tiny -- train ...
# An uninterrupted run, a run stopped by SIGINT and resumed, and a run
# killed by SIGKILL between checkpoints and resumed must log bit-identical
# loss sequences and end with byte-identical checkpoints; SIGINT exits 130
# after writing its checkpoint; a checkpoint is never half-written and
# runs that end normally leave no temporary file. Batch 1 keeps it quick.
. tests/scripts/lib/checks.sh
# On the reference executor: a step takes long enough that the signals
# below land mid-run (native code finishes these 12 steps in a blink).
# tests/scripts/aot.py and train_models.py resume native-code runs.
export DAL_BACKEND=ref

model="models/dvae.dal --config tiny --batch 1"
if $dalc run $model -- help >"$tmp/help" 2>&1 && grep -q 'train --steps' "$tmp/help"; then ok; else
  bad "dalc run FILE -- help does not show rt_main's usage"; cat "$tmp/help"; fi

# train LOG CHECKPOINT [FLAGS...]: 12 steps, a checkpoint every 3. Runs
# that get a signal start dalc itself in the background (not this function,
# whose subshell would get the signal instead).
# The schedules (cosine tau, a KL ramp, lr warm-up and cosine decay) are
# functions of the step: a resumed run must see the same values; the EMA of
# the parameters rides in the checkpoints and must continue exactly.
flags="--steps 12 --every 3 --seed 7 --anneal tau=1:0.0625:cos --anneal beta=0:0.1:linear:5 --warmup 3 --lr-decay cos --ema 0.9 --quiet"
train() {
  log=$1; ckpt=$2; shift 2
  $dalc run $model -- train $flags --log "$log" --checkpoint "$ckpt" "$@"
}

# ---- the reference: uninterrupted ----
if train "$tmp/full.tsv" "$tmp/full.safetensors" 2>"$tmp/err"; then ok; else bad "uninterrupted run failed"; cat "$tmp/err"; fi
[ "$(wc -l <"$tmp/full.tsv")" -eq 13 ] && ok || bad "the log should have a header and 12 lines"

# ---- SIGINT: finish the step, write a checkpoint, exit 130; resume ----
$dalc run $model -- train $flags --log "$tmp/int.tsv" --checkpoint "$tmp/int.safetensors" 2>"$tmp/err" &
pid=$!
wait_lines "$tmp/int.tsv" 3
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] && ok || { bad "SIGINT: exit $rc, expected 130"; cat "$tmp/err"; }
grep -q 'interrupted by SIGINT' "$tmp/err" && ok || bad "SIGINT: no message"
[ -f "$tmp/int.safetensors" ] && ok || bad "SIGINT: no checkpoint"
if train "$tmp/int.tsv" "$tmp/int.safetensors" --resume "$tmp/int.safetensors" 2>"$tmp/err"; then ok; else
  bad "resume after SIGINT failed"; cat "$tmp/err"; fi
cmp -s "$tmp/full.tsv" "$tmp/int.tsv" && ok || { bad "SIGINT + resume: the loss sequence differs"; diff "$tmp/full.tsv" "$tmp/int.tsv"; }
cmp -s "$tmp/full.safetensors" "$tmp/int.safetensors" && ok || bad "SIGINT + resume: the final checkpoints differ"
cmp -s "$tmp/full.ema.safetensors" "$tmp/int.ema.safetensors" && ok || bad "SIGINT + resume: the EMA model files differ"

# ---- SIGKILL after the checkpoint at step 3; resume from it ----
$dalc run $model -- train $flags --log "$tmp/kill.tsv" --checkpoint "$tmp/kill.safetensors" 2>"$tmp/err" &
pid=$!
wait_lines "$tmp/kill.tsv" 6
kill -KILL $pid
wait $pid 2>/dev/null
[ "$(wc -l <"$tmp/kill.tsv")" -lt 13 ] && ok || bad "SIGKILL came too late: the run had finished"
[ -f "$tmp/kill.safetensors" ] && ok || bad "SIGKILL: no checkpoint from step 3"
if train "$tmp/kill.tsv" "$tmp/kill.safetensors" --resume "$tmp/kill.safetensors" 2>"$tmp/err"; then ok; else
  bad "resume after SIGKILL failed"; cat "$tmp/err"; fi
cmp -s "$tmp/full.tsv" "$tmp/kill.tsv" && ok || { bad "SIGKILL + resume: the loss sequence differs"; diff "$tmp/full.tsv" "$tmp/kill.tsv"; }
cmp -s "$tmp/full.safetensors" "$tmp/kill.safetensors" && ok || bad "SIGKILL + resume: the final checkpoints differ"
cmp -s "$tmp/full.ema.safetensors" "$tmp/kill.ema.safetensors" && ok || bad "SIGKILL + resume: the EMA model files differ"

# ---- no temporary file is left behind ----
# (SIGKILL during a checkpoint write may leave kill.safetensors.tmp.*; the
# resumed run's next checkpoint of that path removes it.)
extra=$(ls -A "$tmp" | grep -v -e '\.tsv$' -e '\.safetensors$' -e '^err$' -e '^help$')
[ -z "$extra" ] && ok || bad "temporary files left behind: $extra"

# ---- a corrupt checkpoint is a clear error ----
head -c 200 "$tmp/full.safetensors" >"$tmp/bad.safetensors"
train "$tmp/bad.tsv" "$tmp/x.safetensors" --resume "$tmp/bad.safetensors" >/dev/null 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q 'bad.safetensors' "$tmp/err" && ok || { bad "corrupt checkpoint: exit $rc"; cat "$tmp/err"; }

summary train_resume.sh

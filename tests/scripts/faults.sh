#!/bin/sh
# faults.sh BUILD — training under hostile conditions (issue 12, rows 9-14):
#   - every write is checked: a full disk (/dev/full) under --log, --checkpoint,
#     `data --out` and stdout is a clean error, exit 1;
#   - output paths are checked before any work: a missing or read-only
#     directory fails before compiling and before the first step;
#   - SIGHUP saves a checkpoint like SIGINT/SIGTERM (exit 129), which resumes;
#   - a second run on the same checkpoint is refused while the first holds
#     its lock; a lock left by a killed run does not block;
#   - --resume refuses changed settings (batch, lr, ...) naming each, unless
#     --resume-changed, which the checkpoint then records;
#   - train's numeric options are range-checked.
# The reference executor keeps steps slow enough for signals to land mid-run.
. tests/scripts/lib/checks.sh
export DAL_BACKEND=ref
export DAL_CACHE_DIR="$tmp/cache"

model="models/dvae.dal --config tiny --batch 1"
sets="--set tau=1 --set beta=0.1"
# Runs that get a signal start dalc itself in the background, not this
# function, whose subshell would get the signal instead.
train() { $dalc run $model -- train $sets "$@"; }
bg="$dalc run $model -- train $sets --steps 60 --every none" # a run to signal

# wait_for TEST...: until `test TEST` holds (20 s at most).
wait_for() {
  i=0
  while ! test "$@" && [ $i -lt 200 ]; do sleep 0.1; i=$((i + 1)); done
}

# A directory nobody may write in: root ignores permissions, so /proc then.
if [ "$(id -u)" -eq 0 ]; then ro=/proc; else
  ro="$tmp/ro"; mkdir "$ro"; chmod 555 "$ro"; fi

# ---- row 9: every write checked ----
[ -c /dev/full ] || bad "/dev/full is not a device before the full-disk checks"
expect_error "--log on a full disk" "/dev/full: write failed" train --steps 2 --quiet --log /dev/full --checkpoint "$tmp/a.safetensors"
expect_error "--checkpoint on a full disk" "/dev/full: write failed" train --steps 2 --quiet --checkpoint /dev/full
if [ -c /dev/full ]; then ok; else
  bad "/dev/full is no longer a device"
  # a build without the in-place rule renamed a file over it: put the device back
  [ "$(id -u)" = 0 ] && rm -f /dev/full && mknod -m 666 /dev/full c 1 7
fi
expect_error "data --out on a full disk" "/dev/full: write failed" $dalc run $model -- data --out /dev/full
expect_error "stdout on a full disk" "stdout: write failed" sh -c "$dalc run $model -- info >/dev/full"
expect_error "dalc info's stdout on a full disk" "stdout: write failed" sh -c "$dalc info $model >/dev/full"
expect_error "--emit -o on a full disk" "/dev/full: write failed" $dalc $model --emit=ir -o /dev/full
expect_error "--log in a read-only directory" "--log $ro/l.tsv: cannot write in $ro" \
  train --steps 2 --quiet --log "$ro/l.tsv" --checkpoint "$tmp/a.safetensors"

# ---- row 10: output paths checked before any work ----
rm -rf "$tmp/cache"
expect_error "--checkpoint in a missing directory" "--checkpoint $tmp/none/c.safetensors: cannot write in" \
  train --steps 2 --log "$tmp/l10.tsv" --checkpoint "$tmp/none/c.safetensors"
[ ! -e "$tmp/l10.tsv" ] && ! grep -q 'step 1' "$tmp/err" && ok || bad "--checkpoint checked only after a step"
[ -z "$(ls -A "$tmp/cache" 2>/dev/null)" ] && ok || bad "--checkpoint checked only after compiling"
expect_error "--checkpoint in a read-only directory" "cannot write in $ro" train --steps 2 --checkpoint "$ro/c.safetensors"
expect_error "--checkpoint a directory" "is a directory" train --steps 2 --checkpoint "$tmp"
expect_error "run --out in a missing directory" "--out $tmp/none/x.npy: cannot write in" \
  $dalc run models/dvae.dal --config tiny --fn encode --in x=1 --out "$tmp/none/x.npy"
[ -z "$(ls -A "$tmp/cache" 2>/dev/null)" ] && ok || bad "run --out checked only after compiling"
expect_error "-- run --out NAME=FILE in a missing directory" "cannot write in $tmp/none" \
  $dalc run $model -- run --fn encode --in x=1 --out "z=$tmp/none/z.npy"

# ---- row 11: SIGHUP saves a checkpoint ----
$bg --log "$tmp/hup.tsv" --checkpoint "$tmp/hup.safetensors" 2>"$tmp/hup.err" &
pid=$!
wait_lines "$tmp/hup.tsv" 3
kill -HUP $pid
wait $pid
rc=$?
[ $rc -eq 129 ] && ok || { bad "SIGHUP: exit $rc, expected 129"; cat "$tmp/hup.err"; }
grep -q 'interrupted by SIGHUP' "$tmp/hup.err" && ok || bad "SIGHUP: no message"
step=$(head -c 4096 "$tmp/hup.safetensors" 2>/dev/null | grep -ao '"dal.step":"[0-9]*"' | grep -o '[0-9][0-9]*')
[ -n "$step" ] && [ "$step" -gt 0 ] && [ "$step" -lt 60 ] && ok || bad "SIGHUP: no checkpoint mid-run (step '$step')"
if train --steps $((step + 1)) --every none --quiet --log "$tmp/hup.tsv" --checkpoint "$tmp/hup.safetensors" \
  --resume "$tmp/hup.safetensors" 2>"$tmp/err"; then ok; else bad "SIGHUP: the checkpoint does not resume"; cat "$tmp/err"; fi

# ---- row 12: one run per checkpoint ----
$bg --log "$tmp/lock.tsv" --checkpoint "$tmp/lock.safetensors" 2>"$tmp/lock.err" &
pid=$!
wait_for -e "$tmp/lock.safetensors.lock"
wait_lines "$tmp/lock.tsv" 2
expect_error "a second run on a locked checkpoint" "another process (pid $pid) is writing this checkpoint" \
  train --steps 2 --quiet --checkpoint "$tmp/lock.safetensors"
kill -TERM $pid
wait $pid
[ ! -e "$tmp/lock.safetensors.lock" ] && ok || bad "the lock file outlives its run"
# A run killed outright leaves its lock file, which must not block.
$bg --log "$tmp/kill.tsv" --checkpoint "$tmp/kill.safetensors" 2>/dev/null &
pid=$!
wait_lines "$tmp/kill.tsv" 2
kill -KILL $pid
wait $pid 2>/dev/null
[ -e "$tmp/kill.safetensors.lock" ] && ok || bad "SIGKILL: no stale lock file to test with"
if train --steps 2 --quiet --checkpoint "$tmp/kill.safetensors" 2>"$tmp/err"; then ok; else
  bad "a stale lock blocks"; cat "$tmp/err"; fi

# ---- row 13: resume refuses changed settings ----
base="--steps 4 --every 2 --seed 5 --quiet --checkpoint $tmp/r.safetensors"
train $base --steps 2 || bad "resume: the first run failed"
expect_error "resume with another --batch" "input x: f32\[1, 3, 16, 16\] -> f32\[2, 3, 16, 16\] (compiled with another --batch?)" \
  $dalc run models/dvae.dal --config tiny --batch 2 -- train $sets $base --resume "$tmp/r.safetensors"
expect_error "resume with another --lr" "--lr 0.001 -> 0.002" train $base --lr 0.002 --resume "$tmp/r.safetensors"
expect_error "resume with another --anneal" "input tau: --set 1 -> --anneal" \
  $dalc run $model -- train --set beta=0.1 --anneal tau=1:0.5 $base --resume "$tmp/r.safetensors"
grep -q 'resume-changed' "$tmp/err" && ok || bad "resume refusal does not name --resume-changed"
cp "$tmp/r.safetensors" "$tmp/r2.safetensors"
if train $base --resume "$tmp/r2.safetensors" --checkpoint "$tmp/r2.safetensors" 2>"$tmp/err"; then ok; else
  bad "resume with the same settings refused"; cat "$tmp/err"; fi
if train $base --lr 0.002 --resume "$tmp/r.safetensors" --resume-changed 2>"$tmp/err"; then ok; else
  bad "--resume-changed refused"; cat "$tmp/err"; fi
grep -q 'changed settings: --lr 0.001 -> 0.002' "$tmp/err" && ok || { bad "--resume-changed: no note"; cat "$tmp/err"; }
head -c 8192 "$tmp/r.safetensors" | grep -aq '"dal.resume_changed":"step 2: --lr 0.001 -> 0.002"' && ok ||
  bad "--resume-changed: the checkpoint does not record the change"
train $base --steps 5 --lr 0.002 --resume "$tmp/r.safetensors" 2>"$tmp/err" &&
  grep -q 'resumed with changed settings (step 2' "$tmp/err" && ok || { bad "resuming a changed run: no note"; cat "$tmp/err"; }

# ---- row 14: train's numeric options ----
for bad_flag in "--lr -1" "--lr 0" "--every 0" "--steps 0" "--ema 1" "--eval-every 0" "--eval-batches 0"; do
  flag=${bad_flag% *}
  expect_error "train $bad_flag" "$flag: must be" train --steps 3 $bad_flag --checkpoint "$tmp/x.safetensors"
done
expect_error "--lr-min above --lr" "--lr-min: must be at most --lr" \
  train --steps 3 --lr 0.1 --lr-decay cos --lr-min 1 --checkpoint "$tmp/x.safetensors"
expect_error "--resume-changed alone" "--resume-changed goes with --resume" \
  train --steps 3 --resume-changed --checkpoint "$tmp/x.safetensors"

summary faults.sh

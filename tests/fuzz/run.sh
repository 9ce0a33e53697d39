#!/bin/sh
# run.sh — AFL++ campaigns on dal's parsers, one target after another
# (`make fuzz SECONDS=N` runs it after `make fuzz-build`).
#
#   sh tests/fuzz/run.sh [SECONDS]      each target SECONDS seconds (default 60)
#
# FUZZ_EXECS=N instead stops each target after about N executions
# (SECONDS stays the cap): how the campaigns of at least 1,000,000 ran.
# FUZZ_TARGETS names the targets (default: all seven); FUZZ_NICE the nice
# level (default 5); FUZZ_OUT the output folder (default build-fuzz/out);
# FUZZ_BIN the programs' folder (default build-fuzz/fuzz; build-fuzz-asan/fuzz
# for the ASan build, `make fuzz-build FUZZ_ASAN=1`).
# Each target starts from tests/fuzz/NAME/corpus (the minimised corpus)
# and tests/fuzz/NAME/seeds (not from NAME/crashes: some of those are slow
# by design, and the replay test runs them), and writes AFL++'s output to FUZZ_OUT/NAME
# (findings in FUZZ_OUT/NAME/default/crashes and hangs). A progress line
# about once a minute (executions, executions/s, crashes, hangs, as AFL++
# writes them to fuzzer_stats); at the end a table
# per target. Exit status 1 if any target found a crash or a hang.
set -u
secs=${1:-60}
targets=${FUZZ_TARGETS:-dal safetensors npy bpe folder fashion model}
out=${FUZZ_OUT:-build-fuzz/out}
nice_level=${FUZZ_NICE:-5}
# the files a harness writes (and fsyncs: npy and safetensors write back
# atomically) go to memory when there is a tmpfs
tmp_base=${FUZZ_TMP:-$( [ -d /dev/shm ] && [ -w /dev/shm ] && echo /dev/shm/dal-fuzz-$$ || echo "$PWD/$out/tmp")}
here=tests/fuzz
execs=${FUZZ_EXECS:+-E $FUZZ_EXECS}
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export AFL_QUIET=1 AFL_SKIP_CRASHES=1

stat() { # stat FILE KEY: a value of AFL++'s fuzzer_stats
  sed -n "s/^$2 *: *//p" "$1" 2>/dev/null | head -n 1
}

alive() { # alive PID: running (not a zombie waiting to be reaped)
  s=$(ps -o stat= -p "$1" 2>/dev/null)
  [ -n "$s" ] && [ "${s#Z}" = "$s" ]
}

dict_of() {
  case $1 in
    dal) echo "-x $here/dal.dict" ;;
    safetensors | bpe | model) echo "-x $here/json.dict" ;;
    npy) echo "-x $here/npy.dict" ;;
    *) echo "" ;;
  esac
}

summary=""
status=0
for t in $targets; do
  bin=${FUZZ_BIN:-build-fuzz/fuzz}/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: $bin is missing: make fuzz-build"; exit 1; }
  in=$out/in/$t
  rm -rf "$in" "$out/$t" "$tmp_base/$t"
  mkdir -p "$in" "$out/$t" "$tmp_base/$t"
  for d in corpus seeds; do
    [ -d "$here/$t/$d" ] && find "$here/$t/$d" -maxdepth 1 -type f -exec cp {} "$in/" \;
  done
  echo "fuzz: $t for ${secs}s${FUZZ_EXECS:+ or $FUZZ_EXECS executions} ($(ls "$in" | wc -l) starting inputs)"
  # -t: ms per input; -m: MB of address space (4 GB: a blow-up is a finding,
  # not a machine out of memory; ASan programs need none)
  case $bin in *asan*) mem=none ;; *) mem=${FUZZ_MEM:-4096} ;; esac
  TMPDIR=$tmp_base/$t nice -n "$nice_level" afl-fuzz -i "$in" -o "$out/$t" -t 1000 -m "$mem" -V "$secs" $execs \
    $(dict_of "$t") -- "$bin" >"$out/$t.log" 2>&1 &
  pid=$!
  stats=$out/$t/default/fuzzer_stats
  seen=""
  while alive $pid; do
    sleep 5
    # AFL++ rewrites fuzzer_stats about once a minute: a line each time
    up=$(stat "$stats" last_update)
    [ -n "$up" ] && [ "$up" != "$seen" ] && [ "$(stat "$stats" execs_done)" -gt 0 ] &&
      printf '  %-12s %5ss %12s execs %9s/s  crashes %s  hangs %s  corpus %s\n' "$t" \
        "$(( up - $(stat "$stats" start_time) ))" "$(stat "$stats" execs_done)" "$(stat "$stats" execs_per_sec)" \
        "$(stat "$stats" saved_crashes)" "$(stat "$stats" saved_hangs)" "$(stat "$stats" corpus_count)"
    seen=$up
  done
  wait $pid || { echo "fuzz: afl-fuzz failed on $t (see $out/$t.log):"; tail -n 20 "$out/$t.log"; status=1; continue; }
  rm -rf "$tmp_base/$t"
  ex=$(stat "$stats" execs_done); cr=$(stat "$stats" saved_crashes); hg=$(stat "$stats" saved_hangs)
  rt=$(( $(stat "$stats" last_update) - $(stat "$stats" start_time) ))
  [ "${cr:-0}" = 0 ] && [ "${hg:-0}" = 0 ] || status=1
  summary="$summary$(printf '%-12s %12s %8ss %8s %6s %8s' "$t" "$ex" "$rt" "$cr" "$hg" "$(stat "$stats" corpus_count)")
"
done
rmdir "$tmp_base" 2>/dev/null
printf '\n%-12s %12s %9s %8s %6s %8s\n' target execs time crashes hangs corpus
printf '%s' "$summary"
[ $status = 0 ] || echo "fuzz: findings in $out/NAME/default/crashes and hangs"
exit $status

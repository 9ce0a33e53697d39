#!/bin/sh
# cmin.sh — the committed corpus from a campaign: afl-cmin over the
# campaign's queue and the current corpus of each target, written to
# tests/fuzz/NAME/corpus (replacing it).
#
#   sh tests/fuzz/cmin.sh [OUT]     OUT: the campaign's FUZZ_OUT (default build-fuzz/out)
#
# FUZZ_TARGETS as for run.sh. Inputs over 64 KB are left out.
set -eu
out=${1:-build-fuzz/out}
targets=${FUZZ_TARGETS:-dal safetensors npy bpe folder fashion model}
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_QUIET=1
for t in $targets; do
  q=$out/$t/default/queue
  [ -d "$q" ] || { echo "cmin: $q is missing (run the campaign first)"; exit 1; }
  all=$out/cmin-in/$t
  rm -rf "$all" "$out/cmin-out/$t"
  mkdir -p "$all" "$out/cmin-out"
  find "$q" tests/fuzz/$t/corpus -maxdepth 1 -type f -size -65k -exec cp {} "$all/" \; 2>/dev/null || true
  TMPDIR=${TMPDIR:-/tmp} nice -n "${FUZZ_NICE:-5}" afl-cmin -i "$all" -o "$out/cmin-out/$t" -t 3000 -m none \
    -- build-fuzz/fuzz/fuzz_$t >"$out/cmin-$t.log" 2>&1 || { tail -n 5 "$out/cmin-$t.log"; exit 1; }
  rm -rf tests/fuzz/$t/corpus
  mkdir -p tests/fuzz/$t/corpus
  # short stable names: the input's hash
  for f in "$out/cmin-out/$t"/*; do
    cp "$f" "tests/fuzz/$t/corpus/$(sha1sum "$f" | cut -c1-16)"
  done
  echo "cmin: $t: $(ls "$all" | wc -l) inputs -> $(ls tests/fuzz/$t/corpus | wc -l) ($(du -sk tests/fuzz/$t/corpus | cut -f1) KB)"
done

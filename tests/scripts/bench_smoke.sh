#!/bin/sh
# bench_smoke.sh BUILD — the benchmark harness end to end on the tiny
# configurations, one step per measurement, two interleaved rounds
# (bench/run.sh --quick --config tiny into a temporary directory): every
# measurement of every round must produce its JSON and its load record, and
# the report every table in shape: the target table's rows with now /
# target / met?, the steps (training steps and the dVAE forward) with a
# median, its rounds' range and a ratio with its range, GFLOP/s against the
# roof, the load per measurement, compile cold and cached, the sgemm and FMA
# peak lines, with no "failed". Nothing about speed is checked. The sampling
# table: its two rows (KV cache, no cache) with PyTorch's image tokens/s
# (the fastest of its settings, named) and dal's or "n/a" (a dalc without
# `sample --bench`); report.py on a dal sampling result (ratio), a failure
# and a missing command, on a stopped and a failed dal measurement, and on
# a loaded round; torch_sample.py --check; bench/measure.py (the exit status
# passed on, --timeout); bench/flops.py against a hand count. Then the
# `bench` command through dalc on the real models, and run.sh's bad arguments.
. tests/scripts/lib/checks.sh


# ---- the whole harness --------------------------------------------------------
if DAL_BENCH_ROUNDS=2 DAL_BENCH_STEPS=1 DAL_BENCH_WARMUP=0 TORCH_BENCH_STEPS=1 TORCH_BENCH_WARMUP=0 \
   FORWARD_STEPS=1 FORWARD_WARMUP=0 COMPILE_RUNS=2 \
   sh bench/run.sh --quick --config tiny --build "$build" --out "$tmp/b" > "$tmp/table" 2> "$tmp/err"; then
  ok
else
  bad "bench/run.sh --quick --config tiny failed"; cat "$tmp/err" "$tmp/table"
fi
for f in sgemm.json fma.json flops.json results.md compile-dvae-tiny.txt compile-gpt-tiny.txt; do
  [ -s "$tmp/b/$f" ] && ok || bad "run.sh left no $f"
done
# sampling without a cache only in round 1 (SAMPLE_NOCACHE_ROUNDS, default 1)
nocache='dal-sample-nocache torch-sample-nocache-PASSIVE torch-sample-nocache-default torch-sample-nocache-default-blas1'
for r in round1 round2; do
  also=
  [ $r = round1 ] && also=$nocache
  for f in dal-dvae dal-gpt dal-forward torch-dvae-PASSIVE torch-dvae-default torch-gpt-PASSIVE \
           torch-gpt-default torch-forward-PASSIVE torch-forward-default dal-sample-cache torch-sample-cache-PASSIVE \
           torch-sample-cache-default torch-sample-cache-PASSIVE-blas1 $also; do
    [ -s "$tmp/b/$r/$f.json" ] && ok || bad "run.sh left no $r/$f.json"
    grep -Eq '"others_cores": [0-9.]+, .*"loadavg_before": [0-9.]+' "$tmp/b/$r/$f.load" && ok ||
      bad "$r/$f.load: $(cat "$tmp/b/$r/$f.load")"
  done
done
[ -e "$tmp/b/round2/torch-sample-nocache-PASSIVE.json" ] && bad "no-cache sampling measured in round 2" || ok
grep -Eq '^\| torch-sample-nocache-PASSIVE \| [0-9.]+.* \| not measured \|$' "$tmp/b/results.md" && ok ||
  bad "the load table does not say round 2 skipped no-cache sampling"
[ "$(wc -l < "$tmp/b/compile-dvae-tiny.txt")" -eq 2 ] && ok || bad "compile-dvae-tiny.txt: not 2 runs"
# The same text on stdout and in results.md; no failure.
cmp -s "$tmp/table" "$tmp/b/results.md" && ok || bad "stdout and results.md differ"
res=$tmp/b/results.md
grep -q failed "$res" && bad "a measurement failed: $(grep failed "$res")" || ok

# the target table: every row, now (a ratio and its range, or seconds) / target / met?
num='[0-9.]+'
range="${num}x \\(${num}-${num}\\)"
met='(yes|no)( \(measured under load\))?'
for row in "dVAE tiny training step \\| $range \\| >= 1.75x" "GPT tiny training step \\| $range \\| >= 2x" \
           "GPT tiny KV-cached sampling \\(batch 8\\) \\| $range \\| >= 2.5x" \
           "dVAE tiny forward \\(\`tokens\`\\), batch of the config \\| $range \\| >= 1.5x" \
           "peak RSS, dVAE tiny step \\(dal/PyTorch\\) \\| $range \\| <= 0.5x" \
           "peak RSS, GPT tiny step \\(dal/PyTorch\\) \\| $range \\| <= 0.5x" \
           "compile dvae.dal tiny \\| $num s cold, $num s cached \\| < 2 s cold, < 0.3 s cached" \
           "compile gpt.dal tiny \\| $num s cold, $num s cached \\| < 2 s cold, < 0.3 s cached"; do
  grep -Eq "^\\| $row \\| $met \\|\$" "$res" && ok || bad "no target row '$row'"
done
# the steps: dal ms (median and range), PyTorch's fastest, the ratio and its range, GFLOP/s vs the roof, load
for row in 'dVAE training step \(tiny\)' 'GPT training step \(tiny\)' 'dVAE forward, `tokens` \(tiny\)'; do
  grep -Eq "^\\| $row \\| $num( \\($num-$num\\))? \\| $num( \\($num-$num\\))? \\(O[^|]*\\| $range \\|.*\\| $num \\($num% sgemm, $num% peak\\) \\|.*\\| $num( LOADED)? \\|\$" \
    "$res" && ok || bad "no step row '$row': $(grep "^| ${row%% *}" "$res")"
done
grep -q 'ratio = PyTorch ms / dal ms (above 1: dal faster)' "$res" && ok ||
  bad "the table does not say which way the ratio goes"
grep -Eq 'OpenBLAS sgemm, 2 threads .*square 1024x1024x1024: [0-9.]+ GFLOP/s' "$res" && ok || bad "no sgemm line"
grep -Eq '^- FMA peak, 2 threads: measured [0-9.]+ GFLOP/s .*nominal [0-9.]+ GFLOP/s = 2 cores x [0-9.]+ GHz' "$res" &&
  ok || bad "no FMA peak line"
grep -Eq '^- step FLOPs .*dVAE training step \(tiny, batch 4\) [0-9.]+ GFLOP; GPT training step' "$res" && ok ||
  bad "no step FLOPs line"
grep -Eq '^\| dvae.dal tiny \| [0-9.]+ s \([0-9.]+ s\) \| [0-9.]+ s \([0-9.]+ s\) \| 2 \|$' "$res" && ok ||
  bad "no compile row: $(grep '^| dvae.dal' "$res")"
grep -Eq 'machine: .*, [0-9]+ cores, .*2 interleaved rounds' "$res" && ok || bad "no machine line"
# the load table: a row per measurement, a cell per round
grep -Eq '^\| measurement \| round 1: .* \| round 2: .* \|$' "$res" && ok || bad "no load table"
grep -Eq "^\\| dal-dvae \\| $num( LOADED)? \\($num -> $num\\) \\| $num( LOADED)? \\($num -> $num\\) \\|\$" "$res" &&
  ok || bad "no load row for dal-dvae: $(grep '^| dal-dvae' "$res")"
grep -q '"steps":1' "$tmp/b/round1/dal-gpt.json" && grep -q '"unit":"tokens"' "$tmp/b/round1/dal-gpt.json" &&
  grep -q '"per_step":96' "$tmp/b/round1/dal-gpt.json" && ok || bad "dal-gpt.json: $(cat "$tmp/b/round1/dal-gpt.json")"
grep -q '"unit": "tokens", "per_step": 96' "$tmp/b/round1/torch-gpt-PASSIVE.json" && ok ||
  bad "torch-gpt-PASSIVE.json counts tokens differently: $(cat "$tmp/b/round1/torch-gpt-PASSIVE.json")"
grep -q '"entry": "tokens", .*"out_shape": \[4, 4, 4\]' "$tmp/b/round1/torch-forward-PASSIVE.json" && ok ||
  bad "torch-forward-PASSIVE.json: $(cat "$tmp/b/round1/torch-forward-PASSIVE.json")"
grep -q '"entry":"tokens","train":false' "$tmp/b/round1/dal-forward.json" && ok ||
  bad "dal-forward.json: $(cat "$tmp/b/round1/dal-forward.json")"

# ---- a loaded round is flagged; a quiet one is not --------------------------------
cp -r "$tmp/b" "$tmp/l"
for r in round1 round2; do for f in "$tmp/l/$r"/*.load; do
  echo '{"wall_s": 1, "self_cpu_s": 1, "machine_cpu_s": 1, "others_cores": 0.0, "loadavg_before": 0.1, "loadavg_after": 0.1, "cores": 2, "timed_out": false}' > "$f"
done; done
echo '{"wall_s": 1, "self_cpu_s": 1, "machine_cpu_s": 2.5, "others_cores": 1.5, "loadavg_before": 2, "loadavg_after": 2, "cores": 2, "timed_out": false}' \
  > "$tmp/l/round2/dal-gpt.load"
/usr/bin/python3 bench/report.py "$tmp/l" > "$tmp/out"
grep -Eq '^\| dVAE training step \(tiny\) .*\| 0.00 \|$' "$tmp/out" && ok || bad "quiet row: $(grep '^| dVAE training' "$tmp/out")"
grep -Eq '^\| GPT training step \(tiny\) .*\| 1.50 LOADED \|$' "$tmp/out" &&
  grep -Eq '^\| GPT tiny training step .*\(measured under load\) \|$' "$tmp/out" &&
  ok || bad "loaded row not flagged: $(grep 'GPT.*training step' "$tmp/out")"
grep -Eq '^\| dal-gpt \| 0.00 \(0.10 -> 0.10\) \| 1.50 LOADED \(2.00 -> 2.00\) \|$' "$tmp/out" && ok ||
  bad "load table: $(grep '^| dal-gpt' "$tmp/out")"

# ---- measure.py and flops.py ---------------------------------------------------------
/usr/bin/python3 bench/measure.py --load "$tmp/m.load" -- sh -c 'exit 3'
[ $? -eq 3 ] && grep -q '"timed_out": false' "$tmp/m.load" && ok || bad "measure.py: exit status not passed on"
/usr/bin/python3 bench/measure.py --load "$tmp/m.load" --timeout 1 -- sleep 30
[ $? -eq 124 ] && grep -q '"timed_out": true' "$tmp/m.load" && ok || bad "measure.py --timeout: $(cat "$tmp/m.load")"
# GPT tiny by hand: N = 8 + 16 - 1 = 23, d = 32, L = 2, V = 64 + 8 + 64 = 136, B = 4:
# 3 x 4 x (23 x (24 x 32^2 x 2 + 2 x 32 x 136) + 4 x 23^2 x 32 x 2) = 17593344
grep -q '"gpt_train": {"config": "tiny", "batch": 4, "forward_flops": 5864448, "flops": 17593344}' \
  "$tmp/b/flops.json" && ok || bad "flops.py GPT tiny: $(cat "$tmp/b/flops.json")"
# ---- sampling rows ---------------------------------------------------------------------
grep -q '^| GPT sampling (tiny; batch 8) | dal image tokens/s |' "$res" && ok || bad "no sampling table"
for mode in 'KV cache' 'no cache'; do
  # dal's tokens/s (or n/a), then PyTorch's with its setting, then the ratio and its range
  grep -Eq "^\\| $mode \\| ($num( \\($num-$num\\))?|n/a) \\| $num( \\($num-$num\\))? \\(O[^|]*\\| ($range|-) \\|" "$res" &&
    ok || bad "no '$mode' row with PyTorch's tokens/s and dal's (or n/a): $(grep "^| $mode" "$res")"
done
grep -q '"image_tokens": 128, .*"cache": true' "$tmp/b/round1/torch-sample-cache-PASSIVE.json" && ok ||
  bad "torch-sample-cache-PASSIVE.json: $(cat "$tmp/b/round1/torch-sample-cache-PASSIVE.json")"
grep -q '"image_tokens": 128, .*"cache": false' "$tmp/b/round1/torch-sample-nocache-default.json" && ok ||
  bad "torch-sample-nocache-default.json: $(cat "$tmp/b/round1/torch-sample-nocache-default.json")"
grep -q '"peak_rss_mib": [0-9]' "$tmp/b/round1/torch-sample-cache-PASSIVE.json" && ok || bad "no peak RSS in torch-sample"
/usr/bin/python3 bench/torch_sample.py --config tiny --check > "$tmp/check" 2>&1 &&
  grep -q '"same_tokens": true' "$tmp/check" && ok || bad "torch_sample.py --check: $(cat "$tmp/check")"

# ---- report.py on measurements stopped at the time limit, or failed ------------------
cp -r "$tmp/b" "$tmp/c"
for r in round1 round2; do echo '{"error": "stopped after 120 s", "timeout_s": 120}' > "$tmp/c/$r/dal-dvae.json"; done
echo 'warm-up 1/2: 5000.000 ms' > "$tmp/c/round1/dal-dvae.log"
echo 'step 1/1: 7000.000 ms' > "$tmp/c/round2/dal-dvae.log"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out" && ok || bad "report.py: a stopped run is no failure"
grep -Eq "^\\| dVAE training step \\(tiny\\) \\| 6000 \\(5000-7000\\) \\(stopped at 120 s\\) \\|.*\\| $range \\|" "$tmp/out" &&
  ok || bad "stopped after a step: $(grep '^| dVAE training' "$tmp/out")"
: > "$tmp/c/round1/dal-dvae.log"
: > "$tmp/c/round2/dal-dvae.log"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out"
grep -Eq '^\| dVAE training step \(tiny\) \| > 120000 \(stopped\) \| .*\| < [0-9.]+x \|' "$tmp/out" && ok ||
  bad "stopped before a step: $(grep '^| dVAE training' "$tmp/out")"
: > "$tmp/c/round1/dal-gpt.json"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out"
[ $? -eq 1 ] && grep -Eq "^\\| GPT training step \\(tiny\\) \\| $num \\|" "$tmp/out" &&
  grep -q "GPT training step (tiny) dal failed: see $tmp/c/round1/dal-gpt.log" "$tmp/out" &&
  ok || bad "a round failed: $(grep GPT "$tmp/out")"
: > "$tmp/c/round2/dal-gpt.json"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out"
[ $? -eq 1 ] && grep -q '^| GPT training step (tiny) | failed |' "$tmp/out" &&
  grep -Eq '^\| GPT tiny training step \| - \| >= 2x \| not measured \|$' "$tmp/out" && ok ||
  bad "every round failed: $(grep GPT "$tmp/out")"

# dal's sampling: a result (its ratio), a missing `sample --bench` (n/a, no
# failure), another failure (failed, exit 1)
cp -r "$tmp/b" "$tmp/s"
for r in round1 round2; do
  echo '{"image_tokens": 128, "seconds": 0.5, "tokens_per_s": 256.0, "cache": true, "peak_rss_mib": 50.0}' \
    > "$tmp/s/$r/dal-sample-cache.json"
done
echo "gpt.dal --: error: sample: unknown option '--bench' (options: ...)" > "$tmp/s/round1/dal-sample-nocache.log"
: > "$tmp/s/round1/dal-sample-nocache.json"
/usr/bin/python3 bench/report.py "$tmp/s" > "$tmp/out" && ok || bad "report.py: a dalc without sample --bench is no failure"
grep -Eq "^\\| KV cache \\| 256 \\| $num( \\($num-$num\\))? \\(.*\\| $range \\|.*\\| 50 MiB \\| [0-9.]+ MiB[^|]* \\| [^|]* \\|\$" "$tmp/out" &&
  ok || bad "dal sampling result: $(grep '^| KV cache' "$tmp/out")"
grep -Eq '^\| no cache \| n/a \| [0-9.]+.*\| - \|' "$tmp/out" && grep -q 'no cache) dal: n/a' "$tmp/out" && ok ||
  bad "dal sampling n/a: $(grep -e '^| no cache' -e 'n/a' "$tmp/out")"
# the fastest PyTorch setting leads, named
for r in round1 round2; do
  echo '{"image_tokens": 128, "seconds": 0.001, "tokens_per_s": 128000.0, "cache": true, "peak_rss_mib": 9.0}' \
    > "$tmp/s/$r/torch-sample-cache-PASSIVE-blas1.json"
done
/usr/bin/python3 bench/report.py "$tmp/s" > "$tmp/out"
grep -Fq '| KV cache | 256 | 128000 (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=1) | 0.002x (0.002-0.002) |' "$tmp/out" &&
  grep -Fq '| GPT tiny KV-cached sampling (batch 8) | 0.002x (0.002-0.002) | >= 2.5x | no' "$tmp/out" &&
  ok || bad "fastest setting: $(grep 'KV' "$tmp/out")"
echo 'sample: something broke' > "$tmp/s/round1/dal-sample-nocache.log"
/usr/bin/python3 bench/report.py "$tmp/s" > "$tmp/out"
[ $? -eq 1 ] && grep -q '^| no cache | failed |' "$tmp/out" && ok || bad "dal sampling failed: $(grep '^| no cache' "$tmp/out")"

# ---- the bench command through dalc: text report, and an error ------------------
if "$dalc" run models/dvae.dal --config tiny -- bench --steps 1 --warmup 0 --set tau=1 --set beta=0.5 \
   > "$tmp/out" 2> "$tmp/err"; then
  for want in 'entry loss \[train\], batch 4' 'ms/step' 'images/s' 'peak RSS'; do
    grep -q "$want" "$tmp/out" && ok || bad "bench text lacks '$want'"; done
else
  bad "dalc ... -- bench on the tiny dVAE failed"; cat "$tmp/err"
fi
"$dalc" run models/gpt.dal --config tiny -- bench --steps 1 > "$tmp/out" 2> "$tmp/err"
[ $? -eq 1 ] && grep -q "error: .*choose the inputs with --data npy" "$tmp/err" && ok ||
  bad "bench on the GPT without --data: $(cat "$tmp/err")"

# ---- run.sh's arguments -----------------------------------------------------------
sh bench/run.sh --config paper > "$tmp/out" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "must be tiny or bench" "$tmp/err" && ok || bad "run.sh --config paper: $(cat "$tmp/err")"
sh bench/run.sh --frobnicate > "$tmp/out" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "unknown argument '--frobnicate'" "$tmp/err" && ok || bad "run.sh --frobnicate: $(cat "$tmp/err")"

summary bench_smoke

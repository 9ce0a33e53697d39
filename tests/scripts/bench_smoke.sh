#!/bin/sh
# bench_smoke.sh BUILD — the benchmark harness end to end on the tiny
# configurations, one step per measurement (bench/run.sh --quick --config
# tiny into a temporary directory): every measurement must produce its JSON
# and the table its two rows, with no "failed". Nothing about speed is
# checked. The sampling table: its two rows (KV cache, no cache) with
# PyTorch's image tokens/s (the fastest of its settings, named) and dal's
# or "n/a" (a dalc without `sample --bench`); report.py on a dal sampling
# result (ratio), a failure and a missing command; torch_sample.py --check (its cached logits against
# dal_torch.GPT, the two paths' tokens equal). Then the `bench` command
# through dalc on the real models, and run.sh's bad arguments.
. tests/scripts/lib/checks.sh


# ---- the whole harness --------------------------------------------------------
if DAL_BENCH_STEPS=1 DAL_BENCH_WARMUP=0 TORCH_BENCH_STEPS=1 TORCH_BENCH_WARMUP=0 \
   sh bench/run.sh --quick --config tiny --build "$build" --out "$tmp/b" > "$tmp/table" 2> "$tmp/err"; then
  ok
else
  bad "bench/run.sh --quick --config tiny failed"; cat "$tmp/err" "$tmp/table"
fi
for f in dal-dvae.json dal-gpt.json torch-dvae-PASSIVE.json torch-dvae-default.json torch-gpt-PASSIVE.json \
         torch-gpt-default.json sgemm.json results.md torch-sample-cache-PASSIVE.json \
         torch-sample-cache-default.json torch-sample-nocache-PASSIVE.json torch-sample-nocache-default.json \
         torch-sample-cache-PASSIVE-blas1.json torch-sample-nocache-default-blas1.json; do
  [ -s "$tmp/b/$f" ] && ok || bad "run.sh left no $f"
done
# The same table on stdout and in results.md; a row per model with numbers.
cmp -s "$tmp/table" "$tmp/b/results.md" && ok || bad "stdout and results.md differ"
for model in dVAE GPT; do
  grep -Eq "^\| $model \| [0-9.]+ .*\| [0-9.]+x \|" "$tmp/b/results.md" && ok ||
    bad "no $model row with a time and a ratio"; done
grep -q failed "$tmp/b/results.md" && bad "a measurement failed: $(grep failed "$tmp/b/results.md")" || ok
grep -q 'ratio = PyTorch ms/step / dal ms/step: above 1 dal is faster' "$tmp/b/results.md" && ok ||
  bad "the table does not say which way the ratio goes"
grep -Eq 'OpenBLAS sgemm, 2 threads .*square 1024x1024x1024: [0-9.]+ GFLOP/s' "$tmp/b/results.md" && ok ||
  bad "no sgemm line"
grep -Eq 'compile time.*dvae.dal [0-9.]+ m?s.*gpt.dal [0-9.]+ m?s' "$tmp/b/results.md" && ok ||
  bad "no compile-time line"
grep -Eq 'machine: .*, [0-9]+ cores' "$tmp/b/results.md" && ok || bad "no machine line"
grep -q '"steps":1' "$tmp/b/dal-gpt.json" && grep -q '"unit":"tokens"' "$tmp/b/dal-gpt.json" &&
  grep -q '"per_step":96' "$tmp/b/dal-gpt.json" && ok || bad "dal-gpt.json: $(cat "$tmp/b/dal-gpt.json")"
grep -q '"unit": "tokens", "per_step": 96' "$tmp/b/torch-gpt-PASSIVE.json" && ok ||
  bad "torch-gpt-PASSIVE.json counts tokens differently: $(cat "$tmp/b/torch-gpt-PASSIVE.json")"

# ---- sampling rows ---------------------------------------------------------------------
grep -q '^| GPT sampling (tiny; batch 8) | dal image tokens/s |' "$tmp/b/results.md" && ok || bad "no sampling table"
for mode in 'KV cache' 'no cache'; do
  # dal's tokens/s (or n/a), then PyTorch's with its setting, then the ratio
  grep -Eq "^\| $mode \| ([0-9.]+ \([0-9.e-]+ s\)|n/a[^|]*) \| [0-9.]+ \([0-9.e-]+ s\) \(O[^|]*\| ([0-9.]+x|n/a)" \
    "$tmp/b/results.md" && ok ||
    bad "no '$mode' row with PyTorch's tokens/s and dal's (or n/a): $(grep "^| $mode" "$tmp/b/results.md")"
done
grep -q '"image_tokens": 128, .*"cache": true' "$tmp/b/torch-sample-cache-PASSIVE.json" && ok ||
  bad "torch-sample-cache-PASSIVE.json: $(cat "$tmp/b/torch-sample-cache-PASSIVE.json")"
grep -q '"image_tokens": 128, .*"cache": false' "$tmp/b/torch-sample-nocache-default.json" && ok ||
  bad "torch-sample-nocache-default.json: $(cat "$tmp/b/torch-sample-nocache-default.json")"
grep -q '"peak_rss_mib": [0-9]' "$tmp/b/torch-sample-cache-PASSIVE.json" && ok || bad "no peak RSS in torch-sample"
/usr/bin/python3 bench/torch_sample.py --config tiny --check > "$tmp/check" 2>&1 &&
  grep -q '"same_tokens": true' "$tmp/check" && ok || bad "torch_sample.py --check: $(cat "$tmp/check")"

# ---- report.py on measurements stopped at the time limit, or failed ------------------
cp -r "$tmp/b" "$tmp/c"
echo '{"error": "stopped after 120 s", "timeout_s": 120}' > "$tmp/c/dal-dvae.json"
echo 'warm-up 1/2: 5000.000 ms' > "$tmp/c/dal-dvae.log"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out" && ok || bad "report.py: a stopped run is no failure"
grep -Eq '^\| dVAE \| 5000.0 \(stopped at 120 s after 1 warm-up step\) \|.*\| [0-9.]+x \|' "$tmp/out" && ok ||
  bad "stopped after a step: $(grep dVAE "$tmp/out")"
: > "$tmp/c/dal-dvae.log"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out"
grep -Eq '^\| dVAE \| > 120000 \(stopped\) \| .*\| < [0-9.]+x \|' "$tmp/out" && ok ||
  bad "stopped before a step: $(grep dVAE "$tmp/out")"
: > "$tmp/c/dal-gpt.json"
/usr/bin/python3 bench/report.py "$tmp/c" > "$tmp/out"
[ $? -eq 1 ] && grep -q '^| GPT | failed |' "$tmp/out" && grep -q "GPT dal failed: see $tmp/c/dal-gpt.log" "$tmp/out" &&
  ok || bad "a failed measurement: $(grep GPT "$tmp/out")"

# dal's sampling: a result (its ratio), a missing `sample --bench` (n/a, no
# failure), another failure (failed, exit 1)
cp -r "$tmp/b" "$tmp/s"
echo '{"image_tokens": 128, "seconds": 0.5, "tokens_per_s": 256.0, "cache": true, "peak_rss_mib": 50.0}' \
  > "$tmp/s/dal-sample-cache.json"
echo "gpt.dal --: error: sample: unknown option '--bench' (options: ...)" > "$tmp/s/dal-sample-nocache.log"
: > "$tmp/s/dal-sample-nocache.json"
/usr/bin/python3 bench/report.py "$tmp/s" > "$tmp/out" && ok || bad "report.py: a dalc without sample --bench is no failure"
grep -Eq '^\| KV cache \| 256 \(0.5 s\) \| [0-9.]+ \(.*\| [0-9.]+x \|.*\| 50 MiB \| [0-9]+ MiB \|$' "$tmp/out" && ok ||
  bad "dal sampling result: $(grep '^| KV cache' "$tmp/out")"
grep -Eq '^\| no cache \| n/a \| [0-9.]+ \(.*\| - \|' "$tmp/out" && grep -q 'no cache) dal: n/a' "$tmp/out" && ok ||
  bad "dal sampling n/a: $(grep -e '^| no cache' -e 'n/a' "$tmp/out")"
# the fastest PyTorch setting leads, named
echo '{"image_tokens": 128, "seconds": 0.001, "tokens_per_s": 128000.0, "cache": true, "peak_rss_mib": 9.0}' \
  > "$tmp/s/torch-sample-cache-PASSIVE-blas1.json"
/usr/bin/python3 bench/report.py "$tmp/s" > "$tmp/out"
grep -Fq '| KV cache | 256 (0.5 s) | 128000 (0.001 s) (OMP_WAIT_POLICY=PASSIVE, OPENBLAS_NUM_THREADS=1) | 0.002x |' "$tmp/out" &&
  ok || bad "fastest setting: $(grep '^| KV cache' "$tmp/out")"
echo 'sample: something broke' > "$tmp/s/dal-sample-nocache.log"
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

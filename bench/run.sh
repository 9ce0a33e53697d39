#!/bin/sh
# run.sh — dal against PyTorch on MODELS.md section 3's measurements, in one
# run, one fresh process per measurement, then the tables (bench/report.py)
# on stdout and in OUT/results.md.
#
#   sh bench/run.sh [--quick] [--config C] [--out DIR] [--build DIR]   (or: make bench)
#
#   dal      dalc run models/M.dal --config C -- bench --json ...   (M = dvae, gpt)
#   PyTorch  bench/torch_bench.py --model M, OMP_WAIT_POLICY=PASSIVE and default
#   sampling the GPT's image tokens, batch 8, with and without a KV cache:
#            dalc run models/gpt.dal --config C --batch 8 -- sample --bench --json
#            [--no-cache] --seed 0, and bench/torch_sample.py [--no-cache]
#            (both policies, each also with a single OpenBLAS thread: with
#            the OpenMP default that is PyTorch's fastest KV-cached decode);
#            a dalc without `sample --bench` shows "n/a"
#   compile  `dalc run models/M.dal --config C --time-passes -- info`: the
#            phases' total, and the wall clock of the whole process
#   sgemm    build/bench/sgemm (OpenBLAS, 2 threads)
#
# --quick: fewer steps and repetitions (a smoke run); --config tiny makes it
# take seconds. --out: where the JSON, logs and results.md go (BUILD/bench).
# --build: the build directory to make and use (build; build-san = SAN=1).
# Environment (defaults in brackets; --quick lowers the step counts):
#   DAL_BENCH_STEPS [10], DAL_BENCH_WARMUP [2]   dal's timed and warm-up steps
#   DAL_BENCH_SECONDS [30]     budget of one dal measurement: it stops early
#                              once over it (`bench --max-seconds`)
#   DAL_BENCH_TIMEOUT [120]    seconds after which a dal measurement is
#                              killed and shown as "> limit" (0: never); the
#                              reference executor's dVAE step takes ~5 min
#   TORCH_BENCH_STEPS [10], TORCH_BENCH_WARMUP [2], TORCH_BENCH_SECONDS [30]
#   TORCH_SAMPLE_REPS [3], TORCH_SAMPLE_WARMUP [1]   PyTorch's timed and
#                              warm-up generations (budget TORCH_BENCH_SECONDS)
#   SAMPLE_BATCH [8]           the sampling batch
#   SAMPLE_TORCH_SETTINGS [PASSIVE default PASSIVE-blas1 default-blas1]
#                              PyTorch's settings for sampling: POLICY or
#                              POLICY-blasN (N OpenBLAS threads); the table
#                              needs PASSIVE and default
#   DAL_BENCH_DALC_FLAGS       extra dalc flags (e.g. a backend choice)
#   PYTHON [/usr/bin/python3]  the interpreter with torch and numpy
set -u
cd "$(dirname "$0")/.." || exit 1

quick=0
config=bench
out=
build=build
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    --config) [ $# -ge 2 ] || { echo "run.sh: --config needs a value" >&2; exit 2; }; config=$2; shift ;;
    --config=*) config=${1#--config=} ;;
    --out) [ $# -ge 2 ] || { echo "run.sh: --out needs a value" >&2; exit 2; }; out=$2; shift ;;
    --out=*) out=${1#--out=} ;;
    --build) [ $# -ge 2 ] || { echo "run.sh: --build needs a value" >&2; exit 2; }; build=$2; shift ;;
    --build=*) build=${1#--build=} ;;
    *) echo "run.sh: unknown argument '$1' (usage: run.sh [--quick] [--config C] [--out DIR] [--build DIR])" >&2
       exit 2 ;;
  esac
  shift
done
out=${out:-$build/bench}
case $config in
  tiny|bench) ;;
  *) echo "run.sh: --config must be tiny or bench (the trained configurations), got '$config'" >&2; exit 2 ;;
esac

PYTHON=${PYTHON:-/usr/bin/python3}
if [ $quick = 1 ]; then d_steps=2; d_warm=1; t_steps=3; t_warm=1; reps=1; sg=--quick; s_reps=1
else d_steps=10; d_warm=2; t_steps=10; t_warm=2; reps=3; sg=; s_reps=3; fi
d_steps=${DAL_BENCH_STEPS:-$d_steps}
d_warm=${DAL_BENCH_WARMUP:-$d_warm}
d_secs=${DAL_BENCH_SECONDS:-30}
d_limit=${DAL_BENCH_TIMEOUT:-120}
t_steps=${TORCH_BENCH_STEPS:-$t_steps}
t_warm=${TORCH_BENCH_WARMUP:-$t_warm}
t_secs=${TORCH_BENCH_SECONDS:-30}
s_reps=${TORCH_SAMPLE_REPS:-$s_reps}
s_warm=${TORCH_SAMPLE_WARMUP:-1}
s_batch=${SAMPLE_BATCH:-8}
s_settings=${SAMPLE_TORCH_SETTINGS:-PASSIVE default PASSIVE-blas1 default-blas1}
dalc_flags=${DAL_BENCH_DALC_FLAGS:-}

# ---- build --------------------------------------------------------------------
san=SAN=0
[ "$build" = build-san ] && san=SAN=1
case $build in
  build|build-san) ;;
  *) echo "run.sh: --build must be build or build-san (the Makefile's), got '$build'" >&2; exit 2 ;;
esac
${MAKE:-make} --no-print-directory $san "$build/dalc" "$build/bench/sgemm" >&2 || {
  echo "run.sh: the build failed" >&2
  exit 1
}
mkdir -p "$out" || exit 1
# only what a run writes (--out may name a directory with other files)
for f in sgemm.json sgemm.log tokens.log text.npy image.npy machine.txt results.md 'dal-*' 'torch-*' 'compile-*'; do
  # shellcheck disable=SC2086
  rm -f "$out"/$f
done

now_ms() { date +%s%3N; }
say() { printf '%s\n' "$*" >&2; }

{
  echo "config=$config"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "cores=$(nproc)"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo +changes)"
  echo "dalc_flags=$dalc_flags"
} > "$out/machine.txt"

# ---- OpenBLAS roof ------------------------------------------------------------
say "== sgemm"
"$build/bench/sgemm" $sg > "$out/sgemm.json" 2> "$out/sgemm.log" || say "sgemm failed (see $out/sgemm.log)"

# ---- GPT token inputs, drawn like dal_torch's --------------------------------------
"$PYTHON" - "$config" "$out" > "$out/tokens.log" 2>&1 <<'EOF' || say "could not write the GPT's token inputs (see $out/tokens.log)"
import os, sys
sys.path.insert(0, os.path.join("tests", "torch_ref"))
import numpy as np
import torch
import dal_torch as dt
cfg, out = dt.GPT_CONFIGS[sys.argv[1]], sys.argv[2]
g = torch.Generator().manual_seed(0)
rows = 4 * cfg["batch"]
np.save(os.path.join(out, "text.npy"), dt.random_text(cfg, rows, g).numpy())
np.save(os.path.join(out, "image.npy"), dt.random_image_tokens(cfg, rows, g).numpy())
EOF

# ---- measurements -------------------------------------------------------------
# dalc's own phase times when it has them (their total is the compile time
# proper; the wall clock adds process start and the state's initialisation).
time_passes=
"$build/dalc" --help 2>/dev/null | grep -q -- --time-passes && time_passes=--time-passes
for m in dvae gpt; do
  say "== $m: dal compile time ($reps run(s))"
  : > "$out/compile-$m.txt"
  i=0
  while [ $i -lt $reps ]; do
    t0=$(now_ms)
    # shellcheck disable=SC2086
    if "$build/dalc" run "models/$m.dal" --config "$config" $dalc_flags $time_passes -- info > "$out/compile-$m.log" 2>&1
    then
      wall=$(( $(now_ms) - t0 ))
      passes=$(sed -n 's/^ *\([0-9.][0-9.]*\) ms .* total$/\1/p' "$out/compile-$m.log")
      echo "$wall ${passes:--}" >> "$out/compile-$m.txt"
    else
      say "dalc failed on models/$m.dal (see $out/compile-$m.log)"
      : > "$out/compile-$m.txt"
      break
    fi
    i=$((i + 1))
  done

  if [ $m = dvae ]; then inputs="--set tau=1 --set beta=1"
  else inputs="--data npy:text=$out/text.npy,image=$out/image.npy"; fi
  say "== $m: dal ($d_warm warm-up + $d_steps steps, budget ${d_secs}s)"
  limit=
  [ "$d_limit" != 0 ] && limit="timeout -k 5 $d_limit"
  # shellcheck disable=SC2086
  $limit "$build/dalc" run "models/$m.dal" --config "$config" $dalc_flags -- bench --json --warmup "$d_warm" \
    --steps "$d_steps" --max-seconds "$d_secs" $inputs > "$out/dal-$m.json" 2> "$out/dal-$m.log"
  rc=$?
  if [ -n "$limit" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
    # one step took longer than the limit: the table says "> limit"
    echo "{\"error\": \"stopped after ${d_limit} s\", \"timeout_s\": $d_limit}" > "$out/dal-$m.json"
    say "dal on $m: stopped after ${d_limit}s (DAL_BENCH_TIMEOUT)"
  elif [ $rc -ne 0 ]; then
    say "dal failed on $m (see $out/dal-$m.log)"
  fi

  for policy in PASSIVE default; do
    say "== $m: PyTorch, OMP_WAIT_POLICY $policy ($t_warm warm-up + $t_steps steps, budget ${t_secs}s)"
    "$PYTHON" bench/torch_bench.py --model $m --config "$config" --wait-policy $policy --warmup "$t_warm" \
      --steps "$t_steps" --max-seconds "$t_secs" --tau 1 --beta 1 > "$out/torch-$m-$policy.json" \
      2> "$out/torch-$m-$policy.log" || say "PyTorch failed on $m (see $out/torch-$m-$policy.log)"
  done
done

# ---- GPT sampling: image tokens/s with and without a KV cache --------------------
for cache in cache nocache; do
  flag=
  [ $cache = nocache ] && flag=--no-cache
  say "== GPT sampling ($cache): dal, batch $s_batch"
  limit=
  [ "$d_limit" != 0 ] && limit="timeout -k 5 $d_limit"
  # shellcheck disable=SC2086
  $limit "$build/dalc" run models/gpt.dal --config "$config" --batch "$s_batch" $dalc_flags -- sample --bench --json \
    $flag --seed 0 > "$out/dal-sample-$cache.json" 2> "$out/dal-sample-$cache.log"
  rc=$?
  if [ -n "$limit" ] && { [ $rc -eq 124 ] || [ $rc -eq 137 ]; }; then
    echo "{\"error\": \"stopped after ${d_limit} s\", \"timeout_s\": $d_limit}" > "$out/dal-sample-$cache.json"
    say "dal sampling ($cache): stopped after ${d_limit}s (DAL_BENCH_TIMEOUT)"
  elif [ $rc -ne 0 ]; then
    say "dal sampling ($cache) failed (see $out/dal-sample-$cache.log)"
  fi
  for setting in $s_settings; do
    policy=${setting%%-blas*}
    blas=0
    case $setting in *-blas*) blas=${setting##*-blas} ;; esac
    say "== GPT sampling ($cache): PyTorch, $setting ($s_warm warm-up + $s_reps generations, budget ${t_secs}s)"
    # shellcheck disable=SC2086
    "$PYTHON" bench/torch_sample.py --config "$config" --batch "$s_batch" --wait-policy "$policy" --blas-threads "$blas" \
      --warmup "$s_warm" --reps "$s_reps" --max-seconds "$t_secs" $flag > "$out/torch-sample-$cache-$setting.json" \
      2> "$out/torch-sample-$cache-$setting.log" || say "PyTorch sampling ($cache) failed (see $out/torch-sample-$cache-$setting.log)"
  done
done

say ""
"$PYTHON" bench/report.py "$out"

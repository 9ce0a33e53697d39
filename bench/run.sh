#!/bin/sh
# run.sh — dal against PyTorch on MODELS.md section 3's measurements and
# issue 11's target table, in one run: every measurement a fresh process,
# dal and PyTorch interleaved in rounds (round 1: dal, PyTorch, dal,
# PyTorch... over every figure; then round 2, ...), each wrapped in
# bench/measure.py to record the other processes' load meanwhile; then the
# tables (bench/report.py) on stdout and in OUT/results.md.
#
#   sh bench/run.sh [--quick] [--config C] [--out DIR] [--build DIR]   (or: make bench)
#
# Per round (files OUT/roundR/NAME.json, .log, .load):
#   dal      dalc run models/M.dal --config C -- bench --json ...   (M = dvae, gpt)
#   PyTorch  bench/torch_bench.py --model M, OMP_WAIT_POLICY=PASSIVE and default
#   sampling the GPT's image tokens, batch 8, with and without a KV cache:
#            dalc run models/gpt.dal --config C --batch 8 -- sample --bench --json
#            [--no-cache] --seed 0, and bench/torch_sample.py [--no-cache]
#            (both policies, each also with a single OpenBLAS thread: with
#            the OpenMP default that is PyTorch's fastest KV-cached decode);
#            a dalc without `sample --bench` shows "n/a"
#   forward  the dVAE's `tokens` entry at the forward config (bench: paper,
#            batch 1, 256x256 -> 32x32; tiny: tiny): dalc ... -- bench --fn
#            tokens, and bench/torch_forward.py (both policies)
# Once:
#   compile  `dalc run models/M.dal --config C --time-passes -- info` for the
#            dVAE and GPT at C and the dVAE at the forward config: the
#            phases' total and the process's wall clock; the first run from
#            an empty compile cache (XDG_CACHE_HOME=OUT/cache), the others
#            from what it left
#   tune     `dalc tune-conv models/dvae.dal --config C`, and `--fn tokens` at
#            the forward config, after the compile times: every conv shape
#            timed under each algorithm into the conv table of the bench's
#            cache (OUT/cache/dal/conv-table.tsv), which the rounds'
#            -fconv=auto then reads (DAL_BENCH_TUNE=0: the fixed rules)
#   roof     build/bench/sgemm (OpenBLAS, 2 threads), build/bench/fma_peak
#            (the cores' FMA peak, measured and nominal), bench/flops.py
#            (each step's FLOPs from the configs)
#
# --quick: 2 rounds, fewer steps (a smoke run); --config tiny makes it
# take a minute or two. --out: where the JSON, logs and results.md go
# (BUILD/bench). --build: the build directory to make and use (build;
# build-san = SAN=1).
# Environment (defaults in brackets; --quick lowers them):
#   DAL_BENCH_ROUNDS [3]       interleaved rounds (at least 1)
#   DAL_BENCH_STEPS [5], DAL_BENCH_WARMUP [1]   dal's timed and warm-up
#                              training steps per round
#   DAL_BENCH_SECONDS [20]     budget of one dal measurement: it stops early
#                              once over it (`bench --max-seconds`)
#   DAL_BENCH_TIMEOUT [180]    seconds after which a dal measurement is
#                              stopped and shown as "> limit" (0: never)
#   TORCH_BENCH_STEPS [5], TORCH_BENCH_WARMUP [1], TORCH_BENCH_SECONDS [20]
#   TORCH_SAMPLE_REPS [2], TORCH_SAMPLE_WARMUP [1]   timed generations
#                              per round (both sides: dal's `sample --bench
#                              --reps`) and PyTorch's warm-up ones
#   SAMPLE_NOCACHE_ROUNDS [1]  sampling without a KV cache (no target; slow)
#                              is measured in the first this-many rounds only
#   FORWARD_STEPS [2], FORWARD_WARMUP [1]   the dVAE forward's, both sides
#   DAL_BENCH_FORWARD_CONFIG   the forward's config [paper; tiny for --config tiny]
#   COMPILE_RUNS [3]           compile-time runs per model (cold + cached)
#   SAMPLE_BATCH [8]           the sampling batch
#   SAMPLE_TORCH_SETTINGS [PASSIVE default PASSIVE-blas1 default-blas1]
#                              PyTorch's settings for sampling: POLICY or
#                              POLICY-blasN (N OpenBLAS threads); the table
#                              needs PASSIVE and default
#   DAL_BENCH_LOADED [0.25]    report.py flags a row measured while the other
#                              processes kept more than this many cores busy
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
if [ $quick = 1 ]; then rounds=2; d_steps=2; d_warm=1; t_steps=2; t_warm=1; sg=--quick; s_reps=1; f_steps=1
  c_reps=2
else rounds=3; d_steps=5; d_warm=1; t_steps=5; t_warm=1; sg=; s_reps=2; f_steps=2; c_reps=3; fi
rounds=${DAL_BENCH_ROUNDS:-$rounds}
d_steps=${DAL_BENCH_STEPS:-$d_steps}
d_warm=${DAL_BENCH_WARMUP:-$d_warm}
d_secs=${DAL_BENCH_SECONDS:-20}
d_limit=${DAL_BENCH_TIMEOUT:-180}
t_steps=${TORCH_BENCH_STEPS:-$t_steps}
t_warm=${TORCH_BENCH_WARMUP:-$t_warm}
t_secs=${TORCH_BENCH_SECONDS:-20}
s_reps=${TORCH_SAMPLE_REPS:-$s_reps}
s_warm=${TORCH_SAMPLE_WARMUP:-1}
nocache_rounds=${SAMPLE_NOCACHE_ROUNDS:-1}
f_steps=${FORWARD_STEPS:-$f_steps}
f_warm=${FORWARD_WARMUP:-1}
c_reps=${COMPILE_RUNS:-$c_reps}
s_batch=${SAMPLE_BATCH:-8}
s_settings=${SAMPLE_TORCH_SETTINGS:-PASSIVE default PASSIVE-blas1 default-blas1}
dalc_flags=${DAL_BENCH_DALC_FLAGS:-}
if [ "$config" = tiny ]; then fwd_config=${DAL_BENCH_FORWARD_CONFIG:-tiny}
else fwd_config=${DAL_BENCH_FORWARD_CONFIG:-paper}; fi
case $rounds in
  ''|*[!0-9]*|0) echo "run.sh: DAL_BENCH_ROUNDS must be a count >= 1, got '$rounds'" >&2; exit 2 ;;
esac
case $nocache_rounds in
  ''|*[!0-9]*) echo "run.sh: SAMPLE_NOCACHE_ROUNDS must be a count, got '$nocache_rounds'" >&2; exit 2 ;;
esac

# ---- build --------------------------------------------------------------------
san=SAN=0
[ "$build" = build-san ] && san=SAN=1
case $build in
  build|build-san) ;;
  *) echo "run.sh: --build must be build or build-san (the Makefile's), got '$build'" >&2; exit 2 ;;
esac
${MAKE:-make} --no-print-directory $san "$build/dalc" "$build/bench/sgemm" "$build/bench/fma_peak" >&2 || {
  echo "run.sh: the build failed" >&2
  exit 1
}
mkdir -p "$out" || exit 1
# only what a run writes (--out may name a directory with other files)
for f in sgemm.json sgemm.log fma.json fma.log flops.json flops.log tokens.log tune.log text.npy image.npy machine.txt \
         results.md 'dal-*' 'torch-*' 'compile-*' 'round*'; do
  # shellcheck disable=SC2086
  rm -rf "${out:?}"/$f
done

now_ms() { date +%s%3N; }
say() { printf '%s\n' "$*" >&2; }

# OpenBLAS falls back to its SSE3 "Prescott" kernels on a CPU it does not
# know (runtime/sched/blas_core.h); dal then re-executes itself with
# OPENBLAS_CORETYPE set to the best core the CPU supports. PyTorch's
# matmuls also go to OpenBLAS here, so both sides and the sgemm roof run
# with that setting (the one OpenBLAS itself picks on a CPU it knows).
if [ -z "${OPENBLAS_CORETYPE:-}" ]; then
  cpu_flags=" $(grep -m 1 '^flags' /proc/cpuinfo | cut -d: -f2) "
  has() { case "$cpu_flags" in *" $1 "*) return 0 ;; esac; return 1; }
  if has avx512f && has avx512bw && has avx512dq && has avx512vl; then
    export OPENBLAS_CORETYPE=SkylakeX
  elif has avx2 && has fma; then
    export OPENBLAS_CORETYPE=Haswell
  fi
fi

{
  echo "config=$config"
  echo "forward_config=$fwd_config"
  echo "rounds=$rounds"
  echo "loaded=${DAL_BENCH_LOADED:-0.25}"
  echo "cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
  echo "cores=$(nproc)"
  echo "load=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo +changes)"
  echo "dalc_flags=$dalc_flags"
  echo "openblas_coretype=${OPENBLAS_CORETYPE:-}"
} > "$out/machine.txt"

# ---- the roof: OpenBLAS sgemm, the FMA peak, the steps' FLOPs ---------------------------------------------------------
say "== sgemm"
"$build/bench/sgemm" $sg > "$out/sgemm.json" 2> "$out/sgemm.log" || say "sgemm failed (see $out/sgemm.log)"
say "== FMA peak"
"$build/bench/fma_peak" $sg > "$out/fma.json" 2> "$out/fma.log" || say "fma_peak failed (see $out/fma.log)"
"$PYTHON" bench/flops.py "$config" "$fwd_config" > "$out/flops.json" 2> "$out/flops.log" ||
  say "flops.py failed (see $out/flops.log)"

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

# ---- compile time ---------------------------------------------------------------
# dalc's own phase times when it has them (their total is the compile time
# proper; the wall clock adds process start and the state's initialisation).
# The first run of each model starts from an empty compile cache ("cold"),
# the later ones find what it left ("cached"; the same as cold for a dalc
# without a cache).
time_passes=
"$build/dalc" --help 2>/dev/null | grep -q -- --time-passes && time_passes=--time-passes
cache_dir=$out/cache
rm -rf "$cache_dir"
for mc in dvae:$config gpt:$config dvae:$fwd_config; do
  m=${mc%%:*}; c=${mc#*:}
  [ -f "$out/compile-$m-$c.txt" ] && continue
  say "== $m ($c): dal compile time ($c_reps run(s))"
  : > "$out/compile-$m-$c.txt"
  i=0
  while [ $i -lt "$c_reps" ]; do
    t0=$(now_ms)
    # shellcheck disable=SC2086
    if XDG_CACHE_HOME=$cache_dir "$build/dalc" run "models/$m.dal" --config "$c" $dalc_flags $time_passes -- info \
       > "$out/compile-$m-$c.log" 2>&1
    then
      wall=$(( $(now_ms) - t0 ))
      passes=$(sed -n 's/^ *\([0-9.][0-9.]*\) ms .* total$/\1/p' "$out/compile-$m-$c.log")
      echo "$wall ${passes:--}" >> "$out/compile-$m-$c.txt"
    else
      say "dalc failed on models/$m.dal --config $c (see $out/compile-$m-$c.log)"
      : > "$out/compile-$m-$c.txt"
      break
    fi
    i=$((i + 1))
  done
done

# ---- the conv table, measured on this machine for the rounds ----------------------
if [ "${DAL_BENCH_TUNE:-1}" != 0 ]; then
  say "== conv table: dalc tune-conv (dvae $config; dvae $fwd_config, tokens)"
  for mc in "$config:" "$fwd_config:tokens"; do
    c=${mc%%:*} fn=${mc#*:}
    # shellcheck disable=SC2086
    XDG_CACHE_HOME=$cache_dir "$build/dalc" tune-conv models/dvae.dal --config "$c" ${fn:+--fn $fn} $dalc_flags \
      >> "$out/tune.log" 2>&1 || say "tune-conv failed on dvae $c (see $out/tune.log): the rounds use the rules"
  done
  echo "conv_table=tuned" >> "$out/machine.txt"
else
  echo "conv_table=rules" >> "$out/machine.txt"
fi

# ---- measurements, in interleaved rounds -----------------------------------------
# run_one NAME LIMIT COMMAND...: one fresh process, its JSON in $rd/NAME.json,
# its stderr in $rd/NAME.log, the machine's load meanwhile in $rd/NAME.load
# (bench/measure.py); LIMIT seconds (0: none), after which it is stopped and
# its JSON says so (the table shows "> limit" or the steps it finished).
run_one() {
  name=$1 lim=$2
  shift 2
  XDG_CACHE_HOME=$cache_dir "$PYTHON" bench/measure.py --load "$rd/$name.load" --timeout "$lim" -- "$@" \
    > "$rd/$name.json" 2> "$rd/$name.log"
  rc=$?
  if [ "$lim" != 0 ] && [ $rc -eq 124 ]; then
    echo "{\"error\": \"stopped after $lim s\", \"timeout_s\": $lim}" > "$rd/$name.json"
    say "$name: stopped after ${lim}s (DAL_BENCH_TIMEOUT)"
  elif [ $rc -ne 0 ]; then
    say "$name failed (see $rd/$name.log)"
  fi
}

round=1
while [ $round -le "$rounds" ]; do
  rd=$out/round$round
  mkdir -p "$rd" || exit 1
  for m in dvae gpt; do
    if [ $m = dvae ]; then inputs="--set tau=1 --set beta=1"
    else inputs="--data npy:text=$out/text.npy,image=$out/image.npy"; fi
    say "== round $round/$rounds, $m: dal ($d_warm warm-up + $d_steps steps, budget ${d_secs}s)"
    # shellcheck disable=SC2086
    run_one "dal-$m" "$d_limit" "$build/dalc" run "models/$m.dal" --config "$config" $dalc_flags -- bench --json \
      --warmup "$d_warm" --steps "$d_steps" --max-seconds "$d_secs" $inputs
    for policy in PASSIVE default; do
      say "== round $round/$rounds, $m: PyTorch, OMP_WAIT_POLICY $policy ($t_warm warm-up + $t_steps steps)"
      run_one "torch-$m-$policy" 0 "$PYTHON" bench/torch_bench.py --model $m --config "$config" \
        --wait-policy $policy --warmup "$t_warm" --steps "$t_steps" --max-seconds "$t_secs" --tau 1 --beta 1
    done
  done

  # GPT sampling: image tokens/s with and without a KV cache
  modes=cache
  [ "$round" -le "$nocache_rounds" ] && modes="cache nocache"
  for cache in $modes; do
    flag=
    [ $cache = nocache ] && flag=--no-cache
    say "== round $round/$rounds, GPT sampling ($cache): dal, batch $s_batch"
    # shellcheck disable=SC2086
    run_one "dal-sample-$cache" "$d_limit" "$build/dalc" run models/gpt.dal --config "$config" --batch "$s_batch" \
      $dalc_flags -- sample --bench --json --reps "$s_reps" $flag --seed 0
    for setting in $s_settings; do
      policy=${setting%%-blas*}
      blas=0
      case $setting in *-blas*) blas=${setting##*-blas} ;; esac
      say "== round $round/$rounds, GPT sampling ($cache): PyTorch, $setting ($s_warm warm-up + $s_reps generations)"
      # shellcheck disable=SC2086
      run_one "torch-sample-$cache-$setting" 0 "$PYTHON" bench/torch_sample.py --config "$config" \
        --batch "$s_batch" --wait-policy "$policy" --blas-threads "$blas" --warmup "$s_warm" --reps "$s_reps" \
        --max-seconds "$t_secs" $flag
    done
  done

  # the dVAE forward (the `tokens` entry: images -> token grid) at the
  # forward config's batch (paper: one 256x256 image -> 32x32 tokens)
  say "== round $round/$rounds, dVAE forward ($fwd_config): dal ($f_warm warm-up + $f_steps forwards)"
  # shellcheck disable=SC2086
  run_one dal-forward "$d_limit" "$build/dalc" run models/dvae.dal --config "$fwd_config" $dalc_flags -- bench --json \
    --fn tokens --warmup "$f_warm" --steps "$f_steps" --max-seconds "$d_secs"
  for policy in PASSIVE default; do
    say "== round $round/$rounds, dVAE forward ($fwd_config): PyTorch, OMP_WAIT_POLICY $policy"
    run_one "torch-forward-$policy" 0 "$PYTHON" bench/torch_forward.py --config "$fwd_config" --fn tokens \
      --wait-policy $policy --warmup "$f_warm" --steps "$f_steps" --max-seconds "$t_secs"
  done
  round=$((round + 1))
done

say ""
"$PYTHON" bench/report.py "$out"

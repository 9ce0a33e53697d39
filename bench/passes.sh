#!/bin/sh
# passes.sh — a model's step timed under two pass pipelines in one run: the
# fusion-experiment bench for a pass or a plugin (docs/writing-a-pass.md).
#
#   sh bench/passes.sh --a PASSES --b PASSES [--plugin FILE.so]... [--model FILE.dal]
#                      [--config C] [--runs N] [--steps N] [--warmup N] [--build DIR]
#                      [--a-flags FLAGS] [--b-flags FLAGS] [--b-build DIR] [-- BENCH ARGS...]
#
# Each run is one fresh process per pipeline, A then B, alternating so that
# drift in the machine's speed hits both alike:
#   dalc run MODEL --config C [--plugin F]... --passes=A|B [FLAGS] -- bench --json --steps N --warmup W ARGS
# with B's dalc from --b-build if given (a fusion rule changed in the
# source: the baseline built in one tree, the change in another), and
# --a-flags / --b-flags added to one side's dalc (e.g. -fno-fuse). (`bench` times the model's training step unless ARGS name an entry with
# --fn; `--fn` inference entries are timed as calls). Every --plugin is
# loaded for both pipelines. The table shows each pipeline's median over
# the runs of the per-run median ms/step, every run's median, and the
# ratio A/B (above 1: B is faster). The last line, "ratio A/B: X", is for
# scripts. Timings only: nothing here decides pass or fail.
#
# Defaults: --model models/dvae.dal, --config tiny, --runs 5, --steps 10,
# --warmup 2, --build build, bench ARGS "--set tau=1 --set beta=1" (the
# dVAE's loss scalars); another model needs its own ARGS, e.g. the GPT's
# "--data npy:text=T.npy,image=I.npy".
set -u
cd "$(dirname "$0")/.." || exit 1

usage="usage: passes.sh --a PASSES --b PASSES [--plugin FILE.so]... [--model FILE.dal] [--config C] [--runs N] [--steps N] [--warmup N] [--build DIR] [--a-flags FLAGS] [--b-flags FLAGS] [--b-build DIR] [-- BENCH ARGS...]"
fail() { echo "passes.sh: $*" >&2; exit 2; }
a= b= a_set=0 b_set=0 plugins= model=models/dvae.dal config=tiny runs=5 steps=10 warmup=2 build=build
a_flags= b_flags= b_build=
bench_args="--set tau=1 --set beta=1"
while [ $# -gt 0 ]; do
  case $1 in
    --) shift; bench_args="$*"; break ;;
    --*=*) opt=${1%%=*}; val=${1#*=} ;;
    --*) opt=$1; [ $# -ge 2 ] || fail "$1 needs a value ($usage)"; val=$2; shift ;;
    *) fail "unexpected argument '$1' ($usage)" ;;
  esac
  case $opt in
    --a) a=$val; a_set=1 ;;
    --b) b=$val; b_set=1 ;;
    --plugin) [ -r "$val" ] || fail "cannot read plugin '$val'"; plugins="$plugins --plugin=$val" ;;
    --model) model=$val ;;
    --config) config=$val ;;
    --runs) runs=$val ;;
    --steps) steps=$val ;;
    --warmup) warmup=$val ;;
    --build) build=$val ;;
    --a-flags) a_flags=$val ;;
    --b-flags) b_flags=$val ;;
    --b-build) b_build=$val ;;
    *) fail "unknown option '$opt' ($usage)" ;;
  esac
  shift
done
[ $a_set = 1 ] && [ $b_set = 1 ] || fail "name both pipelines, --a and --b (an empty one runs no passes) ($usage)"
for n in "$runs" "$steps"; do
  case $n in ''|*[!0-9]*|0) fail "--runs and --steps must be positive integers, got '$n'" ;; esac
done
case $warmup in ''|*[!0-9]*) fail "--warmup must be a non-negative integer, got '$warmup'" ;; esac
dalc_a="$build/dalc"
dalc_b="${b_build:-$build}/dalc"
for d in "$dalc_a" "$dalc_b"; do
  [ -x "$d" ] || fail "no $d (run make first, or name the build with --build / --b-build)"
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure A|B RUN: one process, its median ms/step appended to $tmp/A|B
measure() {
  if [ "$1" = A ]; then passes=$a dalc=$dalc_a flags=$a_flags; else passes=$b dalc=$dalc_b flags=$b_flags; fi
  # shellcheck disable=SC2086
  if ! "$dalc" run "$model" --config "$config" $plugins --passes="$passes" $flags -- bench --json --steps "$steps" \
       --warmup "$warmup" $bench_args > "$tmp/out" 2> "$tmp/err"; then
    echo "passes.sh: pipeline $1 ($passes) failed in run $2:" >&2
    cat "$tmp/err" >&2
    exit 1
  fi
  ms=$(sed -n 's/.*"ms_median":\([0-9.e+-]*\).*/\1/p' "$tmp/out")
  [ -n "$ms" ] || { echo "passes.sh: no ms_median in bench's output: $(cat "$tmp/out")" >&2; exit 1; }
  echo "$ms" >> "$tmp/$1"
  sed -n 's/.*"entry":"\([^"]*\)","train":\([a-z]*\).*/\1 \2/p' "$tmp/out" > "$tmp/entry"
}

i=1
while [ "$i" -le "$runs" ]; do
  measure A "$i"
  measure B "$i"
  i=$((i + 1))
done

median() { sort -g "$tmp/$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
runs_of() { awk '{ printf "%s%.2f", (NR > 1 ? " " : ""), $1 }' "$tmp/$1"; }
ma=$(median A)
mb=$(median B)
read -r entry train < "$tmp/entry"
kind="inference call"
[ "$train" = true ] && kind="training step"
echo "passes bench: $model --config $config${plugins:+ (}${plugins# }${plugins:+)}, entry $entry ($kind)"
echo "  $runs runs x $steps steps (+ $warmup warm-up) per pipeline, alternating A and B"
side() { # NAME DALC PASSES FLAGS: "--passes=P FLAGS", with the dalc when the two differ
  label="--passes=$3${4:+ $4}"
  [ "$dalc_a" != "$dalc_b" ] && label="$2 $label"
  printf '%s' "$label"
}
printf '  A  %-52s median %8.3f ms/step  (runs: %s)\n' "$(side A "$dalc_a" "$a" "$a_flags")" "$ma" "$(runs_of A)"
printf '  B  %-52s median %8.3f ms/step  (runs: %s)\n' "$(side B "$dalc_b" "$b" "$b_flags")" "$mb" "$(runs_of B)"
awk -v a="$ma" -v b="$mb" 'BEGIN { printf "ratio A/B: %.3f  (above 1: B is faster)\n", a / b }'

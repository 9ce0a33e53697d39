#!/bin/sh
# fuse_rules.sh — what each major fusion rule buys on the bench training
# steps: the README table of the fusion experiments (issue 11), in one
# command.
#
#   sh bench/fuse_rules.sh [--config C] [--steps N] [--warmup W] [--models "dvae gpt"]
#                          [--build DIR] [--out FILE.md] [--extra FLAGS]... [--max-seconds T]
#
# For each model, one process times its training step under every variant
# with the steps interleaved (`bench --compare`, runtime/exe/exe_bench_compare.c):
#   dalc run models/M.dal --config C -- bench --json --steps N --warmup W INPUTS --compare VARIANTS
# The variants: the default, all fusion off (-fno-fuse), then each major
# switch off alone (--fuse-rule=-NAME: epilogue, in-place, remat, elementwise,
# reduce-prologue, reduce-epilogue, two-pass, siblings, recompute, and for
# the GPT attention; `dalc
# fuse-rules` says what each does), then the convolution algorithms
# (-fconv, codegen/conv_choice.c): Winograd off (-fconv=direct: direct
# where it applies, im2col elsewhere) and F(4x4,3x3) everywhere
# (-fconv=winograd4; bench --compare takes at most 16 variants), and
# the Winograd rules: wino-epilogue and wino-prologue off, the default-off
# wino-share-u on -- for the dVAE only, the GPT has no convs --,
# then each --extra FLAGS. The table: ms/step median (min-max over the
# timed rounds), the ratio to the default (above 1: slower without the
# rule), fused kernels, the arena and the bytes the plan moves per step.
# Inputs: the dVAE's batches from the shapes generator (--set tau=1 --set
# beta=1), the GPT's random tokens below 16 (written here as .npy files:
# the tokens' values do not change the work).
#
# Defaults: --config bench, --steps 5, --warmup 1, --models "dvae gpt",
# --build build, the table on stdout (and in --out if given). Memory: the
# variants live side by side in one process (the dVAE bench config's ten
# fusion variants peaked at about 6.5 GB; the three -fconv ones come on top). Timings only:
# on a shared machine they are noisy (the min-max shows how much); the
# kernel, arena and bytes columns are exact.
set -u
cd "$(dirname "$0")/.." || exit 1

usage="usage: fuse_rules.sh [--config C] [--steps N] [--warmup W] [--models \"dvae gpt\"] [--build DIR] [--out FILE.md] [--extra FLAGS]... [--max-seconds T]"
fail() { echo "fuse_rules.sh: $*" >&2; exit 2; }
config=bench steps=5 warmup=1 models="dvae gpt" build=build out= secs=0
extra_file=$(mktemp) || exit 2
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp" "$extra_file"' EXIT
while [ $# -gt 0 ]; do
  case $1 in
    --*=*) opt=${1%%=*}; val=${1#*=} ;;
    --*) opt=$1; [ $# -ge 2 ] || fail "$1 needs a value ($usage)"; val=$2; shift ;;
    *) fail "unexpected argument '$1' ($usage)" ;;
  esac
  case $opt in
    --config) config=$val ;;
    --steps) steps=$val ;;
    --warmup) warmup=$val ;;
    --models) models=$val ;;
    --build) build=$val ;;
    --out) out=$val ;;
    --max-seconds) secs=$val ;;
    --extra) printf '%s\n' "$val" >> "$extra_file" ;;
    *) fail "unknown option '$opt' ($usage)" ;;
  esac
  shift
done
dalc=$build/dalc
[ -x "$dalc" ] || fail "$dalc not found (make first, or --build DIR)"

# The GPT's inputs: random tokens below 16 for the shapes of its training entry.
gpt_inputs() {
  "$dalc" info models/gpt.dal --config "$config" > "$tmp/gpt-info.txt" || return 1
  python3 - "$tmp/gpt-info.txt" "$tmp" <<'EOF'
import random, re, struct, sys
info, out = open(sys.argv[1]).read(), sys.argv[2]
m = re.search(r"@train \w+\(text: i32\[(\d+), (\d+)\], image: i32\[(\d+), (\d+)\]\)", info)
if not m:
    sys.exit("no training entry with text and image tokens in dalc info")
b, lt, _, li = map(int, m.groups())
rng = random.Random(0)
def save(path, rows, cols):
    header = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, %d), }" % (rows, cols)
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode())
        f.write(struct.pack("<%di" % (rows * cols), *(rng.randrange(16) for _ in range(rows * cols))))
save(out + "/text.npy", 4 * b, lt)
save(out + "/image.npy", 4 * b, li)
EOF
}

{
  echo "Fusion experiments: training step of each model, config $config, $warmup warm-up + $steps timed rounds,"
  echo "variants interleaved in one process ($(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))."
} > "$tmp/table.md"
status=0
for m in $models; do
  case $m in
    dvae) inputs="--set tau=1 --set beta=1" ;;
    gpt) gpt_inputs || { echo "fuse_rules.sh: could not write the GPT's inputs" >&2; status=1; continue; }
         inputs="--data npy:text=$tmp/text.npy,image=$tmp/image.npy" ;;
    *) inputs= ;;
  esac
  set -- "" "-fno-fuse"
  for r in epilogue in-place remat elementwise reduce-prologue reduce-epilogue two-pass siblings recompute; do
    set -- "$@" "--fuse-rule=-$r"
  done
  [ "$m" = gpt ] && set -- "$@" "--fuse-rule=-attention"
  [ "$m" = dvae ] && set -- "$@" "--fuse-rule=-wino-epilogue" "--fuse-rule=-wino-prologue" \
    "--fuse-rule=+wino-share-u" "-fconv=direct" "-fconv=winograd4"
  while IFS= read -r x; do set -- "$@" "$x"; done < "$extra_file"
  echo "== $m ($config): $# variants" >&2
  # shellcheck disable=SC2086
  if ! "$dalc" run "models/$m.dal" --config "$config" -- bench --json --steps "$steps" --warmup "$warmup" \
      --max-seconds "$secs" $inputs --compare "$@" > "$tmp/$m.json" 2> "$tmp/$m.log"; then
    echo "fuse_rules.sh: models/$m.dal failed:" >&2
    tail -5 "$tmp/$m.log" >&2
    status=1
    continue
  fi
  python3 - "$tmp/$m.json" >> "$tmp/table.md" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
v = r["variants"]
base = v[0]
def what(flags):
    if not flags: return "default (every rule on)"
    if flags == "-fno-fuse": return "all fusion off (-fno-fuse)"
    if flags.startswith("--fuse-rule=-"): return flags[len("--fuse-rule=-"):] + " off"
    if flags.startswith("--fuse-rule=+"): return flags[len("--fuse-rule=+"):] + " on (off by default)"
    conv = {"-fconv=direct": "Winograd off (-fconv=direct)", "-fconv=winograd": "direct convs off (-fconv=winograd)",
            "-fconv=im2col": "Winograd and direct off (-fconv=im2col)",
            "-fconv=winograd4": "F(4x4,3x3) in the training step too (-fconv=winograd4)"}
    return conv.get(flags, flags)
mib = lambda b: b / 1048576.0
print()
print("%s %s, entry %s, batch %d (%d timed rounds):" % (r["model"], r["config"], r["entry"], r["batch"], r["rounds"]))
print()
print("| variant | ms/step median (min-max) | x default | kernels | arena MiB | moved MiB/step | moved x default |")
print("|---|---:|---:|---:|---:|---:|---:|")
for x in v:
    print("| %s | %.1f (%.1f-%.1f) | %.2f | %d | %.1f | %.1f | %.2f |" % (
        what(x["flags"]), x["ms_median"], x["ms_min"], x["ms_max"], x["ms_median"] / base["ms_median"],
        x["kernels"], mib(x["arena_bytes"]), mib(x["bytes_moved"]), x["bytes_moved"] / base["bytes_moved"]))
EOF
done
cat "$tmp/table.md"
[ -n "$out" ] && cp "$tmp/table.md" "$out"
exit $status

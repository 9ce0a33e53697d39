#!/bin/sh
# obj_cache.sh BUILD — the compiled-object cache (codegen/llvm/obj_cache.h)
# end to end, in a cache directory of its own (DAL_CACHE_DIR): a second run
# loads every kernel from the cache (counts under --time-passes); corrupt
# and truncated entries are noted and rebuilt; another key component
# (DAL_CACHE_KEY_SALT, standing for another CPU or LLVM) misses; --no-cache
# neither reads nor writes; AOT builds reuse their objects. Every run's
# results are compared with the reference executor's. Timings are printed,
# never checked.
. tests/scripts/lib/checks.sh

DAL_CACHE_DIR="$tmp/cache"
export DAL_CACHE_DIR
unset DAL_CACHE_KEY_SALT

tiny_dvae_inputs
run=$tiny_run

# counts NAME [FLAGS]: runs the JIT with --time-passes into $tmp/NAME.{npy,safetensors,err}
# and sets compiled, hits, misses, bad from the kernel counts line.
counts() {
  name=$1; shift
  t0=$(date +%s%N)
  if $run "$@" --time-passes --out loss_given_noise="$tmp/$name.npy" --grad-out "$tmp/$name.safetensors" \
     > /dev/null 2> "$tmp/$name.err"; then ok; else bad "$name: dalc failed"; cat "$tmp/$name.err"; fi
  ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  line=$(grep '^kernels: ' "$tmp/$name.err")
  compiled=$(echo "$line" | sed -n 's/^kernels: \([0-9]*\) compiled.*/\1/p')
  hits=$(echo "$line" | sed -n 's/.* \([0-9]*\) cache hits.*/\1/p')
  misses=$(echo "$line" | sed -n 's/.* \([0-9]*\) cache misses.*/\1/p')
  bad=$(echo "$line" | sed -n 's/.*(\([0-9]*\) bad entries.*/\1/p')
  printf '%s: %s ms (%s)\n' "$name" "$ms" "$line"
  [ -n "$compiled" ] && [ -n "$hits" ] && [ -n "$misses" ] && [ -n "$bad" ] && ok ||
    bad "$name: no kernel counts: '$line'"
}

# same_as_ref NAME: NAME's loss and gradients agree with the reference executor's
same_as_ref() {
  /usr/bin/python3 - "$tmp" "$1" <<'PY' && ok || bad "$1: results differ from the reference executor"
import json, struct, sys, numpy as np
t, name = sys.argv[1], sys.argv[2]
def tensors(path):  # a safetensors file of f32 tensors, by name
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    head = json.loads(b[8:8 + n])
    return {k: np.frombuffer(b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], np.float32)
            for k, v in head.items() if k != "__metadata__"}
want, got = tensors(f"{t}/ref.safetensors"), tensors(f"{t}/{name}.safetensors")
want["loss"], got["loss"] = np.load(f"{t}/ref.npy").reshape(1), np.load(f"{t}/{name}.npy").reshape(1)
assert want.keys() == got.keys() and len(want) > 10, (len(want), len(got))
worst = max((float(np.abs(got[k] - want[k]).max() / max(1e-3, np.abs(want[k]).max())), k) for k in want)
sys.exit(0 if worst[0] < 1e-4 else 1)
PY
}

# same_as NAME OTHER: bit-identical results
same_as() {
  cmp -s "$tmp/$1.npy" "$tmp/$2.npy" && cmp -s "$tmp/$1.safetensors" "$tmp/$2.safetensors" && ok ||
    bad "$1 and $2 give different results"
}

$run --backend=ref --out loss_given_noise="$tmp/ref.npy" --grad-out "$tmp/ref.safetensors" > /dev/null 2> "$tmp/err" &&
  ok || { bad "the reference run"; cat "$tmp/err"; }

# ---- cold, then warm: the second run compiles nothing ----
counts cold
[ "$hits" = 0 ] && [ "$misses" -gt 0 ] && [ "$compiled" = "$misses" ] && ok ||
  bad "cold run: want 0 hits and every miss compiled: $line"
entries=$(ls "$DAL_CACHE_DIR" | grep -c '^[0-9a-f]\{32\}\.o$')
[ "$entries" = "$misses" ] && ok || bad "cold run: $entries cache entries for $misses misses"
ls "$DAL_CACHE_DIR" | grep -q tmp && bad "temporary files left in the cache" || ok
same_as_ref cold
counts warm
[ "$compiled" = 0 ] && [ "$misses" = 0 ] && [ "$hits" = "$entries" ] && ok ||
  bad "warm run: want every kernel from the cache ($entries entries): $line"
same_as warm cold
same_as_ref warm

# ---- corrupt entries: one overwritten in the middle, one truncated, one emptied ----
set -- $(ls "$DAL_CACHE_DIR"/*.o | head -3)
size=$(wc -c < "$1")
printf 'XXXXXXXX' | dd of="$1" bs=1 seek=$((size / 2)) conv=notrunc 2> /dev/null
head -c $((size / 3)) "$2" > "$tmp/part" && cp "$tmp/part" "$2"
: > "$3"
counts corrupt
[ "$bad" = 3 ] && [ "$misses" = 3 ] && [ "$compiled" = 3 ] && [ "$hits" = $((entries - 3)) ] && ok ||
  bad "corrupt entries: want 3 bad, rebuilt: $line"
for why in "checksum mismatch" truncated "shorter than its header"; do
  grep -q "note: dal cache: .*: $why; rebuilding it" "$tmp/corrupt.err" && ok || bad "no note '$why'"
done
same_as corrupt cold
counts rebuilt
[ "$compiled" = 0 ] && [ "$bad" = 0 ] && [ "$hits" = "$entries" ] && ok || bad "the rebuilt entries are not whole: $line"
set --

# ---- another key component (another CPU or LLVM version) shares no entry ----
DAL_CACHE_KEY_SALT=another-cpu counts salted
[ "$hits" = 0 ] && [ "$misses" = "$entries" ] && ok || bad "another key component hit the cache: $line"
same_as salted cold

# ---- --no-cache: nothing read, nothing written ----
DAL_CACHE_DIR="$tmp/none" counts nocache --no-cache
[ "$hits" = 0 ] && [ "$misses" = 0 ] && [ "$compiled" -gt 0 ] && ok || bad "--no-cache used the cache: $line"
[ -e "$tmp/none" ] && bad "--no-cache created the cache directory" || ok
grep -q 'cache off (--no-cache)' "$tmp/nocache.err" && ok || bad "--time-passes does not say that the cache is off"
same_as nocache cold

# ---- AOT: a second build of the same program reuses its objects ----
for n in 1 2; do
  "$dalc" tests/fixtures/ops.dal --time-passes -o "$tmp/ops$n" > /dev/null 2> "$tmp/aot$n.err" && ok ||
    { bad "AOT build $n"; cat "$tmp/aot$n.err"; }
done
grep -q '^kernels: [1-9][0-9]* compiled, [0-9]* deduplicated, 0 cache hits' "$tmp/aot1.err" && ok ||
  bad "first AOT build: $(grep '^kernels' "$tmp/aot1.err")"
grep -q '^kernels: 0 compiled, [0-9]* deduplicated, [1-9][0-9]* cache hits, 0 cache misses' "$tmp/aot2.err" && ok ||
  bad "second AOT build: $(grep '^kernels' "$tmp/aot2.err")"
"$tmp/ops1" info > "$tmp/info1" && "$tmp/ops2" info > "$tmp/info2" && cmp -s "$tmp/info1" "$tmp/info2" && ok ||
  bad "the AOT builds with and without the cache differ"

summary obj_cache.sh

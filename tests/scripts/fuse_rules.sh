#!/bin/sh
# fuse_rules.sh BUILD — the fusion experiments end to end: `dalc fuse-rules`
# and `dalc passes` list the rules; --fuse-rule switches change --stats'
# kernel counts the expected way (every switch off is -fno-fuse; after
# -fno-fuse, +epilogue fuses again); --explain-fusion names the rules;
# bad names, constraints and signless names exit 1 with the list; `bench
# --compare` smoke-runs on the tiny dVAE (two variants side by side, the
# same loss, a bad variant flag is an error) and bench/fuse_rules.sh makes
# its table on the tiny configs. Timings are never checked.
. tests/scripts/lib/checks.sh

expect_ok() {
  what=$1; shift
  if "$@" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "$what: exit $?"; cat "$tmp/err"; fi
}
switches="elementwise recompute siblings reduce-prologue reduce-epilogue two-pass epilogue in-place attention remat"

# ---- the table ----
expect_ok "dalc fuse-rules" "$dalc" fuse-rules
for r in $switches no-duplication no-cycles one-reduction; do
  grep -q "^  $r " "$tmp/out" && ok || bad "dalc fuse-rules does not list $r"; done
expect_ok "dalc passes" "$dalc" passes
grep -q '^  epilogue ' "$tmp/out" && grep -q '^  cse ' "$tmp/out" && ok || bad "dalc passes lacks the passes or the rules"

# ---- bad names ----
expect_error "unknown rule" "unknown fusion rule 'bogus'" "$dalc" models/gpt.dal --config tiny --stats --fuse-rule=-bogus
grep -q 'two-pass' "$tmp/err" && ok || bad "the unknown-rule error does not list the rules"
expect_error "unknown rule in a list" "unknown fusion rule 'nope'" "$dalc" models/gpt.dal --config tiny --stats --fuse-rule=-epilogue,+nope
expect_error "constraint" "correctness constraint" "$dalc" models/gpt.dal --config tiny --stats --fuse-rule=-no-cycles
expect_error "no sign" "needs a sign" "$dalc" models/gpt.dal --config tiny --stats --fuse-rule epilogue
expect_error "no value" "needs a value" "$dalc" models/gpt.dal --config tiny --stats --fuse-rule
expect_error "run -- unknown rule" "unknown fusion rule 'bogus'" "$dalc" run models/gpt.dal --config tiny --fuse-rule=-bogus -- info

# ---- kernel counts ----
kernels() { "$dalc" models/gpt.dal --config tiny --stats --fn loss "$@" 2>/dev/null | sed -n 's/^kernels: \([0-9]*\) fused kernels.*/\1/p'; }
in_place() { "$dalc" models/gpt.dal --config tiny --stats --fn loss "$@" 2>/dev/null | sed -n 's/^in place: \([0-9]*\) .*/\1/p'; }
k_on=$(kernels) k_off=$(kernels -fno-fuse)
[ -n "$k_on" ] && [ -n "$k_off" ] && [ "$k_on" -lt "$k_off" ] && ok || bad "kernels default '$k_on', -fno-fuse '$k_off'"
all=
for r in $switches; do
  [ $r = in-place ] && continue
  all="$all${all:+,}-$r"
  [ $r = remat ] && continue # a graph pass: fewer nodes, not more kernels
  k=$(kernels --fuse-rule=-$r)
  [ -n "$k" ] && [ "$k" -gt "$k_on" ] && [ "$k" -le "$k_off" ] && ok || bad "--fuse-rule=-$r: $k kernels (default $k_on, none $k_off)"
done
[ "$(kernels --fuse-rule=$all)" = "$k_off" ] && ok || bad "every fusion switch off is not -fno-fuse"
k=$(kernels -fno-fuse --fuse-rule=+epilogue)
[ -n "$k" ] && [ "$k" -lt "$k_off" ] && ok || bad "-fno-fuse --fuse-rule=+epilogue: $k kernels, -fno-fuse $k_off"
[ "$(kernels --fuse-rule=-epilogue --fuse-rule=+epilogue)" = "$k_on" ] && ok || bad "+epilogue after -epilogue is not the default"
[ "$(kernels --fuse-rule=-in-place)" = "$k_on" ] && ok || bad "in-place changed the fusion plan"
"$dalc" models/gpt.dal --config tiny --stats --fn loss > "$tmp/remat" 2>&1
grep -Eq '^remat: +[0-9]+ values recomputed' "$tmp/remat" && ok || bad "--stats has no remat line"
"$dalc" models/gpt.dal --config tiny --stats --fn loss --fuse-rule=-remat > "$tmp/remat" 2>&1
grep -q '^remat:' "$tmp/remat" && bad "--fuse-rule=-remat still runs the remat pass" || ok
[ "$(in_place --fuse-rule=-in-place)" = 0 ] && [ "$(in_place)" -gt 0 ] && ok || bad "--fuse-rule=-in-place still writes in place"

# ---- explain ----
expect_ok "explain" "$dalc" models/gpt.dal --config tiny --emit=ir --fn logits --explain-fusion --fuse-rule=-epilogue -o "$tmp/ir.txt"
grep -q '\[no-duplication\]: ' "$tmp/err" && ok || bad "--explain-fusion names no constraint"
grep -q '\[epilogue\]: rule epilogue is switched off' "$tmp/err" && ok || bad "--explain-fusion does not name the switched-off rule"
grep -Eq '^joined by rule: elementwise [0-9]+ .* epilogue 0 \(off\)' "$tmp/err" && ok || bad "no joins-by-rule line"

# ---- bench --compare ----
expect_ok "bench --compare" "$dalc" run models/dvae.dal --config tiny -- bench --steps 1 --warmup 0 \
  --set tau=1 --set beta=1 --compare '' '-fno-fuse --fuse-rule=+epilogue'
grep -q 'x first' "$tmp/out" && grep -Eq '^  \(default\) +[0-9.]+ \(' "$tmp/out" &&
  grep -Eq '^  -fno-fuse --fuse-rule=\+epilogue +[0-9.]+ \(' "$tmp/out" && ok || { bad "no compare table"; cat "$tmp/out"; }
# the variants compute the same loss (to rounding)
python3 - "$tmp/out" <<'EOF' && ok || bad "the variants' losses differ"
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith("  (default)") or l.startswith("  -fno-fuse")]
loss = [float(r[-1]) for r in rows]
sys.exit(0 if len(loss) == 2 and abs(loss[0] - loss[1]) <= 1e-4 * max(1, abs(loss[0])) else 1)
EOF
# the GPT's tokens (zeros, as .npy files) for its inference entry image_ce
"$dalc" info models/gpt.dal --config tiny > "$tmp/info" 2>&1
python3 - "$tmp/info" "$tmp" <<'EOF' || bad "could not write the GPT's tokens"
import re, struct, sys
m = re.search(r"image_ce\(text: i32\[(\d+), (\d+)\], image: i32\[(\d+), (\d+)\]\)", open(sys.argv[1]).read())
b, lt, _, li = map(int, m.groups())
for name, cols in (("text", lt), ("image", li)):
    h = "{'descr': '<i4', 'fortran_order': False, 'shape': (%d, %d), }" % (b, cols)
    h += " " * (63 - (10 + len(h)) % 64) + "\n"
    with open("%s/%s.npy" % (sys.argv[2], name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + bytes(4 * b * cols))
EOF
expect_ok "bench --compare --json" "$dalc" run models/gpt.dal --config tiny -- bench --fn image_ce --steps 1 \
  --warmup 0 --json --data npy:text=$tmp/text.npy,image=$tmp/image.npy \
  --compare '' '--fuse-rule=-elementwise'
python3 - "$tmp/out" <<'EOF' && ok || bad "compare --json: $(cat "$tmp/out")"
import json, sys
r = json.load(open(sys.argv[1]))
v = r["variants"]
sys.exit(0 if len(v) == 2 and v[1]["kernels"] > v[0]["kernels"] and v[0]["bytes_moved"] > 0 else 1)
EOF
expect_error "bad variant flag" "cannot differ between variants" "$dalc" run models/dvae.dal --config tiny -- bench \
  --steps 1 --set tau=1 --set beta=1 --compare '' '--config bench'
expect_error "bad variant rule" "variant '--fuse-rule=-bogus': unknown fusion rule" "$dalc" run models/dvae.dal \
  --config tiny -- bench --steps 1 --set tau=1 --set beta=1 --compare '--fuse-rule=-bogus'
# convolution algorithms as variants (each lowered with its own -fconv in one process); the same loss
expect_ok "bench --compare -fconv" "$dalc" run models/dvae.dal --config tiny -- bench --steps 1 --warmup 0 \
  --set tau=1 --set beta=1 --compare '-fconv=im2col' '-fconv=direct' '-fconv winograd'
python3 - "$tmp/out" <<'EOF' && ok || { bad "the -fconv variants' table or losses"; cat "$tmp/out"; }
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.startswith("  -fconv")]
steps = [int(r[-4]) for r in rows]
loss = [float(r[-1]) for r in rows]
sys.exit(0 if len(rows) == 3 and len(set(steps)) == 3 and max(loss) - min(loss) <= 1e-4 * max(1, abs(loss[0])) else 1)
EOF
expect_error "bad variant -fconv" "variant '-fconv=fft': -fconv must be auto, im2col, winograd or direct, not 'fft'" \
  "$dalc" run models/dvae.dal --config tiny -- bench --steps 1 --set tau=1 --set beta=1 --compare '-fconv=fft'

# ---- the table script ----
if sh bench/fuse_rules.sh --build "$build" --config tiny --steps 1 --warmup 0 --out "$tmp/t.md" > "$tmp/table" 2> "$tmp/err"; then
  ok
else
  bad "bench/fuse_rules.sh failed"; cat "$tmp/err"
fi
for m in dvae gpt; do
  [ "$(grep -c "^| " "$tmp/t.md")" -ge 25 ] && grep -q "models/$m.dal tiny, entry loss" "$tmp/t.md" && ok ||
    bad "the table lacks $m's rows"; done
grep -Eq '^\| all fusion off \(-fno-fuse\) \| [0-9.]+ \([0-9.]+-[0-9.]+\) \| [0-9.]+ \| [0-9]+ \|' "$tmp/t.md" && ok ||
  bad "no -fno-fuse row"
grep -q '^| in-place off |' "$tmp/t.md" && grep -q '^| epilogue off |' "$tmp/t.md" && ok || bad "no rule rows"
grep -q '^| Winograd off (-fconv=direct) |' "$tmp/t.md" &&
  grep -q '^| F(4x4,3x3) in the training step too (-fconv=winograd4) |' "$tmp/t.md" && ok || bad "no -fconv rows"
grep -q '^| wino-epilogue off |' "$tmp/t.md" && grep -q '^| wino-prologue off |' "$tmp/t.md" &&
  grep -q '^| wino-share-u on (off by default) |' "$tmp/t.md" && ok || bad "no Winograd rule rows"
cmp -s "$tmp/table" "$tmp/t.md" && ok || bad "stdout and --out differ"

summary fuse_rules.sh

#!/bin/sh
# fresh_make.sh BUILD — the first `make` on a machine without the Debian
# packages must work: the Makefile may read llvm-config's and pkg-config's
# flags only after the packages check (tools/deps.sh) has run. A copy of
# the tree is built where LLVM_CONFIG and PKG_CONFIG name wrapper scripts
# that do not exist until the copy's fake tools/deps.sh creates them (as
# apt-get would install the real tools); the build must succeed on the
# first call and the tools must have been asked only after the check.
# Two first calls, each on a fresh "machine":
#   make deps OBJ   the shape of `make demo` (demo: deps all), where a
#                   Makefile that reads the flags while parsing fails
#   make OBJ        any goal (the default `make` too) runs the check first
# Then: a second call rebuilds nothing, a failing check stops the build
# before any compiling, and `make clean` needs no packages.
#
# OBJ is FRESH_MAKE_OBJ, default an LLVM object and the cairo one (seconds;
# build/dalc builds the whole of dalc). FRESH_MAKE_MAKEFILE=FILE uses FILE as the copy's Makefile
# (to check that this test fails on an old one).
. tests/scripts/lib/checks.sh

# Run from inside `make test` this inherits the outer make's state
# (DAL_DEPS_OK=1 would skip the packages check): the copy starts clean.
unset MAKEFLAGS MFLAGS MAKELEVEL DAL_DEPS_OK DEPS LLVM_CONFIG PKG_CONFIG SAN

real_llvm=$(command -v llvm-config-16) || { echo "fresh_make.sh: llvm-config-16 is not installed" >&2; exit 1; }
real_pc=$(command -v pkg-config) || { echo "fresh_make.sh: pkg-config is not installed" >&2; exit 1; }

src=$tmp/src
mkdir -p "$src"
tar -cf - --exclude=./build --exclude=./build-san --exclude=./.git --exclude=./demo-out . | tar -xf - -C "$src"
[ -n "${FRESH_MAKE_MAKEFILE:-}" ] && cp "$FRESH_MAKE_MAKEFILE" "$src/Makefile"

# The copy's packages check is a fake: it logs itself, then "installs" the
# two tools as wrappers that log each call and run the real ones.
cat > "$tmp/fake_deps.sh" <<EOF
echo deps >> "$tmp/log"
mkdir -p "$tmp/bin"
printf '#!/bin/sh\necho "llvm-config \$*" >> "$tmp/log"\nexec "$real_llvm" "\$@"\n' > "$tmp/bin/llvm-config"
printf '#!/bin/sh\necho "pkg-config \$*" >> "$tmp/log"\nexec "$real_pc" "\$@"\n' > "$tmp/bin/pkg-config"
chmod +x "$tmp/bin/llvm-config" "$tmp/bin/pkg-config"
EOF

objs=${FRESH_MAKE_OBJ:-build/obj/codegen/llvm/llvm_session.o build/obj/runtime/draw/image_grid.o}
fresh_machine() {
  rm -rf "$tmp/bin" "$tmp/log" "$src/build"
  cp "$tmp/fake_deps.sh" "$src/tools/deps.sh"
}
run_make() { make -C "$src" -j2 --no-print-directory LLVM_CONFIG="$tmp/bin/llvm-config" PKG_CONFIG="$tmp/bin/pkg-config" "$@"; }
deps_runs() { grep -c '^deps$' "$tmp/log" 2>/dev/null; }

# ---- the first call on a fresh machine, both shapes -----------------------------
for goals in "deps $objs" "$objs"; do
  fresh_machine
  if run_make $goals > "$tmp/out" 2>&1; then ok; else bad "the first 'make $goals' failed:"; cat "$tmp/out"; fi
  for o in $objs; do [ -f "$src/$o" ] && ok || bad "the first 'make $goals' built no $o"; done
  [ "$(head -n 1 "$tmp/log" 2>/dev/null)" = deps ] && ok || bad "'make $goals': the packages check did not run first"
  [ "$(deps_runs)" = 1 ] && ok || bad "'make $goals' ran the check $(deps_runs) times, not once"
  grep -q '^llvm-config --cflags' "$tmp/log" 2>/dev/null && ok ||
    bad "'make $goals': llvm-config --cflags was not asked after the check"
  for p in openblas 'cairo fontconfig'; do
    grep -q "^pkg-config --cflags $p" "$tmp/log" 2>/dev/null && ok ||
      bad "'make $goals': pkg-config --cflags $p was not asked after the check"
  done
  grep -q 'not found\|No such file' "$tmp/out" && bad "'make $goals' called a tool before it existed" || ok
done

# ---- a second call: the check again (quick), nothing rebuilt ----------------------
if run_make $objs > "$tmp/out" 2>&1; then ok; else bad "the second make failed:"; cat "$tmp/out"; fi
[ "$(deps_runs)" = 2 ] && ok || bad "the second make did not run the check"
grep -q ' -c .* -o ' "$tmp/out" && bad "the second make rebuilt something: $(cat "$tmp/out")" || ok

# ---- a failing check stops the build; `make clean` needs no check ----------------
fresh_machine
echo 'exit 1' > "$src/tools/deps.sh"
if run_make $objs > "$tmp/out" 2>&1; then bad "make succeeded although the packages check failed"; else ok; fi
[ -d "$src/build" ] && bad "make compiled something although the packages check failed" || ok
fresh_machine
mkdir -p "$src/build"
run_make clean > "$tmp/out" 2>&1 && ok || bad "make clean failed: $(cat "$tmp/out")"
[ -d "$src/build" ] && bad "make clean left build/" || ok
[ -e "$tmp/log" ] && bad "make clean ran the packages check" || ok

summary fresh_make.sh

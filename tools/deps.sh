#!/bin/sh
# deps.sh — make sure the Debian packages dal needs are installed.
# As root, installs the missing ones with apt-get; otherwise prints the
# command to run. Quick (one dpkg-query) when nothing is missing: every
# `make` runs it first. Each package is listed with why dal needs it.
set -e
pkgs="
build-essential   compiler and make
pkg-config        finds library flags
flex              the .dal lexer
bison             the .dal parser
check             unit-test framework
libsubunit-dev    Check's link dependency
libopenblas-dev   GEMMs
libcjson-dev      safetensors headers
libstb-dev        PNG/JPEG images
libcairo2-dev     draws captioned PNG grids (cairo)
libfontconfig-dev finds the captions' font; frees its caches for LeakSanitizer
fonts-dejavu-core the captions' sans font (DejaVu Sans, found by fontconfig)
zlib1g-dev        reads the gzip'd Fashion-MNIST files
dataset-fashion-mnist  the fashion-mnist dataset (idx files)
llvm-16-dev       native code generation (LLVM C API, shared libLLVM)
python3-numpy     test fixtures
python3-torch     the PyTorch reference (parity tests, benchmarks)
graphviz          renders --emit=dot in tests
"
names=$(printf '%s\n' "$pkgs" | awk 'NF {print $1}')
# One dpkg-query for all of them (fast: every `make` runs this first).
installed=$(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $names 2>/dev/null |
            awk '$2 == "installed" {printf " %s", $1}')
missing=""
for p in $names; do
  case "$installed " in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
echo "deps: missing Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
  echo "deps: installed$missing"
else
  echo "deps: run as root:  apt-get install -y$missing"
  exit 1
fi

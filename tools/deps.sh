#!/bin/sh
# deps.sh — make sure the Debian packages dal needs are installed.
# As root, installs the missing ones with apt-get; otherwise prints the
# command to run. Each package is listed with why dal needs it.
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
zlib1g-dev        reads the gzip'd Fashion-MNIST files
dataset-fashion-mnist  the fashion-mnist dataset (idx files)
llvm-16-dev       native code generation (LLVM C API, shared libLLVM)
python3-numpy     test fixtures
python3-torch     the PyTorch reference (parity tests, benchmarks)
graphviz          renders --emit=dot in tests
"
missing=""
for p in $(printf '%s\n' "$pkgs" | awk 'NF {print $1}'); do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
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

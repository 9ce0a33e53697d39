#!/bin/sh
# deps.sh — AFL++ for `make fuzz-build` (Debian's afl++; not one of the
# packages every build needs, tools/deps.sh). As root, installs it when
# missing; otherwise says how.
command -v afl-clang-fast >/dev/null 2>&1 && command -v afl-fuzz >/dev/null 2>&1 && exit 0
echo "fuzz: AFL++ (afl-clang-fast, afl-fuzz) is missing"
if [ "$(id -u)" = 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends afl++ >/dev/null && echo "fuzz: installed afl++" && exit 0
  exit 1
fi
echo "fuzz: run as root:  apt-get install -y afl++"
exit 1

#!/usr/bin/env bash
# Configures and builds one flavour of the tree into build/<flavour>.
#   scripts/build.sh [release|asan|tsan]
# release: g++, warnings as errors. asan: clang, ASan+UBSan, -Wthread-safety as errors.
# tsan: clang, ThreadSanitizer. Builds with -j2 (the machine's cores); one build at a time.
set -euo pipefail
cd "$(dirname "$0")/.."
flavour=${1:-release}
case "$flavour" in
  release) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=g++) ;;
  asan) args=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_COMPILER=clang++ "-DSS_SANITIZE=address;undefined"
              -DSS_BENCHMARKS=OFF) ;;
  tsan) args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ -DSS_SANITIZE=thread
              -DSS_BENCHMARKS=OFF) ;;
  *) echo "usage: $0 [release|asan|tsan]" >&2; exit 2 ;;
esac
mkdir -p build
exec 9>"build/.$flavour.lock"
flock 9  # a second build of the same flavour waits instead of racing in the same directory
cmake -S . -B "build/$flavour" -G Ninja -DSS_WERROR=ON "${args[@]}" >/dev/null
ninja -C "build/$flavour" -j "${SS_JOBS:-2}"

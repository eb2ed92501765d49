#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is missing, then builds and
# runs every test in three flavours: release (g++), ASan+UBSan (clang, with -Wthread-safety as
# errors) and TSan (clang). Each flavour's failures fail the run. .ci/run calls exactly this.
#   scripts/test.sh            all three flavours
#   scripts/test.sh release    one flavour
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/check-format.sh

flavours=("$@")
[[ ${#flavours[@]} -gt 0 ]] || flavours=(release asan tsan)

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/tests/tsan.supp"

for flavour in "${flavours[@]}"; do
  echo "=== $flavour: build"
  start=$(date +%s)
  scripts/build.sh "$flavour"
  echo "=== $flavour: test"
  (cd "build/$flavour" && ctest --output-on-failure -j2 --timeout 600)
  echo "=== $flavour: passed in $(( $(date +%s) - start )) s"
done
echo "=== all tests passed: ${flavours[*]}"

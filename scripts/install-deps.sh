#!/usr/bin/env bash
# Installs every Debian 12 package SessionServer needs to build, test and run.
# Idempotent and non-interactive: installs only what is missing, so a second run is a no-op.
# Package list and pitfalls: ../shared/DEPENDENCIES.md.
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config
  libthrift-dev thrift-compiler libhiredis-dev librocksdb-dev libcuckoo-dev
  libgflags-dev libgoogle-glog-dev libgtest-dev libgmock-dev libbenchmark-dev
  libevent-dev libssl-dev libboost-dev redis-server redis-tools libcpp-httplib-dev
  python3 python3-thrift
  clang libclang-rt-14-dev clang-format
  chromium nodejs
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
# npm (browser test, tests/e2e): NodeSource's nodejs bundles it and conflicts with Debian's npm
# package, so ask for Debian's npm only when no npm is on the PATH.
command -v npm >/dev/null 2>&1 || missing+=(npm)

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

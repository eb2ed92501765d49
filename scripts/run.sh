#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds, and runs a
# session_server on 127.0.0.1:7500 with embedded defaults (256 MiB memory tier, 1 MiB values,
# a RocksDB disk tier in build/data/7500 that keeps sessions across restarts).
# Extra arguments go to session_server (e.g. --port=7600 --memory_bytes=1073741824).
# Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
echo "session_server: Thrift (framed, binary) on 127.0.0.1:7500 unless --port says otherwise;"
echo "protocol in proto/session.thrift and docs/PROTOCOL.md. Ctrl-C to stop."
exec build/release/session_server --data_dir="$PWD/build/data/7500" "$@"

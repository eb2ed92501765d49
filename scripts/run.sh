#!/usr/bin/env bash
# The main job, from a fresh Debian 12 machine: installs what is missing, builds, and runs a local
# SessionServer fleet on loopback (deploy/fleet.sh) with embedded defaults:
#   Redis (the fleet's backing store    127.0.0.1:6390, data in build/data/redis (AOF)
#     and registry)
#   session_server x3                   127.0.0.1:7500, :7501 and :7502, each with a 256 MiB
#                                       memory tier, a RocksDB disk tier and journal in
#                                       build/data/<port>, writing behind to the Redis and
#                                       registered in it (sessionctl list)
#   session_webapp (example shop)       http://127.0.0.1:8080 and http://127.0.0.1:8081, sharing
#                                       sessions through the fleet (cookie keys in
#                                       build/data/webapp.keys; plain HTTP, so not Secure)
# Extra arguments go to every session_server (e.g. --memory_bytes=1073741824); FLEET_* variables
# change the shape of the fleet (deploy/fleet.sh lists them).
# Ctrl-C stops everything cleanly (web apps, then servers, which flush to Redis, then Redis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh release
exec deploy/fleet.sh "$@"

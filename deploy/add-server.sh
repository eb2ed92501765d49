#!/usr/bin/env bash
# Adds one session server to the local fleet started by deploy/fleet.sh: the next port after the
# fleet's highest (or PORT), the same flags, its own data directory; waits until it is listed
# active by `sessionctl list`. Clients that read the registry place new sessions on it within
# their view refresh (1 s); existing sessions stay with their servers.
#   deploy/add-server.sh [PORT]            (FLEET_DIR: the fleet's data directory, default build/data)
# Prints the new server's id. It is stopped with the rest of the fleet (fleet.sh's Ctrl-C).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
load_fleet_env

port=${1:-}
if [[ -z $port ]]; then
  last=$(server_ports | tail -n 1)
  [[ -n $last ]] || die "the fleet in $FLEET_DIR has no servers"
  port=$((last + 1))
fi
if server_pid "$port" >/dev/null; then die "a server of this fleet already runs on :$port"; fi
if port_busy "$port"; then die "port $port on 127.0.0.1 is in use"; fi

id=$(server_id "$port")
since=$(now_ms)
write_server_flagfile "$port"
start_server "$port"
log "started session_server $id (pid $(cat "$RUN_DIR/server-$port.pid"), log $RUN_DIR/server-$port.log)"
wait_port "$port" 30 || die "$id did not start listening (see $RUN_DIR/server-$port.log)"
wait_registered "$id" "$since" active 20 || die "$id is not listed active by sessionctl list"
log "$id is in the fleet (active, $(($(now_ms) - since)) ms after start)"
echo "$id"

#!/usr/bin/env bash
# Drains one server of the local fleet: `sessionctl drain`, then waits until the server reports
# `drained` in `sessionctl list` (it takes no new sessions, Redis has every change it holds, and
# it hands its sessions off to other servers), then with --stop stops it with SIGTERM.
#   deploy/drain.sh SERVER_ID [--stop]      (e.g. 127.0.0.1:7501; FLEET_DIR as for fleet.sh)
# DRAIN_TIMEOUT_S (default 60): how long to wait for `drained`.
# A session_server built before the drained state existed only reports `draining`: the script
# says so and falls back to waiting until the server's write-behind queue is empty (Redis has
# every change it held at that moment); with --stop, SIGTERM then flushes the rest to Redis.
# The drain flag stays in Redis until `sessionctl undrain SERVER_ID`, restarts included.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
load_fleet_env

[[ $# -ge 1 ]] || die "usage: deploy/drain.sh SERVER_ID [--stop]"
id=$1
stop=0
[[ ${2:-} == --stop ]] && stop=1
timeout_s=${DRAIN_TIMEOUT_S:-60}
port=$(port_of_id "$id")
[[ -n $(member_field "$id" 3) ]] || die "$id is not in the fleet (sessionctl list)"

start=$(now_ms)
sessionctl drain "$id" >&2
fallback=0
if ! grep -q drained "$SESSION_SERVER"; then
  fallback=1
  log "NOTE: $SESSION_SERVER predates the 'drained' state (it only reports 'draining')"
fi
deadline=$((SECONDS + timeout_s))
state=""
while ((SECONDS < deadline)); do
  state=$(member_field "$id" 3)
  [[ $state == drained ]] && break
  if ((fallback)) && [[ $state == draining ]]; then break; fi
  sleep 0.2
done
if [[ $state == drained ]]; then
  log "$id is drained ($(($(now_ms) - start)) ms after the drain request): Redis has every change it holds"
else
  if ((!fallback)); then
    log "FALLBACK: $id did not report 'drained' within ${timeout_s}s (state '${state:-gone}')"
  fi
  [[ $state == draining ]] || die "$id is not draining (state '${state:-gone}')"
  log "FALLBACK: $id is draining (no new sessions from registry clients); waiting for its" \
    "write-behind queue to be empty"
  while ((SECONDS < deadline + 30)); do
    depth=$(info_counter "$port" wb_queue_depth)
    [[ $depth == 0 ]] && break
    sleep 0.2
  done
  [[ ${depth:-} == 0 ]] || die "$id still has ${depth:-?} changes queued for Redis"
  log "FALLBACK: $id has an empty write-behind queue ($(($(now_ms) - start)) ms after the drain" \
    "request); it does not hand sessions off: its clients move only when it stops"
fi

if ((stop)); then
  pid=$(server_pid "$port") || die "no pid for $id in $RUN_DIR (not started by deploy/fleet.sh?)"
  log "stopping $id (pid $pid) with SIGTERM"
  kill -TERM "$pid"
  wait_gone "$pid" 90 || die "$id did not exit within 90 s"
  if tail -n 20 "$RUN_DIR/server-$port.log" | grep -q "every change is in Redis"; then
    log "$id stopped: every change is in Redis"
  else
    log "$id stopped; its log does not confirm the Redis flush (see $RUN_DIR/server-$port.log)"
  fi
  rm -f "$RUN_DIR/server-$port.pid"
  log "to bring it back: sessionctl undrain $id, then restart it (deploy/add-server.sh $port)"
fi
echo "$id ${state:-gone}"

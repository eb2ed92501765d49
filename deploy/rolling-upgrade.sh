#!/usr/bin/env bash
# Rolling upgrade of the local fleet started by deploy/fleet.sh: for each server in turn, SIGTERM
# (it stops accepting, writes its memory tier to its disk tier and its pending changes to Redis),
# wait for it to exit, start it again with the same flagfile and data directory (a warm restart
# from its disk tier), wait until `sessionctl list` shows it active again (a heartbeat from the
# new process), pause, then the next one. One server is down at a time; its clients fail over
# to the others meanwhile.
#   deploy/rolling-upgrade.sh            (FLEET_DIR as for fleet.sh)
# Environment: UPGRADE_TO=PATH  the new session_server binary (default: the fleet's binary,
#              e.g. build/release/session_server after a rebuild)
#              ROLLING_PAUSE_S=2  between servers (lets client breakers close again)
#              ROLLING_DRAIN=1    drain each server first (deploy/drain.sh) and undrain it after
#                                 its restart
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
load_fleet_env
SESSION_SERVER=${UPGRADE_TO:-$SESSION_SERVER}
[[ -x $SESSION_SERVER ]] || die "$SESSION_SERVER is not executable"
pause=${ROLLING_PAUSE_S:-2}

mapfile -t ports < <(server_ports)
((${#ports[@]} > 0)) || die "the fleet in $FLEET_DIR has no servers"
log "rolling upgrade of ${#ports[@]} servers to $SESSION_SERVER"
total_start=$(now_ms)
for port in "${ports[@]}"; do
  id=$(server_id "$port")
  pid=$(server_pid "$port") || { log "$id is not running: skipped"; continue; }
  if [[ ${ROLLING_DRAIN:-0} == 1 ]]; then "$DEPLOY_ROOT/deploy/drain.sh" "$id" >/dev/null; fi
  t0=$(now_ms)
  kill -TERM "$pid"
  wait_gone "$pid" 90 || die "$id (pid $pid) did not exit within 90 s; stopping the upgrade"
  t1=$(now_ms)
  flushed=no
  if tail -n 20 "$RUN_DIR/server-$port.log" | grep -q "every change is in Redis"; then flushed=yes; fi
  start_server "$port"
  wait_port "$port" 60 || die "$id did not listen again (see $RUN_DIR/server-$port.log)"
  t2=$(now_ms)
  states=active
  [[ ${ROLLING_DRAIN:-0} == 1 ]] && states="active|draining|drained"
  wait_registered "$id" "$t1" "$states" 20 || die "$id is not back in sessionctl list"
  if [[ ${ROLLING_DRAIN:-0} == 1 ]]; then
    sessionctl undrain "$id" >/dev/null
    wait_registered "$id" "$(now_ms)" active 20 || die "$id did not become active after undrain"
  fi
  t3=$(now_ms)
  log "$id upgraded: stop $((t1 - t0)) ms (flushed to Redis: $flushed), listening again after" \
    "$((t2 - t1)) ms, active in the registry after $((t3 - t2)) ms (down $((t2 - t0)) ms)"
  sleep "$pause"
done
log "rolling upgrade done in $(($(now_ms) - total_start)) ms"

#!/usr/bin/env bash
# Chaos on the local fleet started by deploy/fleet.sh: every CHAOS_INTERVAL_S seconds, kill -9 a
# random server and restart it (same flagfile and data directory: its journal brings every
# acknowledged change to Redis) after CHAOS_RESTART_DELAY_S. Stops by itself after
# CHAOS_DURATION_S seconds or CHAOS_MAX_KILLS kills, whichever comes first, and leaves every
# server running.
#   deploy/chaos.sh        (FLEET_DIR as for fleet.sh)
# Environment: CHAOS_DURATION_S=30 CHAOS_INTERVAL_S=5 CHAOS_MAX_KILLS=10 CHAOS_RESTART_DELAY_S=1
#              CHAOS_EVENTS=FILE  appends "<epoch ms> kill|listening|registered <server id> <mono us>"
#              (deploy/measure.sh derives the failover latency from them)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
load_fleet_env
duration=${CHAOS_DURATION_S:-30}
interval=${CHAOS_INTERVAL_S:-5}
max_kills=${CHAOS_MAX_KILLS:-10}
restart_delay=${CHAOS_RESTART_DELAY_S:-1}
events=${CHAOS_EVENTS:-/dev/null}

# Wall-clock ms, the event, the server, and the monotonic clock in us (/proc/uptime, 10 ms steps):
# session_loadtest's checker reports its times on the monotonic clock.
event() {
  local up _
  read -r up _ </proc/uptime
  echo "$(now_ms) $1 $2 ${up/./}0000" >>"$events"
}
end=$((SECONDS + duration))
kills=0
log "chaos: for ${duration}s, every ${interval}s kill -9 a random server (at most $max_kills)"
while ((SECONDS < end && kills < max_kills)); do
  next=$((SECONDS + interval))
  mapfile -t running < <(for p in $(server_ports); do server_pid "$p" >/dev/null && echo "$p"; done)
  if ((${#running[@]} > 0)); then
    port=${running[RANDOM % ${#running[@]}]}
    id=$(server_id "$port")
    pid=$(server_pid "$port")
    kill -KILL "$pid"
    event kill "$id"
    kills=$((kills + 1))
    t0=$(now_ms)
    wait_gone "$pid" 10 || true
    dead=$(now_ms)
    sleep "$restart_delay"
    start_server "$port"
    if wait_port "$port" 30; then
      event listening "$id"
      t1=$(now_ms)
      if wait_registered "$id" "$dead" active 20; then
        event registered "$id"
        log "kill #$kills: $id (pid $pid) killed, listening again after $((t1 - t0)) ms," \
          "registered after $(($(now_ms) - t0)) ms"
      else
        log "kill #$kills: $id restarted but not registered within 20 s"
      fi
    else
      log "kill #$kills: $id did not restart (see $RUN_DIR/server-$port.log)"
    fi
  fi
  while ((SECONDS < next && SECONDS < end)); do sleep 0.2; done
done
log "chaos done: $kills kills"
